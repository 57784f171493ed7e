"""A saved model used: predictions for rows of inputs, beside a table's columns, and the
evaluation of a model on a table that has the target; `predict_file` and `evaluate_file` are
`treegrad predict` and `treegrad eval` on a model file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.csvfile import to_csv
from ..data.table import Table
from ..data.targets import encode_targets, input_array, select_arrays
from ..data.weighting import class_weights, row_weights, take_weight_column
from ..engine.compiled import predict_many
from ..errors import OptionError
from ..files import PREDICTIONS, write_atomic
from .datasource import model_views
from .modelfile import Loaded, load
from .provenance import column_names, range_warnings, table_range_warnings
from .tasks import check_finite, check_finite_metrics, class_labels, decode, evaluate_rows, scored_rows
from .values import data_columns, one_value_per_input, read_sample


def predict(loaded: Loaded, rows: Any, describe_row: Callable[[int], str] | None = None) -> list[dict[str, Any]]:
    """Decoded predictions for rows of raw input values (in input order): rows of numbers, or one
    array of shape (rows, inputs), which a model with dense layers computes as whole arrays."""
    rec = loaded.record
    if hasattr(rows, "shape"):
        outs, _ = scored_rows(loaded.root, rec.loss, rows, None, describe_row)
        return [decode(rec.task, rec.classes, o) for o in outs.tolist()]
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
    """Loss and metrics of a saved model on a table that has the target column, as the model reads
    it (`datasource.model_views`: recoded, its missing cells dropped or filled)."""
    rec = loaded.record
    settings = rec.training
    column = None
    if settings.weight_column is not None and settings.weight_column in table.columns:
        table, column = take_weight_column(table, settings.weight_column)
    X, raw, _ = select_arrays(table, list(rec.inputs), target or rec.data.target)
    y, _ = encode_targets(raw, rec.task, rec.classes, source=table.source, training=False, place=table.place)
    labels = class_labels(rec.task, rec.classes, len(loaded.root.compiled_graph.elements))
    per_class = None
    if settings.class_weight is not None and labels is not None:
        per_class = class_weights(settings.class_weight, labels, y)
    weights = row_weights(y, per_class, column)
    return evaluate_rows(loaded.root, rec.task, rec.loss, X, y, weights=weights, labels=labels)


@dataclass
class Predicted:
    """What `treegrad predict` found: the decoded predictions, and where each row is; for the rows
    of a table (--data), the table as read with the predictions beside its columns."""

    results: list[dict[str, Any]]
    place: Callable[[int], str]
    table: Table | None = None
    notes: list[str] = field(default_factory=list)  # rows left out or cells filled (the model's policy)

    def check_finite(self) -> None:
        """A TreegradError at the first row whose answer is not a finite number (printing needs one; JSON has null)."""
        check_finite(self.results, self.place)

    def csv(self) -> str:
        """The table with its predictions, as CSV."""
        assert self.table is not None
        return to_csv(self.table)

    def write(self, out: Path, *, force: bool = False) -> None:
        """Write the table with its predictions to `out` (over a file only if it holds earlier predictions)."""
        write_atomic(out, self.csv(), force=force, kind=PREDICTIONS, option="--out")


def predict_file(
    model: Path, values: Sequence[str] = (), *, data: str | None = None, warn: Callable[[str], None] = lambda _: None
) -> Predicted:
    """`treegrad predict`: a model file's prediction for the sample of `values` (as typed after
    MODEL), or for every row of `data`; inputs far outside their training ranges said through `warn`."""
    loaded = load(model)
    rec = loaded.record
    if values and data is not None:
        raise OptionError("give either VALUES or --data, not both", "VALUES")
    if data is None:
        if not values:
            raise OptionError(one_value_per_input(data_columns(rec)), "VALUES")
        return Predicted(predict(loaded, [read_sample(rec, values, warn)]), lambda i: "these inputs")
    views = model_views(rec, data)
    table = views.table
    rows = input_array(table, list(rec.inputs))
    for warning in range_warnings(rec.input_ranges, list(rec.inputs), rows, table.place, column_names(rec)):
        warn(warning)
    results = predict(loaded, rows, table.place)
    # Beside the user's own columns, for the rows kept.
    return Predicted(results, table.place, with_predictions(views.raw, results), views.notes())


@dataclass
class Evaluated:
    """What `treegrad eval` found: a model's loss and metrics on a table, and the class labels."""

    name: str  # the model's
    source: str  # the data's, as given
    loss: str
    metrics: dict[str, Any]
    labels: list[str]  # of the confusion matrix's rows and columns
    notes: list[str] = field(default_factory=list)  # rows left out or cells filled (the model's policy)


def evaluate_file(
    model: Path, data: str | None = None, target: str | None = None, warn: Callable[[str], None] = lambda _: None
) -> Evaluated:
    """`treegrad eval`: a model file evaluated on `data` (default: the data it was trained on), rows
    far outside the training ranges said through `warn`; a TreegradError if its answers overflow."""
    loaded = load(model)
    rec = loaded.record
    views = model_views(rec, data, target=target or rec.data.target)
    table = views.table
    m = evaluate(loaded, table, target)
    # After evaluate has read the cells as numbers; warned about are the rows it kept.
    for warning in table_range_warnings(rec, table, (target or rec.data.target, rec.training.weight_column)):
        warn(warning)
    check_finite_metrics(m, table.source)
    labels = (class_labels(rec.task, rec.classes, len(m["confusion"])) or []) if "confusion" in m else []
    return Evaluated(rec.name, data or rec.data.source, rec.loss, m, labels, views.notes())
