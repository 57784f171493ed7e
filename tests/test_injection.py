"""No code runs from data: names, labels and numbers crafted to inject code, in a spec, a
CSV or a model file, are refused or inert.

Three lines of defence are checked here. Names that reach generated code must be plain
identifiers (the spec refuses anything else). The generated code never contains a name or
a number from the user at all: parameters, inputs and constants enter as lists, so two
models that differ only in their names compile to the same text. And free text (labels,
model names, file names) is only ever printed, escaped for rich markup and quoted for
Python by repr.
"""

from __future__ import annotations

import builtins
import csv
import io
import json
import keyword
import re
import subprocess
import sys
import tokenize
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from treegrad.cli import app
from treegrad.engine import compiled, vectorized
from treegrad.engine.compiled import Program, predict_many
from treegrad.engine.fit import fit
from treegrad.engine.optim import OPTIMIZERS
from treegrad.errors import SpecError
from treegrad.spec.build import build_model, loss_name
from treegrad.spec.models import parse_spec

runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def shell_payload(folder: Path) -> str:
    """Python that would create folder/PWNED if anything ever evaluated it."""
    return f"__import__('os').system('touch {folder / 'PWNED'}')"


def assert_not_pwned(folder: Path) -> None:
    assert not (folder / "PWNED").exists(), "injected code ran"


@pytest.fixture()
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("x,y\n0.1,0.3\n0.5,1.1\n0.9,1.9\n-0.3,-0.5\n")
    return tmp_path


# ----------------------------------------------------------------- names in a spec

NOT_NAMES = [
    "__import__('os').system('touch PWNED')",
    "x'); import os; os.system('touch PWNED'); ('",
    'x"\nimport os\n',
    "x; touch PWNED",
    "x\nimport os",
    "$(touch PWNED)",
    "x y",
    "1x",
    "x-1",
    "x.y",
    "ｘ",  # fullwidth x
    "х",  # Cyrillic ha, looks like x
    "x\u200b",  # zero-width space
    "é",
    "[bold]x[/bold]",
    "",
]


@pytest.mark.parametrize("role", ["input", "node", "parameter"])
@pytest.mark.parametrize("name", NOT_NAMES, ids=[f"name{i}" for i in range(len(NOT_NAMES))])
def test_a_name_that_is_not_an_identifier_is_refused(work: Path, role: str, name: str) -> None:
    quoted = json.dumps(name)
    spec = {
        "input": f'{{"inputs": [{quoted}], "output": {{"mul": [{quoted}, "param"]}}}}',
        "node": f'{{"inputs": ["x"], "nodes": {{{quoted}: {{"mul": ["x", "param"]}}}}, "output": {quoted}}}',
        "parameter": f'{{"inputs": ["x"], "output": {{"mul": ["x", {{"param": {{"init": 1, "name": {quoted}}}}}]}}}}',
    }[role]
    (work / "evil.json").write_text(spec.replace("PWNED", str(work / "PWNED")))
    for command in (
        ["check", "evil.json"],
        ["show", "evil.json"],
        ["train", "evil.json", "--data", "data.csv", "--target", "y", "--out", "m.json"],
    ):
        result = invoke(*command)
        assert result.exit_code == 1, (command, result.stdout, result.stderr)
        assert result.stderr.startswith("error: evil.json:1:"), result.stderr
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert not (work / "m.json").exists()
    assert_not_pwned(work)


# Identifiers that spell Python's own names or those of the generated code: valid names,
# so accepted, and harmless because no name is ever pasted into code.
TRICKY = ["__import__", "exec", "P", "x0", "lambda", "None", "v1", "p0", "c0", "exp", "os", "self"]
PLAIN = [f"n{i}" for i in range(len(TRICKY))]


def _spec(names: list[str]) -> str:
    inputs, node, param = names[:6], names[6], names[7]
    return (
        f"inputs: [{', '.join(inputs)}]\n"
        f"nodes:\n  {node}: {{linear: {{inputs: [{', '.join(inputs)}], units: 16, activation: tanh}}}}\n"
        f"output: {{add: [{{linear: {node}}}, {{mul: [{{param: {{init: 0.5, name: {param}}}}}, {inputs[0]}]}},"
        f" {{pow: [{inputs[1]}, 3]}}, 12345.678]}}\n"
    )


def _generated_sources(spec_text: str, monkeypatch: pytest.MonkeyPatch, **options: Any) -> list[str]:
    """Every piece of source text compiled while training (per sample, scalar mini-batches,
    NumPy mini-batches, with every optimizer) and predicting with a spec's model."""
    sources: list[str] = []
    real = builtins.compile

    def spy(source: Any, filename: str, mode: str, *args: Any, **kwargs: Any) -> Any:
        sources.append(source)
        return real(source, filename, mode, *args, **kwargs)

    monkeypatch.setattr(compiled, "compile", spy, raising=False)
    monkeypatch.setattr(vectorized, "compile", spy, raising=False)
    spec = parse_spec(spec_text)
    X = [[0.1 * (i + j) for j in range(len(spec.inputs))] for i in range(64)]
    y = [0.5] * len(X)
    for optimizer in OPTIMIZERS:
        for batch_size in (1, 4, 64):
            root = build_model(spec, seed=0)
            fit(
                root,
                X,
                y,
                loss=loss_name(spec),
                epochs=1,
                batch_size=batch_size,
                optimizer=optimizer,
                validation=(X, y),
                **options,
            )
            predict_many(root, X)
    monkeypatch.undo()
    return sources


GENERATED_WORDS = set(keyword.kwlist) | {
    # builtins and the op table's functions (ops.NAMESPACE) and their NumPy forms
    "abs",
    "float",
    "len",
    "max",
    "range",
    "sum",
    "exp",
    "log",
    "tanh",
    "sqrt",
    "fpow",
    "np",
    "arange",
    "array",
    "axis",
    "dtype",
    "float64",
    "keepdims",
    "maximum",
    "minimum",
    "sign",
    "stack",
    "tolist",
    "where",
    # the epoch function's report of a math error at a sample (compiled.SampleFailure)
    "ArithmeticError",
    "ValueError",
    "SampleFailure",
    # the generated functions' own arguments and locals
    "P",
    "C",
    "S",
    "STEP",
    "X",
    "T",
    "L",
    "i",
    "t",
    "n",
    "nb",
    "row",
    "out",
    "append",
    "batch",
    "idx",
    # the NumPy trainer's flat parameter, gradient and state arrays, and its batches as slices
    "F",
    "G",
    "m_F",
    "v_F",
    "perm",
    "empty",
    "zeros",
    "reshape",
    "matmul",
    "Xp",
    "Wp",
    "Tp",
    "bounds",
    "e",
    "lr",
    "step",
    "total",
    "epoch",
    "predict_rows",
    "loss_rows",
    "Pa",
    "Pm",
    "Xa",
    "Ta",
    "Xb",
    "Tb",
    "GZ",
    "H",  # the step rules' values (l1, l2, clip) and, below, the sample weights
    "W",
    "Wa",
    "Wb",
    "clip",
    "DT",  # the NumPy trainer's float type (training.dtype), and its numbers outside the arrays
    "as_numbers",
    "bce_lo",  # the losses' clamp bounds, numbers of that float type
    "bce_hi",
    "ce_tiny",
    # the model on many rows at once (vectorized.ArrayRows): outputs, losses, ReLU units seen above 0
    "array_rows",
    "outs",
    "losses",
    "alive",
    "Out",
    "Outs",
    "concatenate",
    "full",
    "bool",
    "any",
}
# v3, p0, x1, c2, g7, gp0, go0, s1, gz0, a4, m_0, v_0, _sm0, and the vectorized trainer's
# per-layer arrays (W1, B2, Z3, dZ1, gW2, m_W1, iw1, b1c, ix_A2, ...).
GENERATED_NAME = re.compile(r"(v|p|x|c|g|gp|go|s|gz|a|m_|v_|_\w*)\d*|(m_|v_|d|g|i|ix_)?[A-Z][a-z]?\d+|[a-z]{1,2}\d+c?")
GENERATED_NUMBERS = {
    "0",
    "1",
    "2",
    "0.0",
    "1.0",
    "2.0",
    "0.001",
    "0.1",
    "0.9",
    "0.999",
    "0.99999999",
    "1e-08",
    "1e-300",
    "700.0",
}


def _optimizer_words() -> tuple[set[str], set[str]]:
    """The names and numbers the optimizer table's statements paste (its state variables, its
    constants), read from its entries, so that a new optimizer needs no line here."""
    names, numbers = set(), set()
    for opt in OPTIMIZERS.values():
        names |= {f"{s}_F" for s in opt.state}  # the NumPy trainer's state arrays
        for line in (*opt.prelude, *opt.update("p0", "g0", [f"{s}_0" for s in opt.state])):
            for tok in tokenize.generate_tokens(io.StringIO(line).readline):
                if tok.type == tokenize.NUMBER and not tok.string.isdigit():
                    numbers.add(tok.string)
                elif tok.type == tokenize.NAME and not keyword.iskeyword(tok.string):
                    names.add(re.sub(r"_0$", "_", tok.string))
    return names, numbers


OPTIMIZER_NAMES, OPTIMIZER_NUMBERS = _optimizer_words()
GENERATED_WORDS |= {n for n in OPTIMIZER_NAMES if not n.endswith("_")}
GENERATED_NUMBERS |= OPTIMIZER_NUMBERS
# each parameter's optimizer state in the scalar code: m_0, v_3, ...
STATE_NAME = re.compile(rf"({'|'.join(n for n in OPTIMIZER_NAMES if n.endswith('_'))})\d+")


def generated_name(name: str) -> bool:
    """A name treegrad writes: one of its words, a numbered name of its own, a state variable."""
    return name in GENERATED_WORDS or bool(GENERATED_NAME.fullmatch(name) or STATE_NAME.fullmatch(name))


def test_generated_code_holds_only_treegrads_own_names_and_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    tricky = _generated_sources(_spec(TRICKY), monkeypatch)
    plain = _generated_sources(_spec(PLAIN), monkeypatch)
    assert len(tricky) >= 6, "expected per-sample, batched and NumPy epoch functions and predict"
    assert tricky == plain, "a user's name changed the generated code"
    vectorized_seen = False
    for source in tricky:
        vectorized_seen |= "np." in source
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.NAME:
                assert generated_name(tok.string), tok.string
            assert tok.type != tokenize.STRING, f"a string literal in generated code: {tok.string}"
            if tok.type == tokenize.NUMBER and not tok.string.isdigit():  # whole numbers index lists
                assert tok.string in GENERATED_NUMBERS, f"a number from the spec in generated code: {tok.string}"
    assert vectorized_seen, "the NumPy trainer's code was checked too"


def test_training_options_are_passed_in_not_pasted(monkeypatch: pytest.MonkeyPatch) -> None:
    """l1, l2, the clipping norm and sample weights reach the generated code as arguments: none
    of their numbers appears in it, and it uses only treegrad's own names."""
    options = {"l1": 0.0123, "l2": 0.0456, "clip_norm": 0.789, "sample_weight": [0.321] * 64}
    sources = _generated_sources(_spec(PLAIN), monkeypatch, **options)
    assert any("clip" in source and "np." in source for source in sources), "the NumPy trainer's rules were checked"
    for source in sources:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.NAME:
                assert generated_name(tok.string), tok.string
            if tok.type == tokenize.NUMBER and not tok.string.isdigit():
                assert tok.string in GENERATED_NUMBERS, f"a number from the options in generated code: {tok.string}"


def test_forward_lines_are_assignments_of_generated_names() -> None:
    """The brief's check, on Program(graph).forward(): each line is `vN = <expression>`
    whose every identifier is treegrad's."""
    root = build_model(parse_spec(_spec(TRICKY)))
    lines = Program(root.compiled_graph).forward()
    assert lines
    pattern = re.compile(r"^(v|p|x|c|g|gp|go|s|gz|a|m_|v_|_\w*)\d*$")
    for line in lines:
        target, _, expression = line.partition(" = ")
        assert re.fullmatch(r"v\d+|_sm\d*|s\d+", target), line
        for word in re.findall(r"[A-Za-z_]\w*", expression):
            assert pattern.match(word) or word in GENERATED_WORDS, f"{word!r} in {line!r}"
        assert not set(TRICKY) - {"P", "x0", "v1", "p0", "c0", "exp", "None", "lambda"} & set(re.findall(r"\w+", line))


def test_tricky_identifiers_train_predict_and_show_like_plain_ones(work: Path) -> None:
    """A model whose names spell __import__, exec, lambda, None, P, x0 ... gives exactly the
    numbers of the same model with plain names, and every view of it is inert."""
    rows = ["0.1,0.2,0.3,0.4,0.5,0.6,1.0", "0.6,0.5,0.4,0.3,0.2,0.1,0.0", "0.2,0.2,0.2,0.2,0.2,0.2,0.5"]
    for names, stem in ((TRICKY, "tricky"), (PLAIN, "plain")):
        (work / f"{stem}.yaml").write_text(_spec(names) + "target: y\ntraining: {epochs: 3}\n")
        (work / f"{stem}.csv").write_text(",".join(names[:6]) + ",y\n" + "\n".join(rows) + "\n")
        result = invoke("train", f"{stem}.yaml", "--data", f"{stem}.csv", "--out", f"{stem}.json", "--quiet")
        assert result.exit_code == 0, result.stderr
    tricky, plain = (json.loads((work / f"{s}.json").read_text()) for s in ("tricky", "plain"))
    assert list(tricky["parameters"].values()) == list(plain["parameters"].values())
    values = ["0.3", "0.1", "0.4", "0.1", "0.5", "0.9"]
    a = invoke("predict", "tricky.json", *values, "--json")
    b = invoke("predict", "plain.json", *values, "--json")
    assert a.exit_code == 0 and a.stdout == b.stdout
    named = invoke("predict", "tricky.json", *[f"{n}={v}" for n, v in zip(TRICKY, values)], "--json")
    assert named.stdout == a.stdout
    for fmt in ("text", "latex", "tree", "python", "dot", "json"):
        result = invoke("show", "tricky.json", "--format", fmt)
        assert result.exit_code == 0, (fmt, result.stderr)
    module = invoke("show", "tricky.json", "--format", "python").stdout
    namespace: dict[str, Any] = {}
    exec(compile(module, "tricky_model.py", "exec"), namespace)  # noqa: S102 - the module under test
    expected = json.loads(a.stdout)[0]["prediction"]
    assert namespace["predict"](*map(float, values)) == pytest.approx(expected, rel=1e-12)
    assert_not_pwned(work)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("inputs: [x]\noutput: {pow: [x, 1e308]}\n", None),
        ("inputs: [x]\noutput: {pow: [x, 1e-400]}\n", None),  # underflows to 0.0: a valid exponent
        ("inputs: [x]\noutput: {mul: [x, 1e400]}\n", "not a finite number"),
        ("inputs: [x]\noutput: {mul: [x, 1e99999999999]}\n", "not a finite number"),
        ("inputs: [x]\noutput: {mul: [x, " + "9" * 4000 + "]}\n", "too large"),
        ("inputs: [x]\noutput: {mul: [x, 0x1F]}\n", "unknown name '0x1F'"),
        ("inputs: [x]\noutput: {mul: [x, 1_000]}\n", "unknown name '1_000'"),
        ("inputs: [x]\noutput: {mul: [x, '1+1']}\n", "unknown name '1+1'"),
        ("inputs: [x]\noutput: {param: {init: 1e308, name: big}}\n", None),
    ],
)
def test_numbers_cannot_smuggle_anything(work: Path, text: str, words: str | None) -> None:
    """Numbers are parsed by YAML 1.2's rules into floats or refused; nothing else is a number."""
    if words is None:
        root = build_model(parse_spec(text))
        assert root.compiled_graph.constants or root.compiled_graph.params
    else:
        with pytest.raises(SpecError) as info:
            parse_spec(text, "n.yaml")
        assert words in str(info.value) and len(str(info.value)) < 300


# ----------------------------------------------------------------- the spec's name and free text


@pytest.mark.parametrize(
    "name",
    [
        "../escaped",
        "../../escaped",
        "/tmp/escaped",
        "sub/escaped",
        ".hidden",
        "..",
        "a\\b",
        "x\ny",
        "evil$(touch PWNED)",
        "a" * 101,
    ],
)
def test_the_spec_name_cannot_put_the_model_file_elsewhere(
    work: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --out the model goes to NAME.model.json in the current folder: a name with a
    path in it would write anywhere the user can. Such names are refused, at their place."""
    inner = work / "inner"
    inner.mkdir()
    (work / "esc.yaml").write_text(
        f"name: {json.dumps(name)}\ninputs: [x]\noutput: {{mul: [param, x]}}\n"
        "data: data.csv\ntarget: y\ntraining: {epochs: 1}\n"
    )
    before = sorted(p for p in Path("/tmp").glob("escaped*"))
    monkeypatch.chdir(inner)
    result = invoke("train", "../esc.yaml", "--quiet")
    assert result.exit_code == 1, result.stdout
    assert result.stderr.startswith("error: ../esc.yaml:1:7: name: the name ")
    assert "cannot be used" in result.stderr and "Traceback" not in result.stderr
    assert list(work.rglob("*.model.json")) == [] and sorted(Path("/tmp").glob("escaped*")) == before
    assert_not_pwned(inner)


def test_a_plain_name_still_names_the_default_file(work: Path) -> None:
    (work / "ok.yaml").write_text(
        "name: f2c_v2.1-beta\ninputs: [x]\noutput: {mul: [param, x]}\n"
        "data: data.csv\ntarget: y\ntraining: {epochs: 1}\n"
    )
    result = invoke("train", "ok.yaml", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert (work / "f2c_v2.1-beta.model.json").is_file()


def test_rich_markup_in_a_message_is_printed_as_it_is(work: Path) -> None:
    """Messages quote file names and cells; `[/x]` in one must not be read as markup (a
    closing tag without an opening one made rich raise, and the CLI crash with a traceback)."""
    for name in ("[/x].yaml", "[bold]hidden[/bold].yaml", "[link=evil]x[/link].yaml"):
        result = invoke("check", name)
        assert result.exit_code == 1, result.stderr
        assert (
            result.stderr == f"error: {name}: no such file; check the path (relative paths start from the "
            "current folder)\n"
        )
    (work / "markup.csv").write_text("x,y\n1,2\n[/red]oops,3\n")
    (work / "m.yaml").write_text("inputs: [x]\noutput: {mul: [param, x]}\ntarget: y\n")
    result = invoke("train", "m.yaml", "--data", "markup.csv", "--quiet")
    assert result.exit_code == 1 and "'[/red]oops', not a number" in result.stderr


# ----------------------------------------------------------------- labels in a CSV

LABELS = [
    "__import__('os').system('touch PWNED')",
    "=cmd|' /C calc'!A0",
    "[red]x[/red]",
    "[/bold]",
    "'; DROP TABLE models; --",
    'a"b',
    "\\x00",
    "ℵ",
    "{{7*7}}",
]


@pytest.mark.parametrize("label", LABELS, ids=[f"label{i}" for i in range(len(LABELS))])
def test_crafted_class_labels_are_only_ever_text(work: Path, label: str) -> None:
    label = label.replace("PWNED", str(work / "PWNED"))
    quoted = '"' + label.replace('"', '""') + '"'
    sign = 1 if sorted([label, "plain"])[1] == label else -1  # the second class is the one of x > 0
    (work / "labels.csv").write_text(f"x,y\n{-sign},plain\n{-sign / 2},plain\n{sign / 2},{quoted}\n{sign},{quoted}\n")
    (work / "bin.yaml").write_text(
        "name: bin\ninputs: [x]\noutput: {sigmoid: {mul: [{param: 4.0}, x]}}\n"
        "loss: bce\ntarget: y\ntraining: {epochs: 2}\n"
    )
    result = invoke("train", "bin.yaml", "--data", "labels.csv", "--out", "bin.json")
    assert result.exit_code == 0, result.stderr
    record = json.loads((work / "bin.json").read_text())
    assert label in record["classes"]
    predicted = invoke("predict", "bin.json", f"x={sign}", "--json")
    assert predicted.exit_code == 0
    assert json.loads(predicted.stdout)[0]["label"] == label
    text = invoke("predict", "bin.json", f"x={sign}")
    assert text.exit_code == 0 and text.stdout.startswith(label + "  (probability")
    assert invoke("predict", "bin.json", "--data", "labels.csv", "--out", "p.csv").exit_code == 0
    with (work / "p.csv").open(newline="", encoding="utf-8") as f:
        # A label that a spreadsheet would run as a formula is written with a leading ' (issue 17).
        written = "'" + label if label.startswith(("=", "+", "-", "@", "\t", "\r")) else label
        assert written in {row[2] for row in csv.reader(f)}
    evaluated = invoke("eval", "bin.json", "--data", "labels.csv")
    assert evaluated.exit_code == 0, evaluated.stderr
    assert label in evaluated.stdout or len(label) > 10  # long labels may be cut by the table
    module = invoke("show", "bin.json", "--format", "python").stdout
    namespace: dict[str, Any] = {}
    exec(compile(module, "bin_model.py", "exec"), namespace)  # noqa: S102 - the module under test
    assert namespace["predict_label"](float(sign)) == label
    assert_not_pwned(work)


# ----------------------------------------------------------------- a crafted model file


@pytest.fixture()
def model(work: Path) -> dict[str, Any]:
    (work / "m.yaml").write_text(
        "name: m\ninputs: [x]\noutput: {sigmoid: {mul: [param, x]}}\nloss: bce\ntarget: y\ntraining: {epochs: 1}\n"
    )
    (work / "labels.csv").write_text("x,y\n-1,a\n1,b\n")
    result = invoke("train", "m.yaml", "--data", "labels.csv", "--out", "m.json", "--quiet")
    assert result.exit_code == 0, result.stderr
    return dict(json.loads((work / "m.json").read_text()))


def _run_all(work: Path, record: dict[str, Any]) -> list[Result]:
    (work / "evil.json").write_text(json.dumps(record))
    results = [
        invoke("predict", "evil.json", "0.5"),
        invoke("predict", "evil.json", "0.5", "--json"),
        invoke("eval", "evil.json", "--data", "labels.csv"),
        invoke("show", "evil.json"),
    ]
    results += [invoke("show", "evil.json", "--format", f) for f in ("tree", "latex", "python", "dot", "json")]
    for r in results:
        assert r.exit_code in (0, 1), (r.stdout, r.stderr)
        assert "Traceback" not in r.stdout + r.stderr and "internal error" not in r.stderr, r.stderr
        if r.exit_code == 1:
            assert r.stderr.startswith("error: ")
    for r in results:
        if r.exit_code == 0 and "def predict(" in r.stdout:
            exec(compile(r.stdout, "evil_model.py", "exec"), {})  # noqa: S102 - the exported module under test
    assert_not_pwned(work)
    return results


@pytest.mark.parametrize("where", ["input", "parameter", "node"])
def test_a_model_file_with_a_crafted_spec_is_refused(work: Path, model: dict[str, Any], where: str) -> None:
    payload = shell_payload(work)
    record = dict(model)
    if where == "input":
        quoted = json.dumps(payload)
        record["spec_text"] = record["spec_text"].replace("[x]", f"[{quoted}]").replace(", x]", f", {quoted}]")
        record["inputs"] = [payload]
    elif where == "parameter":
        record["parameters"] = {payload: 1.0}
    else:
        record["spec_text"] = (
            f"inputs: [x]\nnodes:\n  {json.dumps(payload)}: {{mul: [param, x]}}\n"
            f"output: {{sigmoid: {json.dumps(payload)}}}\nloss: bce\n"
        )
    results = _run_all(work, record)
    assert all(r.exit_code == 1 for r in results)


def test_free_text_in_a_model_file_is_inert(work: Path, model: dict[str, Any]) -> None:
    """Fields that are only ever shown: the model's name, where it came from, its labels."""
    payload = shell_payload(work)
    record = dict(model)
    record["name"] = "[/bold]" + payload
    record["spec_file"] = "[red]" + payload + '"""'
    record["classes"] = [payload, "[/x]" + payload]
    record["data"] = dict(record["data"], source="[/]" + payload, target=payload)
    results = _run_all(work, record)
    assert all(r.exit_code == 0 for r in results[:2] + results[3:]), [r.stderr for r in results]
    assert json.loads(results[1].stdout)[0]["label"] in record["classes"]


def test_subprocess_sees_no_side_effect(work: Path, model: dict[str, Any]) -> None:
    """The same inertness through a real process: every command on a crafted model file."""
    payload = shell_payload(work)
    record = dict(model, name=payload, classes=[payload, "b"])
    (work / "evil.json").write_text(json.dumps(record))
    (work / "labels.csv").write_text(f'x,y\n-1,"{payload}"\n1,b\n')
    for args in (
        ["predict", "evil.json", "x=-1"],
        ["show", "evil.json"],
        ["eval", "evil.json", "--data", "labels.csv"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "treegrad", *args], capture_output=True, text=True, cwd=work, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
    assert_not_pwned(work)
