"""report: the HTML page's data are the trace's, the formula's and the metrics' numbers, the
page is self-contained, text from files cannot become markup, and a large model gives a
page of bounded size. What the page does in a browser is in test_report_browser.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from treegrad.cli import app
from treegrad.core.printers import funcify, number
from treegrad.outputs.report import FULL_GRAPH, latex_to_mathml, page, page_data, render
from treegrad.outputs.trace import trace
from treegrad.run.setups import trace_setup

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

HOSTILE = ["<script>window.pwned=1</script>", 'say "hi" & it\'s </script>']


def hostile_spec(folder: Path) -> Path:
    """A binary classifier whose class labels (from the CSV) are markup and quotes."""
    rows = [(0.1, 0.2, 0), (0.5, 0.9, 1), (0.3, 0.1, 0), (0.7, 0.8, 1)]
    quoted = ['"' + label.replace('"', '""') + '"' for label in HOSTILE]
    (folder / "hostile.csv").write_text("x,y,label\n" + "".join(f"{x},{y},{quoted[t]}\n" for x, y, t in rows))
    spec = folder / "hostile.yaml"
    spec.write_text(
        "inputs: [x, y]\noutput: {sigmoid: {linear: [x, y]}}\nloss: bce\ndata: hostile.csv\ntarget: label\n"
    )
    return spec


def traced(path: Path, steps: int, precision: int = 4) -> list[Any]:
    setup = trace_setup(path, None, None, rows=steps)
    return trace(
        setup.root,
        setup.inputs,
        setup.targets,
        loss=setup.loss,
        learning_rate=setup.learning_rate,
        steps=steps,
        precision=precision,
    )


def payload(html: str) -> dict[str, Any]:
    found = re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S)
    assert found is not None
    return json.loads(found.group(1))  # type: ignore[no-any-return]


@pytest.mark.parametrize("stem", ["line", "iris"])
def test_the_steps_are_the_traces_numbers_as_it_prints_them(stem: str) -> None:
    spec = ROOT / "models" / f"{stem}.yaml"
    data = page_data(spec, steps=3, precision=4)
    expected = traced(spec, 3)
    assert len(data["steps"]) == 3
    for shown, step in zip(data["steps"], expected):
        assert shown["value"] == [
            number(n.value, 4) if isinstance(n.value, float) else shown["value"][k] for k, n in enumerate(step.nodes)
        ]
        assert shown["loss"] == number(step.loss, 4)
        for k, n in enumerate(step.nodes):
            grad = [number(g, 4) for g in n.grad] if isinstance(n.grad, list) else number(n.grad, 4)
            assert shown["grad"][k] == grad
            assert shown["arrivals"][k] == [[p, number(g, 4)] for p, g in n.arrivals]
            if n.kind == "op":  # the subexpression with this step's parameters, not the first step's
                assert (shown["formula"][k] or n.expr) == n.formula
        assert shown["params"] == [[number(u.old, 4), number(u.grad, 4), number(u.new, 4)] for u in step.params]
    assert data["paramNames"] == [u.name for u in expected[0].params]


def test_local_derivatives_come_from_the_op_table_with_the_numbers_plugged_in(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("x,y\n2,3\n")
    spec = tmp_path / "m.yaml"
    spec.write_text("inputs: [x]\noutput: {sigmoid: {mul: [{param: 0.5}, x]}}\ndata: d.csv\ntarget: y\n")
    data = page_data(spec, steps=1)
    kinds, ops = data["nodes"]["kind"], data["nodes"]["op"]
    mul, sig = ops.index("mul"), ops.index("sigmoid")
    local = data["steps"][0]["local"]
    # d(w * x)/dw = x = 2 and d(w * x)/dx = w = 0.5, written as the op table's expressions.
    assert local[mul] == [["2", "2"], ["0.5", "0.5"]]
    # d sigmoid(z)/dz = out * (1 - out), with out = sigmoid(1) = 0.7311.
    assert local[sig] == [["(0.7311 * (1.0 - 0.7311))", "0.1966"]]
    assert all(local[k] is None for k, kind in enumerate(kinds) if kind in ("input", "parameter"))
    # The rule itself, over the children's names: d sigmoid/dz = out * (1 - out), with out the node's label.
    assert data["nodes"]["rule"][mul] == ["x", "p0"] and data["nodes"]["rule"][sig] == [f"(#{sig} * (1.0 - #{sig}))"]
    assert data["steps"][0]["formula"][sig] == "sigmoid(0.5 * x)"


def test_the_formula_metrics_curves_and_surface_are_the_models(tmp_path: Path) -> None:
    model = tmp_path / "line.model.json"
    result = runner.invoke(app, ["train", str(ROOT / "models/line.yaml"), "--epochs", "3", "-o", str(model), "-q"])
    assert result.exit_code == 0, result.output
    data = page_data(model, steps=1)
    record = json.loads(model.read_text())
    assert data["trained"] and data["history"]["train"] == record["history"]["train"]
    from treegrad.run.modelfile import load as load_model

    root = load_model(model).root
    assert data["formula"]["text"] == funcify(root, precision=4)
    assert data["formula"]["mathml"].startswith('<math display="block">')
    assert data["formula"]["mathml"] in render(data)
    parts = [m["part"] for m in data["metrics"]]
    assert parts[0].startswith("line (1000 rows") and "train (recorded at training)" in parts
    assert data["metrics"][1]["loss"] == number(record["metrics"]["train"]["loss"], 4)
    s = data["surface"]
    assert s["kind"] == "binary" and len(s["cells"]) == s["n"] ** 2 and 0 < len(s["points"]) <= 1000
    assert all(0.0 <= p <= 1.0 for p in s["cells"])


def test_the_page_is_self_contained_and_labels_stay_text(tmp_path: Path) -> None:
    html = page(hostile_spec(tmp_path), steps=2)
    # Nothing to fetch: no src or href but the empty data: icon, and a policy that forbids the rest.
    assert re.findall(r'(?:src|href)="([^"]*)"', html) == ["data:,"]
    assert "default-src 'none'" in html and "script-src 'sha256-" in html and "unsafe-inline" not in html
    # Markup in the labels cannot close the data block or open an element.
    assert html.count("</script>") == 2 and "<script>window" not in html and "<img" not in html
    assert payload(html)["classes"] == HOSTILE


def test_a_label_reading_like_a_placeholder_is_not_filled(tmp_path: Path) -> None:
    data = page_data(hostile_spec(tmp_path), steps=1)
    data["classes"] = ["{{script}}", "{{style}}"]
    html = render(data)
    assert payload(html)["classes"] == ["{{script}}", "{{style}}"]


def test_latex_becomes_mathml() -> None:
    assert latex_to_mathml(r"\frac{x}{2}") == (
        '<math display="block"><mrow><mfrac><mrow><mi>x</mi></mrow><mrow><mn>2</mn></mrow></mfrac></mrow></math>'
    )
    m = latex_to_mathml(r"h_{1} = \tanh\left(0.5 \cdot x\right) \\" + "\n" + r"\sigma\left(h_{1}^{2}\right)")
    assert m.count("<math") == 2 and "<msub><mi>h</mi><mrow><mn>1</mn></mrow></msub>" in m
    assert "<mo>·</mo>" in m and "<mi>σ</mi>" in m and "<msup>" in m
    # A name that is not a plain letter is escaped in LaTeX by funcify, and in MathML here.
    assert "<mi>a&lt;b</mi>" in latex_to_mathml(r"\mathit{a<b} + 1")


def test_a_large_model_opens_collapsed_and_its_page_has_a_bounded_size(tmp_path: Path) -> None:
    spec = tmp_path / "wide.yaml"
    spec.write_text(
        "inputs: [x, y]\nlayers: [{linear: 30, activation: relu}, {linear: 30, activation: relu}, {linear: 1}]\n"
        "data: xor:16\ntarget: label\n"
    )
    html = page(spec, steps=1)
    data = payload(html)
    n = len(data["nodes"]["label"])
    assert n > FULL_GRAPH and data["collapsed"]
    assert data["steps"][0]["formula"] is None  # no per-node formula: it costs n^2
    # The bound the README states: 200 kB + (100 + 150 * steps) bytes per node.
    assert len(html.encode("utf-8")) < 200_000 + n * (100 + 150 * 1)


def test_report_and_trace_html_commands(tmp_path: Path) -> None:
    out = tmp_path / "line.html"
    result = runner.invoke(app, ["report", str(ROOT / "models/line.yaml"), "-o", str(out), "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and len(payload(out.read_text())["steps"]) == 2
    again = tmp_path / "trace.html"
    result = runner.invoke(app, ["trace", str(ROOT / "models/line.yaml"), "--steps", "3", "--html", str(again)])
    assert result.exit_code == 0, result.output
    assert "step 1" not in result.output  # the page instead of the tables
    assert len(payload(again.read_text())["steps"]) == 3


def test_report_errors_are_messages(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["report", str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "r.html")])
    assert missing.exit_code == 1 and "nope.yaml" in missing.output and "Traceback" not in missing.output
    spec = tmp_path / "s.yaml"
    spec.write_text("inputs: [x]\noutput: {mul: [param, x]}\n")
    nodata = runner.invoke(app, ["report", str(spec), "-o", str(tmp_path / "r.html")])
    assert nodata.exit_code == 1 and "--data" in nodata.output
    nofolder = runner.invoke(app, ["report", str(ROOT / "models/line.yaml"), "-o", str(tmp_path / "no/r.html")])
    assert nofolder.exit_code == 1 and "Traceback" not in nofolder.output
    assert not (tmp_path / "r.html").exists()
    # The page never replaces the file it was made from.
    spec = tmp_path / "line.yaml"
    spec.write_text((ROOT / "models/line.yaml").read_text())
    same = runner.invoke(app, ["report", str(spec), "-o", str(spec)])
    assert same.exit_code == 1 and "Traceback" not in same.output
    assert spec.read_text() == (ROOT / "models/line.yaml").read_text()


def test_step_2_shows_what_treegrad_trace_steps_3_prints() -> None:
    """The issue's check, through the terminal: the page's step 2 is `treegrad trace --steps 3`'s."""
    result = runner.invoke(app, ["trace", str(ROOT / "models/line.yaml"), "--steps", "3"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    section = result.output.split("step 2:")[1].split("step 3:")[0]
    rows = [[c.strip() for c in line.strip().strip("│").split("│")] for line in section.splitlines()]
    nodes = {int(r[0]): (r[4], r[6]) for r in rows if len(r) == 7 and r[0].isdigit()}
    updates = [r for r in rows if len(r) == 4 and r[0].startswith("p")]
    data = page_data(ROOT / "models/line.yaml", steps=3)
    shown = data["steps"][1]
    assert nodes == {k: (v, g) for k, (v, g) in enumerate(zip(shown["value"], shown["grad"]))}
    assert updates == [[name, *p] for name, p in zip(data["paramNames"], shown["params"])]
