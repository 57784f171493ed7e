"""What `trace` and `check` start from: a model and the rows of its data, read from a spec
(its initial parameters) or a model file (its learned ones), as training reads them; and
`check_spec`, `treegrad check` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.columns import model_inputs
from ..data.targets import encode_targets, input_rows, select
from ..engine.gradcheck import GradientCheck, gradient_check
from ..spec.build import loss_name
from .datasource import model_table, spec_table
from .modelfile import is_model_file, load
from .prepare import build_on, load_spec_file


@dataclass(kw_only=True)
class TraceSetup:
    """A model and the data to trace it on, read from a spec or a model file."""

    root: Any
    inputs: list[list[float]]
    targets: list[Any]
    loss: str
    learning_rate: float
    source: str
    classes: list[str] | None


def trace_setup(
    path: Path, data: str | None = None, learning_rate: float | None = None, rows: int | None = None
) -> TraceSetup:
    """The model of a spec (its initial parameters) or of a model file (learned ones), with its data.

    Data come from `data` or the spec's / model file's own source (`datasource`); rows keep
    the file's order (no shuffle, no validation split). A spec with `normalize: true`
    standardises with the statistics of all rows.
    """
    if is_model_file(path):
        loaded = load(path)
        rec = loaded.record
        table = model_table(rec, data)
        X, raw, _ = select(table, list(rec.inputs), rec.data.target)
        y, classes = encode_targets(raw, rec.task, rec.classes, source=table.source, training=False, place=table.place)
        lr = learning_rate if learning_rate is not None else rec.training.learning_rate
        return TraceSetup(
            root=loaded.root,
            inputs=X[:rows],
            targets=y[:rows],
            loss=rec.loss,
            learning_rate=lr,
            source=table.source,
            classes=classes,
        )
    from ..spec.build import loss_name, task_kind

    spec, _ = load_spec_file(path)
    spec, table, _ = model_inputs(spec, spec_table(spec, path, data), spec.target, spec.training)
    X, raw, _ = select(table, list(spec.inputs), spec.target)
    y, classes = encode_targets(
        raw, task_kind(spec), spec.classes, source=table.source, training=False, place=table.place
    )
    root, _ = build_on(spec, X, seed=spec.training.seed, normalize=spec.training.normalize)
    lr = learning_rate if learning_rate is not None else spec.training.learning_rate
    return TraceSetup(
        root=root,
        inputs=X[:rows],
        targets=y[:rows],
        loss=loss_name(spec),
        learning_rate=lr,
        source=table.source,
        classes=classes,
    )


@dataclass(kw_only=True)
class CheckSetup:
    """A spec to check, its model, and the rows of its data to check the gradients at (if any)."""

    spec: Any
    root: Any
    rows: list[list[float]] | None


def check_setup(spec_path: Path, data: str | None = None) -> CheckSetup:
    """The spec's model and the input rows of `data`, else of the spec's `data:` (none without
    either: the gradient check then draws random inputs)."""
    spec, _ = load_spec_file(spec_path)
    rows = None
    if data is not None or spec.data:
        spec, table, _ = model_inputs(spec, spec_table(spec, spec_path, data), spec.target, spec.training)
        rows = input_rows(table, list(spec.inputs))
    root, _ = build_on(spec, rows or [], normalize=spec.training.normalize)
    return CheckSetup(spec=spec, root=root, rows=rows)


@dataclass
class Checked:
    """What `treegrad check` found: the spec's model summarised, and its gradients against finite differences."""

    summary: list[tuple[str, str]]  # (what, its value): inputs, output, loss, parameters, nodes
    gradients: GradientCheck
    on_data: bool  # checked at rows of the data, else at random inputs


def check_spec(spec_path: Path, data: str | None = None) -> Checked:
    """`treegrad check`: the spec read and checked, its model summarised, and its gradients checked
    at rows of `data` (else of the spec's `data:`, else at random inputs)."""
    setup = check_setup(spec_path, data)
    g = setup.root.compiled_graph
    summary = [
        ("inputs", ", ".join(g.input_names)),
        ("output", "softmax" if g.is_softmax else (f"list of {len(g.elements)}" if g.is_list else "one value")),
        ("loss", loss_name(setup.spec)),
        ("parameters", str(len(g.params))),
        ("nodes", str(len(g.order))),
    ]
    return Checked(summary, gradient_check(setup.root, rows=setup.rows), bool(setup.rows))
