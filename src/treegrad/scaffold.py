"""`treegrad init`: a commented spec for a CSV file, read from its header and cells.

The spec it writes trains with no edits: the inputs are selected from the header
(`inputs: all`), the target is the named column (default: the last), and the output and
loss follow the target's cells: text labels, or a few whole numbers, make a classifier
(a sigmoid and bce for two classes, a softmax for more); other numbers make a regression.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from .columns import input_name
from .data import Table, label_text, load_data, number
from .errors import DataError, did_you_mean, listed

MODELS = ("linear", "mlp")
HIDDEN = 32  # units of the mlp's hidden layer
MAX_CLASSES = 20  # whole-number targets with at most this many values are read as class labels


@dataclass
class Plan:
    """What `init` found in a table, and the spec it makes of it."""

    target: str
    kind: str  # "regression" | "binary" | "classes"
    classes: list[str] | None
    text_inputs: list[str]
    missing_rows: int
    text: str


def _label_key(text: str) -> tuple[int, float, str]:
    # The order encode_targets gives classes: numbers numerically, then text alphabetically.
    value = number(text)
    return (0, value, text) if value is not None and math.isfinite(value) else (1, 0.0, text)


def target_kind(table: Table, target: str) -> tuple[str, list[str] | None]:
    """("regression" | "binary" | "classes", the class labels) for a target column's cells."""
    j = table.columns.index(target)
    cells = [row[j] for row in table.rows if row[j] != ""]
    if not cells:
        raise DataError(f"the target column '{target}' of {table.source} is empty in every row")
    labels = sorted({label_text(c) for c in cells}, key=_label_key)
    text = any(isinstance(c, str) for c in cells)
    whole = not text and all(isinstance(c, float) and c.is_integer() for c in cells)
    if text or (whole and len(labels) <= MAX_CLASSES):
        if len(labels) < 2:
            raise DataError(f"the target column '{target}' of {table.source} has one value only: nothing to learn")
        return ("binary" if len(labels) == 2 else "classes"), labels
    return "regression", None


def _yaml(text: str) -> str:
    """A string as a YAML scalar that reads back as itself (JSON strings are YAML)."""
    return json.dumps(text, ensure_ascii=False)


def plan(table: Table, data_ref: str, *, target: str | None = None, model: str = "mlp", name: str = "model") -> Plan:
    """The spec for `table` (named `data_ref` from the spec's folder), as commented YAML text."""
    if model not in MODELS:
        raise DataError(f"unknown model '{model}'{did_you_mean(model, MODELS)} Use one of: {', '.join(MODELS)}")
    if len(table.columns) < 2:
        raise DataError(f"{table.source} has one column ({table.columns[0]}): a model needs inputs and a target")
    target = target if target is not None else table.columns[-1]
    if target not in table.columns:
        raise DataError(
            f"--target: {table.source} has no column '{target}'{did_you_mean(target, table.columns)} "
            f"Its columns are: {listed(table.columns)}."
        )
    kind, classes = target_kind(table, target)
    inputs = [c for c in table.columns if c != target]
    text_inputs = [
        c
        for c in inputs
        if any(isinstance(row[table.columns.index(c)], str) and row[table.columns.index(c)] for row in table.rows)
    ]
    missing_rows = sum(1 for row in table.rows if any(cell == "" for cell in row))
    n_classes = len(classes) if classes else 1
    lines = [
        f"# A spec written by `treegrad init` from {table.source}: {len(table.rows)} rows, {len(inputs)} inputs.",
        "# Train it with: treegrad train THIS_FILE; then treegrad eval MODEL.model.json",
        f"name: {_yaml(name)}",
        f"data: {_yaml(data_ref)}",
        f"target: {_yaml(target)}",
        "# Every column but the target; or list names, {match: 'px_*'} and {range: [first, last]}.",
        "inputs: all",
    ]
    if classes is not None:
        lines.append(f"# The labels found in '{target}', in output order.")
        lines.append(f"classes: [{', '.join(_yaml(c) for c in classes)}]")
    hidden = [f"  - {{linear: {HIDDEN}, activation: relu}}   # a hidden layer"] if model == "mlp" else []
    if kind == "binary":
        out = ["  - {linear: 1, activation: sigmoid}   # the probability of the second class"]
        loss = "bce"
    elif kind == "classes":
        out = [f"  - {{linear: {n_classes}}}", "  - {softmax: true}   # one probability per class"]
        loss = "cross_entropy"
    else:
        out = ["  - {linear: 1}   # the predicted number"]
        loss = "mse"
    lines += ["layers:", *hidden, *out, f"loss: {loss}"]
    lines += [
        "training:",
        "  epochs: 200",
        "  optimizer: adam",
        "  learning_rate: 0.01",
        "  batch_size: 32",
        "  normalize: true   # standardise the inputs" + (" and the target" if kind == "regression" else ""),
        "  validation_split: 0.2",
        "  early_stopping: {patience: 30}",
        "  seed: 0",
    ]
    if missing_rows:
        lines.append(f"  missing: drop   # {missing_rows} rows have empty cells")
    if text_inputs:
        lines.append(f"  text_inputs: one_hot   # text columns: {', '.join(text_inputs[:5])}")
    return Plan(target, kind, classes, text_inputs, missing_rows, "\n".join(lines) + "\n")


def init_spec(data: Path, out: Path, *, target: str | None = None, model: str = "mlp", force: bool = False) -> Plan:
    """Write a spec for the CSV file `data` to `out` (never over `data`, nor over an existing file
    unless `force`), and return what was found."""
    from .files import check_output, write_atomic

    if out.suffix.lower() not in (".yaml", ".yml"):
        raise DataError(f"-o {out}: a spec is written as YAML; give a file name ending in .yaml")
    if data.exists() and out.exists() and os.path.samefile(data, out):
        raise DataError(f"-o {out} is the data file itself: refusing to overwrite it; choose another name")
    if out.exists() and not force:
        raise DataError(f"{out} exists: refusing to overwrite it; choose another -o, or pass --force")
    check_output(out, force=force)
    if not data.is_file():
        raise DataError(f"{data}: no such CSV file; init reads a CSV file's header and cells")
    table = load_data(str(data), base_dir=Path.cwd())
    ref = os.path.relpath(data.resolve(), out.resolve().parent)
    name = input_name(data.stem)
    result = plan(table, Path(ref).as_posix(), target=target, model=model, name=name)
    write_atomic(out, result.text, force=force)
    return result
