"""Fuzzing the readers with hypothesis: whatever a spec, a CSV file or a model file holds,
reading it either works or raises a `TreegradError` (which the CLI prints as one message);
any other exception is a bug.

Each test is bounded: a fixed number of examples (derandomized, so a run is repeatable and
leaves no example database behind) and a time limit per example. The counts of examples
run and of inputs that were valid are kept and checked at the end, so that a generator
which only ever produced garbage (and so never reached the code past the first check)
would fail too. Run with `-s` to see the counts.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import math
import os
import shutil
import signal
import string
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from treegrad.cli import app
from treegrad.data.csvfile import read_csv
from treegrad.data.targets import encode_targets, select
from treegrad.engine.compiled import predict_many
from treegrad.engine.optim import OPTIMIZERS
from treegrad.errors import DataError, ModelFileError, TreegradError
from treegrad.run.modelfile import load_graph, read
from treegrad.run.values import parse_values
from treegrad.spec.build import build_model, output_count, task_kind
from treegrad.spec.expressions import CALLS
from treegrad.spec.models import parse_spec

# 50 examples per fuzzer on every run; `TREEGRAD_FUZZ_EXAMPLES=3000 pytest tests/test_fuzz.py` digs deeper
EXAMPLES = int(os.environ.get("TREEGRAD_FUZZ_EXAMPLES", "50"))
SECONDS_PER_EXAMPLE = 10

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

COUNTS: Counter[str] = Counter()
CLI = CliRunner()


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail an example that runs longer than `seconds` (where SIGALRM exists)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"one example took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ----------------------------------------------------------------- spec documents

NAMES = ["x", "y", "h", "g", "param", "softmax", "relu", "_", "x1", "é", "__import__", "1x", "", "x y", "linear"]
UNITS = st.one_of(st.integers(-2, 5), st.sampled_from([2.5, "3", True, None]))
NUMBERS = st.one_of(
    st.integers(-10, 10),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1e308, -1e308, 1e-320, 2**63, 10**30]),
)
SCALARS = st.one_of(
    st.sampled_from(NAMES),
    NUMBERS,
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.sampled_from(["relu", "tanh", "none", "mse", "bce", "adam", "sgd"]),
)
OP_KEYS = sorted(CALLS) + ["units", "inputs", "activation", "bias", "init", "name", "frob"]


def _well_formed(names: list[str]) -> st.SearchStrategy[Any]:
    """Expressions over `names` that mostly validate: ops with their right arity."""
    leaf = st.one_of(st.sampled_from(names + ["param"]), st.floats(-3, 3), st.sampled_from([0.0, 1e300, -1e300]))

    def grow(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        pair = st.lists(inner, min_size=2, max_size=3)
        return st.one_of(
            st.builds(lambda op, a: {op: a}, st.sampled_from(["add", "mul"]), pair),
            st.builds(lambda op, a, b: {op: [a, b]}, st.sampled_from(["sub", "div"]), inner, inner),
            st.builds(
                lambda op, a: {op: a}, st.sampled_from(["neg", "relu", "sigmoid", "tanh", "exp", "log", "abs"]), inner
            ),
            st.builds(lambda a, e: {"pow": [a, e]}, inner, st.sampled_from([2, 3, 0.5, -1, -2.5, 0, 1e10])),
            st.builds(lambda a: {"linear": a}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(
                lambda a, k, f: {"linear": {"inputs": a, "units": k, "activation": f}},
                st.lists(inner, min_size=1, max_size=2),
                st.just(1),
                st.sampled_from(["relu", "tanh", "sigmoid", "none"]),
            ),
            st.builds(lambda v, n: {"param": {"init": v, "name": n}}, st.floats(-2, 2), st.sampled_from(["w", "b"])),
        )

    return st.recursive(leaf, grow, max_leaves=12)


def _anything() -> st.SearchStrategy[Any]:
    """Nestings of the grammar's keys, names, numbers and lists with no regard for types."""
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(
                st.sampled_from(OP_KEYS), st.one_of(inner, st.lists(inner, max_size=3)), min_size=1, max_size=2
            ),
        ),
        max_leaves=15,
    )


ACTIVATIONS = st.sampled_from(["relu", "tanh", "sigmoid", "none"])
TRAINING = st.fixed_dictionaries(
    {},
    optional={
        "epochs": st.integers(0, 3),
        "learning_rate": st.floats(1e-4, 1.0),
        "batch_size": st.integers(1, 8),
        "optimizer": st.sampled_from(list(OPTIMIZERS)),
        "seed": st.integers(-5, 2**40),
        "shuffle": st.booleans(),
        "validation_split": st.floats(0, 0.9),
        "normalize": st.booleans(),
    },
)


@st.composite
def plausible_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Specs shaped as the grammar wants, that mostly validate: the success path."""
    inputs = draw(st.sampled_from([["x"], ["x", "y"], ["a", "b", "c"]]))
    doc: dict[str, Any] = {"inputs": inputs}
    names = list(inputs)
    if draw(st.booleans()):
        doc["nodes"] = {"h": draw(_well_formed(names))}
        names.append("h")
    if draw(st.integers(0, 2)):
        doc["output"] = draw(
            st.one_of(
                _well_formed(names),
                st.lists(_well_formed(names), min_size=1, max_size=3),
                st.builds(lambda e: {"softmax": e}, st.lists(_well_formed(names), min_size=2, max_size=3)),
            )
        )
    else:
        layers = draw(
            st.lists(
                st.builds(lambda k, f: {"linear": k, "activation": f}, st.integers(1, 4), ACTIVATIONS),
                min_size=1,
                max_size=3,
            )
        )
        if layers[-1]["linear"] >= 2 and draw(st.booleans()):
            layers.append({"softmax": True})
        doc["layers"] = layers
    if draw(st.booleans()):
        doc["loss"] = draw(st.sampled_from(["mse", "mae", "bce", "cross_entropy"]))
    if draw(st.booleans()):
        doc["training"] = draw(TRAINING)
    if draw(st.integers(0, 3)) == 0:
        doc["name"] = draw(st.sampled_from(["m", "model_2", "../x", "a b"]))
    return doc


@st.composite
def spec_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Half plausible specs, half random nestings of the grammar's keys with wrong types."""
    if draw(st.booleans()):
        return draw(plausible_documents())
    inputs = draw(st.one_of(st.just(["x", "y"]), st.just(["x"]), st.lists(st.sampled_from(NAMES), max_size=3), SCALARS))
    names = [n for n in inputs if isinstance(n, str)] if isinstance(inputs, list) else ["x"]
    doc: dict[str, Any] = {"inputs": inputs}
    if draw(st.booleans()):
        doc["nodes"] = {"h": draw(_well_formed(names or ["x"]))}
        names = names + ["h"]
    model = draw(st.sampled_from(["output", "output", "layers", "junk", "both", "none"]))
    if model in ("output", "both"):
        doc["output"] = draw(
            st.one_of(
                _well_formed(names or ["x"]),
                _anything(),
                st.builds(lambda e: {"softmax": e}, st.lists(_well_formed(names or ["x"]), min_size=1, max_size=3)),
            )
        )
    if model in ("layers", "both"):
        doc["layers"] = draw(
            st.lists(
                st.one_of(
                    st.builds(
                        lambda k, f: {"linear": k, "activation": f},
                        UNITS,
                        st.sampled_from(["relu", "tanh", "sigmoid", "none", "softmax", 3]),
                    ),
                    st.builds(lambda v: {"softmax": v}, st.one_of(st.booleans(), SCALARS)),
                    SCALARS,
                ),
                max_size=3,
            )
        )
    if model == "junk":
        doc["output"] = draw(_anything())
    for key in draw(
        st.lists(
            st.sampled_from(["loss", "classes", "training", "target", "name", "data", "bogus"]), max_size=3, unique=True
        )
    ):
        if key == "training":
            doc[key] = draw(
                st.dictionaries(
                    st.sampled_from(
                        [
                            "epochs",
                            "learning_rate",
                            "batch_size",
                            "optimizer",
                            "seed",
                            "shuffle",
                            "validation_split",
                            "early_stopping",
                            "normalize",
                            "patience",
                        ]
                    ),
                    st.one_of(SCALARS, st.fixed_dictionaries({"patience": SCALARS})),
                    max_size=4,
                )
            )
        elif key == "classes":
            doc[key] = draw(st.lists(SCALARS, max_size=4))
        elif key == "loss":
            doc[key] = draw(st.one_of(st.sampled_from(["mse", "mae", "bce", "cross_entropy"]), SCALARS))
        else:
            doc[key] = draw(SCALARS)
    return doc


MUTATIONS = [
    "",
    "{",
    "]",
    ":",
    "\n  ",
    "&a ",
    "*a",
    "!!python/object/apply:os.system ",
    "\t",
    "'",
    '"',
    "- ",
    "\x00",
    "\x07",
    "---\n",
    "%YAML 1.1\n",
    "? ",
    "|",
    ">",
    "#",
    "\ud800",
    "\ufeff",
    "1e999",
    "[" * 200,
]


@st.composite
def spec_texts(draw: st.DrawFn) -> tuple[str, str]:
    """(text, file name): a document written as JSON or YAML, sometimes damaged, or plain junk."""
    how = draw(st.sampled_from(["yaml", "json", "yaml", "json", "junk"]))
    if how == "junk":
        return draw(st.text(max_size=200)), draw(st.sampled_from(["s.yaml", "s.json", "s.txt"]))
    doc = draw(spec_documents())
    text = json.dumps(doc, allow_nan=True) if how == "json" else yaml.safe_dump(doc, allow_unicode=True)
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 3))
        text = text[:at] + draw(st.sampled_from(MUTATIONS)) + text[at + cut :]
    return text, "s.json" if how == "json" else "s.yaml"


@FUZZ
@given(spec_texts())
def test_any_spec_text_parses_builds_and_predicts_or_gives_a_treegrad_error(case: tuple[str, str]) -> None:
    text, filename = case
    COUNTS["spec examples"] += 1
    with time_limit(SECONDS_PER_EXAMPLE):
        try:
            spec = parse_spec(text, filename)
            COUNTS["spec parsed"] += 1
            root = build_model(spec)
        except TreegradError as e:
            assert str(e), "an error without a message"
            return
        COUNTS["spec valid"] += 1
        graph = root.compiled_graph
        assert list(graph.input_names) == list(spec.inputs)
        assert len(graph.elements) == output_count(spec) or task_kind(spec) != "classes"
        try:
            out = predict_many(root, [[0.5] * len(spec.inputs)])
        except TreegradError:
            return
        values = out[0] if isinstance(out[0], list) else [out[0]]
        assert len(values) == output_count(spec)
        if graph.is_softmax and all(math.isfinite(v) for v in values):
            assert sum(values) == pytest.approx(1.0)


# ----------------------------------------------------------------- CSV texts

CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**40), 10**40).map(str),
    st.sampled_from(
        [
            "",
            " ",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "1e400",
            "1e-400",
            " 4 ",
            "+5",
            "0x10",
            "1_000",
            "１２",
            "a",
            "b",
            "c",
            "None",
            "True",
            '"q"',
            '"a,b"',
            '"a\nb"',
            '""',
            "'",
            '"',
            "\t",
            ";",
            "\r",
            "\x00",
            "\ufeff",
            "é",
            "日本",
            "9" * 400,
        ]
    ),
    st.text(alphabet=string.printable + "éß日\u200b", max_size=6),
)
HEADER = st.sampled_from(["x", "y", "t", "label", "x", "", '"x"', "1", "é", "a b"])


@st.composite
def csv_texts(draw: st.DrawFn) -> bytes:
    """Half tidy tables (distinct names, numbers, a label column) with the odd bad cell,
    half anything: ragged rows, strange headers, quotes, NUL bytes, other encodings."""
    tidy = draw(st.booleans())
    columns = draw(st.integers(1, 3) if tidy else st.integers(0, 4))
    header = ["x", "y", "label"][:columns] if tidy else draw(st.lists(HEADER, min_size=columns, max_size=columns))
    lines = [",".join(header)]
    for _ in range(draw(st.integers(1 if tidy else 0, 6))):
        width = columns if tidy or draw(st.integers(0, 5)) else draw(st.integers(0, 5))
        cells = []
        for k in range(width):
            if tidy and draw(st.integers(0, 15)):
                cells.append(
                    draw(st.sampled_from(["a", "b", "c"]))
                    if header[k] == "label" and draw(st.booleans())
                    else repr(draw(st.floats(-10, 10)))
                )
            else:
                cells.append(draw(st.floats(-10, 10).map(repr) if draw(st.booleans()) else CELLS))
        lines.append(",".join(cells))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(lines) + draw(st.sampled_from([newline, ""]))
    if draw(st.integers(0, 9)) == 0:
        text = "\ufeff" + text
    encoding = draw(st.sampled_from(["utf-8"] * 8 + ["latin-1", "utf-16"]))
    return text.encode(encoding, "replace")


FOLDER = Path(tempfile.mkdtemp(prefix="treegrad-fuzz-"))  # hypothesis examples cannot take tmp_path
atexit.register(shutil.rmtree, FOLDER, True)


@FUZZ
@given(csv_texts(), st.data())
def test_any_csv_reads_selects_and_encodes_or_gives_a_data_error(content: bytes, data: st.DataObject) -> None:
    path = FOLDER / "fuzz.csv"
    path.write_bytes(content)
    COUNTS["csv examples"] += 1
    with time_limit(SECONDS_PER_EXAMPLE):
        try:
            table = read_csv(path)
        except DataError as e:
            assert str(e)
            return
        COUNTS["csv read"] += 1
        assert table.rows and all(len(r) == len(table.columns) for r in table.rows)
        inputs = data.draw(st.lists(st.sampled_from(table.columns), unique=True, max_size=len(table.columns)))
        target = data.draw(st.sampled_from([*table.columns, None, "zz"]))
        kind = data.draw(st.sampled_from(["regression", "binary", "classes"]))
        classes = data.draw(st.sampled_from([None, ["a", "b"], ["1", "2", "3"]]))
        try:
            X, raw, name = select(table, inputs, target)
            y, found = encode_targets(raw, kind, classes, source=str(path), training=data.draw(st.booleans()))
        except DataError as e:
            assert str(e)
            return
        COUNTS["csv valid"] += 1
        assert len(X) == len(y) == len(table.rows) and name in table.columns
        assert all(math.isfinite(v) for row in X for v in row)
        if kind == "regression":
            assert found is None and all(math.isfinite(v) for v in y)
        elif kind == "binary":
            assert found is not None and len(found) == 2 and set(y) <= {0.0, 1.0}
        else:
            assert found is not None and all(0 <= int(v) < len(found) for v in y)


# ----------------------------------------------------------------- model files and predict values

GOOD_MODEL = {
    "format": "treegrad-model",
    "version": 1,
    "name": "m",
    "spec_file": "m.yaml",
    "spec_text": "inputs: [x]\noutput: {sigmoid: {add: [{mul: [param, x]}, param]}}\nloss: bce\n",
    "inputs": ["x"],
    "task": "binary",
    "loss": "bce",
    "classes": ["a", "b"],
    "normalization": {"x": [0.5, 2.0]},
    "parameters": {"p0": 1.5, "p1": -0.5},
    "training": {
        "epochs": 1,
        "learning_rate": 0.1,
        "batch_size": 1,
        "optimizer": "sgd",
        "seed": 0,
        "shuffle": True,
        "validation_split": 0.0,
        "normalize": True,
        "early_stopping": None,
    },
    "data": {"source": "d.csv", "target": "y", "rows": 2, "train_rows": 2, "validation_rows": 0},
    "history": {"train": [0.7], "validation": [], "best_epoch": None, "stopped_early": False},
    "metrics": {},
    "treegrad_version": "0.1.0",
}


DEEP = "\x00deep"  # stands for a deeply nested value, spliced into the text after json.dumps


def _deep(levels: int, kind: str) -> str:
    """JSON nested `levels` deep, written as text (json.dumps itself would recurse that deep)."""
    if kind == "lists":
        return "[" * levels + "]" * levels
    return '{"a": ' * levels + "0" + "}" * levels


@st.composite
def model_texts(draw: st.DrawFn) -> str:
    record = json.loads(json.dumps(GOOD_MODEL))
    values = st.one_of(SCALARS, _anything(), st.just(DEEP))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(sorted(record)))
        if draw(st.booleans()) and isinstance(record[key], dict) and record[key]:
            inner = draw(st.sampled_from(sorted(record[key])))
            record[key][inner] = draw(values)
        elif draw(st.integers(0, 3)) == 0:
            del record[key]
        else:
            record[key] = draw(values)
    text = json.dumps(record, allow_nan=True)
    # Python's recursion limit is 1,000 by default: 5,000 levels is past it wherever it is read.
    deep = _deep(draw(st.sampled_from([3, 500, 5_000])), draw(st.sampled_from(["lists", "objects"])))
    text = text.replace(json.dumps(DEEP), deep)
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(text)))
        damage = st.sampled_from(MUTATIONS + ["NaN", "Infinity", "1" * 5000, "[" * 5_000, '{"a": ' * 5_000])
        text = text[:at] + draw(damage) + text[at + 1 :]
    return text


MODEL_CSV = FOLDER / "fuzz-model.csv"
MODEL_CSV.write_text("x,y\n1,a\n2,b\n-1,a\n")
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def _model_commands(path: Path) -> list[list[str]]:
    """The commands that read a model file, each given what it needs besides the model."""
    data = ["--data", str(MODEL_CSV)]
    commands = [
        ["predict", str(path), "1"],
        ["show", str(path)],
        ["eval", str(path), *data],
        ["trace", str(path), *data],
    ]
    if HAS_MATPLOTLIB:  # a readable model is drawn, which needs it
        commands.append(["plot", str(path), "-o", str(FOLDER / "fuzz-plot.png"), *data])
    return commands


@FUZZ
@given(model_texts(), st.data())
def test_any_model_file_loads_or_gives_a_model_file_error(text: str, data: st.DataObject) -> None:
    path = FOLDER / "fuzz.model.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))  # a lone surrogate: bytes that are not UTF-8
    COUNTS["model examples"] += 1
    with time_limit(SECONDS_PER_EXAMPLE):
        try:
            record = read(path)
            root = load_graph(path, record)
        except ModelFileError as e:
            assert str(e)
            refused = True
        else:
            refused = False
            COUNTS["model valid"] += 1
            assert all(math.isfinite(v) for v in root.compiled_graph.param_values())
        # Through the command line too (one command per example: a run costs typer 15 ms to
        # set up, and a drawing a second): the reader's verdict reaches every command as one
        # message (exit 1) or a result (exit 0), never as a traceback or an "internal error".
        args = data.draw(st.sampled_from(_model_commands(path)))
        COUNTS[f"model {args[0]}"] += 1
        result = CLI.invoke(app, args)
        both = result.stdout + result.stderr
        assert "Traceback" not in both and "internal error" not in both, (args, both)
        if refused:
            assert result.exit_code == 1 and result.stderr.startswith("error: "), (args, both)
        else:
            assert result.exit_code in (0, 1), (args, result.exit_code, both)


VALUE = st.one_of(st.floats().map(str), st.text(max_size=8), st.sampled_from(["1e999", "-0", " 2 ", "1_0", "０"]))


@FUZZ
@given(
    st.one_of(
        st.lists(st.one_of(st.floats().map(str), st.text(max_size=12)), max_size=4),
        st.lists(
            st.builds(lambda n, v: f"{n}={v}", st.sampled_from(["x", "y", "z", " x", "x ", ""]), VALUE), max_size=4
        ),
        st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)).map(lambda t: [repr(v) for v in t]),
    )
)
def test_any_command_line_values_parse_or_give_a_data_error(values: list[str]) -> None:
    COUNTS["values examples"] += 1
    try:
        row = parse_values(["x", "y"], values)
    except DataError as e:
        assert str(e)
        return
    COUNTS["values valid"] += 1
    assert len(row) == 2 and all(math.isfinite(v) for v in row)


def test_the_fuzzers_ran_and_reached_past_the_first_check() -> None:
    """Runs last (pytest keeps file order): every fuzzer ran its examples, and enough of them
    were valid that the code after parsing was exercised, not only the refusals."""
    if COUNTS["spec examples"] == 0:
        pytest.skip("run together with the fuzz tests above")
    report = ", ".join(f"{k}: {v}" for k, v in sorted(COUNTS.items()))
    print(f"\nfuzz counts: {report}", file=sys.stderr)
    for kind in ("spec", "csv", "model", "values"):
        assert COUNTS[f"{kind} examples"] >= EXAMPLES
        assert COUNTS[f"{kind} valid"] >= EXAMPLES // 20, f"too few valid {kind} examples: {report}"
    for args in _model_commands(FOLDER / "m.json"):
        assert COUNTS[f"model {args[0]}"] >= EXAMPLES // 20, f"the command {args[0]} was too rarely run: {report}"
    if not HAS_MATPLOTLIB:
        pytest.skip("the model-file fuzzer left out plot: matplotlib is not installed (pip install -e '.[plot]')")
