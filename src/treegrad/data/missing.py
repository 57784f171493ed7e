"""Missing cells, and what a model does with them: `training.missing`, its policy.

A cell is missing when it is empty; the readers read the markers other tools write for "no
value" as empty. A model reads some columns (its inputs, the target, a weight column), and its
policy says what a missing cell in one of them does, in training and in every later use of the
model file alike:

- `error`: it stops the command, naming the cell's row and column (the default of a spec);
- `drop`: its row is left out (of training, evaluation and predictions), and the count is said;
- `fill`: a missing input takes the training rows' mean (a column of numbers) or their most
  frequent value (a column of text), values the model file records (`fill`) so that predict and
  eval fill exactly as training did; a row whose target or weight is missing is left out, since
  neither can be made up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..errors import DataError
from .parts import WHOLE, Part
from .table import Cell, Column, Table
from .targets import label_counts

POLICIES = ("error", "drop", "fill")
Fill = dict[str, float | str]  # column -> the value its missing cells take


def is_missing(cell: Cell) -> bool:
    """Whether a cell holds no value (the readers make every missing marker an empty cell)."""
    return cell == ""


def missing_rows(table: Table, columns: Sequence[str]) -> list[int]:
    """The rows of `table` (indices) with a missing cell in any of `columns` present in it."""
    return _missing(table, columns).nonzero()[0].tolist()  # type: ignore[no-any-return]


def _missing(table: Table, columns: Sequence[str]) -> Any:
    """A boolean array: the rows with a missing cell in any of `columns` present in `table`."""
    import numpy as np

    mask = np.zeros(table.size, bool)
    for c in dict.fromkeys(columns):
        if c in table.columns:
            mask |= table.column(table.columns.index(c)).missing()
    return mask


def first_missing(table: Table, columns: Sequence[str]) -> tuple[int, str] | None:
    """(row, column) of the first missing cell of `columns` in `table`, in reading order, or None."""
    first: tuple[int, str] | None = None
    for c in dict.fromkeys(columns):
        if c in table.columns:
            rows = table.column(table.columns.index(c)).missing().nonzero()[0]
            if len(rows) and (first is None or int(rows[0]) < first[0]):
                first = (int(rows[0]), c)
    return first


def fill_values(table: Table, columns: Sequence[str], text: set[str], rows: Sequence[int], part: Part = WHOLE) -> Fill:
    """The value each of `columns` fills its missing cells with: over `rows` (the training rows,
    indices into the table's rows) of every part, the mean of a column's numbers, or for a column in
    `text` its most frequent value (of equally frequent ones, the first in sorted order)."""
    import numpy as np

    at = np.asarray(rows, dtype=np.intp)
    values: Fill = {}
    for c in columns:
        column = table.column(table.columns.index(c)).take(at)
        texts = column.text_mask()
        if c in text:
            # Every present cell as the one-hot encoding reads it (label_text): a category that
            # looks like a number ("10") counts as much as one that does not.
            mine = label_counts(column)
            del mine[""]  # the missing cells
            counts = part.counts(mine)  # a Counter of a Counter keeps its counts
            if counts:
                values[c] = min(counts, key=lambda v: (-counts[v], v))
        else:
            numbers = column.numbers[~texts]
            numbers = numbers[np.isfinite(numbers)]
            sums = part.gather((math.fsum(numbers.tolist()), len(numbers)))
            count = sum(n for _, n in sums)
            if count:
                mean = math.fsum(s for s, _ in sums) / count
                if math.isfinite(mean):
                    values[c] = mean
        if c not in values:
            part.fail(
                DataError(
                    f"column '{c}' of {table.source} has no value in the training rows to fill its missing "
                    "cells with; leave it out of the inputs, or use training.missing: drop"
                )
            )
    return values


def fill(table: Table, values: Fill) -> tuple[Table, int]:
    """(`table` with each missing cell of a column in `values` set to that column's value, how many
    cells were filled). Columns of `values` that the table lacks are left to the column checks."""
    data = list(table.data)
    filled = 0
    for c, v in values.items():
        if c not in table.columns:
            continue
        j = table.columns.index(c)
        gaps = data[j].missing()
        if not gaps.any():
            continue
        filled += int(gaps.sum())
        numbers, texts = data[j].numbers.copy(), data[j].texts.copy()
        if isinstance(v, str):
            texts[gaps] = v
        else:
            numbers[gaps], texts[gaps] = v, None
        data[j] = Column(numbers, texts if Column._any_text(texts) else None)
    return (table.derived(table.columns, index=table.index, data=data) if filled else table), filled


def said(source: str, kept: int, dropped: int, filled: int, policy: str) -> list[str]:
    """What a policy did to the rows of `source`, in words (nothing when it did nothing): `kept` rows
    kept, `dropped` left out, `filled` cells filled."""
    out = []
    if dropped:
        out.append(
            f"left out {dropped} of {kept + dropped} rows of {source} with a missing cell "
            f"(training.missing is {policy}{': a row without its target' if policy == 'fill' else ''})"
        )
    if filled:
        out.append(
            f"filled {filled} missing input cell{'s' if filled != 1 else ''} of {source} with the training "
            "rows' mean or most frequent value (training.missing: fill)"
        )
    return out
