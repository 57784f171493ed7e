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
from dataclasses import dataclass, field
from pathlib import Path

from ..data.columns import cell_kinds, input_name, is_text
from ..data.readers import load_data
from ..data.table import Table, number
from ..data.targets import label_text
from ..errors import DataError, did_you_mean, listed
from ..files import check_output, write_atomic

MODELS = ("linear", "mlp")
HIDDEN = 32  # units of the mlp's hidden layer
MAX_CLASSES = 20  # whole-number targets with at most this many values are read as class labels
# Cells other tools write for "no value": treegrad reads only an empty cell as missing.
MISSING_MARKERS = {"na", "n/a", "nan", "null", "none", "?", "-", "."}


@dataclass
class _Column:
    """What the cells of one input column are: numbers, text, or numbers with a few text cells."""

    name: str
    numbers: int
    texts: list[tuple[int, str]]  # (row, text) of every non-empty text cell
    distinct: int  # distinct non-empty cells

    @property
    def is_text(self) -> bool:
        """Text for one-hot inputs, as training reads it (columns.is_text)."""
        return is_text(self.numbers, len(self.texts))

    @property
    def marks_missing(self) -> bool:
        """Numbers whose text cells are all markers of a missing value (`NA`)."""
        return bool(self.texts) and not self.is_text and {t.strip().lower() for _, t in self.texts} <= MISSING_MARKERS

    def identifier(self, rows: int) -> bool:
        """A text column with a value of its own in (nearly) every row: a name or an id, no feature."""
        return self.is_text and rows >= 10 and self.distinct >= 0.9 * rows


def _column(table: Table, name: str) -> _Column:
    j = table.columns.index(name)
    texts = [(i, row[j]) for i, row in enumerate(table.rows) if isinstance(row[j], str) and row[j] != ""]
    numbers, _ = cell_kinds(table, j)  # counted as training counts them (columns.is_text)
    distinct = len({row[j] for row in table.rows if row[j] != ""})
    return _Column(name, numbers, [(i, str(t)) for i, t in texts], distinct)


def _stray(table: Table, columns: list[_Column]) -> list[str]:
    """Warnings for number columns with a few text cells: training stops at the first of them."""
    out: list[str] = []
    marked = [c for c in columns if c.marks_missing]
    if marked:
        i, first = marked[0].texts[0]
        names, cells = listed([f"'{c.name}'" for c in marked]), sum(len(c.texts) for c in marked)
        out.append(
            f"{'column ' + names + ' holds' if len(marked) == 1 else 'columns ' + names + ' hold'} numbers, and "
            f"{cells} {'cell' if cells == 1 else 'cells'} like '{first}' ({table.place(i)}), which marks a missing "
            "value in other tools; treegrad reads only an empty cell as missing, so empty those cells (find and "
            "replace) and training.missing: drop, set here, leaves out their rows"
        )
    for c in columns:
        if c not in marked:
            i, first = c.texts[0]
            more = f" (and {len(c.texts) - 1} more text cells)" if len(c.texts) > 1 else ""
            out.append(
                f"column '{c.name}' holds numbers, but '{first}' ({table.place(i)}) is text{more}: "
                "training stops there until you fix it (a typo?) or empty it"
            )
    return out


@dataclass
class Plan:
    """What `init` found in a table, and the spec it makes of it."""

    target: str
    kind: str  # "regression" | "binary" | "classes"
    classes: list[str] | None
    text_inputs: list[str]
    missing_rows: int
    text: str
    warnings: list[str] = field(default_factory=list)  # what the user should look at before training


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
    columns = [_column(table, c) for c in table.columns if c != target]
    ids = [c.name for c in columns if c.identifier(len(table.rows))]
    inputs = [c.name for c in columns if c.name not in ids]
    text_inputs = [c.name for c in columns if c.is_text and c.name not in ids]
    strays = [c for c in columns if c.texts and not c.is_text]  # numbers with a few text cells
    warnings = _stray(table, strays)
    if ids:
        warnings.append(
            f"left out of the inputs: {listed(ids)}, text with a value of its own in (nearly) every row "
            "(a name or an id, which a model cannot learn from); add it to `inputs:` if it is a category"
        )
    missing_rows = sum(1 for row in table.rows if any(cell == "" for cell in row))
    n_classes = len(classes) if classes else 1
    lines = [
        f"# A spec written by `treegrad init` from {table.source}: {len(table.rows)} rows, {len(inputs)} inputs.",
        "# Train it with: treegrad train THIS_FILE; then treegrad eval MODEL.model.json",
        *(f"# Look first: {w}." for w in warnings),
        f"name: {_yaml(name)}",
        f"data: {_yaml(data_ref)}",
        f"target: {_yaml(target)}",
    ]
    if ids:
        lines.append(
            f"# Every column but the target and {', '.join(ids)}; or `all`, names, {{match: 'px_*'}}, {{range: [a, b]}}"
        )
        lines.append(f"inputs: [{', '.join(_yaml(c) for c in inputs)}]")
    else:
        lines.append("# Every column but the target; or list names, {match: 'px_*'} and {range: [first, last]}.")
        lines.append("inputs: all")
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
        rows = "1 row has" if missing_rows == 1 else f"{missing_rows} rows have"
        lines.append(f"  missing: drop   # {rows} empty cells")
    elif any(c.marks_missing for c in strays):
        lines.append("  missing: drop   # for the cells you empty (see above)")
    if text_inputs:
        lines.append(f"  text_inputs: one_hot   # text columns: {', '.join(text_inputs[:5])}")
    return Plan(target, kind, classes, text_inputs, missing_rows, "\n".join(lines) + "\n", warnings)


def init_spec(data: Path, out: Path, *, target: str | None = None, model: str = "mlp", force: bool = False) -> Plan:
    """Write a spec for the CSV file `data` to `out` (never over `data`, nor over an existing file
    unless `force`), and return what was found."""
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
