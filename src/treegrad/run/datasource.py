"""Which data a command reads: one rule for train, check, trace, eval, predict and plot.

`--data` names a built-in dataset or a CSV path from the current folder. Without it, a
spec's `data:` is a path from the spec's folder, and a model file's training source is
read again (a relative path from the current folder, else from its spec's folder).
Generated datasets are always drawn with the same seed (`load_data`'s default), never
the training seed: `line` is the same points in every command, so `eval` of a model
trained without a validation split reports exactly the summary's training loss.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.columns import Recoding, drop_missing, recode
from ..data.generated import GENERATORS
from ..data.missing import fill, first_missing, said
from ..data.parts import WHOLE, Part
from ..data.readers import BY_SUFFIX, load_data
from ..data.split import split_indices
from ..data.table import MISSING_VALUES, Table
from ..data.targets import encode_targets, select
from ..data.weighting import class_weights, row_weights, take_weight_column
from ..errors import DataError, TreegradError
from .modelfile import ModelRecord
from .tasks import class_labels


def pick_table(
    data: str | None,
    default: str | None,
    folders: list[Path],
    missing: str,
    named_in: str | None = None,
    part: Part = WHOLE,
    markers: Collection[str] = MISSING_VALUES,
    progress: Callable[[str, int], None] | None = None,
) -> Table:
    """The table `data` names (from the current folder), else `default` read from the first
    of `folders` where it exists; `missing` is the message when neither is given. `named_in`
    is the file that names `default` when the user may not trust it (see `load_data`);
    `markers`, the texts of a missing cell (a spec's `missing_values:`); `progress` as `load_data`'s."""
    if data is not None:
        try:
            return load_data(data, base_dir=Path.cwd(), part=part, missing=markers, progress=progress)
        except DataError as e:
            _suggest_csv(e, data, Path.cwd(), "--data ")
            raise
    if not default:
        part.fail(DataError(missing))  # every process finds it: rank 0 reports it
    first, *others = folders
    try:
        return load_data(default, base_dir=first, named_in=named_in, part=part, missing=markers, progress=progress)
    except DataError:
        for folder in others:
            if not Path(default).is_absolute() and (folder / default).exists():
                return load_data(
                    default, base_dir=folder, named_in=named_in, part=part, missing=markers, progress=progress
                )
        raise


def spec_table(
    spec: Any,
    spec_path: Path,
    data: str | None,
    part: Part = WHOLE,
    progress: Callable[[str, int], None] | None = None,
) -> Table:
    """The data for a spec: `data`, else the spec's own `data:` (a path from the spec's folder);
    with `part`, this process's part of it; `progress(source, rows)` hears of the rows read so far."""
    try:
        return pick_table(
            data,
            spec.data,
            [spec_path.parent],
            f"{spec_path} names no data: pass --data NAME or --data FILE.csv "
            "(see `treegrad datasets`), or add `data:` to the spec",
            part=part,
            markers=missing_values(spec),
            progress=progress,
        )
    except DataError as e:
        if data is None and spec.data:
            _suggest_csv(e, spec.data, spec_path.parent, "data: ")
        raise


def missing_values(spec: Any) -> Collection[str]:
    """The texts a spec reads as a missing cell: its `missing_values:`, else MISSING_VALUES."""
    given = getattr(spec, "missing_values", None)
    return MISSING_VALUES if given is None else tuple(given)


def recorded_missing_values(record: ModelRecord) -> Collection[str]:
    """The texts the spec inside a model file reads as a missing cell (`missing_values`)."""
    from ..spec.models import parse_spec

    try:
        return missing_values(parse_spec(record.spec_text))
    except TreegradError:  # the model's load reports a spec that no longer validates
        return MISSING_VALUES


def _suggest_csv(error: DataError, name: str, base: Path, option: str) -> None:
    """Add "did you mean …?" to `error` when `name` is a bare word that is no built-in dataset
    and NAME.csv (or NAME with another reader's suffix) exists in `base`, the current folder, or a
    datasets/ folder in either (the suggestion is a path from `base`, as `option` takes it)."""
    word = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9_-]+", word) or word in GENERATORS or (base / word).exists():
        return
    for folder in dict.fromkeys([base, Path.cwd()]):
        for found in (place / f"{word}{suffix}" for place in (folder, folder / "datasets") for suffix in BY_SUFFIX):
            if found.is_file():
                path = Path(os.path.relpath(found.resolve(), base.resolve())).as_posix()
                error.args = (f"{error} Did you mean {option}{path}?", *error.args[1:])
                return


def recorded_recoding(record: ModelRecord) -> Recoding:
    """The recoding a model file records (renamed and one-hot columns, the values missing cells take)."""
    return Recoding(
        dict(record.renamed or {}), dict(record.encodings or {}), list(record.inputs), dict(record.fill or {})
    )


@dataclass
class Views:
    """A table as a saved model reads it, under the model's missing-value policy (data/missing.py)."""

    raw: Table  # the rows kept, with the user's own columns (text, names as in the CSV), to write beside
    table: Table  # the same rows as the model reads them: filled, renamed, one-hot
    dropped: int  # rows left out for a missing cell
    filled: int  # missing input cells filled with the model's recorded values
    policy: str = "error"  # the model's training.missing

    def notes(self) -> list[str]:
        """What the policy did to the rows read, in words (nothing when it did nothing)."""
        return said(self.raw.source, self.raw.size, self.dropped, self.filled, self.policy)


def model_table(record: ModelRecord, data: str | None = None) -> Table:
    """The table `data` names, or the one the model was trained on, as the model reads it with its
    target (renamed and one-hot columns as recorded, rows and cells under its missing-value policy).

    A training source that is a relative path was relative to the current folder or to
    the spec's folder: both are tried.
    """
    return model_views(record, data, target=record.data.target).table


def model_views(record: ModelRecord, data: str | None = None, *, target: str | None = None) -> Views:
    """The table `data` names (or the model's training data) as read and as the model reads it: the
    same rows, left out or filled as the model's `training.missing` says; `target` (and the weight
    column) is needed too, for an evaluation."""
    return policy_views(record, _model_table(record, data), target)


def recorded_table(record: ModelRecord, data: str | None = None) -> Table:
    """The table `data` names, or the one the model was trained on, as read (before recoding)."""
    return _model_table(record, data)


def policy_views(record: ModelRecord, table: Table, target: str | None = None) -> Views:
    """`table` under a model's missing-value policy, then recoded: with `error` a missing input is
    refused by its CSV column; `drop` leaves out rows with a missing input (or `target`, or weight);
    `fill` fills the inputs with the recorded values and leaves out rows without `target` or weight."""
    recoding = recorded_recoding(record)
    policy, inputs = record.training.missing, recoding.columns()
    weight = record.training.weight_column
    needed = [c for c in (target, weight if target is not None else None) if c is not None]
    filled, dropped = 0, 0
    if policy == "error":
        gap = first_missing(table, inputs)
        if gap is not None:
            raise DataError(
                f"{table.place(gap[0])}, column '{gap[1]}': the input is missing, and the model was trained "
                "with training.missing: error; fill in that cell, or leave out that row"
            )
    elif policy == "drop":
        table, dropped = drop_missing(table, [*inputs, *needed])
    else:
        table, dropped = drop_missing(table, needed)
        raw, (table, filled) = table, fill(table, recoding.fill)
        return Views(raw, recode(table, recoding), dropped, filled, policy)  # raw: the cells as the user has them
    return Views(table, recode(table, recoding), dropped, filled, policy)


def _model_table(record: ModelRecord, data: str | None = None) -> Table:
    named_in = "the model file"
    table = pick_table(
        data,
        record.data.source,
        [Path.cwd(), Path(record.spec_file).parent],
        "the model names no training data: pass --data NAME or --data FILE.csv",
        named_in,
        markers=recorded_missing_values(record),
    )
    if data is not None:
        return table
    # The model file, not the user, named this data: a message must not quote its cells or
    # columns (an edited model file could point at any file), so its fit is checked here.
    try:
        view = policy_views(record, table, record.data.target).table
        _, raw, _ = select(view, list(record.inputs), record.data.target)
        encode_targets(raw, record.task, record.classes, source=table.source, training=False, place=table.place)
    except DataError:
        raise DataError(
            f"{record.data.source}, the training data named in {named_in}, does not fit the model "
            "(columns or cells differ); pass the data with --data FILE.csv"
        ) from None
    return table


Rows = tuple[list[list[float]], list[Any]]


def recorded_split(record: ModelRecord, data: str | None = None) -> tuple[Rows, Rows]:
    """((X, y) training, (X, y) validation): the model's data (or `data`) split as in training.

    The split is the one `train` made, from the recorded seed and validation fraction, so
    the rows are the same when the data is the same. A model whose training data cannot be
    read any more gets a DataError that says to pass the data.
    """
    train, validation, _ = recorded_training(record, data)
    return train, validation


def recorded_training(record: ModelRecord, data: str | None = None) -> tuple[Rows, Rows, list[float] | None]:
    """(training rows, validation rows, each training row's weight) as `recorded_split` gives the
    rows, and the weights the run gave them (class weights and a weight column; None: 1 each)."""
    try:
        table = model_table(record, data)
    except DataError as e:
        raise DataError(
            f"this needs the data the model was trained on, and {e}; pass it with --data FILE.csv"
        ) from None
    settings = record.training
    table, column = take_weight_column(table, settings.weight_column)
    X, raw, _ = select(table, list(record.inputs), record.data.target)
    y, _ = encode_targets(raw, record.task, record.classes, source=table.source, training=False, place=table.place)
    train_rows, val_rows = split_indices(len(X), settings.validation_split, settings.seed)
    ytr = [y[i] for i in train_rows]
    per_class = None
    if settings.class_weight is not None:
        outputs = len(record.classes) if record.classes and record.task == "classes" else 1
        per_class = class_weights(settings.class_weight, class_labels(record.task, record.classes, outputs) or [], ytr)
    weights = row_weights(ytr, per_class, None if column is None else [column[i] for i in train_rows])
    return ([X[i] for i in train_rows], ytr), ([X[i] for i in val_rows], [y[i] for i in val_rows]), weights
