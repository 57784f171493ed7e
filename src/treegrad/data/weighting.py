"""How much each row counts: class weights and a weight column.

A row's weight is its class's weight (classifiers with `class_weight`) times its value in the
weight column (`weight_column`), 1 for what is not given. `balanced` gives class c the weight
n / (k * n_c) over the n rows of k classes (scikit-learn's rule), so every class adds up to
the same total and a class of 5% counts as much as one of 95%.

Training multiplies each sample's loss and gradient by its weight (fit's `sample_weight`);
`eval` reports the loss and accuracy both weighted and unweighted (tasks.evaluate_rows).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import DataError, SpecError, did_you_mean, listed
from .parts import WHOLE, Part
from .table import Table
from .targets import input_array


def class_weights(
    setting: str | Mapping[str, float] | None, labels: Sequence[str], y: Sequence[Any], part: Part = WHOLE
) -> list[float]:
    """The weight of each class (by index into `labels`) for `class_weight` = setting, from the
    targets `y` (class indices, or 0.0/1.0 for a binary model; with `part`, of every part)."""
    if setting is None:
        return [1.0] * len(labels)
    if setting == "balanced":
        counts = part.counts(int(t) for t in y)
        n, k = sum(counts.values()), len(labels)
        return [n / (k * counts[c]) if counts[c] else 1.0 for c in range(k)]
    assert not isinstance(setting, str)
    for label in setting:
        if label not in labels:  # the classes of every part: each process finds it (parts.py)
            part.fail(
                SpecError(
                    f"training.class_weight: '{label}' is not a class{did_you_mean(label, list(labels))} "
                    f"The classes are: {', '.join(labels)}"
                )
            )
    return [float(setting.get(label, 1.0)) for label in labels]


def check_weight_role(column: str | None, inputs: Sequence[str], target: str | None, part: Part = WHOLE) -> None:
    """Refuse the target or one of the model's `inputs` (those the spec names) as the weight
    column, before the column is taken out of the table: a column has one role."""
    if column is not None and (column == target or column in inputs):
        role = "the target" if column == target else "an input of the model"
        fix = "" if column == target else f", or take '{column}' out of inputs:"
        own = f"the weights are a column of their own: name it{fix}"
        part.fail(DataError(f"training.weight_column: '{column}' is {role}; {own}"))


def take_weight_column(table: Table, column: str | None, part: Part = WHOLE) -> tuple[Table, list[float] | None]:
    """(the table without the weight column, the column's values) — or the table as it is and None.
    With `part`, every part's cells are numbers before any is checked to be >= 0, as in one table."""
    if column is None:
        return table, None
    if column not in table.columns:  # the header is every part's (parts.py)
        part.fail(
            DataError(
                f"training.weight_column: {table.source} has no column '{column}'"
                f"{did_you_mean(column, table.columns)} Its columns are: {listed(table.columns)}"
            )
        )
    values = part.agree(lambda: input_array(table, [column]))[:, 0].tolist()

    def check() -> None:
        bad = next((i for i, w in enumerate(values) if not (math.isfinite(w) and w >= 0)), None)
        if bad is not None:
            raise DataError(
                f"{table.place(bad)}, column '{column}': the weight {values[bad]} is not a number >= 0; fix that row"
            )

    part.agree(check)
    j = table.columns.index(column)
    rest = table.derived([c for c in table.columns if c != column], data=table.data[:j] + table.data[j + 1 :])
    return rest, values


def row_weights(
    y: Sequence[Any], per_class: Sequence[float] | None, column: Sequence[float] | None
) -> list[float] | None:
    """Each row's weight: its class's weight times its weight-column value; None when all are 1."""
    if per_class is None and column is None:
        return None
    out = [1.0] * len(y)
    if per_class is not None:
        out = [per_class[int(t)] for t in y]
    if column is not None:
        out = [w * c for w, c in zip(out, column, strict=True)]
    return out
