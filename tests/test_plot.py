"""Plots: the learning curve and the model over its data, drawn with matplotlib (optional),
checked through the figure's axes (labels, titles, legends) and the files written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from treegrad import TreegradError
from treegrad.outputs.plotting import PlotData, draw, load_points, plot_format, plot_model
from treegrad.outputs.textplot import text_curve
from treegrad.run.modelfile import load as load_model
from treegrad.run.train import train as train_spec

runner = CliRunner()

LINE = """\
name: line
inputs: [x, y]
output:
  sigmoid:
    add:
      - mul: [param, {relu: {add: [{mul: [param, x]}, {mul: [param, y]}, param]}}]
      - param
loss: bce
data: line:200
target: label
training: {epochs: 5, learning_rate: 0.1, seed: 3, validation_split: 0.25}
"""

F2C = """\
name: f2c
inputs: [f]
output: {add: [{mul: [param, f]}, param]}
data: f2c:100
training: {epochs: 5, learning_rate: 0.1}
"""

SPIRAL = """\
name: spiral
inputs: [x, y]
layers:
  - {linear: 6, activation: tanh}
  - {linear: 3}
  - {softmax: true}
data: spiral:150
training: {epochs: 3, learning_rate: 0.05}
"""

SURFACE = """\
name: surface
inputs: [a, b]
layers:
  - {linear: 4, activation: tanh}
  - {linear: 1}
data: table.csv
training: {epochs: 3, learning_rate: 0.05}
"""


def trained(tmp_path: Path, text: str, name: str) -> Path:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(text)
    out = tmp_path / f"{name}.model.json"
    train_spec(spec, out=out)
    return out


def test_two_input_classifier_draws_curve_and_boundary(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    loaded = load_model(trained(tmp_path, LINE, "line"))
    points, notes = load_points(loaded.record, None)
    assert points is not None and len(points.X) == 200 and notes == []
    fig, result = draw(loaded.root, loaded.record, points)
    assert result.panels == ["learning curve", "decision boundary"]
    curve, boundary = fig.axes[:2]
    assert (curve.get_xlabel(), curve.get_ylabel()) == ("epoch", "mean loss over each epoch (bce)")
    assert [t.get_text() for t in curve.get_legend().get_texts()][:2] == ["training", "validation"]
    assert len(curve.get_lines()[0].get_xdata()) == 5
    assert (boundary.get_xlabel(), boundary.get_ylabel()) == ("x", "y")
    assert boundary.get_title().startswith("Decision boundary: accuracy ")
    assert [t.get_text() for t in boundary.get_legend().get_texts()] == ["decision boundary", "0", "1"]
    assert fig.axes[-1].get_ylabel() == "P(1)"  # the colour bar


def test_the_best_epoch_is_marked_only_when_early_stopping_kept_its_parameters(tmp_path: Path) -> None:
    # Without early stopping the saved parameters are the last epoch's, whatever epoch had
    # the best validation loss: marking that epoch "best" suggested it was the one kept.
    pytest.importorskip("matplotlib")
    plain = load_model(trained(tmp_path, LINE, "plain"))
    assert plain.record.history.best_epoch is not None  # known, but not kept
    curve = draw(plain.root, plain.record, None)[0].axes[0]
    assert [t.get_text() for t in curve.get_legend().get_texts()] == ["training", "validation"]
    stopping = LINE.replace("validation_split: 0.25}", "validation_split: 0.25, early_stopping: {patience: 2}}")
    kept = load_model(trained(tmp_path, stopping, "kept"))
    best = kept.record.history.best_epoch
    assert best is not None
    curve = draw(kept.root, kept.record, None)[0].axes[0]
    labels = [t.get_text() for t in curve.get_legend().get_texts()]
    assert labels == ["training", "validation", f"best epoch ({best}), parameters kept"]
    assert list(curve.get_lines()[2].get_xdata()) == [best, best]


def test_softmax_and_one_input_and_surface_panels(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    spiral = load_model(trained(tmp_path, SPIRAL, "spiral"))
    fig, result = draw(spiral.root, spiral.record, load_points(spiral.record, None)[0])
    assert result.panels[1] == "decision boundary"
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["decision boundary", "a", "b", "c"]
    f2c = load_model(trained(tmp_path, F2C, "f2c"))
    fig, result = draw(f2c.root, f2c.record, load_points(f2c.record, None)[0])
    assert result.panels[1] == "fitted curve"
    assert (fig.axes[1].get_xlabel(), fig.axes[1].get_ylabel()) == ("f", "c")
    (tmp_path / "table.csv").write_text("a,b,z\n" + "".join(f"{i / 10},{(i % 7) / 7},{i % 5}\n" for i in range(40)))
    surface = load_model(trained(tmp_path, SURFACE, "surface"))
    points = PlotData("table.csv", [[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]], None)  # no target column: plain points
    fig, result = draw(surface.root, surface.record, points)
    assert result.panels[1] == "fitted surface"
    assert fig.axes[-1].get_ylabel() == "prediction of z"


def test_files_are_written_in_the_format_of_their_suffix(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    model = trained(tmp_path, LINE, "line")
    loaded = load_model(model)
    points = load_points(loaded.record, None)[0]
    png, svg = tmp_path / "line.png", tmp_path / "line.svg"
    plot_model(loaded.root, loaded.record, points, png)
    plot_model(loaded.root, loaded.record, points, svg)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "<svg" in svg.read_text()[:500]
    with pytest.raises(TreegradError, match=r"\.png"):
        plot_format(tmp_path / "line.jpeg")
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic writer left no temporary file


def test_many_inputs_draw_only_the_curve(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    spec = tmp_path / "wide.yaml"
    spec.write_text(
        "name: wide\ninputs: [a, b, c]\nlayers:\n  - {linear: 1}\ndata: table.csv\n"
        "training: {epochs: 2, learning_rate: 0.01}\n"
    )
    (tmp_path / "table.csv").write_text("a,b,c,z\n" + "".join(f"{i},{i % 3},{i % 4},{i % 5}\n" for i in range(20)))
    out = tmp_path / "wide.model.json"
    train_spec(spec, out=out)
    loaded = load_model(out)
    points, notes = load_points(loaded.record, None)
    assert points is None and notes == []  # no data read: it would not be drawn
    fig, result = draw(loaded.root, loaded.record, points)
    assert result.panels == ["learning curve"] and "3 inputs" in result.notes[0]
    assert len(fig.axes) == 1


def test_plot_command(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from treegrad.cli import app

    model = trained(tmp_path, LINE, "line")
    out = tmp_path / "line.png"
    result = runner.invoke(app, ["plot", str(model), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "learning curve and decision boundary" in result.output and out.exists()
    other = runner.invoke(app, ["plot", str(model), "--data", "line:50", "-o", str(tmp_path / "b.svg")])
    assert other.exit_code == 0, other.output
    bad = runner.invoke(app, ["plot", str(model), "-o", str(tmp_path / "line.gif")])
    assert bad.exit_code == 1 and ".png" in bad.output


def test_without_matplotlib_the_error_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = trained(tmp_path, F2C, "f2c")
    loaded = load_model(model)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(TreegradError, match="pip install matplotlib"):
        plot_model(loaded.root, loaded.record, None, tmp_path / "f2c.png")


def test_text_curve_marks_both_series() -> None:
    lines = text_curve([1.0, 0.5, 0.25, 0.125], [1.2, 0.7, 0.4, 0.3], width=20, height=5)
    body = "\n".join(lines[:5])
    assert "*" in body and "o" in body
    assert lines[0].strip().startswith("1.2")  # the top label is the largest loss
    assert "o validation" in lines[-1]


def test_text_curve_shows_where_the_series_overlap_and_labels_the_middle() -> None:
    same = [4.0, 3.0, 2.0, 1.0, 0.0]
    lines = text_curve(same, list(same), width=5, height=5)
    assert [line.split("|")[1] for line in lines[:5]] == ["#    ", " #   ", "  #  ", "   # ", "    #"]
    assert [line.split("|")[0].strip() for line in lines[:5]] == ["4", "", "2", "", "0"]
    log = text_curve([100.0, 10.0, 1.0, 0.1, 0.01], None, width=5, height=5)
    assert log[2].split("|")[0].strip() == "1"  # the middle of 1e2 .. 1e-2 on a log scale
