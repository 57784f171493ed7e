"""What the commands do, as library functions: train a spec on data and save the model,
load a saved model, predict, evaluate. The CLI calls these and only renders the results.

Data flows one way: spec file -> spec -> nodes -> compiled graph -> fit -> model file ->
predict/show/eval.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..data.columns import Recoding, drop_missing, model_inputs
from ..data.parts import WHOLE, Part
from ..data.split import split_indices, standardize_stats
from ..data.table import Numbering, Table, row_place
from ..data.targets import check_varies, class_order, encode_targets, input_rows, label_texts, select
from ..data.weighting import class_weights, row_weights, take_weight_column
from ..engine.compiled import predict_many, program
from ..engine.fit import DIVERGED_ADVICE, History, _check_weights, fit
from ..errors import DataError, SpecError, TrainingError
from ..files import check_output
from .datasource import model_table, recorded_table, spec_table
from .diagnose import dead_unit_warning
from .modelfile import (
    FORMAT,
    VERSION,
    DataInfo,
    HistoryInfo,
    Lineage,
    Loaded,
    ModelRecord,
    Task,
    check_replace,
    is_model_file,
    load,
    save,
)
from .provenance import Provenance, describe, input_ranges
from .resume import Continuation, check_same_data, continuation, resumed_lineage, saved_state, start_from
from .runlog import RunLog, dump, resolved_spec
from .tasks import accuracy, class_labels, decode, evaluate_rows

# Losses in the target's units, for which a standardised target trains the same model better
# conditioned: training.normalize standardises the target too (mse scales by std^2, mae by std).
SCALED_LOSSES = {"mse": 2, "mae": 1}

Progress = Callable[[int, float, "float | None", "dict[str, float]"], None]


@dataclass
class Trained:
    """The outcome of `train`: the model, its record (as saved), and what happened."""

    root: Any
    record: ModelRecord
    history: History
    seconds: float
    out: Path | None
    parameter_count: int
    node_count: int
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)


def load_spec_file(path: Path, sets: Sequence[tuple[Any, Any]] = ()) -> tuple[Any, str]:
    """(spec, its text as written) for a spec file, with `sets` (--set KEY=VALUE) applied (settings.load)."""
    from ..spec.models import load_spec

    if sets:
        from ..spec.settings import load

        return load(path, sets)
    spec = load_spec(path)
    return spec, path.read_text(encoding="utf-8-sig")


def training_settings(spec: Any, overrides: dict[str, Any], sets: Sequence[tuple[Any, Any]] = ()) -> Any:
    """The spec's `training:` (with `sets` already in it) and the options --epochs, ... applied
    and validated; a setting given both ways is refused."""
    from pydantic import ValidationError

    from ..spec.settings import clashes

    given = {k: v for k, v in overrides.items() if v is not None}
    clashes(given, sets)
    if not given:
        return spec.training
    cls = type(spec.training)
    try:
        settings = cls.model_validate({**spec.training.model_dump(), **given})
    except ValidationError as e:
        err = e.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "?"
        raise SpecError(f"--{key.replace('_', '-')}: {err['msg']} (got {err.get('input')!r})") from None
    return settings


def _targets(
    spec: Any, kind: str, raw: list[Any], table: Table, classes: list[str] | None, part: Part = WHOLE
) -> tuple[list[Any], list[str] | None]:
    """The targets of `raw` (cells of `table`) and the class names; with `part`, the classes
    and the checks are those of every part's rows together."""
    from ..spec.build import output_count

    if not part.alone and kind != "regression":
        # One process checks every row's label before it counts the classes or looks them up:
        # the parts check theirs together first, so that the first bad label in the file is reported.
        labels = part.agree(lambda: label_texts(raw, table.place))
        if classes is None:
            classes = class_order(part.union(labels))

    def encode() -> tuple[list[Any], list[str] | None]:
        if not raw and not part.alone:  # a part without rows (more processes than rows): the others have them
            return [], classes
        return encode_targets(raw, kind, classes, source=table.source, training=part.alone, place=table.place)

    y, found = part.agree(encode)
    if not part.alone and kind == "regression":
        ends = [e for e in part.gather((min(y), max(y)) if y else None) if e is not None]
        part.agree(lambda: check_varies([v for e in ends for v in e], table.source))
    k = output_count(spec)
    if kind == "classes" and found is not None and len(found) != k:
        part.fail(
            DataError(
                f"the model's softmax has {k} outputs but {table.source} has {len(found)} classes "
                f"({', '.join(found)}): make the softmax {len(found)} wide, or list the classes in `classes:`"
            )
        )
    if kind != "classes" and k != 1:
        part.fail(
            SpecError(
                f"a list output of {k} values without softmax cannot be trained from one target column; "
                "use a softmax for classes, or combine the heads into one output"
            )
        )
    return y, found


def build_on(
    spec: Any, X: list[list[float]], *, seed: int | None = None, normalize: bool = False, part: Part = WHOLE
) -> tuple[Any, dict[str, tuple[float, float]] | None]:
    """(model, statistics): the spec's model, standardising its inputs with the statistics of
    the rows `X` (of every part) when `normalize` (and there are rows). The one way train,
    trace and check build a model from a spec and its data."""
    from ..spec.build import build_model

    stats = standardize_stats(X, list(spec.inputs), part) if (X or not part.alone) and normalize else None
    return build_model(spec, seed=seed, stats=stats), stats


@dataclass(kw_only=True)
class Prepared:
    """A spec and its data, checked and split, with the model built: ready to train."""

    spec_path: Path
    spec: Any
    text: str
    settings: Any
    source: str
    target: str
    kind: Task
    classes: list[str] | None
    rows: int
    train: tuple[list[list[float]], list[Any]]
    validation: tuple[list[list[float]], list[Any]]
    train_rows: list[int]  # for each training sample, its row in the table (to name it in errors)
    validation_rows: list[int]
    row_index: Sequence[int] | None  # each row's index among the rows read (Table.index), to place it
    numbering: Numbering  # how messages name the table's rows (Table.numbering)
    stats: dict[str, tuple[float, float]] | None
    target_stats: tuple[float, float] | None  # a regression target standardised for training
    recoding: Recoding
    root: Any
    loss: str
    patience: int | None
    train_weights: list[float] | None = None  # how much each training sample counts (None: 1 each)
    resolved: dict[str, Any] = field(default_factory=dict)  # the spec as trained (runlog.resolved_spec)
    continued: Continuation | None = None  # a recorded run going on (train --resume)
    provenance: Provenance | None = None  # the software, command line and data of this run
    lineage: Lineage | None = None  # begun from another model's parameters, or resumed (resume.py)
    # Data-parallel (parts.py): this process's part of the samples. `positions` is each of its
    # training samples' place in the training order of all parts; `counts` the samples of all
    # parts (training, validation). Alone: the samples here are all, in order.
    part: Part = WHOLE
    positions: list[int] | None = None
    counts: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        """The model's name: the spec's `name:`, else the spec file's stem."""
        return str(self.spec.name or self.spec_path.stem)

    @property
    def train_count(self) -> int:
        """Training samples, of every part."""
        return len(self.train[0]) if self.counts is None else self.counts[0]

    @property
    def validation_count(self) -> int:
        """Validation samples, of every part."""
        return len(self.validation[0]) if self.counts is None else self.counts[1]

    def place(self, row: int) -> str:
        """Where row `row` of the table (an index of X) is, for messages: 'data.csv, line 7'."""
        return row_place(self.source, row, self.row_index, self.numbering)


def prepare(
    spec_path: Path,
    *,
    data: str | None = None,
    target: str | None = None,
    overrides: dict[str, Any] | None = None,
    sets: Sequence[tuple[Any, Any]] = (),
    spec_text: str | None = None,
    settings: Any = None,
    table: Table | None = None,
    command: Sequence[str] | None = None,
    part: Part = WHOLE,
) -> Prepared:
    """Load and check a spec and its data, split it, and build the model.

    Every mistake in the spec, the data or the settings is found here, before any
    training starts. A recorded run (resume) gives its spec's text, its settings and its table.
    `command` is the command line to record in the model file (argv). With `part` of several
    processes (a data-parallel run, parts.py), this process reads and keeps its part of the
    rows; the classes, split, statistics and checks are those of all rows, as one process's.
    """
    from ..spec.build import loss_name, output_count, task_kind
    from ..spec.models import parse_spec

    # A mistake in the spec is every process's: rank 0 alone reports it (parts.py).
    if spec_text is None:
        spec, text = part.agree(lambda: load_spec_file(spec_path, sets))
    else:
        spec, text = parse_spec(spec_text, str(spec_path), default_name=spec_path.stem), spec_text
    if settings is None:
        settings = part.agree(lambda: training_settings(spec, overrides or {}, sets))
    if table is None:
        table = spec_table(spec, spec_path, data, part)
    origin = table.origin  # the table as read: derived tables (recoded, weights taken) have none
    spec, table, recoding = model_inputs(spec, table, target or spec.target, settings, part)
    kind = task_kind(spec)
    table, column = take_weight_column(table, settings.weight_column, part)
    X, raw, tname = part.agree(lambda: select(table, list(spec.inputs), target or spec.target))
    y, classes = _targets(spec, kind, raw, table, spec.classes, part)
    first, rows = part.offset(len(X))
    train_rows, val_rows = split_indices(rows, settings.validation_split, settings.seed)
    counts, positions = None, None
    if not part.alone:  # this part's samples, in the split's order; rows first.. are here
        counts = (len(train_rows), len(val_rows))
        positions = [p for p, r in enumerate(train_rows) if first <= r < first + len(X)]
        train_rows = [train_rows[p] - first for p in positions]
        val_rows = [r - first for r in val_rows if first <= r < first + len(X)]
    Xtr, ytr = [X[i] for i in train_rows], [y[i] for i in train_rows]
    per_class = None
    if settings.class_weight is not None:
        if kind == "regression":
            part.fail(SpecError("training.class_weight is for classifiers; this model does regression"))
        labels = class_labels(kind, classes, output_count(spec)) or []
        per_class = class_weights(settings.class_weight, labels, ytr, part)
    weights = row_weights(ytr, per_class, None if column is None else [column[i] for i in train_rows])
    Xva, yva = [X[i] for i in val_rows], [y[i] for i in val_rows]
    n_train, n_val = counts or (len(Xtr), len(Xva))
    if not n_train:
        part.fail(DataError(f"{table.source}: no rows left for training after the validation split"))
    target_stats = None
    if settings.normalize and kind == "regression" and loss_name(spec) in SCALED_LOSSES:
        target_stats = standardize_stats([[v] for v in ytr], [tname], part)[tname]
    patience = settings.early_stopping.patience if settings.early_stopping else None
    if patience is not None and not n_val:
        part.fail(
            TrainingError(
                "early_stopping needs a validation set: set training.validation_split (e.g. 0.2) "
                "or pass --validation-split"
            )
        )
    root, stats = build_on(spec, Xtr, seed=settings.seed, normalize=settings.normalize, part=part)
    return Prepared(
        spec_path=spec_path,
        spec=spec,
        text=text,
        settings=settings,
        source=table.source,
        target=tname,
        kind=kind,
        classes=classes,
        rows=rows,
        train=(Xtr, ytr),
        validation=(Xva, yva),
        train_rows=train_rows,
        validation_rows=val_rows,
        row_index=table.index,
        numbering=table.numbering,
        stats=stats,
        target_stats=target_stats,
        recoding=recoding,
        root=root,
        loss=loss_name(spec),
        patience=patience,
        train_weights=weights,
        resolved=resolved_spec(
            text, settings, data if data is not None else spec.data, tname, Path.cwd() if data else spec_path.parent
        ),
        provenance=describe(origin, command),
        part=part,
        positions=positions,
        counts=counts,
    )


def run(
    prep: Prepared,
    *,
    out: Path | None = None,
    progress: Progress | None = None,
    checkpoint: bool = False,
    force: bool = False,
    log: RunLog | None = None,
    trainer: Callable[..., History] | None = None,
) -> Trained:
    """Train a prepared model and (if `out`) save it atomically.

    `trainer` replaces `fit.fit` (same arguments and result): `torch.bridge.trainer` trains with PyTorch.

    Nothing is written unless training finishes (or is interrupted with `checkpoint`
    after at least one complete epoch); a diverging run raises TrainingError and leaves
    any existing `out` untouched. Without `force`, an existing `out` is replaced only if
    it is a model of the same name. With `log`, the run's resolved spec and per-epoch
    metrics go to its folder (see runlog.py).
    """

    def writable() -> None:  # now, not after an hour of training
        if out is not None:
            check_output(out, force=force)
            if not force:
                check_replace(out, prep.name)
        if log is not None:
            log.check()

    # Under torchrun only rank 0 writes: its refusal must stop the others too (parts.py).
    prep.part.agree(writable)
    settings, kind, root = prep.settings, prep.kind, prep.root
    graph = root.compiled_graph
    (Xtr, ytr), (Xva, yva) = prep.train, prep.validation
    # With a standardised target the model trains on (y - mean) / std and reports its
    # losses back in the target's units (`unscale`), as eval computes them.
    fit_ytr, fit_yva, unscale = ytr, yva, 1.0
    if prep.target_stats is not None:
        mean, std = prep.target_stats
        fit_ytr, fit_yva = [(v - mean) / std for v in ytr], [(v - mean) / std for v in yva]
        unscale = std ** SCALED_LOSSES[prep.loss]
    validating = prep.validation_count > 0
    watch_X, watch_y = (Xva, yva) if validating else (Xtr, ytr)
    pred_fn = program(graph).predict_fn() if progress or log else None
    consts = program(graph).constant_values()
    hist = History()  # filled by fit; on_epoch reads the learning rate and penalty of the epoch

    watched = "validation" if validating else "train"

    def on_epoch(epoch: int, train_loss: float, val_loss: float | None, params: list[float]) -> None:
        if pred_fn is None:
            return
        extra: dict[str, float] = {}
        if settings.lr_schedule is not None:
            extra["lr"] = hist.learning_rates[-1]
        if hist.penalty:
            extra["penalty"] = hist.penalty[-1]
        # Of a part's rows alone the accuracy would say too little: a data-parallel run
        # reports it once, at the end, in the metrics of all rows.
        if (kind != "regression" and prep.part.alone) and (
            log is not None or epoch == settings.epochs or epoch % max(1, settings.epochs // 100) == 0
        ):
            try:
                extra["accuracy"] = accuracy(kind, pred_fn(params, consts, watch_X), watch_y)
            except (ArithmeticError, ValueError):
                pass
        tl, vl = train_loss * unscale, None if val_loss is None else val_loss * unscale
        if log is not None:
            log.epoch(
                epoch,
                {
                    "train_loss": tl,
                    "validation_loss": vl,
                    f"{watched}_accuracy": extra.get("accuracy"),
                    "learning_rate": hist.learning_rates[-1],
                    "penalty": extra.get("penalty"),
                },
            )
        if progress is not None:
            progress(epoch, tl, vl, extra)

    def place(rows: list[int]) -> Callable[[int], str]:
        """Where sample i of a split is in the data, for messages: 'data.csv, line 7'."""
        return lambda i: prep.place(rows[i])

    if progress is not None:
        progress(0, math.nan, None, {})  # training starts now
    if log is not None:
        columns = ["train_loss"] + (["validation_loss"] if validating else [])
        columns += [f"{watched}_accuracy"] if kind != "regression" and prep.part.alone else []
        columns += ["learning_rate"] + (["penalty"] if settings.l1 or settings.l2 else [])
        log.start(dump(prep.resolved), columns)
    cont = prep.continued  # a recorded run going on: from its epoch and optimizer state
    going_on: dict[str, Any] = (
        {} if cont is None else {"start_epoch": cont.epochs_done, "state": cont.fit_state(graph.param_names)}
    )
    if not prep.part.alone:  # torch.bridge.fit: this part's training samples, of how many in all
        going_on["shares"] = (prep.positions, prep.train_count, prep.validation_count)
        # fit refuses weights that are all 0, but a part's may be: where all parts' are, fit's
        # check refuses each part's, before any training.
        weights = prep.train_weights
        if weights is not None and not prep.part.any(any(weights)):
            prep.part.agree(lambda: _check_weights(weights, len(weights)))
    t0 = time.perf_counter()
    try:
        with _every_process(prep.part), _divergence_advice(prep):
            (trainer or fit)(
                root,
                Xtr,
                fit_ytr,
                loss=prep.loss,
                epochs=settings.epochs - (cont.epochs_done if cont else 0),
                learning_rate=settings.learning_rate,
                batch_size=settings.batch_size,
                optimizer=settings.optimizer,
                shuffle=settings.shuffle,
                seed=settings.seed,
                validation=(Xva, fit_yva) if validating else None,
                patience=prep.patience,
                callback=on_epoch,
                describe_sample=place(prep.train_rows),
                l1=settings.l1,
                l2=settings.l2,
                clip_norm=settings.clip_norm,
                lr_schedule=settings.lr_schedule,
                sample_weight=prep.train_weights,
                history=hist,
                **going_on,
                dtype=settings.dtype,
            )
    finally:
        if log is not None:
            log.close()
    seconds = time.perf_counter() - t0
    if hist.interrupted and not (checkpoint and hist):
        # With no complete epoch there is no trained model to keep, checkpoint or not.
        raise KeyboardInterrupt
    names = list(graph.param_names)  # of the graph trained, the order of the optimizer's state
    if prep.target_stats is not None:
        root = _answering_in_raw_units(prep, root)
        graph = root.compiled_graph
        hist[:] = [v * unscale for v in hist]
        hist.validation[:] = [v * unscale for v in hist.validation]
    if cont is not None:
        hist = cont.joined(hist)
    labels = class_labels(kind, prep.classes, len(graph.elements))
    part = prep.part
    metrics = {
        "train": evaluate_rows(
            root, kind, prep.loss, Xtr, ytr, place(prep.train_rows), prep.train_weights, labels, part
        )
    }
    if validating:
        metrics["validation"] = evaluate_rows(
            root, kind, prep.loss, Xva, yva, place(prep.validation_rows), labels=labels, part=part
        )
    record = ModelRecord(
        format=FORMAT,
        version=VERSION,
        name=prep.name,
        spec_file=str(prep.spec_path),
        spec_text=prep.text,
        inputs=list(graph.input_names),
        task=kind,
        loss=prep.loss,
        classes=prep.classes,
        normalization=dict(prep.stats) if prep.stats else None,
        target_normalization=prep.target_stats,
        renamed=prep.recoding.renamed or None,
        encodings=prep.recoding.encodings or None,
        parameters=dict(zip(graph.param_names, graph.param_values())),
        training=settings,
        data=DataInfo(
            source=prep.source,
            target=prep.target,
            rows=prep.rows,
            train_rows=prep.train_count,
            validation_rows=prep.validation_count,
        ),
        history=HistoryInfo(
            train=list(hist),
            validation=hist.validation,
            best_epoch=hist.best_epoch,
            stopped_early=hist.stopped_early,
            learning_rates=hist.learning_rates if settings.lr_schedule is not None else [],
            penalty=hist.penalty,
        ),
        metrics=metrics,
        treegrad_version=__version__,
        resume=saved_state(settings, hist, names, prep) if part.alone else None,
        provenance=prep.provenance,
        input_ranges=input_ranges(Xtr, graph.input_names, part),
        lineage=prep.lineage,
    )
    warnings = []
    dead = dead_unit_warning(graph, Xtr, part)  # before saving: under torchrun, the last exchange
    if dead is not None:
        warnings.append(dead)
    if out is not None:
        save(out, record, force=force)
    if len(hist) > 1 and not hist[-1] < hist[0]:
        warnings.append(
            f"the training loss did not go down (epoch 1: {hist[0]:.4g}, last: {hist[-1]:.4g}): "
            "try a smaller learning rate, or normalize the inputs"
        )
    return Trained(root, record, hist, seconds, out, len(graph.params), len(graph.order), hist.interrupted, warnings)


def _answering_in_raw_units(prep: Prepared, trained: Any) -> Any:
    """The trained model with the target's scaling folded in: mean + std * output, same parameters."""
    from ..spec.build import build_model

    root = build_model(prep.spec, seed=prep.settings.seed, stats=prep.stats, target=prep.target_stats)
    learned = dict(zip(trained.compiled_graph.param_names, trained.compiled_graph.param_values()))
    graph = root.compiled_graph
    graph.set_param_values([learned[n] for n in graph.param_names])
    return root


@contextmanager
def _every_process(part: Part) -> Iterator[None]:
    """Under torchrun, a TrainingError of the trainer is every process's (the settings are, and
    the losses and parameters it checks are all-reduced): rank 0 alone reports it (parts.py)."""
    try:
        yield
    except TrainingError as e:
        if part.alone:
            raise
        part.fail(e)


@contextmanager
def _divergence_advice(prep: Prepared) -> Iterator[None]:
    """Divergence advice that says what this run standardised and what it did not."""
    try:
        yield
    except TrainingError as e:
        text = str(e)
        if not text.endswith(DIVERGED_ADVICE):
            raise
        if not prep.settings.normalize:
            advice = "Try a smaller learning rate, or standardise the inputs (training.normalize: true)"
            if prep.kind == "regression" and prep.loss in SCALED_LOSSES:
                advice += ", which standardises the target too"
            advice += "."
        else:
            scaled = "the inputs and the target are" if prep.target_stats is not None else "the inputs are"
            advice = f"{scaled.capitalize()} standardised already (training.normalize); try a smaller learning rate"
            if prep.target_stats is None and prep.kind == "regression":
                advice += f" (the target is not: loss {prep.loss} is not in its units)"
            advice += ", or clip_norm."
        raise TrainingError(text[: -len(DIVERGED_ADVICE)] + advice, sample=e.sample) from None


def train(
    spec_path: Path,
    *,
    data: str | None = None,
    target: str | None = None,
    overrides: dict[str, Any] | None = None,
    out: Path | None = None,
    progress: Progress | None = None,
    checkpoint: bool = False,
    force: bool = False,
    trainer: Callable[..., History] | None = None,
) -> Trained:
    """Prepare and run in one call: train the model of a spec file on data, save it to `out`."""
    prep = prepare(spec_path, data=data, target=target, overrides=overrides)
    return run(prep, out=out, progress=progress, checkpoint=checkpoint, force=force, trainer=trainer)


def prepare_resume(
    model: Path, *, epochs: int | None = None, data: str | None = None, command: Sequence[str] | None = None
) -> Prepared:
    """The run recorded in a model file, ready to go on for `epochs` more (see resume.py): its
    spec, settings, data (or `data`, checked to be the same rows) and split, its parameters and
    its optimizer's state. `command` (argv) is recorded as the resume's, beside the runs it continues."""
    record = load(model).record
    cont = continuation(model, record, epochs)
    prep = prepare(
        Path(record.spec_file),
        target=record.data.target,
        spec_text=record.spec_text,
        settings=record.training.model_copy(update={"epochs": cont.epochs_done + cont.more}),
        table=recorded_table(record, data),
        command=command,
    )
    check_same_data(cont, record, prep)
    start_from(prep.root.compiled_graph, record, model)
    prep.continued = cont
    prep.provenance, prep.lineage = resumed_lineage(record, prep.provenance)
    return prep


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


# ----------------------------------------------------------------- setups of trace and check


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
