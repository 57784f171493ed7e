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
from treegrad.errors import ModelError
from treegrad.outputs.mathml import fill
from treegrad.outputs.report import BASE_BYTES, FORMULAS, NODE_BYTES, latex_to_mathml, page, page_data, render
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


def arrival_parents(children: list[list[int]]) -> list[list[int]]:
    """Each node's parents in the order the page reads its arrivals: the backward pass's order."""
    parents: list[list[int]] = [[] for _ in children]
    for p in range(len(children) - 1, -1, -1):
        for c in children[p]:
            parents[c].append(p)
    return parents


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
    # The page stores each arrival's number alone, in the order the backward pass sends them; the
    # parent it came from is read off the graph (arrival_parents), as the page's script does.
    parents = arrival_parents(data["nodes"]["children"])
    pnodes = data["paramNodes"]
    for shown, step in zip(data["steps"], expected):
        assert shown["value"] == [
            number(n.value, 4) if isinstance(n.value, float) else shown["value"][k] for k, n in enumerate(step.nodes)
        ]
        assert shown["loss"] == number(step.loss, 4)
        for k, n in enumerate(step.nodes):
            grad = [number(g, 4) for g in n.grad] if isinstance(n.grad, list) else number(n.grad, 4)
            assert shown["grad"][k] == grad
            assert list(zip(parents[k], shown["arrivals"][k])) == [(p, number(g, 4)) for p, g in n.arrivals]
            if n.kind == "op":  # the subexpression with this step's parameters, not the first step's
                assert (shown["formula"][k] or n.expr) == n.formula
        # An update's old value and gradient are its node's (but where -0 sums to 0), its new value its own.
        grads = [shown["paramGrad"].get(str(k), shown["grad"][p]) for k, p in enumerate(pnodes)]
        assert [[shown["value"][p], g, new] for p, g, new in zip(pnodes, grads, shown["params"])] == [
            [number(u.old, 4), number(u.grad, 4), number(u.new, 4)] for u in step.params
        ]
    assert data["paramNames"] == [u.name for u in expected[0].params]


def test_local_derivatives_come_from_the_op_table_with_the_numbers_plugged_in(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("x,y\n2,3\n")
    spec = tmp_path / "m.yaml"
    spec.write_text("inputs: [x]\noutput: {sigmoid: {mul: [{param: 0.5}, x]}}\ndata: d.csv\ntarget: y\n")
    data = page_data(spec, steps=1)
    kinds, ops, labels = data["nodes"]["kind"], data["nodes"]["op"], data["nodes"]["label"]
    mul, sig = ops.index("mul"), ops.index("sigmoid")
    step = data["steps"][0]
    local, values = step["local"], step["value"]

    def rule(k: int, i: int, slots: list[str], out: str) -> str:
        # The page's math for d node k / d child i, filled as its script fills it (mathml.fill).
        return fill(data["templates"][data["nodes"]["rule"][k][i]], slots, out)

    # d(w * x)/dw = x = 2 and d(w * x)/dx = w = 0.5, printed from the op table's expressions.
    assert local[mul] == ["2", "0.5"]
    kids = [labels[c] for c in data["nodes"]["children"][mul]]
    assert [rule(mul, i, kids, labels[mul]) for i in (0, 1)] == ["x", "p0"]
    nums = [values[c] for c in data["nodes"]["children"][mul]]
    assert [rule(mul, i, nums, values[mul]) for i in (0, 1)] == ["2", "0.5"]
    # d sigmoid(z)/dz = out (1 - out), with out = sigmoid(1) = 0.7311: math, not Python.
    assert local[sig] == ["0.1966"] and values[sig] == "0.7311"
    assert rule(sig, 0, ["z"], f"#{sig}") == f"#{sig}·(1-#{sig})"
    assert rule(sig, 0, ["1"], "0.7311") == "0.7311·(1-0.7311)"
    assert all(local[k] is None for k, kind in enumerate(kinds) if kind in ("input", "parameter"))
    assert step["formula"][sig] == "sigmoid(0.5 * x)"


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
    # (and the skip link past the graph, a place in the page itself).
    assert re.findall(r'(?:src|href)="([^"]*)"', html) == ["data:,", "#detail-h"]
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


def test_a_large_model_opens_by_its_layers_and_its_page_has_a_bounded_size(tmp_path: Path) -> None:
    spec = tmp_path / "wide.yaml"
    spec.write_text(
        "inputs: [x, y]\nlayers: [{name: hidden, linear: 30, activation: relu}, {linear: 30, activation: relu}, "
        "{linear: 1}]\ndata: xor:16\ntarget: label\n"
    )
    html = page(spec, steps=1)
    data = payload(html)
    n = len(data["nodes"]["label"])
    groups = data["groups"]
    top = [k for k, p in enumerate(groups["parent"]) if p == -1]
    # The spec's structure: the inputs, each layer by its name (unnamed: by its place), with its size.
    assert [groups["name"][k] for k in top] == ["inputs", "hidden", "layer 2", "layer 3"]
    assert [groups["units"][k] for k in top[1:]] == [30, 30, 1]
    assert [groups["activation"][k] for k in top[1:]] == ["relu", "relu", "none"]
    # Every node is in one group; a layer's units are groups inside it.
    assert len(groups["owner"]) == n and min(groups["owner"]) >= 0
    assert sum(1 for p in groups["parent"] if p == top[1]) == 30
    assert n > FORMULAS and data["steps"][0]["formula"] is None  # no per-node formula: it costs n^2
    # The bound the README states: steps_that_fit's BASE_BYTES + NODE_BYTES a node + (12 + 10 × digits) a node a step.
    assert len(html.encode("utf-8")) < BASE_BYTES + n * (NODE_BYTES + (12 + 10 * 4) * 1)


def test_a_page_keeps_the_steps_that_fit_and_refuses_a_model_too_large_for_one(tmp_path: Path) -> None:
    spec = tmp_path / "wide.yaml"
    spec.write_text(
        "inputs: [x, y]\nlayers: [{linear: 40, activation: relu}, {linear: 1}]\ndata: xor:16\ntarget: label\n"
    )
    whole = page_data(spec, steps=5)
    n = len(whole["nodes"]["label"])
    assert len(whole["steps"]) == 5 and "steps asked for" not in render(whole)
    budget = BASE_BYTES + n * (NODE_BYTES + 2 * 52)  # room for two steps
    kept = page_data(spec, steps=5, max_bytes=budget)
    assert [s["step"] for s in kept["steps"]] == [1, 2]
    assert "2 of the 5 steps asked for" in render(kept) and len(render(kept).encode("utf-8")) < budget
    with pytest.raises(ModelError, match="over .* MB even with one step"):
        page_data(spec, steps=1, max_bytes=BASE_BYTES + n * NODE_BYTES)


WIDE = "inputs: [x, y]\nlayers: [{linear: %d, activation: relu}, {linear: 1}]\ndata: xor:16\ntarget: label\n"


def test_a_page_at_few_digits_stays_within_its_bytes(tmp_path: Path) -> None:
    """At 1 digit a node's step takes about 40 bytes, not the 22 the estimate counted: a page of 1,000
    steps asked for was 1.4 MB against a bound of 1 MB (8.6 MB against 5 MB by default)."""
    spec = tmp_path / "wide.yaml"
    spec.write_text(WIDE % 25)
    data = page_data(spec, steps=1000, precision=1, max_bytes=1_000_000)
    html = render(data)
    assert 10 < len(data["steps"]) < 1000 and f"{len(data['steps'])} of the 1000 steps asked for" in html
    assert len(html.encode("utf-8")) <= 1_000_000


def test_the_steps_a_page_keeps_are_counted_not_estimated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from treegrad.outputs import report

    spec = ROOT / "models" / "line.yaml"
    one, forty = (len(render(page_data(spec, steps=k)).encode("utf-8")) for k in (1, 40))
    budget = (one + forty) // 2
    monkeypatch.setattr(report, "steps_that_fit", lambda nodes, asked, precision, max_bytes: asked)  # no estimate
    kept = page_data(spec, steps=40, max_bytes=budget)
    k = len(kept["steps"])
    assert 1 < k < 40 and len(render(kept).encode("utf-8")) <= budget
    assert len(render(page_data(spec, steps=k + 1)).encode("utf-8")) > budget  # one more would not fit
    with pytest.raises(ModelError, match="even with one step"):
        page_data(spec, steps=2, max_bytes=one - 100)


@pytest.mark.slow
def test_report_keeps_a_page_under_5_mb_by_default(tmp_path: Path) -> None:
    spec = tmp_path / "wide.yaml"
    spec.write_text(WIDE % 60)
    out = tmp_path / "wide.html"
    result = runner.invoke(app, ["report", str(spec), "-o", str(out), "--steps", "1000", "--precision", "1"])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    kept = len(payload(html)["steps"])
    assert f"{kept} of the 1000 steps asked for" in html and 0.6 * 5e6 < len(html.encode("utf-8")) <= 5e6


def test_the_formulas_mathml_is_stored_once_and_the_page_reads_without_scripts(tmp_path: Path) -> None:
    model = ROOT / "models" / "iris.yaml"
    data = page_data(model, steps=1)
    html = render(data)
    mathml = data["formula"]["mathml"]
    assert html.count(mathml) == 1 and payload(html)["formula"]["mathml"] is True
    # Without scripts: the title, the metrics, the formula and a picture of the structure are in the HTML.
    body = html.split("<body>")[1].split('<script id="data"')[0]
    assert '<h1 id="title">iris</h1>' in body and "<noscript>" in body
    assert "<td>" + data["metrics"][0]["loss"] + "</td>" in body
    assert data["formula"]["text"].split("\n")[0] in body
    picture = body.split('<svg id="structure"')[1].split("</svg>")[0]
    for name in ("inputs", "hidden", "logits", "output", "loss"):
        assert f">{name}<" in picture
    assert "8 units · tanh" in picture and "softmax over 3 classes" in picture


def test_relus_derivative_is_a_step_function_printed_from_the_op_table() -> None:
    from treegrad.core.ops import OPS
    from treegrad.outputs.mathml import derivative_latex, template

    latex = derivative_latex(OPS["relu"], 1, 0)
    assert latex == r"\ifelse{1}{\mathit{@0} \gt 0}{0}"  # from relu's (1.0 if a0 > 0.0 else 0.0)
    tree = template(latex)
    assert fill(tree, ["z"], "out") == "{1if\u00a0z>00otherwise"
    assert "mtable" in json.dumps(tree)
    # Every op of the table prints each derivative (none falls back to its Python text).
    for op in OPS.values():
        n = op.arity or 2
        assert all(derivative_latex(op, n, i) for i in range(n) if i not in op.constant_args), op.name


def test_layers_have_names_and_unnamed_ones_their_place(tmp_path: Path) -> None:
    from treegrad.errors import SpecError
    from treegrad.spec.build import build_model
    from treegrad.spec.models import parse_spec

    spec = parse_spec(
        "inputs: [x]\nlayers: [{name: hidden, linear: 3, activation: relu}, {linear: 2}, {softmax: true}]\n"
    )
    g = build_model(spec).compiled_graph
    from treegrad.outputs.structure import structure

    names = [grp.name for grp in structure(g).groups if grp.parent == -1]
    assert names == ["inputs", "hidden", "layer 2", "softmax"]
    with pytest.raises(SpecError, match="two layers are called 'hidden'"):
        parse_spec("inputs: [x]\nlayers: [{name: hidden, linear: 3}, {name: hidden, linear: 1}]\n")
    with pytest.raises(SpecError, match="layer 1"):
        parse_spec("inputs: [x]\nlayers: [{linear: 3}, {name: layer 1, linear: 1}]\n")
    with pytest.raises(SpecError, match="name"):
        parse_spec('inputs: [x]\nlayers: [{name: "a\\nb", linear: 1}]\n')
    # init names the layers it writes.
    (tmp_path / "d.csv").write_text("a,b,y\n1,2,0\n2,1,1\n3,3,0\n")
    result = runner.invoke(app, ["init", str(tmp_path / "d.csv"), "-o", str(tmp_path / "m.yaml")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "m.yaml").read_text()
    assert "{name: hidden, linear: 32, activation: relu}" in text and "{name: output, linear: 1" in text
    data = page_data(tmp_path / "m.yaml", steps=1)
    top = [data["groups"]["name"][k] for k, p in enumerate(data["groups"]["parent"]) if p == -1]
    assert top == ["inputs", "hidden", "output"]


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
    grads = [shown["paramGrad"].get(str(k), shown["grad"][p]) for k, p in enumerate(data["paramNodes"])]
    olds = [shown["value"][p] for p in data["paramNodes"]]
    assert updates == [list(row) for row in zip(data["paramNames"], olds, grads, shown["params"])]


def _contrast(a: str, b: str) -> float:
    """WCAG's contrast ratio of two #rrggbb colours."""

    def luminance(c: str) -> float:
        channels = [int(c[k : k + 2], 16) / 255 for k in (1, 3, 5)]
        r, g, b = (x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4 for x in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_node_kinds_and_edges_stand_out_from_the_graphs_background() -> None:
    css = (ROOT / "src/treegrad/outputs/report_assets/report.css").read_text()
    colour = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-f]{6});", css))
    background = re.search(r"#graph-wrap \{[^}]*background: (#[0-9a-f]{6})", css)
    assert background is not None
    marks = [k for k in colour if k.endswith("-edge")] + ["pos", "neg", "none"]
    assert len(marks) == 9  # input, parameter, constant, op, output, group; edges +, −, not reached
    assert {
        k: round(_contrast(colour[k], background.group(1)), 2)
        for k in marks
        if _contrast(colour[k], background.group(1)) < 3
    } == {}


def test_the_live_page_says_it_shows_the_model_as_it_trains() -> None:
    """The live page's line under the title called it 'spec with its initial parameters' while it
    showed each epoch's trained parameters."""
    from treegrad.outputs.live import LiveView
    from treegrad.run.prepare import prepare

    view = LiveView(prepare(ROOT / "models" / "xor.yaml"), None)
    text = view.page.decode("utf-8")
    assert "the model as it trains, at its latest epoch ·" in text and "spec with its initial parameters ·" not in text
