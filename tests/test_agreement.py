"""Every path agrees with the model (issue 23): settings × writers × readers, derived from three tables.

A *case* (CASES) is a small table made up here from a seed, never seen by another test, and a spec
with settings that change what a model file holds: standardised inputs and target, one-hot text
inputs, a column renamed, class and row weights, rows with an empty cell dropped, float32, a
schedule, clipping, l1 and l2; regression, binary (layers, and a formula) and softmax. A *writer*
(WRITERS) is each command that writes a model file: train, --resume, --init-from, simplify,
sweep --best-out, import-params and --engine torch. A *reader* (READERS) is each way a model is
used, each given the CSV's own columns (text as written, numbers in their units): predict with
typed values, predict --data, the show formula evaluated, the Python module, ONNX in onnxruntime,
the torch module (through its own encode), and the card's reproducing commands run again; and eval.

Every (case, writer, reader) is one test, made from the tables: each reader's answers for the
case's rows equal the model's own (its graph run node by node on rows this file encodes itself) to
1e-9 relative (1e-5 where the reader computes in float32); eval's metrics are those of predict's own
outputs. Each writer that promises more (WRITER_CHECKS) checks it once per case: a resumed run is
one longer run bit for bit, a model begun from another with no epochs is that model, imported
parameters are the exported ones, the sweep's best is the run train makes, and a simplified model
scores in eval what simplify printed for it. Then hypothesis draws tables of awkward column names
and text values (spaces, quotes, '=', keywords, the exports' own names) through the readers.

Cheap by design: tiny tables, a few epochs, commands called in this process; each model is written
once per case and writer and read by every reader.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import random
import re
import shlex
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from treegrad.cli import app, program
from treegrad.core.ops import python_namespace
from treegrad.data.split import split_indices
from treegrad.run.modelfile import load, open_model
from treegrad.run.tasks import class_labels

runner = CliRunner()


# ----------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """A made-up table (its header, a row maker, how many rows) and the spec that trains on it."""

    name: str
    header: list[str]
    row: Callable[[random.Random, int], list[Any]]
    spec: str  # the spec without data: and target:
    target: str
    rows: int = 40
    epochs: int = 6  # even: --resume runs half, then half
    float32: bool = False

    @property
    def tolerance(self) -> float:
        """Relative agreement asked of readers that compute in the run's precision."""
        return 1e-5 if self.float32 else 1e-9


def _regression_raw(rng: random.Random, i: int) -> list[Any]:
    size, age = rng.uniform(0, 2), rng.uniform(-1, 1)
    return [round(size, 4), round(age, 4), round(1.5 * size - 0.7 * age + 0.3 + rng.gauss(0, 0.05), 4)]


def _power(rng: random.Random, i: int) -> list[Any]:
    v, t = rng.uniform(0, 100), rng.uniform(-20, 20)
    return [round(v, 3), round(t, 3), round(2.5 * v - 1.5 * t + 7 + rng.gauss(0, 0.5), 3)]


def _colored(rng: random.Random, i: int) -> list[Any]:
    color = ["red", "green", "blue"][rng.randrange(3)]
    x = rng.uniform(-3, 3)
    label = "yes" if x + (1.5 if color == "red" else -0.5) + rng.gauss(0, 0.3) > 0 else "no"
    cells: list[Any] = [round(x, 3), color, round(rng.uniform(0.5, 2), 2), label]
    if i % 9 == 4:
        cells[rng.choice([0, 1])] = ""  # a row with an empty cell, which missing: drop drops
    return cells


def _two_numbers(rng: random.Random, i: int) -> list[Any]:
    x, z = rng.uniform(-2, 2), rng.uniform(0, 10)
    cells: list[Any] = [round(x, 3), round(z, 2), int(x - 0.3 * z + 1.5 + rng.gauss(0, 0.3) > 0)]
    if i % 7 == 3:
        cells[rng.choice([0, 1])] = ""
    return cells


def _species(rng: random.Random, i: int) -> list[Any]:
    k = rng.randrange(3)
    a, b = rng.gauss([0, 3, -2][k], 0.8), rng.gauss([2, -1, 0][k], 0.8)
    return [round(a, 3), round(b, 3), ["loam", "clay"][rng.randrange(2)], ["ash", "elm", "oak"][k]]


CASES = {
    c.name: c
    for c in (
        Case(
            "regression-raw",
            ["mean size", "age", "y"],
            _regression_raw,
            "inputs: all\nlayers: [{linear: 1}]\nloss: mse\n"
            "training: {learning_rate: 0.05, l2: 0.001, clip_norm: 5.0}\n",
            "y",
        ),
        Case(
            "regression-standardised",
            ["voltage", "temperature", "power"],
            _power,
            "inputs: [voltage, temperature]\nlayers: [{linear: 4, activation: tanh}, {linear: 1}]\nloss: mse\n"
            "training: {normalize: true, optimizer: adam, learning_rate: 0.02, batch_size: 8, l2: 0.0001,\n"
            "  lr_schedule: {type: step, step_size: 2, gamma: 0.5}, validation_split: 0.25}\n",
            "power",
        ),
        Case(
            "regression-float32",
            ["voltage", "temperature", "power"],
            _power,
            "inputs: [voltage, temperature]\nlayers: [{linear: 4, activation: tanh}, {linear: 1}]\nloss: mae\n"
            "training: {normalize: true, optimizer: adam, learning_rate: 0.02, batch_size: 8, dtype: float32,\n"
            "  lr_schedule: {type: exponential, gamma: 0.9}}\n",
            "power",
            float32=True,
        ),
        Case(
            "binary-one-hot",
            ["x", "color", "w", "label"],
            _colored,
            "inputs: [x, color]\nlayers: [{linear: 1, activation: sigmoid}]\nloss: bce\nclasses: ['no', 'yes']\n"
            "training: {normalize: true, text_inputs: one_hot, missing: drop, class_weight: balanced,\n"
            "  weight_column: w, l1: 0.001, optimizer: adam, learning_rate: 0.05}\n",
            "label",
            rows=45,
        ),
        Case(
            "binary-formula",
            ["x", "z", "label"],
            _two_numbers,
            "inputs: [x, z]\n"
            "output: {sigmoid: {add: [{mul: [param, x]}, {mul: [param, z]}, {tanh: {mul: [param, x, z]}}, param]}}\n"
            "loss: bce\ntraining: {missing: drop, learning_rate: 0.1, clip_norm: 1.0}\n",
            "label",
            rows=42,
        ),
        Case(
            "softmax",
            ["a", "b", "soil", "tree"],
            _species,
            "inputs: all\nlayers: [{linear: 5, activation: relu}, {linear: 3}, {softmax: true}]\n"
            "training: {normalize: true, text_inputs: one_hot, optimizer: adam, learning_rate: 0.05, batch_size: 4,\n"
            "  class_weight: {ash: 2.0}, dtype: float32, validation_split: 0.2}\n",
            "tree",
            float32=True,
        ),
    )
}


# ----------------------------------------------------------------- running commands here


@contextlib.contextmanager
def inside(folder: Path) -> Iterator[None]:
    """Work in `folder`, as a user in a shell would (relative paths, the command line recorded)."""
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def treegrad(folder: Path, *args: str) -> str:
    """`treegrad ARGS` run in `folder`, in this process, recording its command line as main() does."""
    program.command_line = ["treegrad", *args]
    try:
        with inside(folder):
            result = runner.invoke(app, list(args))
    finally:
        program.command_line = None
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


@dataclass
class Workspace:
    """A case's folder: its table and spec, and the model files the writers made there."""

    case: Case
    folder: Path
    made: dict[str, Path] = field(default_factory=dict)
    printed: dict[str, Any] = field(default_factory=dict)  # what a writer said of its model (simplify --json)

    def model(self, writer: str) -> Path:
        """The model file `writer` writes for this case, made on first use."""
        if writer not in self.made:
            self.made[writer] = WRITERS[writer](self)
        return self.made[writer]


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _workspace(case: Case, folder: Path) -> Workspace:
    rng = random.Random(f"agreement {case.name}")
    rows = [case.row(rng, i) for i in range(case.rows)]
    _write_csv(folder / "data.csv", case.header, rows)
    spec = case.spec.replace("training: {", f"training: {{epochs: {case.epochs}, ", 1)
    (folder / "spec.yaml").write_text(f"name: {case.name}\ndata: data.csv\ntarget: {case.target}\n{spec}")
    return Workspace(case, folder)


@pytest.fixture(scope="module")
def spaces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Workspace]:
    """One workspace per case, for every test of this module."""
    root = tmp_path_factory.mktemp("agreement")
    for case in CASES.values():
        (root / case.name).mkdir()
    return {case.name: _workspace(case, root / case.name) for case in CASES.values()}


# ----------------------------------------------------------------- the writers


def write_train(ws: Workspace) -> Path:
    treegrad(ws.folder, "train", "spec.yaml", "-o", "train.json", "-q")
    return ws.folder / "train.json"


def write_resume(ws: Workspace) -> Path:
    half = ws.case.epochs // 2
    treegrad(ws.folder, "train", "spec.yaml", "--epochs", str(half), "-o", "half.json", "-q")
    treegrad(
        ws.folder, "train", "--resume", "half.json", "--epochs", str(ws.case.epochs - half), "-o", "resume.json", "-q"
    )
    return ws.folder / "resume.json"


def write_init_from(ws: Workspace) -> Path:
    ws.model("train")
    treegrad(ws.folder, "train", "spec.yaml", "--init-from", "train.json", "--epochs", "2", "-o", "init.json", "-q")
    return ws.folder / "init.json"


def write_simplify(ws: Workspace) -> Path:
    ws.model("train")
    out = treegrad(ws.folder, "simplify", "train.json", "-o", "simple.json", "--epochs", "2", "--json")
    ws.printed["simplify"] = json.loads(out)
    return ws.folder / "simple.json"


def write_sweep(ws: Workspace) -> Path:
    treegrad(ws.folder, "sweep", "spec.yaml", "--grid", "training.seed=0", "--best-out", "best.json", "-j", "1")
    return ws.folder / "best.json"


def write_import_params(ws: Workspace) -> Path:
    torch = pytest.importorskip("torch", reason="import-params reads a state dict saved by PyTorch")
    from treegrad.torch.module import torch_module

    module = torch_module(open_model(ws.model("train")))
    torch.save(module.state_dict(), ws.folder / "state.pt")
    treegrad(ws.folder, "import-params", "train.json", "--from", "state.pt", "-o", "imported.json")
    return ws.folder / "imported.json"


def write_torch(ws: Workspace) -> Path:
    pytest.importorskip("torch", reason="--engine torch trains with PyTorch")
    treegrad(ws.folder, "train", "spec.yaml", "--engine", "torch", "-o", "torch.json", "-q")
    return ws.folder / "torch.json"


WRITERS: dict[str, Callable[[Workspace], Path]] = {
    "train": write_train,
    "resume": write_resume,
    "init-from": write_init_from,
    "simplify": write_simplify,
    "sweep": write_sweep,
    "import-params": write_import_params,
    "engine-torch": write_torch,
}


# ----------------------------------------------------------------- what the model says, by this file's own means


def user_rows(ws: Workspace) -> list[dict[str, str]]:
    """The case's rows as the CSV has them (text), without the target, and without those with an empty cell."""
    with (ws.folder / "data.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if k != ws.case.target} for r in rows if all(v != "" for v in r.values())]


def model_columns(record: Any) -> list[str]:
    """The CSV columns a model reads, in the order of its inputs (a one-hot column once)."""
    back = {name: column for column, code in (record.encodings or {}).items() for name in code.values()}
    back.update({name: column for column, name in (record.renamed or {}).items()})
    return list(dict.fromkeys(back.get(name, name) for name in record.inputs))


def encoded(record: Any, row: dict[str, str]) -> dict[str, float]:
    """A CSV row as the model's inputs, encoded here (not by treegrad): renamed columns, one 0/1 per text value."""
    renamed = record.renamed or {}
    out: dict[str, float] = {}
    for column in model_columns(record):
        text, code = row[column], (record.encodings or {}).get(column)
        if code is not None:
            assert text in code, (column, text)
            out.update({name: float(value == text) for value, name in code.items()})
        else:
            out[renamed.get(column, column)] = float(text)
    return {name: out[name] for name in record.inputs}


def answers(outputs: Any) -> list[float]:
    """One model output (a number or a list) as a list of numbers."""
    return [float(v) for v in outputs] if isinstance(outputs, list) else [float(outputs)]


def own_answers(ws: Workspace, path: Path) -> list[list[float]]:
    """The model file's graph, run node by node (the reference evaluator) on the encoded rows."""
    loaded = load(path)
    return [answers(loaded.root.predict(encoded(loaded.record, row))) for row in user_rows(ws)]


def agree(got: list[list[float]], want: list[list[float]], rel: float, what: str) -> None:
    """Equal to `rel`, relative to the larger of the two and of 1 (a value near 0 is compared on that scale)."""
    assert len(got) == len(want), what
    for i, (g, w) in enumerate(zip(got, want)):
        assert len(g) == len(w), (what, i)
        for a, b in zip(g, w):
            assert abs(a - b) <= rel * max(1.0, abs(a), abs(b)), f"{what}: row {i}: {g} != {w}"


# ----------------------------------------------------------------- the readers


def _decoded(result: dict[str, Any]) -> list[float]:
    """predict's JSON for one row as the model's outputs."""
    if "probabilities" in result:
        return [float(v) for v in result["probabilities"].values()]
    return [float(result["output"] if "output" in result else result["prediction"])]


def read_predict_values(ws: Workspace, path: Path) -> list[list[float]]:
    """`treegrad predict MODEL column=value ...`, the CSV's own names and text, for the first rows."""
    got = []
    columns = model_columns(load(path).record)
    for row in user_rows(ws)[:3]:
        out = treegrad(ws.folder, "predict", path.name, *(f"{c}={row[c]}" for c in columns), "--json")
        got.append(_decoded(json.loads(out)[0]))
    return got + own_answers(ws, path)[3:]


def read_predict_data(ws: Workspace, path: Path) -> list[list[float]]:
    """`treegrad predict MODEL --data rows.csv`: the CSV's own columns."""
    rows = user_rows(ws)
    _write_csv(ws.folder / "rows.csv", list(rows[0]), [list(r.values()) for r in rows])
    return [_decoded(r) for r in json.loads(treegrad(ws.folder, "predict", path.name, "--data", "rows.csv", "--json"))]


def read_show(ws: Workspace, path: Path) -> list[list[float]]:
    """The text formula `treegrad show` prints, at 17 digits, evaluated as Python."""
    text = treegrad(ws.folder, "show", path.name, "--precision", "17", "--full").strip()
    *lines, last = text.splitlines()
    names = python_namespace()  # the op table's functions, by the names the formula calls
    record = load(path).record
    # An input's name may be a Python keyword (class): each is given a name Python reads.
    aliases = {name: f"_input{j}" for j, name in enumerate(record.inputs)}

    def python(expression: str) -> str:
        return re.sub(r"\b[A-Za-z_]\w*\b", lambda m: aliases.get(m[0], m[0]), expression).replace("^", "**")

    got = []
    for row in user_rows(ws):
        scope = {**names, **{aliases[k]: v for k, v in encoded(record, row).items()}}
        for line in lines:
            name, _, expression = line.partition(" = ")
            scope[name.strip()] = eval(python(expression), scope)  # noqa: S307 - treegrad's own formula
        got.append(answers(eval(python(last), scope)))  # noqa: S307
    return got


def read_python(ws: Workspace, path: Path) -> list[list[float]]:
    """The standalone Python module (`export --format python`): predict_row on the CSV's own rows
    (text, other columns too), and predict with the columns as arguments."""
    from treegrad.outputs.formats import render

    namespace: dict[str, Any] = {}
    exec(render(open_model(path), "python"), namespace)  # noqa: S102 - treegrad's own module
    rows = user_rows(ws)
    assert namespace["COLUMNS"] == model_columns(load(path).record)
    first = namespace["predict"](*(rows[0][c] for c in namespace["COLUMNS"]))
    return [answers(first)] + [answers(namespace["predict_row"](row)) for row in rows[1:]]


def read_onnx(ws: Workspace, path: Path) -> list[list[float]]:
    """The ONNX export, run by onnxruntime on the CSV's own columns (text as strings)."""
    ort = pytest.importorskip("onnxruntime", reason="the ONNX reader runs the export in onnxruntime")
    import numpy as np

    from treegrad.outputs.formats import render

    session = ort.InferenceSession(render(open_model(path), "onnx"), providers=["CPUExecutionProvider"])
    rows, record = user_rows(ws), load(path).record
    columns = model_columns(record)
    if [i.name for i in session.get_inputs()] == ["X"]:
        feed = {"X": np.array([[float(r[c]) for c in columns] for r in rows], dtype=np.float64)}
    else:
        text = set(record.encodings or {})
        feed = {c: np.array([r[c] if c in text else float(r[c]) for r in rows]) for c in columns}
    (y,) = session.run(None, feed)
    return [answers(v.tolist()) for v in y]


def read_torch(ws: Workspace, path: Path) -> list[list[float]]:
    """The torch module (`export --format torch`), in the run's precision, on the CSV's rows encoded
    by its own `encode` (a tensor holds no text)."""
    torch = pytest.importorskip("torch", reason="the torch reader runs the exported module")
    from treegrad.outputs.formats import render

    dtype = torch.float32 if ws.case.float32 else torch.float64
    namespace: dict[str, Any] = {}
    exec(render(open_model(path), "torch"), namespace)  # noqa: S102 - treegrad's own module
    module = namespace["Model"](dtype=dtype)
    with torch.no_grad():
        return [answers(v.tolist()) for v in module(namespace["encode"](user_rows(ws), dtype=dtype))]


def read_card(ws: Workspace, path: Path) -> list[list[float]]:
    """The card's reproducing commands, run again in order in a copy of the folder: the model the
    last one writes (for a model simplify or import-params changed: the training, then the change)."""
    card = treegrad(ws.folder, "card", path.name)
    block = card.split("## Reproduce", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    copy = ws.folder.parent / f"{ws.folder.name}-again-{path.stem}"
    shutil.copytree(ws.folder, copy)
    written = None
    for line in block.strip().splitlines():
        where, _, command = line.partition(" && ")
        assert shlex.split(where) == ["cd", str(ws.folder)], line
        argv = shlex.split(command)
        assert argv[0] == "treegrad", line
        treegrad(copy, *argv[1:])
        written = copy / argv[argv.index("-o") + 1]
    assert written is not None  # (simplify may choose the trained model itself: then train writes it)
    assert load(written).record.parameters == load(path).record.parameters
    return own_answers(ws, written)


READERS: dict[str, Callable[[Workspace, Path], list[list[float]]]] = {
    "predict": read_predict_values,
    "predict --data": read_predict_data,
    "show": read_show,
    "python": read_python,
    "onnx": read_onnx,
    "torch": read_torch,
    "card": read_card,
}
# Readers that compute in float32 when the run did; the others compute in float64.
IN_RUN_PRECISION = {"torch"}


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("case", list(CASES))
def test_every_reader_agrees_with_the_model(spaces: dict[str, Workspace], case: str, writer: str, reader: str) -> None:
    ws = spaces[case]
    path = ws.model(writer)
    rel = ws.case.tolerance if reader in IN_RUN_PRECISION else 1e-9
    agree(READERS[reader](ws, path), own_answers(ws, path), rel, f"{case} × {writer} × {reader}")


# ----------------------------------------------------------------- eval against predict's own outputs


def _metrics_of(
    task: str, loss: str, labels: list[str] | None, outputs: list[list[float]], truth: list[str]
) -> dict[str, float]:
    """The loss and the main metric of outputs against the CSV's targets, computed here."""
    n = len(truth)
    if task == "regression":
        y = [float(t) for t in truth]
        errors = [o[0] - t for o, t in zip(outputs, y)]
        mse = math.fsum(e * e for e in errors) / n
        mae = math.fsum(abs(e) for e in errors) / n
        mean = math.fsum(y) / n
        r2 = 1 - mse * n / math.fsum((t - mean) ** 2 for t in y)
        return {"loss": mse if loss == "mse" else mae, "mse": mse, "mae": mae, "r2": r2}
    assert labels is not None
    k = [labels.index(t) for t in truth]
    if task == "binary":
        p = [o[0] for o in outputs]
        right = sum((q >= 0.5) == (c == 1) for q, c in zip(p, k))
        loss_value = -math.fsum(math.log(q) if c == 1 else math.log(1 - q) for q, c in zip(p, k)) / n
    else:
        right = sum(max(range(len(o)), key=o.__getitem__) == c for o, c in zip(outputs, k))
        loss_value = -math.fsum(math.log(o[c]) for o, c in zip(outputs, k)) / n
    return {"loss": loss_value, "accuracy": right / n}


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("case", list(CASES))
def test_eval_says_what_predicts_own_outputs_say(spaces: dict[str, Workspace], case: str, writer: str) -> None:
    ws = spaces[case]
    path = ws.model(writer)
    record = load(path).record
    evaluated = json.loads(treegrad(ws.folder, "eval", path.name, "--data", "data.csv", "--json"))
    with (ws.folder / "data.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if all(v != "" for v in r.values())]  # as missing: drop keeps them
    predicted = read_predict_data(ws, path)
    labels = class_labels(record.task, record.classes, len(predicted[0]))
    mine = _metrics_of(record.task, record.loss, labels, predicted, [r[ws.case.target] for r in rows])
    for key, value in mine.items():
        assert evaluated[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (key, evaluated[key], value)


# ----------------------------------------------------------------- what each writer promises besides


def check_resume(ws: Workspace) -> None:
    """N epochs, then --resume for M more, is one run of N + M epochs, bit for bit."""
    resumed, whole = load(ws.model("resume")).record, load(ws.model("train")).record
    assert resumed.parameters == whole.parameters
    assert resumed.history.train == whole.history.train
    assert resumed.history.validation == whole.history.validation


def check_init_from(ws: Workspace) -> None:
    """A run begun from a model's parameters, with no epochs, is that model."""
    ws.model("train")
    treegrad(ws.folder, "train", "spec.yaml", "--init-from", "train.json", "--epochs", "0", "-o", "zero.json", "-q")
    assert load(ws.folder / "zero.json").record.parameters == load(ws.folder / "train.json").record.parameters


def check_import_params(ws: Workspace) -> None:
    """The exported module's parameters, imported unchanged, are the model's."""
    assert load(ws.model("import-params")).record.parameters == load(ws.model("train")).record.parameters


def check_sweep(ws: Workspace) -> None:
    """The sweep's best run is the run train makes with its settings and seed."""
    assert load(ws.model("sweep")).record.parameters == load(ws.model("train")).record.parameters


def check_simplify(ws: Workspace) -> None:
    """The simplified model scores in eval, on the rows simplify scored, what simplify printed for it."""
    path = ws.model("simplify")
    doc = ws.printed["simplify"]
    chosen = doc["candidates"][doc["chosen"]]
    record = load(path).record
    with (ws.folder / "data.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    if record.training.missing == "drop":
        body = [r for r in body if all(v != "" for v in r)]
    train_rows, val_rows = split_indices(len(body), record.training.validation_split, record.training.seed)
    for part, which in (("train", train_rows), ("validation", val_rows)):
        if not which:
            continue
        _write_csv(ws.folder / f"{part}.csv", header, [body[i] for i in which])
        evaluated = json.loads(treegrad(ws.folder, "eval", path.name, "--data", f"{part}.csv", "--json"))
        assert evaluated["loss"] == pytest.approx(chosen[part]["loss"], rel=1e-9), part


WRITER_CHECKS: dict[str, Callable[[Workspace], None]] = {
    "resume": check_resume,
    "init-from": check_init_from,
    "import-params": check_import_params,
    "sweep": check_sweep,
    "simplify": check_simplify,
}


@pytest.mark.parametrize("writer", list(WRITER_CHECKS))
@pytest.mark.parametrize("case", list(CASES))
def test_each_writer_keeps_its_own_promise(spaces: dict[str, Workspace], case: str, writer: str) -> None:
    WRITER_CHECKS[writer](spaces[case])


# ----------------------------------------------------------------- tables drawn by hypothesis

# A few examples on every run (each trains a model); `TREEGRAD_FUZZ_EXAMPLES=200` digs deeper.
EXAMPLES = max(1, int(os.environ.get("TREEGRAD_FUZZ_EXAMPLES", "50")) // 8)

# Column names and text values that have tripped exporters elsewhere: spaces, quotes, names the
# exports use themselves (X, y, p0, param, predict), digits first, non-ASCII, '=' (name=value).
NAMES = ["x", "mean radius", "X", "y", "p0", "param", "predict", "2nd", "é", "a=b", "it's", "class", "value_1"]
TEXTS = ["red", "a b", "x=1", "it's", '"q"', "é", "3 km", "Z", "none"]


@st.composite
def tables(draw: st.DrawFn) -> tuple[Case, list[list[Any]]]:
    """A small table (a regression, a binary label or three classes to learn) and its case."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    text = draw(st.one_of(st.none(), st.lists(st.sampled_from(TEXTS), min_size=2, max_size=4, unique=True)))
    header = [*names, *(["kind"] if text else []), "target"]
    scales = [draw(st.sampled_from([0.01, 1.0, 300.0])) for _ in names]
    task = draw(st.sampled_from(["regression", "binary", "softmax"]))
    rows = []
    rng = random.Random(draw(st.integers(0, 10**6)))
    for i in range(18):
        xs = [round(rng.uniform(-1, 1) * s, 4) for s in scales]
        cells: list[Any] = [*xs, *([text[i % len(text)]] if text else [])]
        value = sum(x / s for x, s in zip(xs, scales)) + (i % len(text) if text else 0)
        label = {"binary": int(value > 0.5), "softmax": ["ash", "elm", "oak"][i % 3]}.get(task, round(value * 10, 3))
        rows.append([*cells, label])
    hidden = draw(st.sampled_from(["", "{linear: 3, activation: tanh}, "]))
    top = {"regression": "{linear: 1}", "binary": "{linear: 1, activation: sigmoid}"}
    layers = f"[{hidden}{top.get(task, '{linear: 3}, {softmax: true}')}]"
    loss = {"regression": "mse", "binary": "bce", "softmax": "cross_entropy"}[task]
    settings = f"epochs: 2, normalize: {str(draw(st.booleans())).lower()}, learning_rate: 0.05, text_inputs: one_hot"
    spec = f"inputs: all\nlayers: {layers}\nloss: {loss}\ntraining: {{{settings}}}\n"
    return Case("drawn", header, lambda _rng, _i: [], spec, "target", rows=len(rows), epochs=2), rows


# The readers that need no retraining, each with its own way in: typed values, a CSV, the exports.
DRAWN_READERS = ["predict", "predict --data", "show", "python", "onnx", "torch"]


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None)
@given(tables())
def test_drawn_tables_agree_in_every_reader(drawn: tuple[Case, list[list[Any]]]) -> None:
    case, rows = drawn
    with tempfile.TemporaryDirectory() as folder:
        ws = Workspace(case, Path(folder))
        _write_csv(ws.folder / "data.csv", case.header, rows)
        (ws.folder / "spec.yaml").write_text(f"name: drawn\ndata: data.csv\ntarget: target\n{case.spec}")
        path = ws.model("train")
        want = own_answers(ws, path)
        for reader in DRAWN_READERS:
            agree(READERS[reader](ws, path), want, 1e-9, f"{case.header} × {reader}")
