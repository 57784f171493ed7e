"""From a table to a model's inputs and targets: columns selected by name, input cells as
numbers, target cells as numbers (regression) or class indices, each bad cell reported where it is.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import DataError, describe_char, did_you_mean, escaped, listed, unprintable
from ..errors import clip as _clip
from ..limits import MAX_CLASSES
from .table import Cell, Column, Table, is_number, number, row_place


def _column_index(table: Table, column: str, role: str) -> int:
    if column in table.columns:
        return table.columns.index(column)
    raise DataError(
        f"{role} column '{column}' is not in {table.source}{did_you_mean(column, table.columns)} "
        f"Its columns are: {listed(table.columns)}."
    )


def _bad_number(cell: Cell) -> str:
    if cell == "":
        return "is empty (or a marker of a missing value, such as NA)"
    if isinstance(cell, str) and is_number(cell):
        return f"is '{_clip(cell)}', not a finite number"
    return f"is '{_clip(str(cell))}', not a number"


def select(table: Table, inputs: list[str], target: str | None) -> tuple[list[list[float]], list[Cell], str]:
    """(input rows in the order of `inputs`, raw target cells, target column name).

    With `target` None the target is the one column that is not an input.
    """
    X, raw, target = select_arrays(table, inputs, target)
    return X.tolist(), raw, target


def select_arrays(table: Table, inputs: list[str], target: str | None) -> tuple[Any, list[Cell], str]:
    """`select` with the inputs as one float64 array of shape (rows, inputs)."""
    idx = [_column_index(table, c, "input") for c in inputs]
    if target is None:
        rest = [c for c in table.columns if c not in inputs]
        if not rest:
            raise DataError(
                f"every column of {table.source} is an input ({', '.join(table.columns)}), "
                "so there is no target; add the target column, or drop one input from `inputs:`"
            )
        if len(rest) > 1:
            raise DataError(
                f"{table.source} has several columns that are not inputs ({', '.join(rest)}); "
                "say which one is the target with --target NAME (or `target:` in the spec)"
            )
        target = rest[0]
    elif target in inputs:
        raise DataError(f"column '{target}' of {table.source} is both an input and the target; remove it from one")
    t = _column_index(table, target, "target")
    return _numbers(table, idx), table.column(t).cells(), target


def input_rows(table: Table, inputs: list[str]) -> list[list[float]]:
    """The input columns only, in the order of `inputs` (for predicting; no target needed)."""
    return input_array(table, inputs).tolist()  # type: ignore[no-any-return]


def input_array(table: Table, inputs: list[str]) -> Any:
    """`input_rows` as one float64 array of shape (rows, inputs)."""
    return _numbers(table, [_column_index(table, c, "input") for c in inputs])


def _numbers(table: Table, idx: list[int]) -> Any:
    """Columns `idx` as one float64 array (rows, columns), or a DataError naming the first bad
    cell (the first row that has one, and in it the first of `idx`)."""
    import numpy as np

    X = np.empty((table.size, len(idx)))
    first: tuple[int, int] | None = None  # (row, position in idx) of the first bad cell
    for k, j in enumerate(idx):
        column = table.column(j)
        X[:, k] = column.numbers
        bad = np.flatnonzero(~np.isfinite(column.numbers))
        if len(bad) and (first is None or int(bad[0]) < first[0]):
            first = (int(bad[0]), k)
    if first is not None:
        i, k = first
        v = table.column(idx[k]).cell(i)
        raise DataError(
            f"{table.place(i)}, column '{table.columns[idx[k]]}': the input {_bad_number(v)}; fix or remove that row"
        )
    return X


def label_text(v: Cell) -> str:
    """The canonical text of a class label: 1.0 -> "1", 2.5 -> "2.5", text unchanged."""
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if math.isfinite(v) and v.is_integer():
        return str(int(v))
    return repr(v)


def label_counts(column: Column) -> Counter[str]:
    """How many cells of a column have each label text (`label_text`; a missing cell is ""), by
    whole arrays: its text cells as they are, its numbers by their distinct values."""
    import numpy as np

    texts = column.text_mask()
    counts: Counter[str] = Counter(column.texts[texts].tolist() if column.texts is not None else ())
    values, times = np.unique(column.numbers[~texts], return_counts=True)
    for v, k in zip(values.tolist(), times.tolist()):
        counts[label_text(v)] += k
    return counts


def _label_order(text: str) -> tuple[int, float, str]:
    # Numeric labels in numeric order ("2" before "10"), then text labels alphabetically.
    value = number(text)
    return (0, value, text) if value is not None and math.isfinite(value) else (1, 0.0, text)


def label_texts(raw: list[Cell], place: Callable[[int], str]) -> list[str]:
    """Each target cell's label text (`label_text`); an empty or unprintable one is refused
    where it is (`place(i)`), before any class is counted or looked up."""
    out: list[str] = []
    checked: dict[Cell, str] = {}  # each distinct cell checked once: labels repeat
    for i, v in enumerate(raw):
        text = checked.get(v)
        if text is None:
            text = label_text(v)
            if text == "":
                raise DataError(f"{place(i)}: the target is empty; give every row a label")
            bad = unprintable(text)
            if bad is not None:
                raise DataError(
                    f"{place(i)}: the label {escaped(_clip(text))!r} holds {describe_char(bad)}; "
                    "labels are printed, so remove it"
                )
            checked[v] = text
        out.append(text)
    return out


def encode_targets(
    raw: list[Cell],
    kind: str,
    classes: list[str] | None = None,
    source: str = "",
    training: bool = True,
    place: Callable[[int], str] | None = None,
) -> tuple[list[float] | list[int], list[str] | None]:
    """Targets as a model needs them, and the class names (None for regression).

    With `training` (the default) a constant regression target is refused: there is
    nothing to learn. Evaluating a trained model on such data is fine.

    kind "regression": the numbers; "binary": 0.0/1.0 for the first/second of two classes;
    "classes": indices into `classes` (default: the distinct labels, sorted).
    """
    where = source or "the data"
    at = place or (lambda i: row_place(where, i))  # where raw[i] is, for messages
    if not raw:
        raise DataError(f"{where} has no rows, so there are no targets")
    if kind == "regression":
        values: list[float] = []
        for i, v in enumerate(raw):
            if isinstance(v, str) or not math.isfinite(v):
                hint = (
                    "fill in or remove that row"
                    if v == ""
                    else "a regression target must be a number (for labels, use a sigmoid or softmax output)"
                )
                raise DataError(f"{at(i)}: the target {_bad_number(v)}; {hint}")
            values.append(float(v))
        if training:
            check_varies(values, where)
        return values, None
    if kind not in ("binary", "classes"):
        raise DataError(f"unknown kind of target '{kind}'; use regression, binary or classes")
    labels = label_texts(raw, at)
    if classes is None:
        classes = class_order(labels)
        if kind == "classes" and len(classes) > MAX_CLASSES:
            raise DataError(
                f"the target in {where} has {len(classes):,} classes, more than the {MAX_CLASSES:,} a classifier "
                f"takes (its confusion matrix alone would hold {len(classes) ** 2:,} cells): "
                "a value of its own in nearly every row is an id or a number; for a number, train a "
                "regression (a linear output, loss: mse), or group the labels into fewer classes"
            )
    else:
        classes = list(classes)
        known = set(classes)
        for i, text in enumerate(labels):
            if text not in known:
                raise DataError(
                    f"{at(i)}: the label '{_clip(text)}' is not one of the known classes "
                    f"({', '.join(classes)}); fix the label or the list of classes"
                )
    if kind == "binary":
        if len(classes) < 2:
            raise DataError(
                f"the target in {where} has a single class ({', '.join(classes)}): nothing to learn; "
                "a binary target needs two labels"
            )
        if len(classes) > 2:
            shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
            raise DataError(
                f"the target in {where} has {len(classes)} classes ({shown}) but a binary output "
                "tells two apart; use a softmax output for several classes"
            )
        second = classes[1]
        return [1.0 if text == second else 0.0 for text in labels], classes
    if len(classes) < 2:
        raise DataError(
            f"the target in {where} has fewer than two classes ({', '.join(classes)}): nothing to learn; "
            "a classifier needs at least two labels"
        )
    index = {c: k for k, c in enumerate(classes)}
    return [index[text] for text in labels], classes


def check_varies(values: Sequence[float], where: str) -> None:
    """Refuse a regression target that is the same number in every row: nothing to learn."""
    if all(v == values[0] for v in values):
        raise DataError(
            f"the target in {where} is {label_text(values[0])} in every row: nothing to learn; check the target column"
        )


def class_order(labels: Iterable[str]) -> list[str]:
    """The distinct class labels in their order: numbers by value ("2" before "10"), then text."""
    return sorted(set(labels), key=_label_order)
