"""Issue 26: the work around the training step runs on whole arrays where the model has dense
layers, and agrees with the scalar code that ran it row by row; reading and training say how far
they are through callbacks, which the command line shows on a terminal and, in a pipe, as plain lines."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from treegrad.cli import app, views
from treegrad.data import csvfile
from treegrad.data.csvfile import read_csv
from treegrad.engine.compiled import Program, predict_many
from treegrad.engine.fit import fit
from treegrad.engine.losses import LOSSES
from treegrad.engine.vectorized import array_rows_fn
from treegrad.run import diagnose
from treegrad.run.diagnose import dead_units, relu_units
from treegrad.run.tasks import evaluate_rows
from treegrad.spec.build import build_model
from treegrad.spec.models import parse_spec

MLP = "inputs: [a, b, c]\nlayers: [{linear: 8, activation: relu}, {linear: %s, activation: %s}]\nloss: %s\n"
SOFTMAX = "inputs: [a, b, c]\nlayers: [{linear: 8, activation: relu}, {linear: 3}, {softmax: true}]\n"


def model(text: str, seed: int = 0) -> Any:
    return build_model(parse_spec(text), seed=seed)


def rows(n: int = 500, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3)) * 2.0


@pytest.mark.parametrize(
    ("text", "targets"),
    [
        (MLP % (1, "sigmoid", "bce"), lambda X: (X[:, 0] > 0).astype(float).tolist()),
        (MLP % (1, "none", "mse"), lambda X: (X[:, 0] * 2 - X[:, 1]).tolist()),
        (SOFTMAX, lambda X: (X[:, 0] > 0).astype(int).tolist()),
    ],
    ids=["binary", "regression", "softmax"],
)
def test_outputs_and_losses_on_arrays_are_the_scalar_codes(text: str, targets: Any) -> None:
    root = model(text)
    graph = root.compiled_graph
    X = rows()
    y = targets(X)
    loss = "cross_entropy" if "softmax" in text else ("bce" if "bce" in text else "mse")
    outs, losses, alive = array_rows_fn(graph, LOSSES[loss], relu_units(graph))(X, y)  # type: ignore[misc]
    scalar = predict_many(root, X.tolist())
    k = len(graph.elements)
    assert np.allclose(outs, np.array(scalar).reshape(len(X), k) if k > 1 else scalar, rtol=1e-13, atol=1e-15)
    fn = LOSSES[loss].fn(k)
    expected = [fn(o if isinstance(o, list) else [o], t)[0] for o, t in zip(scalar, y)]
    assert np.allclose(losses, expected, rtol=1e-12, atol=1e-15)
    assert len(alive) == 8


def test_metrics_use_arrays_and_equal_the_row_by_row_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    root = model(MLP % (1, "sigmoid", "bce"))
    X = rows(300)
    y = (X[:, 0] + 0.3 * X[:, 2] > 0).astype(float).tolist()
    weights = np.linspace(0.5, 2.0, len(y)).tolist()
    arrays = evaluate_rows(root, "binary", "bce", X, y, weights=weights, labels=["n", "y"])
    outs = predict_many(root, X.tolist())
    right = [(o >= 0.5) == (t >= 0.5) for o, t in zip(outs, y)]
    assert arrays["accuracy"] == sum(right) / len(y)
    assert arrays["loss"] == pytest.approx(math.fsum(LOSSES["bce"].fn(1)([o], t)[0] for o, t in zip(outs, y)) / 300)
    assert sum(map(sum, arrays["confusion"])) == 300
    assert arrays["weighted_accuracy"] == pytest.approx(
        math.fsum(w for w, r in zip(weights, right) if r) / math.fsum(weights)
    )
    # the scalar code is not run on a model with dense layers (row by row, it was most of a run's time)
    monkeypatch.setattr(Program, "predict_fn", lambda self: pytest.fail("scored row by row"))
    assert evaluate_rows(root, "binary", "bce", X, y, weights=weights, labels=["n", "y"]) == arrays


def test_dead_units_on_arrays_are_those_the_scalar_code_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    root = model(MLP % (1, "sigmoid", "bce"), seed=3)
    graph = root.compiled_graph
    values = graph.param_values()
    values[:3] = [-5.0, -5.0, -5.0]  # unit 1's weights: negative on rows of positive inputs
    graph.set_param_values(values)
    X = np.abs(rows(200))
    by_arrays = dead_units(graph, X)
    monkeypatch.setattr(diagnose, "array_rows_fn", lambda *a, **k: None)
    assert dead_units(graph, X.tolist()) == by_arrays


def test_the_validation_loss_on_arrays_is_the_scalar_codes() -> None:
    """Batches of 64 train on arrays, and the validation loss of each epoch is taken on arrays too."""
    X = rows(400)
    y = (X[:, 0] > 0).astype(float).tolist()
    root = model(MLP % (1, "sigmoid", "bce"))
    h = fit(root, X[:300], y[:300], loss="bce", epochs=2, batch_size=64, validation=(X[300:], y[300:]))
    outs = predict_many(root, X[300:].tolist())
    fn = LOSSES["bce"].fn(1)
    assert h.validation[-1] == pytest.approx(math.fsum(fn([o], t)[0] for o, t in zip(outs, y[300:])) / 100)


def test_reading_tells_how_many_rows_so_far(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(csvfile, "CHUNK", 10)
    path = tmp_path / "t.csv"
    path.write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(25)))
    heard: list[int] = []
    table = read_csv(path, progress=heard.append)
    assert heard == [10, 20] and table.size == 25 and table.rows[24] == [24.0, 0.0]


def test_in_a_pipe_training_prints_plain_progress_lines(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A pipe, a log or CI sees a line while the data is read and one per epoch (at most one every
    PLAIN_EVERY seconds: here 0), not silence until the end."""
    monkeypatch.setattr(views, "PLAIN_EVERY", 0.0)
    monkeypatch.setattr(csvfile, "CHUNK", 20)
    (tmp_path / "t.csv").write_text("x,y\n" + "".join(f"{i / 10},{i % 3 == 0:d}\n" for i in range(50)))
    (tmp_path / "t.yaml").write_text(
        "inputs: [x]\noutput: {sigmoid: {linear: [x]}}\nloss: bce\ndata: t.csv\ntraining: {epochs: 3}\n"
    )
    r = CliRunner().invoke(app, ["train", str(tmp_path / "t.yaml"), "-o", str(tmp_path / "m.json")])
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    assert "reading t.csv: 20 rows..." in lines and "reading t.csv: 40 rows..." in lines
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [e.split(":")[0] for e in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("epoch mean loss" in e and "acc" in e for e in epochs)
    quiet = CliRunner().invoke(app, ["train", str(tmp_path / "t.yaml"), "-o", str(tmp_path / "m.json"), "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
