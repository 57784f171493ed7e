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
from pathlib import Path
from typing import Any

from ..data.columns import Recoding, drop_missing, recode
from ..data.generated import GENERATORS
from ..data.parts import WHOLE, Part
from ..data.readers import BY_SUFFIX, load_data
from ..data.split import split_indices
from ..data.table import Table
from ..data.targets import encode_targets, select
from ..data.weighting import class_weights, row_weights, take_weight_column
from ..errors import DataError
from .modelfile import ModelRecord
from .tasks import class_labels


def pick_table(
    data: str | None,
    default: str | None,
    folders: list[Path],
    missing: str,
    named_in: str | None = None,
    part: Part = WHOLE,
) -> Table:
    """The table `data` names (from the current folder), else `default` read from the first
    of `folders` where it exists; `missing` is the message when neither is given. `named_in`
    is the file that names `default` when the user may not trust it (see `load_data`)."""
    if data is not None:
        try:
            return load_data(data, base_dir=Path.cwd(), part=part)
        except DataError as e:
            _suggest_csv(e, data, Path.cwd(), "--data ")
            raise
    if not default:
        part.fail(DataError(missing))  # every process finds it: rank 0 reports it
    first, *others = folders
    try:
        return load_data(default, base_dir=first, named_in=named_in, part=part)
    except DataError:
        for folder in others:
            if not Path(default).is_absolute() and (folder / default).exists():
                return load_data(default, base_dir=folder, named_in=named_in, part=part)
        raise


def spec_table(spec: Any, spec_path: Path, data: str | None, part: Part = WHOLE) -> Table:
    """The data for a spec: `data`, else the spec's own `data:` (a path from the spec's folder);
    with `part`, this process's part of it."""
    try:
        return pick_table(
            data,
            spec.data,
            [spec_path.parent],
            f"{spec_path} names no data: pass --data NAME or --data FILE.csv "
            "(see `treegrad datasets`), or add `data:` to the spec",
            part=part,
        )
    except DataError as e:
        if data is None and spec.data:
            _suggest_csv(e, spec.data, spec_path.parent, "data: ")
        raise


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
    """The recoding a model file records (renamed and one-hot columns)."""
    return Recoding(dict(record.renamed or {}), dict(record.encodings or {}), list(record.inputs))


def model_table(record: ModelRecord, data: str | None = None) -> Table:
    """The table `data` names, or the one the model was trained on, as the model reads it
    (renamed and one-hot columns as recorded).

    A training source that is a relative path was relative to the current folder or to
    the spec's folder: both are tried.
    """
    return model_views(record, data)[1]


def model_views(record: ModelRecord, data: str | None = None) -> tuple[Table, Table]:
    """(the table as read, as `model_table` gives it): the same rows, the first with the
    user's own columns (text, names as in the CSV), to write predictions beside."""
    raw = _model_table(record, data)
    return raw, recode(raw, recorded_recoding(record))


def recorded_table(record: ModelRecord, data: str | None = None) -> Table:
    """The table `data` names, or the one the model was trained on, as read (before recoding)."""
    return _model_table(record, data)


def _model_table(record: ModelRecord, data: str | None = None) -> Table:
    named_in = "the model file"
    table = pick_table(
        data,
        record.data.source,
        [Path.cwd(), Path(record.spec_file).parent],
        "the model names no training data: pass --data NAME or --data FILE.csv",
        named_in,
    )
    if data is not None:
        return table
    # The model file, not the user, named this data: a message must not quote its cells or
    # columns (an edited model file could point at any file), so its fit is checked here.
    try:
        view = recode(table, recorded_recoding(record))
        if record.training.missing == "drop":
            view, _ = drop_missing(view, [*record.inputs, record.data.target])
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
    if settings.missing == "drop":  # the rows train kept, so that the split is the same
        weight = [settings.weight_column] if settings.weight_column else []
        table, _ = drop_missing(table, [*record.inputs, record.data.target, *weight])
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
