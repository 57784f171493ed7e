"""`treegrad init`: a commented spec for a CSV file, read from its header and cells.

The spec it writes trains with no edits: the inputs are selected from the header
(`inputs: all`), the target is the column given, or else the one column named like a target
(`label`, `class`, `y`, ...: never a guess; without one, init lists the columns and asks), and
the output and loss follow the target's cells: text labels, or a few whole numbers, make a
classifier (a sigmoid and bce for two classes, a softmax for more); other numbers make a
regression. The spec has no `name:`, so the model is named after the spec file: `init t.csv -o
m.yaml`, `train m.yaml` writes `m.model.json`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..data.columns import cell_kinds, input_name, is_text
from ..data.missing import is_missing
from ..data.readers import load_data
from ..data.table import Table, number
from ..data.targets import label_text
from ..errors import DataError, OptionError, did_you_mean, listed
from ..files import check_output, write_atomic

MODELS = ("linear", "mlp")
HIDDEN = 32  # units of the mlp's hidden layer
MAX_CLASSES = 20  # whole-number targets with at most this many values are read as class labels
# Cells other tools write for "no value", in any case: those not in the spec's missing_values
# (data/table.MISSING_VALUES by default: NA, nan, ...) are text to the reader, and init says so.
MISSING_MARKERS = {"na", "n/a", "nan", "null", "none", "?", "-", "."}
# Column names that say "this is what to learn" (compared lower-cased, spaces trimmed): without
# --target, init takes the one column so named, and no other.
TARGET_NAMES = ("target", "label", "labels", "class", "y", "outcome", "response")
MAX_KINDS_LISTED = 20  # columns described one by one when init asks for --target
# init's training schedule (`schedule`): measured on public tables by tests/benchmarks/real_tables.py.
VALIDATION = 0.2  # of the rows, held out for early stopping
STEPS = 8_000  # optimizer steps a run aims at
MIN_EPOCHS, MAX_EPOCHS = 20, 300
STEPS_PER_EPOCH, MAX_BATCH = 300, 1024  # batches grow past 32 rows to keep about this many steps an epoch
LEARNING_RATE = 0.003


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


def _input_list(header: list[str], inputs: list[str]) -> str:
    """`inputs` as a YAML list that trains: their names, unless one is no usable input name
    (`model year`), which a list of names refuses; then the same columns selected from the header
    (where names become usable), each run of neighbours a {range: [first, last]}."""
    if all(input_name(c) == c for c in inputs):
        return f"[{', '.join(_yaml(c) for c in inputs)}]"
    chosen, runs = set(inputs), []
    run: list[str] = []
    for c in [*header, None]:
        if c is not None and c in chosen:
            run.append(c)
        elif run:
            runs.append(run)
            run = []
    # A list with a {range: ...} is resolved against the header: a run of one is its name, but
    # the first run is a range even then, so that the list is one.
    items = [
        f"{{range: [{_yaml(r[0])}, {_yaml(r[-1])}]}}" if len(r) > 1 or i == 0 else _yaml(r[0])
        for i, r in enumerate(runs)
    ]
    return f"[{', '.join(items)}]"


def _column(table: Table, j: int) -> _Column:
    name = table.columns[j]
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
            "value in other tools; treegrad reads it as missing once it is listed in the spec's missing_values: "
            "(which replaces the default list, NA, N/A, NaN, nan, null, NULL, None, #N/A, - and ?), and "
            "training.missing: drop, set here, leaves out their rows"
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
    by_name: bool = False  # the target was chosen by its name (no --target)
    model_file: str = ""  # what `treegrad train` of the spec writes


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


def column_kind(table: Table, name: str) -> str:
    """A column as init describes it when it asks for --target: `species (text: 3 values)`,
    `year (whole numbers: 3 values)`, `mass (numbers, 2 missing)`."""
    j = table.columns.index(name)
    cells = [row[j] for row in table.rows]
    filled = [c for c in cells if c != ""]
    texts = sum(1 for c in filled if isinstance(c, str))
    distinct = len({label_text(c) for c in filled})
    if not filled:
        kind = "empty"
    elif is_text(len(filled) - texts, texts):
        kind = f"text: {distinct} value{'s' if distinct != 1 else ''}"
    elif distinct <= MAX_CLASSES and all(isinstance(c, float) and c.is_integer() for c in filled):
        kind = f"whole numbers: {distinct} value{'s' if distinct != 1 else ''}"
    else:
        kind = "numbers" + (f", {texts} text" if texts else "")
    gaps = len(cells) - len(filled)
    return f"{name} ({kind}{f', {gaps} missing' if gaps and filled else ''})"


def choose_target(table: Table, target: str | None) -> tuple[str, bool]:
    """(the target column, whether it was chosen by its name): `target` when given, else the one
    column named like a target (TARGET_NAMES). Without one, or with several, an OptionError
    (a usage error at --target) lists the columns with their kinds: init never guesses."""
    if target is not None:
        if target not in table.columns:
            raise DataError(
                f"--target: {table.source} has no column '{target}'{did_you_mean(target, table.columns)} "
                f"Its columns are: {listed(table.columns)}."
            )
        return target, False
    named = [c for c in table.columns if c.strip().lower() in TARGET_NAMES]
    if len(named) == 1:
        return named[0], True
    shown = [column_kind(table, c) for c in table.columns[:MAX_KINDS_LISTED]]
    more = len(table.columns) - len(shown)
    columns = "; ".join(shown) + (f"; and {more} more" if more else "")
    why = (
        f"has several columns named like a target ({', '.join(named)})"
        if named
        else f"has no column named like a target ({', '.join(TARGET_NAMES)})"
    )
    raise OptionError(
        f"{table.source} {why}, and init does not guess which column to learn: name it with "
        f"--target COLUMN. Its columns: {columns}.",
        "--target",
    )


@dataclass(frozen=True)
class Schedule:
    """How long and in what steps init's spec trains a table of `rows` rows (`schedule`)."""

    batch_size: int
    epochs: int
    patience: int
    learning_rate: float
    steps_per_epoch: int


def schedule(rows: int) -> Schedule:
    """Training settings scaled to a table: batches of 32 rows up to a few thousand rows, then larger
    (about 300 steps an epoch, at most 1,024 rows a batch); as many epochs as make about STEPS steps
    (from MIN_EPOCHS to MAX_EPOCHS), and a patience of a fifth of them (at least 10 epochs), so a
    small table is not stopped by the noise of a few validation rows and a large one is not trained
    for a million steps; Adam at 0.003, the rate its steps take well at every one of these sizes."""
    train = max(1, rows - round(rows * VALIDATION))
    batch = 32
    while batch < MAX_BATCH and train / batch > STEPS_PER_EPOCH:
        batch *= 2
    per_epoch = -(-train // batch)
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, -(-STEPS // per_epoch)))
    return Schedule(batch, epochs, max(10, epochs // 5), LEARNING_RATE, per_epoch)


def schedule_lines(rows: int) -> list[str]:
    """The `training:` lines of `schedule(rows)`, each saying why."""
    s = schedule(rows)
    return [
        f"  epochs: {s.epochs}   # about {s.epochs * s.steps_per_epoch:,} steps of {s.batch_size} rows",
        "  optimizer: adam",
        f"  learning_rate: {s.learning_rate}",
        f"  batch_size: {s.batch_size}",
        f"  validation_split: {VALIDATION}   # held out: the validation loss early stopping watches",
        f"  early_stopping: {{patience: {s.patience}}}   # keeps the best epoch's parameters",
    ]


def _yaml(text: str) -> str:
    """A string as a YAML scalar that reads back as itself (JSON strings are YAML)."""
    return json.dumps(text, ensure_ascii=False)


def plan(
    table: Table, data_ref: str, *, target: str | None = None, model: str = "mlp", spec_file: str = "model.yaml"
) -> Plan:
    """The spec for `table` (named `data_ref` from the spec's folder), to be written to `spec_file`
    (as the user named it), as commented YAML text."""
    if model not in MODELS:
        raise DataError(f"unknown model '{model}'{did_you_mean(model, MODELS)} Use one of: {', '.join(MODELS)}")
    if len(table.columns) < 2:
        raise DataError(f"{table.source} has one column ({table.columns[0]}): a model needs inputs and a target")
    target, by_name = choose_target(table, target)
    kind, classes = target_kind(table, target)
    # By position: looking each column up by name was quadratic in the columns (60,000: 16-28 s).
    at = {c: j for j, c in enumerate(table.columns)}
    columns = [_column(table, j) for j, c in enumerate(table.columns) if c != target]
    ids = [c.name for c in columns if c.identifier(table.size)]
    inputs = [c.name for c in columns if c.name not in ids]
    text_inputs = [c.name for c in columns if c.is_text and c.name not in ids]
    strays = [c for c in columns if c.texts and not c.is_text]  # numbers with a few text cells
    warnings = _look_first(table, target, classes, ids, strays)
    read = [at[c] for c in [*inputs, target]]
    missing_rows = sum(1 for row in table.rows if any(is_missing(row[j]) for j in read))
    t = at[target]
    no_target = sum(1 for row in table.rows if is_missing(row[t]))
    n_classes = len(classes) if classes else 1
    model_file = model_file_of(spec_file)
    lines = [
        f"# A spec written by `treegrad init` from {table.source}: {table.size} rows, {len(inputs)} inputs.",
        f"# Train it with: treegrad train {spec_file}   (it writes {model_file}, named after this file)",
        f"# then: treegrad eval {model_file} --data NEW_ROWS.csv",
        *(f"# Look first: {w}." for w in warnings),
        f"data: {_yaml(data_ref)}",
        f"target: {_yaml(target)}",
    ]
    if ids:
        lines.append(
            f"# Every column but the target and {', '.join(ids)}; or `all`, names, {{match: 'px_*'}}, {{range: [a, b]}}"
        )
        lines.append(f"inputs: {_input_list(table.columns, inputs)}")
    else:
        lines.append("# Every column but the target; or list names, {match: 'px_*'} and {range: [first, last]}.")
        lines.append("inputs: all")
    if classes is not None:
        lines.append(f"# The labels found in '{target}', in output order.")
        lines.append(f"classes: [{', '.join(_yaml(c) for c in classes)}]")
    lines += _layers(model, kind, n_classes)
    lines += [
        "training:",
        *schedule_lines(len(table.rows)),
        "  normalize: true   # standardise the inputs" + (" and the target" if kind == "regression" else ""),
        "  seed: 0",
    ]
    lines += _missing_policy(missing_rows, no_target, strays)
    if text_inputs:
        lines.append(f"  text_inputs: one_hot   # text columns: {', '.join(text_inputs[:5])}")
    text = "\n".join(lines) + "\n"
    return Plan(target, kind, classes, text_inputs, missing_rows, text, warnings, by_name, model_file)


def _look_first(
    table: Table, target: str, classes: list[str] | None, ids: list[str], strays: list[_Column]
) -> list[str]:
    """What the user should look at before training: stray text in number columns, columns left
    out as ids, a target that is an id."""
    warnings = _stray(table, strays)
    if ids:
        warnings.append(
            f"left out of the inputs: {listed(ids)}, text with a value of its own in (nearly) every row "
            "(a name or an id, which a model cannot learn from); add it to `inputs:` if it is a category"
        )
    if classes is not None and len(table.rows) >= 10 and len(classes) >= 0.9 * len(table.rows):
        warnings.append(
            f"the target '{target}' has a label of its own in (nearly) every row ({len(classes):,} labels in "
            f"{len(table.rows):,} rows), and a classifier learns a class from its rows: is it a name or an id? "
            "Give the column to learn with --target"
        )
    return warnings


def _layers(model: str, kind: str, n_classes: int) -> list[str]:
    """The spec's `layers:` and `loss:` lines for a target of this kind."""
    hidden = (
        [f"  - {{name: hidden, linear: {HIDDEN}, activation: relu}}   # a hidden layer; its name is how pages show it"]
        if model == "mlp"
        else []
    )
    if kind == "binary":
        out = ["  - {name: output, linear: 1, activation: sigmoid}   # the probability of the second class"]
        loss = "bce"
    elif kind == "classes":
        out = [f"  - {{name: output, linear: {n_classes}}}", "  - {softmax: true}   # one probability per class"]
        loss = "cross_entropy"
    else:
        out = ["  - {name: output, linear: 1}   # the predicted number"]
        loss = "mse"
    return ["layers:", *hidden, *out, f"loss: {loss}"]


def _missing_policy(missing_rows: int, no_target: int, strays: list[_Column]) -> list[str]:
    """The `training.missing:` line (with its comment) a table with missing cells needs to train."""
    if missing_rows > no_target:
        rows = "1 row lacks" if missing_rows - no_target == 1 else f"{missing_rows - no_target} rows lack"
        untargeted = "the row without a target is" if no_target == 1 else f"the {no_target} rows without a target are"
        return [
            f"  # {rows} an input: each missing input takes the training rows' mean (numbers) or most",
            "  # frequent value (text), kept in the model for predict; or drop: leave such rows out",
            "  missing: fill" + (f"   # and {untargeted} left out" if no_target else ""),
        ]
    if no_target:
        return [f"  missing: drop   # {no_target} row{'s' if no_target != 1 else ''} without a target"]
    if any(c.marks_missing for c in strays):
        return ["  missing: drop   # for the cells you empty (see above)"]
    return []


def model_file_of(spec_file: str) -> str:
    """The model file `treegrad train` writes for a spec without `name:`: its stem, `.model.json`."""
    return str(Path(spec_file).with_suffix("").name) + ".model.json"


def default_spec(data: Path) -> Path:
    """Where init writes the spec of `data` without -o: its stem, .yaml, in the current folder."""
    return Path(f"{data.stem or 'model'}.yaml")


def init_spec(
    data: Path, out: Path | None = None, *, target: str | None = None, model: str = "mlp", force: bool = False
) -> Plan:
    """Write a spec for the CSV file `data` to `out` (default: `default_spec`; never over `data`, nor
    over an existing file unless `force`), and return what was found."""
    out = default_spec(data) if out is None else out
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
    result = plan(table, Path(ref).as_posix(), target=target, model=model, spec_file=str(out))
    write_atomic(out, result.text, force=force)
    return result
