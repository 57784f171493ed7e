"""Exports checked by agreement: every format, read back or run, gives the numbers that
`predict` gives — the standalone Python module in a separate interpreter, ONNX under
onnxruntime, the JSON graph by a tiny evaluator, the printed formulas (text, LaTeX, Python
expression) and the sympy expression by evaluating them — and hostile names stay inert."""

from __future__ import annotations

import ast
import json
import math
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from treegrad import (
    Add,
    Constant,
    Input,
    Linear,
    Multiply,
    Node,
    Output,
    Parameter,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    TreegradError,
)
from treegrad.core.ops import OPS, python_namespace, softmax_fns
from treegrad.core.printers import funcify
from treegrad.engine.compiled import predict_many
from treegrad.outputs.export import (
    argument_names,
    dot_source,
    graph_dict,
    is_plain_name,
    latex_document,
)
from treegrad.outputs.formats import render
from treegrad.outputs.standalone import python_module
from treegrad.run.modelfile import Opened, open_model
from treegrad.run.modelfile import load as load_model
from treegrad.run.predict import predict as predict_rows
from treegrad.run.train import train as train_spec

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
runner = CliRunner()
ALLOWED_CALLS = {"exp", "log", "tanh", "sqrt", "fpow", "abs", "max", "sum", "float", "predict", "range", "len"}


# ----------------------------------------------------------------- models to export


def f2c_model() -> Node:
    return Add([Multiply([Parameter(5 / 9), Input("f")]), Parameter(-160 / 9)]).compile()


def line_model() -> Node:
    """The article's classifier: sigmoid(w3 * relu(w1 x + w2 y + b1) + b2)."""
    x, y = Input("x"), Input("y")
    hidden = ReLU([Add([Multiply([Parameter(1.3), x]), Multiply([Parameter(-1.1), y]), Parameter(0.2)])])
    return Sigmoid([Add([Multiply([Parameter(-2.0), hidden]), Parameter(0.7)])]).compile()


def mlp_model() -> Node:
    rng = random.Random(4)
    x = [Input(n) for n in ("a", "b", "c")]
    hidden = Linear(x, units=5, activation="tanh", rng=rng)
    return Sigmoid([Linear([hidden], rng=rng)]).compile()


def softmax_model() -> Node:
    rng = random.Random(5)
    x = [Input("u"), Input("v")]
    hidden = Linear(x, units=4, activation="relu", rng=rng)
    return Softmax([Linear([hidden], units=3, rng=rng)]).compile()


NAMED_MODELS: dict[str, tuple[Callable[[], Node], str | None]] = {
    "f2c": (f2c_model, "regression"),
    "line": (line_model, "binary"),
    "mlp": (mlp_model, "binary"),
    "softmax": (softmax_model, "classes"),
}


def random_rows(root: Node, n: int, seed: int, scale: float = 2.0) -> list[list[float]]:
    rng = random.Random(seed)
    assert root.graph is not None
    return [[rng.uniform(-scale, scale) for _ in root.graph.input_names] for _ in range(n)]


def dag_rows(dag: Any, n: int = 6) -> list[list[float]]:
    """The values the DAG was built at (inside every op's domain) plus small perturbations
    that stay inside it (rows that leave it are dropped)."""
    if dag.root.graph is None:
        dag.root.compile()
    order = [next(x for x in dag.inputs if x.name == name) for name in dag.root.graph.input_names]
    base = [float(x.value) for x in order]
    rng = random.Random(len(base))
    rows = [base] + [[v + rng.uniform(-0.01, 0.01) for v in base] for _ in range(n - 1)]
    good = []
    for r in rows:
        try:
            predict_many(dag.root, [r])
            good.append(r)
        except TreegradError:
            pass
    return good


def close(a: Any, b: Any, tol: float) -> bool:
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b, strict=True))
    return abs(float(a) - float(b)) <= tol * max(1.0, abs(float(b)))


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_maps_to_a_real_onnx_operator(name: str) -> None:
    onnx = pytest.importorskip("onnx")
    op = OPS[name]
    assert op.onnx is not None and onnx.defs.has(op.onnx), f"op '{name}': onnx={op.onnx!r} is no ONNX operator"


# ----------------------------------------------------------------- standalone Python


def load_module(text: str) -> dict[str, Any]:
    ns: dict[str, Any] = {}
    exec(compile(text, "<exported>", "exec"), ns)
    return ns


@pytest.mark.parametrize("name", sorted(NAMED_MODELS))
def test_python_module_predicts_exactly_as_predict(name: str) -> None:
    build, task = NAMED_MODELS[name]
    root = build()
    ns = load_module(python_module(Opened(root, name, task)))
    rows = random_rows(root, 25, seed=1)
    expected = predict_many(root, rows)
    got = [ns["predict"](*r) for r in rows]
    assert got == expected  # the same expressions in the same order: bit for bit
    assert ns["INPUTS"] == root.graph.input_names  # type: ignore[union-attr]


def test_python_module_of_every_op(seeded_dag: Callable[..., Any]) -> None:
    checked = 0
    for seed in range(40):
        dag = seeded_dag(seed)
        root = dag.root.compile()
        ns = load_module(python_module(Opened(root, "dag")))
        for row in dag_rows(dag):
            assert ns["predict"](*row) == predict_many(root, [row])[0]
            checked += 1
    assert checked > 100


def test_classifier_module_has_labels() -> None:
    root = softmax_model()
    ns = load_module(python_module(Opened(root, "s", "classes", ["cat", "dog", "eel"])))
    assert ns["CLASSES"] == ["cat", "dog", "eel"]
    for row in random_rows(root, 20, seed=2):
        probs = predict_many(root, [row])[0]
        assert ns["predict_label"](*row) == ["cat", "dog", "eel"][probs.index(max(probs))]
    binary = load_module(python_module(Opened(line_model(), "line", "binary", ["below", "above"])))
    assert binary["predict_label"](0.0, 1.0) in ("below", "above")
    p = binary["predict"](0.0, 1.0)
    assert binary["predict_label"](0.0, 1.0) == ("above" if p >= 0.5 else "below")


def test_every_example_model_runs_the_same_in_a_separate_interpreter(tmp_path: Path) -> None:
    """Train each example spec briefly, export it, and run the file where treegrad cannot be imported."""
    specs = sorted(MODELS.glob("*.yaml"))
    if not specs:
        pytest.skip("no example specs in models/")
    expected: dict[str, Any] = {}
    for spec in specs:
        out = tmp_path / f"{spec.stem}.model.json"
        train_spec(spec, overrides={"epochs": 2}, out=out)
        loaded = load_model(out)
        model = open_model(out)
        (tmp_path / f"m_{spec.stem}.py").write_text(render(model, "python"))  # type: ignore[arg-type]
        rows = [[v * (1 + 0.1 * k) for v in row] for k, row in enumerate(random_rows(loaded.root, 10, seed=3))]
        from treegrad.data.targets import input_rows
        from treegrad.run.datasource import model_table

        rows += input_rows(model_table(loaded.record, None), list(loaded.record.inputs))[:20]
        results = predict_rows(loaded, rows)
        expected[spec.stem] = {
            "rows": rows,
            "outputs": predict_many(loaded.root, rows),
            "labels": [r.get("label") for r in results],
        }
    (tmp_path / "cases.json").write_text(json.dumps(expected))
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import importlib.util, json, sys\n"
        "assert importlib.util.find_spec('treegrad') is None, 'treegrad must not be importable here'\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "cases = json.load(open(sys.argv[1] + '/cases.json'))\n"
        "out = {}\n"
        "for name, case in cases.items():\n"
        "    m = importlib.import_module('m_' + name)\n"
        "    out[name] = {'outputs': [m.predict(*r) for r in case['rows']],\n"
        "                 'labels': [m.predict_label(*r) if hasattr(m, 'predict_label') else None\n"
        "                            for r in case['rows']]}\n"
        "print(json.dumps(out))\n"
    )
    # -I: no environment variables or user site; -S: no site-packages (where treegrad is installed).
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(driver), str(tmp_path)],
        env={},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    for name, case in expected.items():
        assert close(got[name]["outputs"], case["outputs"], 1e-12), name
        assert got[name]["labels"] == case["labels"], name


HOSTILE = [
    "__import__('os').system('echo pwned')",
    'a"b\n\'\'\'c"""d',
    "\\x00\nimport os",
    "class",
    "max",
]


def _calls_and_imports(tree: ast.AST) -> tuple[set[str], list[ast.AST]]:
    calls, bad = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name), ast.dump(node)
            calls.add(node.func.id)
        if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.module != "math"):
            bad.append(node)
        if isinstance(node, (ast.Attribute, ast.Lambda, ast.Global)):
            bad.append(node)
    return calls, bad


def test_hostile_names_stay_inside_string_literals() -> None:
    inputs = [Input(n) for n in HOSTILE]
    root = Add(
        [Multiply([Parameter(1.5, name="'); import os; ('"), inputs[0]]), *inputs[1:], Parameter(-0.5, name='p"""\n')]
    ).compile()
    text = python_module(Opened(root, '"""\nimport os\n', "binary", ["'", '"""\nboom()']))
    tree = ast.parse(text)
    calls, bad = _calls_and_imports(tree)
    assert calls <= ALLOWED_CALLS and not bad
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    for name in HOSTILE:
        assert name in literals  # mentioned only as data
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "predict")
    assert [a.arg for a in fn.args.args] == [f"x{j}" for j in range(len(HOSTILE))]
    ns = load_module(text)
    row = [0.5, 1.0, 2.0, 3.0, 4.0]
    assert ns["predict"](*row) == predict_many(root, [row])[0]
    assert ns["INPUTS"] == HOSTILE and ns["NAME"] == '"""\nimport os\n'


HOSTILE_TEXT = ["'); import os; ('", '"""', "back\\slash", "plain"]


def test_hostile_columns_and_text_values_stay_inside_string_literals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The module takes the CSV's own columns (issue 23): column names and text values a user wrote
    reach it only as literals, even in the docstring that names them."""
    import csv

    from treegrad.cli import app

    monkeypatch.chdir(tmp_path)
    with (tmp_path / "h.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["size (m)", 'it\'s "q"', "y"])
        w.writerows([[0.1 * k, HOSTILE_TEXT[k % 4], 1.5 * k + (k % 4)] for k in range(16)])
    (tmp_path / "h.yaml").write_text(
        "inputs: all\ntarget: y\ndata: h.csv\nlayers: [{linear: 1}]\ntraining: {epochs: 3, text_inputs: one_hot}\n"
    )
    assert runner.invoke(app, ["train", "h.yaml", "-o", "h.json", "-q"]).exit_code == 0
    text = render(open_model(tmp_path / "h.json"), "python")
    assert isinstance(text, str)
    tree = ast.parse(text)
    calls, bad = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            calls.add(node.func.id)
        elif isinstance(node, ast.Call) and not (isinstance(node.func, ast.Attribute) and node.func.attr == "strip"):
            bad.append(node)
        if (
            isinstance(node, (ast.Import, ast.Lambda, ast.Global))
            or isinstance(node, ast.ImportFrom)
            and node.module != "math"
        ):
            bad.append(node)
    assert calls <= ALLOWED_CALLS | {"_text", "str", "ValueError"} and not bad, (calls, bad)
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert set(HOSTILE_TEXT) <= literals and 'it\'s "q"' in literals
    ns = load_module(text)
    assert ns["COLUMNS"] == ["size (m)", 'it\'s "q"']
    assert "the column 'size (m)'" in ns["predict"].__doc__ and '"""' in ns["predict"].__doc__
    for value in HOSTILE_TEXT:
        typed = runner.invoke(app, ["predict", "h.json", "size (m)=0.5", f'it\'s "q"={value}', "--json"])
        assert typed.exit_code == 0, typed.output
        want = json.loads(typed.output)[0]["prediction"]
        assert ns["predict"](0.5, value) == want
        assert ns["predict_row"]({"size (m)": "0.5", 'it\'s "q"': value, "y": "?"}) == want
    with pytest.raises(ValueError, match="not one of the values the model was trained on"):
        ns["predict"](0.5, "unknown")


@pytest.mark.parametrize(
    ("name", "plain"),
    [
        ("f", True),
        ("sepal_length", True),
        ("x0", True),
        ("class", False),
        ("max", False),
        ("exp", False),
        ("fpow", False),
        ("_x0", False),
        ("predict", False),
        ("CLASSES", False),
        ("a b", False),
        ("é", False),
        ("match", False),
        ("", False),
        ("1x", False),
    ],
)
def test_plain_names(name: str, plain: bool) -> None:
    assert is_plain_name(name) is plain


def test_one_unusable_name_renames_every_argument() -> None:
    assert argument_names(["a", "b"]) == ["a", "b"]
    assert argument_names(["a", "max"]) == ["x0", "x1"]


def test_show_and_export_python_from_the_cli(tmp_path: Path) -> None:
    from treegrad.cli import app

    spec = tmp_path / "f2c.yaml"
    spec.write_text("name: f2c\ninputs: [f]\noutput:\n  add:\n    - mul: [{param: 0.5}, f]\n    - {param: 2}\n")
    shown = runner.invoke(app, ["show", str(spec), "--format", "python"])
    assert shown.exit_code == 0, shown.output
    assert load_module(shown.output)["predict"](4) == 4.0
    out = tmp_path / "f2c.py"
    result = runner.invoke(app, ["export", str(spec), "--format", "python", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == shown.output


# ----------------------------------------------------------------- DOT and JSON

_DOT_STRING = r'"(?:[^"\\\n]|\\.)*"'
_DOT_NODE = re.compile(rf"^  (n\d+) \[label=({_DOT_STRING}), [^\n]*\];$")
_DOT_EDGE = re.compile(r'^  (n\d+) -> (n\d+)(?: \[label="\d+"\])?;$')


def test_dot_draws_shared_nodes_once_with_edges_from_child_to_parent() -> None:
    x = Input("x")
    shared = Tanh([Multiply([Parameter(0.5), x])])
    root = Add([Multiply([shared, Constant(2.0)]), ReLU([shared])]).compile()
    text = dot_source(root)
    lines = text.splitlines()
    assert lines[0] == "digraph treegrad {" and lines[-1] == "}"
    nodes, edges = {}, []
    for line in lines[1:-1]:
        if m := _DOT_NODE.match(line):
            nodes[m.group(1)] = m.group(2)
        elif m := _DOT_EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
        else:
            assert line.strip().startswith(("rankdir", "node [", "edge [")), line
    assert list(nodes.values()).count('"tanh"') == 1
    tanh_id = next(k for k, v in nodes.items() if v == '"tanh"')
    assert sorted(nodes[p] for c, p in edges if c == tanh_id) == ['"mul"', '"relu"']
    assert all(c in nodes and p in nodes for c, p in edges)
    assert '"p0 = 0.5"' in nodes.values() and '"2"' in nodes.values()
    assert len(nodes) == len(root.graph.order)  # type: ignore[union-attr]


def test_dot_escapes_labels() -> None:
    root = Add([Input('a"b\\c\nd'), Input("e}")]).compile()
    text = dot_source(root)
    for line in text.splitlines()[1:-1]:
        assert _DOT_NODE.match(line) or _DOT_EDGE.match(line) or line.strip().startswith(("rankdir", "node", "edge"))
    assert r'label="a\"b\\c\nd"' in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_reads_the_dot() -> None:
    root = Add([Input('a"b\\c\nd'), softmax_model().graph.output.children[0]]).compile()  # type: ignore[union-attr]
    proc = subprocess.run(["dot", "-Tsvg"], input=dot_source(root), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def eval_graph_dict(doc: dict[str, Any], row: list[float]) -> Any:
    """A tiny evaluator of the JSON graph, driven by the op table."""
    inputs = dict(zip(doc["inputs"], row, strict=True))
    values: list[Any] = []
    for n in doc["nodes"]:
        args = [values[c] for c in n["children"]]
        if n["kind"] == "input":
            values.append(inputs[n["name"]])
        elif n["kind"] in ("parameter", "constant"):
            values.append(n["value"])
        elif n["kind"] == "softmax":
            values.append(softmax_fns(len(args))[0](*args))
        elif n["kind"] == "output":
            values.append(args)
        else:
            values.append(OPS[n["op"]].value_fn(len(args))(*args))
    return values[doc["output"]]


def test_json_graph_evaluates_to_predict(seeded_dag: Callable[..., Any]) -> None:
    cases = [(build(), 20) for build, _ in NAMED_MODELS.values()]
    for seed in range(20):
        dag = seeded_dag(seed)
        cases.append((dag.root.compile(), 0))
        for row in dag_rows(dag, 3):
            doc = json.loads(json.dumps(graph_dict(Opened(dag.root, "dag"))))
            assert eval_graph_dict(doc, row) == predict_many(dag.root, [row])[0]
    for root, n in cases:
        doc = json.loads(json.dumps(graph_dict(Opened(root, "m"))))
        assert len(doc["nodes"]) == len(root.graph.order)  # type: ignore[union-attr]
        for row in random_rows(root, n, seed=4):
            assert eval_graph_dict(doc, row) == predict_many(root, [row])[0]


def test_json_graph_fields() -> None:
    doc = graph_dict(Opened(f2c_model(), "f2c", "regression"))
    assert doc["inputs"] == ["f"] and doc["classes"] is None
    kinds = [(n["kind"], n.get("op"), n.get("name"), n.get("value")) for n in doc["nodes"]]
    assert kinds == [
        ("parameter", None, "p0", 5 / 9),
        ("input", None, "f", None),
        ("op", "mul", None, None),
        ("parameter", None, "p1", -160 / 9),
        ("op", "add", None, None),
    ]
    assert doc["nodes"][doc["output"]]["children"] == [2, 3]


# ----------------------------------------------------------------- printed formulas, evaluated


def _match_brace(s: str, i: int) -> int:
    """Index of the '}' closing the '{' at s[i]."""
    depth = 0
    for j in range(i, len(s)):
        depth += {"{": 1, "}": -1}.get(s[j], 0)
        if depth == 0:
            return j
    raise AssertionError(f"unbalanced braces in {s!r}")


def latex_to_python(tex: str) -> str:
    """Just enough LaTeX to Python for funcify's output: statements, one per line."""
    s = tex.replace(" \\\\\n", "\n")
    s = re.sub(r"\\mathit\{([A-Za-z0-9]|\\_)+\}", lambda m: m.group(0)[8:-1].replace("\\_", "_"), s)
    s = re.sub(r"([A-Za-z])_\{(\d+)\}", r"\1\2", s)
    for a, b in [
        (r"\left(", "("),
        (r"\right)", ")"),
        (r"\left[", "["),
        (r"\right]", "]"),
        (r"\left|", "abs("),
        (r"\right|", ")"),
        (r" \cdot ", " * "),
        (r"\sigma", "sigmoid"),
        (r"\tanh", "tanh"),
        (r"\exp", "exp"),
        (r"\log", "log"),
    ]:
        s = s.replace(a, b)
    s = re.sub(r"\\operatorname\{(\w+)\}", r"\1", s)
    while (i := s.find(r"\frac{")) >= 0:
        j = _match_brace(s, i + 5)
        k = _match_brace(s, j + 1)
        s = s[:i] + f"(({s[i + 6 : j]}) / ({s[j + 2 : k]}))" + s[k + 1 :]
    while (i := s.find("^{")) >= 0:
        j = _match_brace(s, i + 1)
        s = s[:i] + f" ** ({s[i + 2 : j]})" + s[j + 1 :]
    assert "\\" not in s and "{" not in s, s
    return s


def text_to_python(text: str) -> str:
    return text.replace("^", " ** ")


def run_formula(code: str, names: list[str], row: list[float]) -> Any:
    """Evaluate a printed formula: its `h = ...` lines, then its final expression."""
    ns: dict[str, Any] = {
        **python_namespace(),  # for an op added to the table since; the seed's ops written here
        "relu": lambda v: v if v > 0 else 0.0,
        "sigmoid": lambda v: 1 / (1 + math.exp(-v)),
        "tanh": math.tanh,
        "exp": math.exp,
        "log": math.log,
        "abs": abs,
        "softmax": lambda *z: softmax_fns(len(z))[0](*z),
        **dict(zip(names, row, strict=True)),
    }
    *lines, final = code.strip().splitlines()
    for line in lines:
        exec(line, ns)
    return eval(final, ns)


@pytest.mark.parametrize("fmt", ["text", "latex", "python"])
def test_printed_formulas_evaluate_to_predict(fmt: str, seeded_dag: Callable[..., Any]) -> None:
    convert = {"text": text_to_python, "latex": latex_to_python, "python": lambda s: s}[fmt]
    cases: list[tuple[Node, list[list[float]]]] = [(b(), []) for b, _ in NAMED_MODELS.values()]
    cases = [(r, random_rows(r, 5, seed=6)) for r, _ in cases]
    for seed in range(25):
        dag = seeded_dag(seed)
        cases.append((dag.root.compile(), dag_rows(dag, 3)))
    for root, rows in cases:
        code = convert(funcify(root, precision=17, format=fmt))
        names = root.graph.input_names  # type: ignore[union-attr]
        for row in rows:
            got, want = run_formula(code, names, row), predict_many(root, [row])[0]
            assert close(got, want, 1e-9), (code, row)


def test_latex_document_holds_the_formula() -> None:
    root = Add([Multiply([Parameter(2.0), Input("sepal_length")]), Parameter(1.0)]).compile()
    doc = latex_document(Opened(root, "m"))
    assert doc.startswith("\\documentclass{article}\n\\usepackage{amsmath}\n")
    assert "2 \\cdot \\mathit{sepal\\_length} + 1" in doc
    assert doc.index("\\begin{gather*}") < doc.index("sepal") < doc.index("\\end{gather*}")
    assert doc.rstrip().endswith("\\end{document}")


# ----------------------------------------------------------------- sympy


def test_simplify_prints_the_learned_conversion() -> None:
    pytest.importorskip("sympy")
    from treegrad.outputs.export import simplified

    assert simplified(f2c_model()) == "0.5556*f - 17.78"
    # Written the long way round, it still comes out as one line.
    f = Input("f")
    root = Add(
        [
            Multiply([Parameter(0.25), f]),
            Multiply([f, Parameter(5 / 9 - 0.25)]),
            Parameter(-20.0),
            Constant(20 - 160 / 9),
        ]
    ).compile()
    assert simplified(root) == "0.5556*f - 17.78"
    assert simplified(f2c_model(), precision=2, format="latex") == "0.56 f - 18.0"


def test_sympy_expressions_evaluate_to_predict(seeded_dag: Callable[..., Any]) -> None:
    sp = pytest.importorskip("sympy")
    from treegrad.outputs.export import sympy_exprs

    impl = {"relu": lambda v: v if v > 0 else 0.0, "sigmoid": lambda v: 1 / (1 + math.exp(-v))}
    cases: list[tuple[Node, Any]] = [(b(), None) for b, _ in NAMED_MODELS.values()]
    for seed in range(15):
        dag = seeded_dag(seed)
        cases.append((dag.root.compile(), dag))
    for root, dag in cases:
        exprs, is_softmax = sympy_exprs(root)
        names = root.graph.input_names  # type: ignore[union-attr]
        symbols = [sp.Symbol(n, real=True) for n in names]
        fns = [sp.lambdify(symbols, e, modules=[impl, "math"]) for e in exprs]
        rows = dag_rows(dag, 3) if dag is not None else random_rows(root, 5, seed=7)
        for row in rows:
            values = [float(fn(*row)) for fn in fns]
            if is_softmax:
                values = softmax_fns(len(values))[0](*values)
            want = predict_many(root, [row])[0]
            assert close(values if root.graph.is_list else values[0], want, 1e-9)  # type: ignore[union-attr]


def test_simplify_without_sympy_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from treegrad.outputs.export import simplified

    monkeypatch.setitem(sys.modules, "sympy", None)
    with pytest.raises(TreegradError, match="pip install sympy"):
        simplified(f2c_model())


def test_show_simplify_from_the_cli(tmp_path: Path) -> None:
    pytest.importorskip("sympy")
    from treegrad.cli import app

    spec = tmp_path / "f2c.yaml"
    spec.write_text(
        f"name: f2c\ninputs: [f]\noutput:\n  add:\n    - mul: [{{param: {5 / 9!r}}}, f]\n"
        f"    - {{param: {-160 / 9!r}}}\n"
    )
    result = runner.invoke(app, ["show", str(spec), "--simplify"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "0.5556*f - 17.78"
    bad = runner.invoke(app, ["show", str(spec), "--simplify", "--format", "tree"])
    assert bad.exit_code == 2


# ----------------------------------------------------------------- ONNX


def onnx_outputs(model: Opened, rows: list[list[float]]) -> Any:
    np = pytest.importorskip("numpy")
    ort = pytest.importorskip("onnxruntime")
    from treegrad.outputs.export import onnx_bytes

    session = ort.InferenceSession(onnx_bytes(model), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"X": np.array(rows, dtype=np.float64)})
    assert y.dtype == np.float64
    return y


@pytest.mark.parametrize("name", sorted(NAMED_MODELS))
def test_onnx_agrees_with_predict(name: str) -> None:
    pytest.importorskip("onnx")
    build, task = NAMED_MODELS[name]
    root = build()
    rows = random_rows(root, 200, seed=8, scale=3.0)
    y = onnx_outputs(Opened(root, name, task), rows)
    want = predict_many(root, rows)
    assert y.shape == ((200, 3) if name == "softmax" else (200,))
    worst = max(
        abs(a - b)
        for got, w in zip(y.tolist(), want, strict=True)
        for a, b in zip(got if isinstance(got, list) else [got], w if isinstance(w, list) else [w], strict=True)
    )
    assert worst <= 1e-9


def test_onnx_of_every_op(seeded_dag: Callable[..., Any]) -> None:
    pytest.importorskip("onnx")
    for seed in range(30):
        dag = seeded_dag(seed)
        root = dag.root.compile()
        rows = dag_rows(dag)
        y = onnx_outputs(Opened(root, "dag"), rows)
        assert close(y.tolist(), predict_many(root, rows), 1e-9), seed


def test_onnx_broadcasts_outputs_that_ignore_the_inputs() -> None:
    pytest.importorskip("onnx")
    x = Input("x")
    root = Output([Parameter(0.25), Multiply([x, Constant(2.0)]), Add([Parameter(1.0), Constant(3.0)])]).compile()
    y = onnx_outputs(Opened(root, "m"), [[1.0], [2.0], [3.0]])
    assert y.tolist() == [[0.25, 2.0, 4.0], [0.25, 4.0, 4.0], [0.25, 6.0, 4.0]]


def test_onnx_records_inputs_and_classes() -> None:
    onnx = pytest.importorskip("onnx")
    from treegrad.outputs.export import onnx_model

    m = onnx_model(Opened(softmax_model(), "s", "classes", ["a", "b", "c"]))
    meta = {p.key: p.value for p in m.metadata_props}
    assert json.loads(meta["inputs"]) == ["u", "v"] and json.loads(meta["classes"]) == ["a", "b", "c"]
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert [n.op_type for n in m.graph.node].count("Softmax") == 1


def test_example_models_export_to_onnx_from_the_cli(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    np = pytest.importorskip("numpy")
    from treegrad.cli import app

    for stem in ("f2c", "line", "iris"):
        spec = MODELS / f"{stem}.yaml"
        model_path = tmp_path / f"{stem}.model.json"
        train_spec(spec, overrides={"epochs": 2}, out=model_path)
        out = tmp_path / f"{stem}.onnx"
        result = runner.invoke(app, ["export", str(model_path), "--format", "onnx", "-o", str(out)])
        assert result.exit_code == 0, result.output
        loaded = load_model(model_path)
        rows = random_rows(loaded.root, 50, seed=9, scale=5.0)
        (y,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"X": np.array(rows)})
        assert close(y.tolist(), predict_many(loaded.root, rows), 1e-9), stem


def test_export_without_onnx_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from treegrad.outputs.export import onnx_bytes

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(TreegradError, match="pip install onnx"):
        onnx_bytes(Opened(f2c_model(), "f2c"))


def test_export_command_errors(tmp_path: Path) -> None:
    from treegrad.cli import app

    spec = tmp_path / "m.yaml"
    spec.write_text("inputs: [f]\noutput: {mul: [param, f]}\n")
    assert runner.invoke(app, ["export", str(spec), "--format", "onnx"]).exit_code == 2
    assert runner.invoke(app, ["export", str(spec), "--format", "pdf"]).exit_code == 2
    missing = runner.invoke(app, ["export", str(spec), "--format", "json", "-o", str(tmp_path / "no" / "m.json")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    ok = runner.invoke(app, ["export", str(spec), "--format", "dot"])
    assert ok.exit_code == 0 and ok.output.startswith("digraph treegrad {")
    js = runner.invoke(app, ["show", str(spec), "--format", "json"])
    assert js.exit_code == 0 and json.loads(js.output)["inputs"] == ["f"]
