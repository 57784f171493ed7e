"""A saved model used: predictions for rows of inputs, beside a table's columns, and the
evaluation of a model on a table that has the target (`treegrad predict`, `treegrad eval`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..data.columns import drop_missing
from ..data.table import Table
from ..data.targets import encode_targets, select
from ..data.weighting import class_weights, row_weights, take_weight_column
from ..engine.compiled import predict_many
from .modelfile import Loaded
from .tasks import class_labels, decode, evaluate_rows


def predict(
    loaded: Loaded, rows: Sequence[Sequence[float]], describe_row: Callable[[int], str] | None = None
) -> list[dict[str, Any]]:
    """Decoded predictions for rows of raw input values (in input order)."""
    rec = loaded.record
    return [decode(rec.task, rec.classes, o) for o in predict_many(loaded.root, rows, describe_row)]


def with_predictions(table: Table, results: list[dict[str, Any]]) -> Table:
    """The table with the predictions added as columns (label and probability for classifiers)."""
    labelled = bool(results) and "label" in results[0]
    extra = ["prediction", "probability"] if labelled else ["prediction"]
    rows: list[list[Any]] = [
        [*row, r["label"], r["probability"]] if labelled else [*row, r["prediction"]]
        for row, r in zip(table.rows, results, strict=True)
    ]
    return Table(table.source, [*table.columns, *extra], rows)


def evaluate(loaded: Loaded, table: Any, target: str | None = None) -> dict[str, Any]:
    """Loss and metrics of a saved model on a table that has the target column."""
    rec = loaded.record
    settings = rec.training
    column = None
    if settings.missing == "drop":
        table, _ = drop_missing(table, [*rec.inputs, target or rec.data.target, settings.weight_column or ""])
    if settings.weight_column is not None and settings.weight_column in table.columns:
        table, column = take_weight_column(table, settings.weight_column)
    X, raw, _ = select(table, list(rec.inputs), target or rec.data.target)
    y, _ = encode_targets(raw, rec.task, rec.classes, source=table.source, training=False, place=table.place)
    labels = class_labels(rec.task, rec.classes, len(loaded.root.compiled_graph.elements))
    per_class = None
    if settings.class_weight is not None and labels is not None:
        per_class = class_weights(settings.class_weight, labels, y)
    weights = row_weights(y, per_class, column)
    return evaluate_rows(loaded.root, rec.task, rec.loss, X, y, weights=weights, labels=labels)
