"""Bad input through the command line: specs, data and model files that are wrong in every
way we could think of.

Each case runs a real command (Typer's CliRunner against `treegrad.cli.app`; a few through
`python -m treegrad`) and asserts the contract of the CLI: exit code 1 (2 for a usage
error), one short message on stderr that names the problem and where it is, nothing on
stdout, no traceback, and every file in the working folder byte for byte as it was
(an existing --out model included: a failed command writes nothing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from treegrad.cli import app

runner = CliRunner()

LINE = """\
name: line
inputs: [x]
output: {add: [{mul: [param, x]}, param]}
target: y
training: {epochs: 3, learning_rate: 0.01}
"""

BINARY = """\
name: binary
inputs: [x]
output: {sigmoid: {add: [{mul: [param, x]}, param]}}
loss: bce
target: y
training: {epochs: 3}
"""

SOFTMAX = """\
name: three
inputs: [x]
output: {softmax: {linear: {inputs: [x], units: 3}}}
target: y
training: {epochs: 3}
"""

NUMBERS_CSV = "x,y\n1,2\n2,3.5\n3,5\n4,6.5\n"
LABELS_CSV = "x,y\n1,a\n2,b\n3,a\n4,b\n"
THREE_CSV = "x,y\n1,a\n2,b\n3,c\n4,a\n"


# ----------------------------------------------------------------- helpers


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below `folder`, hidden ones (temporary files) included, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env=env)


def check_failure(result: Result, words: tuple[str, ...], code: int = 1) -> str:
    """The contract of a failed command; returns its message."""
    both = result.stdout + result.stderr
    assert result.exit_code == code, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in both, both
    assert "internal error" not in both, both
    assert "\x1b" not in both, f"a terminal escape was printed: {both!r}"
    assert result.stdout == "", f"nothing on stdout for an error, got {result.stdout!r}"
    message = result.stderr
    if code == 1:
        assert message.startswith("error: "), message
        assert message.count("error: ") == 1, message
        assert len(message) < 1200 and message.count("\n") <= 6, f"one short message, got {message!r}"
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


def fails(folder: Path, args: list[str], *words: str, code: int = 1) -> str:
    """Run a command that must fail, and check that it changed no file under `folder`."""
    before = snapshot(folder)
    message = check_failure(invoke(*args), words, code)
    assert snapshot(folder) == before, "a failed command changed or created a file"
    return message


def succeeds(*args: str) -> Result:
    result = invoke(*args)
    assert result.exit_code == 0, f"stdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with three small trained models (regression, binary, three classes) and their data."""
    folder = tmp_path_factory.mktemp("trained")
    for name, spec, csv in (("line", LINE, NUMBERS_CSV), ("binary", BINARY, LABELS_CSV), ("three", SOFTMAX, THREE_CSV)):
        (folder / f"{name}.yaml").write_text(spec)
        (folder / f"{name}.csv").write_text(csv)
        out = folder / f"{name}.model.json"
        result = invoke(
            "train", str(folder / f"{name}.yaml"), "--data", str(folder / f"{name}.csv"), "--out", str(out), "--quiet"
        )
        assert result.exit_code == 0, result.stderr
    return folder


@pytest.fixture()
def work(tmp_path: Path, trained: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working folder (the current directory) holding copies of the trained models."""
    for p in trained.iterdir():
        shutil.copy(p, tmp_path / p.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ----------------------------------------------------------------- 1. bad specs

BILLION_LAUGHS = (
    "\n".join(
        ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        + [f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]" for p, c in zip("abcdefgh", "bcdefghi")]
    )
    + "\ninputs: [x]\noutput: i\n"
)

BAD_SPECS: list[tuple[str, str, bytes | str, tuple[str, ...]]] = [
    # id, file name, content, words the message must hold
    ("yaml-syntax", "bad.yaml", "inputs: [x\noutput: x\n", ("bad.yaml:2:7", "invalid YAML")),
    ("yaml-indent", "bad.yaml", "inputs: [x]\noutput:\n  add: [x, 1]\n bad: 2\n", ("bad.yaml:4:", "invalid YAML")),
    ("yaml-tab", "bad.yaml", "inputs: [x]\noutput:\n\tadd: [x, 1]\n", ("bad.yaml:3:1", "invalid YAML")),
    ("two-documents", "bad.yaml", "inputs: [x]\noutput: x\n---\ninputs: [y]\n", ("bad.yaml:3:1", "one YAML document")),
    ("json-syntax", "bad.json", '{"inputs": ["x"], "output": }', ("bad.json:1:29", "invalid JSON")),
    ("json-trailing-comma", "bad.json", '{"inputs": ["x"],\n "output": "x",\n}', ("bad.json:3:1", "invalid JSON")),
    (
        "json-duplicate-key",
        "bad.json",
        '{"inputs": ["x"],\n "output": "x",\n "output": 1}',
        ("bad.json:3:2", "defined twice"),
    ),
    (
        "json-huge-integer",
        "bad.json",
        '{"inputs": ["x"], "output": {"mul": ["x", ' + "1" * 5000 + "]}}",
        ("bad.json:1:43", "too large"),
    ),
    (
        "yaml-huge-integer",
        "bad.yaml",
        "inputs: [x]\noutput: {mul: [x, " + "7" * 5000 + "]}\n",
        ("bad.yaml:2:19", "too large"),
    ),
    ("json-deep", "bad.json", "[" * 100_000, ("bad.json",)),
    (
        "yaml-deep",
        "bad.yaml",
        "inputs: [x]\noutput: " + "[" * 500 + "x" + "]" * 500 + "\n",
        ("bad.yaml:2:", "nested more than"),
    ),
    ("not-a-mapping", "bad.yaml", "- inputs\n- output\n", ("bad.yaml:1:1", "a spec is a mapping")),
    ("inputs-not-a-list", "bad.yaml", "inputs: 3\noutput: x\n", ("bad.yaml:1:9", "inputs", "expected a list")),
    (
        "negative-epochs",
        "bad.yaml",
        "inputs: [x]\noutput: x\ntraining: {epochs: -1}\n",
        ("bad.yaml:3:20", "training.epochs", "greater than or equal to 0"),
    ),
    (
        "misspelt-key",
        "bad.yaml",
        "inputs: [x]\noutput: x\nouptut: x\n",
        ("bad.yaml:3:1", "unknown key 'ouptut'", "did you mean 'output'"),
    ),
    ("missing-inputs", "bad.yaml", "output: x\n", ("the key 'inputs' is missing",)),
    ("no-model", "bad.yaml", "inputs: [x]\n", ("no model", "output:")),
    (
        "unknown-op",
        "bad.yaml",
        "inputs: [x]\noutput: {frobnicate: x}\n",
        ("bad.yaml:2:9", "unknown op 'frobnicate'. Ops are:"),
    ),
    (
        "misspelt-op",
        "bad.yaml",
        "inputs: [x]\noutput: {sigmod: x}\n",
        ("unknown op 'sigmod'", "did you mean 'sigmoid'"),
    ),
    (
        "unknown-name",
        "bad.yaml",
        "inputs: [x]\noutput: {add: [x, zzz]}\n",
        ("bad.yaml:2:19", "output.add[1]", "unknown name 'zzz'. Names in scope: x"),
    ),
    ("bad-loss", "bad.yaml", "inputs: [x]\noutput: x\nloss: 3\n", ("bad.yaml:3:7", "is not allowed. Allowed: mse")),
    (
        "bad-optimizer",
        "bad.yaml",
        "inputs: [x]\noutput: x\ntraining: {optimizer: adan}\n",
        ("training.optimizer", "did you mean 'adam'"),
    ),
    (
        "cycle",
        "bad.yaml",
        "inputs: [x]\nnodes:\n  a: {add: [b, 1]}\n  b: {mul: [a, 2]}\noutput: a\n",
        ("bad.yaml:4:", "cycle among nodes: a -> b -> a"),
    ),
    ("self-cycle", "bad.yaml", "inputs: [x]\nnodes:\n  a: {add: [a, x]}\noutput: a\n", ("cycle among nodes: a -> a",)),
    (
        "unary-given-two",
        "bad.yaml",
        "inputs: [x]\noutput: {relu: [x, x]}\n",
        ("bad.yaml:2:16", "'relu' takes one expression"),
    ),
    ("binary-given-one", "bad.yaml", "inputs: [x]\noutput: {add: [x]}\n", ("'add' takes a list of at least 2",)),
    ("sub-given-three", "bad.yaml", "inputs: [x]\noutput: {sub: [x, 1, 2]}\n", ("output.sub", "sub")),
    ("pow-learned-exponent", "bad.yaml", "inputs: [x]\noutput: {pow: [x, param]}\n", ("must be a constant number",)),
    (
        "softmax-inside",
        "bad.yaml",
        "inputs: [x, y]\noutput: {add: [{softmax: [x, y]}, 1]}\n",
        ("softmax can only be the whole model output",),
    ),
    (
        "softmax-not-last",
        "bad.yaml",
        "inputs: [x]\nlayers: [{softmax: true}, {linear: 2}]\n",
        ("layers[0]", "can only be the last layer"),
    ),
    ("loss-misfit", "bad.yaml", "inputs: [x]\noutput: x\nloss: cross_entropy\n", ("needs a softmax output",)),
    ("input-twice", "bad.yaml", "inputs: [x, x]\noutput: x\n", ("listed twice",)),
    ("input-name-with-space", "bad.yaml", "inputs: [my x]\noutput: x\n", ("not a usable name",)),
    (
        "python-object-tag",
        "bad.yaml",
        "inputs: [x]\noutput: !!python/object/apply:os.system ['true']\n",
        ("bad.yaml:2:9", "!!python/object/apply:os.system", "not allowed"),
    ),
    ("python-name-tag", "bad.yaml", "inputs: [x]\noutput: !!python/name:os.system\n", ("not allowed",)),
    ("binary-tag", "bad.yaml", "inputs: [x]\noutput: !!binary aGVsbG8=\n", ("!!binary", "not supported")),
    ("custom-tag", "bad.yaml", "inputs: [x]\noutput: !shell x\n", ("!shell", "not supported")),
    ("billion-laughs", "bad.yaml", BILLION_LAUGHS, ("bad.yaml:1:4", "anchors and aliases are not supported")),
    ("alias-only", "bad.yaml", "inputs: [x]\noutput: *x\n", ("alias '*x'",)),
    ("nan", "bad.yaml", "inputs: [x]\noutput: {mul: [x, .nan]}\n", ("bad.yaml:2:19", "not a finite number")),
    ("overflow", "bad.yaml", "inputs: [x]\noutput: {mul: [x, 1e400]}\n", ("not a finite number",)),
    ("control-character", "bad.yaml", "inputs: [x]\noutput: x\x07\n", ("bad.yaml:2:10", "control character")),
    ("nul-bytes", "bad.yaml", b"inputs: [x]\x00\x00\x01garbage", ("NUL bytes", "binary")),
    ("random-binary", "bad.yaml", bytes(range(256)) * 8, ("NUL bytes",)),
    ("latin-1", "bad.yaml", "inputs: [x]\noutput: x\n# caf\xe9\n".encode("latin-1"), ("bad.yaml:3", "not UTF-8")),
    ("utf-16", "bad.yaml", "inputs: [x]\noutput: x\n".encode("utf-16"), ("bad.yaml",)),
    ("empty", "bad.yaml", "", ("the file is empty",)),
    ("blank", "bad.yaml", "   \n\n  \n", ("the file is empty",)),
    ("comments-only", "bad.yaml", "# a model\n# to come\n", ("only comments",)),
    ("too-large", "bad.yaml", "inputs: [x]\noutput: x\n#" + "a" * (1024 * 1024 + 10) + "\n", ("too large", "1 MB")),
]


@pytest.mark.parametrize(("case", "name", "content", "words"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
@pytest.mark.parametrize("command", ["train", "check", "show"])
def test_bad_spec_is_refused_with_a_located_message(
    work: Path, command: str, case: str, name: str, content: bytes | str, words: tuple[str, ...]
) -> None:
    path = work / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    args = [command, name]
    if command == "train":
        args += ["--data", "line.csv", "--out", "line.model.json", "--quiet"]  # an existing model: kept as is
    fails(work, args, *words)


@pytest.mark.parametrize("command", ["train", "check", "show"])
def test_spec_that_is_a_directory_or_missing(work: Path, command: str) -> None:
    (work / "models.yaml").mkdir()
    (work / "models.yaml" / "inner.yaml").write_text(LINE)
    fails(work, [command, "models.yaml"], "models.yaml", "is a folder", "inner.yaml")
    fails(work, [command, "nowhere.yaml"], "nowhere.yaml: no such file", "check the path")


def test_billion_laughs_is_refused_quickly_in_bounded_memory(tmp_path: Path) -> None:
    """The classic exponential-alias document, run in a child limited to 1 GB of address space."""
    resource = pytest.importorskip("resource")
    path = tmp_path / "laughs.yaml"
    path.write_text(BILLION_LAUGHS)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    proc = subprocess.run(
        [sys.executable, "-m", "treegrad", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
    )
    assert proc.returncode == 1, proc.stderr
    assert "anchors and aliases are not supported" in proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
    assert proc.stdout == ""


def test_exponential_sharing_of_named_nodes_stays_linear(work: Path) -> None:
    """The model-level cousin of billion laughs: each node adds the previous one to itself,
    60 times over (2^60 paths); the graph shares nodes, so every command stays small."""
    lines = ["inputs: [x]", "nodes:", "  a0: {mul: [x, param]}"]
    lines += [f"  a{i}: {{add: [a{i - 1}, a{i - 1}]}}" for i in range(1, 61)]
    lines += ["output: {tanh: {mul: [a60, 1e-18]}}", "target: y", "training: {epochs: 2}"]
    (work / "laughs.yaml").write_text("\n".join(lines) + "\n")
    for args in (
        ["check", "laughs.yaml"],
        ["show", "laughs.yaml"],
        ["show", "laughs.yaml", "--format", "tree"],
        ["train", "laughs.yaml", "--data", "line.csv", "--out", "laughs.model.json", "--quiet"],
        ["predict", "laughs.model.json", "0.5"],
    ):
        result = succeeds(*args)
        assert len(result.stdout) < 20_000, f"{args}: {len(result.stdout)} characters of output"


# ----------------------------------------------------------------- 2. bad data

BAD_DATA: list[tuple[str, str, bytes | str, tuple[str, ...]]] = [
    # id, spec, CSV content, words
    ("text-cell", "line.yaml", "x,y\n1,2\nabc,3\n", ("bad.csv, line 3, column 'x'", "'abc', not a number")),
    ("text-target", "line.yaml", "x,y\n1,2\n2,abc\n", ("bad.csv, line 3", "target is 'abc', not a number")),
    ("empty-cell", "line.yaml", "x,y\n1,2\n,3\n", ("line 3, column 'x'", "is empty")),
    ("empty-target", "binary.yaml", "x,y\n1,a\n2,\n3,b\n", ("line 3", "target is empty")),
    # nan and NaN mark a missing cell (issue 26): the message says the cell is missing
    ("nan-cell", "line.yaml", "x,y\n1,2\nnan,3\n", ("line 3, column 'x'", "is empty (or a marker of a missing value")),
    ("inf-cell", "line.yaml", "x,y\n1,2\n-inf,3\n", ("line 3", "'-inf', not a finite number")),
    ("overflow-cell", "line.yaml", "x,y\n1,2\n1e999,3\n", ("line 3", "'1e999', not a finite number")),
    ("nan-target", "line.yaml", "x,y\n1,2\n2,NaN\n", ("line 3", "the target is empty (or a marker")),
    ("huge-cell", "line.yaml", "x,y\n1,2\n" + "9" * 5000 + ",3\n", ("line 3", "'99999", "...', not a finite number")),
    ("ragged-short", "line.yaml", "x,y\n1,2\n3\n", ("line 3 has 1 cells", "header has 2 columns")),
    ("ragged-long", "line.yaml", "x,y\n1,2\n3,4,5\n", ("line 3 has 3 cells",)),
    ("no-header", "line.yaml", "1,2\n3,4\n", ("no header row", "add a first line")),
    ("duplicate-columns", "line.yaml", "x,x,y\n1,2,3\n", ("line 1", "'x' appears twice")),
    ("unnamed-column", "line.yaml", "x,,y\n1,2,3\n", ("column 2 of the header has no name",)),
    ("missing-input", "line.yaml", "z,y\n1,2\n2,3\n", ("input column 'x' is not in bad.csv", "Its columns are: z, y")),
    ("missing-target", "line.yaml", "x,z\n1,2\n2,3\n", ("target column 'y' is not in bad.csv",)),
    ("constant-target", "line.yaml", "x,y\n1,2\n2,2\n3,2\n", ("is 2 in every row", "nothing to learn")),
    ("single-class-binary", "binary.yaml", "x,y\n1,a\n2,a\n", ("a single class (a)", "needs two labels")),
    ("three-classes-binary", "binary.yaml", "x,y\n1,a\n2,b\n3,c\n", ("3 classes", "softmax")),
    ("single-class-softmax", "three.yaml", "x,y\n1,a\n2,a\n", ("fewer than two classes",)),
    ("too-few-classes-softmax", "three.yaml", "x,y\n1,a\n2,b\n", ("softmax has 3 outputs", "2 classes")),
    ("empty-file", "line.yaml", "", ("bad.csv is empty",)),
    ("header-only", "line.yaml", "x,y\n", ("has a header (x, y) but no rows",)),
    ("blank-line-inside", "line.yaml", "x,y\n1,2\n\n3,4\n", ("line 3 is empty",)),
    ("multi-line-quote", "line.yaml", 'x,y\n1,"2\n3"\n', ("spans several lines",)),
    ("semicolons", "line.yaml", "x;y\n1;2\n", ("separated by ';'",)),
    ("nul-bytes", "line.yaml", b"x,y\n1,2\x00\n", ("NUL bytes",)),
    ("latin-1", "binary.yaml", "x,y\n1,caf\xe9\n2,b\n".encode("latin-1"), ("line 2", "not UTF-8")),
    ("utf-16", "line.yaml", "x,y\n1,2\n".encode("utf-16"), ("bad.csv",)),
]


@pytest.mark.parametrize(("case", "spec", "content", "words"), BAD_DATA, ids=[c[0] for c in BAD_DATA])
def test_bad_training_data_is_refused(
    work: Path, case: str, spec: str, content: bytes | str, words: tuple[str, ...]
) -> None:
    (work / "bad.csv").write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    out = spec.replace(".yaml", ".model.json")
    fails(work, ["train", spec, "--data", "bad.csv", "--out", out, "--quiet"], *words)


EVAL_DATA: list[tuple[str, str, str | None, tuple[str, ...]]] = [
    ("text-cell", "line", "x,y\n1,2\nabc,3\n", ("line 3, column 'x'",)),
    ("missing-input", "line", "z,y\n1,2\n", ("input column 'x' is not in bad.csv",)),
    ("ragged", "line", "x,y\n1\n", ("line 2 has 1 cells",)),
    ("empty-file", "line", "", ("bad.csv is empty",)),
    ("missing-file", "line", None, ("no such file: bad.csv",)),
    # predict reads the input columns only: the target's cells are none of its business
    (
        "unseen-label",
        "binary",
        "x,y\n1,a\n2,zebra\n",
        ("line 3", "label 'zebra' is not one of the known classes (a, b)"),
    ),
    ("unseen-class", "three", "x,y\n1,a\n2,d\n", ("label 'd' is not one of the known classes (a, b, c)",)),
    ("text-regression-target", "line", "x,y\n1,cat\n", ("target is 'cat', not a number",)),
    ("long-label", "binary", "x,y\n1,a\n2," + "z" * 3000 + "\n", ("label 'zzzzz", "...' is not one of")),
]


@pytest.mark.parametrize(("case", "model", "content", "words"), EVAL_DATA, ids=[c[0] for c in EVAL_DATA])
@pytest.mark.parametrize("command", ["eval", "predict"])
def test_bad_data_for_eval_and_predict(
    work: Path, command: str, case: str, model: str, content: str | None, words: tuple[str, ...]
) -> None:
    if content is not None:
        (work / "bad.csv").write_text(content)
    if command == "predict" and EVAL_DATA.index(next(c for c in EVAL_DATA if c[0] == case)) >= 5:
        result = succeeds("predict", f"{model}.model.json", "--data", "bad.csv")
        assert result.stdout.startswith("x,y,prediction")
        return
    args = [command, f"{model}.model.json", "--data", "bad.csv"]
    if command == "predict":
        args += ["--out", "line.model.json"]  # an existing file that must not be overwritten
    fails(work, args, *words)


def test_csv_with_bom_and_windows_line_endings_just_works(work: Path) -> None:
    (work / "win.csv").write_bytes(b"\xef\xbb\xbfx,y\r\n1,2\r\n2,3.5\r\n3,5\r\n4,6.5\r\n")
    (work / "win-labels.csv").write_bytes(b"\xef\xbb\xbfx,y\r\n1,a\r\n2,b\r\n3,a\r\n4,b\r\n")
    succeeds("train", "line.yaml", "--data", "win.csv", "--out", "win.model.json", "--quiet")
    record = json.loads((work / "win.model.json").read_text())
    assert record["inputs"] == ["x"] and record["data"]["target"] == "y" and record["data"]["rows"] == 4
    predicted = succeeds("predict", "win.model.json", "--data", "win.csv").stdout.splitlines()
    assert predicted[0] == "x,y,prediction" and len(predicted) == 5
    assert json.loads(succeeds("eval", "win.model.json", "--data", "win.csv", "--json").stdout)["rows"] == 4
    succeeds("train", "binary.yaml", "--data", "win-labels.csv", "--out", "winb.model.json", "--quiet")
    assert json.loads((work / "winb.model.json").read_text())["classes"] == ["a", "b"]
    assert succeeds("predict", "winb.model.json", "1").stdout.split()[0] in ("a", "b")
    assert json.loads(succeeds("eval", "winb.model.json", "--data", "win-labels.csv", "--json").stdout)["rows"] == 4


def test_old_mac_line_endings_and_a_missing_final_newline_work(work: Path) -> None:
    (work / "cr.csv").write_bytes(b"x,y\r1,2\r2,3.5\r3,5")
    succeeds("train", "line.yaml", "--data", "cr.csv", "--out", "cr.model.json", "--quiet")
    assert json.loads((work / "cr.model.json").read_text())["data"]["rows"] == 3


# ----------------------------------------------------------------- 3. bad model files


def _edit(record: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with value DELETE, remove) a dotted path of a JSON record."""
    *parents, last = path.split(".")
    for p in parents:
        record = record[p]
    if value is DELETE:
        del record[last]
    else:
        record[last] = value


DELETE = object()

BAD_MODELS: list[tuple[str, str, Callable[[str], str], tuple[str, ...]]] = [
    # id, model, how its text is damaged, words
    ("truncated", "line", lambda t: t[: len(t) // 2], ("line.model.json:", "not valid JSON", "truncated")),
    ("cut-after-brace", "line", lambda t: t[:1], ("not valid JSON",)),
    ("empty", "line", lambda t: "", ("not valid JSON",)),
    ("not-json", "line", lambda t: "hello, world\n", ("not valid JSON",)),
    ("binary", "line", lambda t: "\udcff\udcfe" + t, ("not a text file",)),
    ("a-list", "line", lambda t: "[1, 2]", ("not a treegrad model file", "format 'list'")),
    (
        "other-format",
        "line",
        lambda t: t.replace('"treegrad-model"', '"keras-model"'),
        ("not a treegrad model file", "'keras-model'"),
    ),
    (
        "newer-version",
        "line",
        lambda t: t.replace('"version": 1,', '"version": 2,'),
        ("version 2", "reads version 1", "train the model again"),
    ),
    ("field-missing", "line", lambda t: _json_edit(t, "inputs", DELETE), ("damaged", "inputs: Field required")),
    ("field-extra", "line", lambda t: _json_edit(t, "shell", "rm -rf /"), ("damaged", "shell")),
    ("parameter-missing", "line", lambda t: _json_edit(t, "parameters.p0", DELETE), ("missing p0",)),
    ("parameter-extra", "line", lambda t: _json_edit(t, "parameters.p7", 1.0), ("unexpected p7",)),
    ("parameter-text", "line", lambda t: _json_edit(t, "parameters.p0", "0.5"), ("parameters.p0",)),
    ("parameter-boolean", "line", lambda t: _json_edit(t, "parameters.p0", True), ("parameters.p0",)),
    ("parameter-nan", "line", lambda t: _json_edit(t, "parameters.p0", float("nan")), ("p0", "not finite")),
    ("parameter-infinity", "line", lambda t: _json_edit(t, "parameters.p1", float("inf")), ("p1", "not finite")),
    ("parameter-1e999", "line", lambda t: t.replace('"p0": ', '"p0": 1e999, "p9": ', 1), ("p0", "not finite")),
    (
        "parameter-5000-digits",
        "line",
        lambda t: t.replace('"p0": ', '"p0": ' + "1" * 5000 + ', "p9": ', 1),
        ("thousands of digits",),
    ),
    (
        "spec-no-longer-validates",
        "line",
        lambda t: _json_edit(t, "spec_text", "inputs: [x]\noutput: {frob: x}\n"),
        ("the spec inside line.model.json no longer validates", "unknown op 'frob'"),
    ),
    ("spec-not-yaml", "line", lambda t: _json_edit(t, "spec_text", "inputs: [x\n"), ("no longer validates",)),
    ("inputs-disagree", "line", lambda t: _json_edit(t, "inputs", ["q"]), ("inputs ['q']",)),
    ("task-disagrees", "line", lambda t: _json_edit(t, "task", "binary"), ("task 'binary'", "regression model")),
    ("task-classes", "line", lambda t: _json_edit(t, "task", "classes"), ("task 'classes'",)),
    ("unknown-task", "line", lambda t: _json_edit(t, "task", "poetry"), ("damaged", "task")),
    ("loss-disagrees", "line", lambda t: _json_edit(t, "loss", "frob"), ("loss 'frob'",)),
    ("one-class", "binary", lambda t: _json_edit(t, "classes", ["a"]), ("classes ['a']", "2 distinct classes")),
    ("same-class-twice", "binary", lambda t: _json_edit(t, "classes", ["a", "a"]), ("classes ['a', 'a']",)),
    ("classes-on-regression", "line", lambda t: _json_edit(t, "classes", ["a", "b"]), ("which has none",)),
    ("two-classes-of-three", "three", lambda t: _json_edit(t, "classes", ["a", "b"]), ("3 distinct classes",)),
    ("seed-text", "line", lambda t: _json_edit(t, "training.seed", "abc"), ("damaged", "training.seed")),
    # was never checked: trace read it as a number, an internal error
    (
        "learning-rate-text",
        "line",
        lambda t: _json_edit(t, "training.learning_rate", "abc"),
        ("damaged", "training.learning_rate"),
    ),
    (
        "normalization-other-input",
        "line",
        lambda t: _json_edit(t, "normalization", {"zz": [0.0, 1.0]}),
        ("normalises zz",),
    ),
    (
        "normalization-zero-deviation",
        "line",
        lambda t: _json_edit(t, "normalization", {"x": [0.0, 0.0]}),
        ("cannot standardise input 'x'", "damaged"),
    ),
    ("history-text", "line", lambda t: _json_edit(t, "history.train", ["x"]), ("history.train",)),
    # printed by predict, eval and plot: a terminal escape in a label recoloured the terminal
    (
        "class-with-terminal-escape",
        "binary",
        lambda t: _json_edit(t, "classes", ["a", "\x1b[31mb"]),
        ("classes.1", "control character U+001B"),
    ),
    # json.loads recurses once per level: 100,000 levels was a RecursionError, an "internal error"
    ("nested-lists", "line", lambda t: "[" * 100_000 + "]" * 100_000, ("nested",)),
    ("nested-objects", "line", lambda t: '{"a": ' * 100_000 + "1" + "}" * 100_000, ("nested",)),
    (
        "nested-inside-a-model",
        "line",
        lambda t: t.replace('"metrics": {', '"metrics": {"deep": ' + "[" * 100_000 + "]" * 100_000 + ",", 1),
        ("nested", "train the model again"),
    ),
]

# Commands that also take a spec: a .json file that does not parse as a model is read as a
# (bad) spec, whose messages name the file and the place just as well.
READ_AS_SPEC = (
    "truncated",
    "cut-after-brace",
    "empty",
    "not-json",
    "binary",
    "a-list",
    "parameter-5000-digits",
    "nested-lists",
    "nested-objects",
)


def _json_edit(text: str, path: str, value: Any) -> str:
    record = json.loads(text)
    _edit(record, path, value)
    return json.dumps(record, indent=1)


@pytest.mark.parametrize(("case", "model", "damage", "words"), BAD_MODELS, ids=[c[0] for c in BAD_MODELS])
@pytest.mark.parametrize("command", ["predict", "show", "eval", "trace", "plot"])
def test_damaged_model_file_is_refused(
    work: Path, command: str, case: str, model: str, damage: Callable[[str], str], words: tuple[str, ...]
) -> None:
    path = work / f"{model}.model.json"
    path.write_bytes(damage(path.read_text()).encode("utf-8", "surrogateescape"))
    args = {
        "predict": ["predict", path.name, "1"],
        "show": ["show", path.name],
        "eval": ["eval", path.name, "--data", f"{model}.csv"],
        "trace": ["trace", path.name, "--data", f"{model}.csv"],
        # the model is read before matplotlib is needed: this runs without it
        "plot": ["plot", path.name, "-o", "plot.png", "--data", f"{model}.csv"],
    }[command]
    if command in ("show", "trace") and case in READ_AS_SPEC:
        words = ("line.model.json",)
    fails(work, args, *words)


@pytest.mark.parametrize("command", ["predict", "show", "eval"])
def test_model_file_that_is_a_directory_or_missing(work: Path, command: str) -> None:
    (work / "dir.model.json").mkdir()
    extra = {"predict": ["1"], "show": [], "eval": ["--data", "line.csv"]}[command]
    fails(work, [command, "dir.model.json", *extra], "dir.model.json", "is a")
    fails(work, [command, "gone.model.json", *extra], "gone.model.json", "no such")


def test_the_loaded_model_still_works_after_all_that(work: Path) -> None:
    """The fixture's models are fine: the failures above are the damage, not the models."""
    for name in ("line", "binary", "three"):
        succeeds("predict", f"{name}.model.json", "1")
        succeeds("eval", f"{name}.model.json", "--data", f"{name}.csv")
        succeeds("show", f"{name}.model.json")


# ----------------------------------------------------------------- bad command-line values


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--epochs", "-1"], ("--epochs", "greater than or equal to 0")),
        (["--learning-rate", "0"], ("--learning-rate", "greater than 0")),
        (["--learning-rate", "nan"], ("--learning-rate", "finite")),
        (["--learning-rate", "inf"], ("--learning-rate", "finite")),
        (["--batch-size", "0"], ("--batch-size",)),
        (["--validation-split", "1"], ("--validation-split", "less than 1")),
        (["--optimizer", "adamw"], ("--optimizer", "'adam'")),
        (["--data", "f2c:0"], ("f2c:0", "whole number from 1")),
        (["--data", "nosuchset"], ("unknown dataset 'nosuchset'", "Built-in datasets")),
        (["--data", "line.csv", "--target", "x"], ("both an input and the target",)),
        (["--data", "line.csv", "--target", "q"], ("target column 'q' is not in line.csv",)),
        (["--data", "."], ("is a directory",)),
        (["--out", "nowhere/m.json"], ("nowhere", "does not exist")),
        (["--out", "."], ("is a directory",)),
    ],
)
def test_bad_training_options(work: Path, args: list[str], words: tuple[str, ...]) -> None:
    base = ["train", "line.yaml", "--quiet"]
    if "--data" not in args:
        base += ["--data", "line.csv"]
    if "--out" not in args:
        base += ["--out", "line.model.json"]
    fails(work, base + args, *words)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["predict", "line.model.json", "abc"], ("'abc', not a number",)),
        (["predict", "line.model.json", "nan"], ("give a finite number",)),
        (["predict", "line.model.json", "1e999"], ("give a finite number",)),
        (["predict", "line.model.json", "1", "2"], ("takes 1 value(s), for x; got 2",)),
        (["predict", "line.model.json", "q=1"], ("unknown input 'q'",)),
        (["predict", "line.model.json", "x=1", "x=2"], ("given twice",)),
        (["predict", "line.model.json", "x=1", "2"], ("not mixed",)),
        (["eval", "line.model.json", "--data", "line.csv", "--target", "nope"], ("target column 'nope'",)),
        (["predict", "line.model.json", "--data", "line.csv", "--out", "nowhere/p.csv"], ("does not exist",)),
    ],
)
def test_bad_predict_and_eval_arguments(work: Path, args: list[str], words: tuple[str, ...]) -> None:
    fails(work, args, *words)


# ----------------------------------------------------------------- 5. every error path: exit codes, --debug


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["train"],
        ["predict"],
        ["frobnicate"],
        ["train", "line.yaml", "--epochs", "many"],
        ["train", "line.yaml", "--no-such-option"],
        ["show", "line.yaml", "--format", "pdf"],
        ["show", "line.yaml", "--precision", "0"],
        ["predict", "line.model.json", "1", "--data", "line.csv"],
        ["eval"],
    ],
)
def test_usage_errors_exit_2(work: Path, args: list[str]) -> None:
    before = snapshot(work)
    result = invoke(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    if args:
        assert "Usage:" in result.stderr or "Error" in result.stderr
    assert snapshot(work) == before


def test_eval_without_data_uses_the_training_data(work: Path) -> None:
    result = invoke("eval", "binary.model.json", "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    metrics = json.loads(result.stdout)
    assert metrics["rows"] == 4 and 0.0 <= metrics["accuracy"] <= 1.0
    assert sum(map(sum, metrics["confusion"])) == 4


def test_debug_flag_and_variable_show_the_traceback(work: Path) -> None:
    """Without --debug: one line. With --debug or TREEGRAD_DEBUG=1: the exception propagates."""
    plain = invoke("predict", "gone.model.json", "1")
    assert plain.exit_code == 1 and "Traceback" not in plain.stderr
    debug = invoke("--debug", "predict", "gone.model.json", "1")
    assert debug.exit_code == 1
    assert type(debug.exception).__name__ == "ModelFileError"
    env = invoke("predict", "gone.model.json", "1", env={"TREEGRAD_DEBUG": "1"})
    assert type(env.exception).__name__ == "ModelFileError"
    off = invoke("predict", "gone.model.json", "1", env={"TREEGRAD_DEBUG": "0"})
    assert off.exit_code == 1 and "Traceback" not in off.stderr


def test_a_bug_is_reported_as_a_bug_in_one_message(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import treegrad.run.predict

    def broken(path: Path) -> None:
        raise ZeroDivisionError("a deliberate bug")

    monkeypatch.setattr(treegrad.run.predict, "load", broken)  # how predict reads the model file
    result = invoke("predict", "line.model.json", "1")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("internal error (ZeroDivisionError: a deliberate bug)")
    assert "--debug" in result.stderr and "Traceback" not in result.stderr
    assert isinstance(invoke("--debug", "predict", "line.model.json", "1").exception, ZeroDivisionError)


# One case of each command through a real process (what a subprocess adds: the entry point,
# the exit code and the streams of a real interpreter); the others of a command in this one.
SUBPROCESS_ERRORS = [
    (["train", "bad.yaml", "--data", "line.csv", "--out", "line.model.json"], "bad.yaml:2:7", 1),
    (["check", "bad.yaml"], "invalid YAML", 1),
    (["predict", "broken.model.json", "1"], "not valid JSON", 1),
    (["show", "broken.model.json"], "broken.model.json", 1),
    (["eval", "line.model.json", "--data", "bad.csv"], "bad.csv, line 3", 1),
    (["frobnicate"], "No such command", 2),
]
IN_PROCESS_ERRORS = [
    (["train", "line.yaml", "--data", "bad.csv", "--out", "line.model.json"], "bad.csv, line 3", 1),
    (["predict", "line.model.json", "many"], "not a number", 1),
    (["train", "line.yaml", "--epochs", "many"], "Invalid value", 2),
]


def bad_files(work: Path) -> None:
    (work / "bad.yaml").write_text("inputs: [x\noutput: x\n")
    (work / "bad.csv").write_text("x,y\n1,2\nabc,3\n")
    (work / "broken.model.json").write_text((work / "line.model.json").read_text()[:100])


@pytest.mark.parametrize(
    ("args", "word", "code"), IN_PROCESS_ERRORS, ids=[a[0][0] + str(i) for i, a in enumerate(IN_PROCESS_ERRORS)]
)
def test_more_errors_of_the_same_commands(work: Path, args: list[str], word: str, code: int) -> None:
    bad_files(work)
    message = fails(work, args, word, code=code)
    assert code != 1 or message.count("\n") <= 3


@pytest.mark.parametrize(
    ("args", "word", "code"), SUBPROCESS_ERRORS, ids=[a[0][0] + str(i) for i, a in enumerate(SUBPROCESS_ERRORS)]
)
def test_errors_through_a_real_process(work: Path, args: list[str], word: str, code: int) -> None:
    bad_files(work)
    before = snapshot(work)
    env = {k: v for k, v in os.environ.items() if k != "TREEGRAD_DEBUG"}
    proc = subprocess.run(
        [sys.executable, "-m", "treegrad", *args], capture_output=True, text=True, cwd=work, timeout=60, env=env
    )
    assert proc.returncode == code, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr and word in proc.stderr
    if code == 1:
        assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") <= 3
    assert snapshot(work) == before


# ----------------------------------------------------------------- what the CLI prints is well formed


def test_negative_values_are_values_not_options(work: Path) -> None:
    """`predict MODEL -40` is the value -40; it was read as an unknown option -4 (exit 2)."""
    by_position = succeeds("predict", "line.model.json", "-40", "--json")
    by_name = succeeds("predict", "line.model.json", "x=-40", "--json")
    assert by_position.stdout == by_name.stdout
    assert succeeds("predict", "line.model.json", "-1.5e-3").stdout.strip()
    # A mistyped option is said to be one (it was "the value for 'x' is '--jsno', not a number", exit 1).
    fails(
        work,
        ["predict", "line.model.json", "--jsno"],
        "--jsno is not an option of predict",
        "--json?",
        code=2,
    )


def test_json_output_is_strict_json(work: Path) -> None:
    """JSON has no NaN or Infinity: an undefined R² (a constant column) and an overflowing
    prediction are null, so that any JSON reader takes the output."""

    def strict(text: str) -> Any:
        def refuse(word: str) -> None:
            raise AssertionError(f"{word} in JSON output")

        return json.loads(text, parse_constant=refuse)

    (work / "flat.csv").write_text("x,y\n1,2\n2,2\n")
    metrics = strict(succeeds("eval", "line.model.json", "--data", "flat.csv", "--json").stdout)
    assert metrics["r2"] is None and metrics["rows"] == 2
    record = json.loads((work / "line.model.json").read_text())
    record["parameters"] = {k: 1e308 for k in record["parameters"]}
    (work / "huge.model.json").write_text(json.dumps(record))
    assert strict(succeeds("predict", "huge.model.json", "1e308", "--json").stdout) == [{"prediction": None}]
    (work / "big.csv").write_text("x\n1e308\n-1\n")
    rows = strict(succeeds("predict", "huge.model.json", "--data", "big.csv", "--json").stdout)
    assert rows == [{"prediction": None}, {"prediction": 0.0}]
