"""Training a prepared run (prepare.py) and saving its model file: the library function behind
`treegrad train`. The CLI calls it and only renders what it returns.

Data flows one way: spec file -> spec -> nodes -> compiled graph -> fit -> model file ->
predict/show/eval.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..data.missing import said
from ..data.parts import Part
from ..engine.compiled import program
from ..engine.failures import DIVERGED_ADVICE
from ..engine.fit import Callback, History, check_weights, fit
from ..engine.vectorized import array_rows_fn
from ..errors import TrainingError
from ..files import check_output
from .diagnose import dead_unit_warning
from .modelfile import FORMAT, VERSION, DataInfo, HistoryInfo, ModelRecord, check_replace, save
from .prepare import SCALED_LOSSES, Prepared, prepare
from .provenance import input_ranges
from .resume import saved_state
from .runlog import RunLog, dump
from .tasks import accuracy, class_labels, evaluate_rows

Progress = Callable[[int, float, "float | None", "dict[str, float]"], None]
Watch = Callable[[int, list[float]], None]  # (epoch, the parameters after it): the live page's


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
    notes: list[str] = field(default_factory=list)  # what the missing-value policy did to the rows read


def run(
    prep: Prepared,
    *,
    out: Path | None = None,
    progress: Progress | None = None,
    checkpoint: bool = False,
    force: bool = False,
    log: RunLog | None = None,
    trainer: Callable[..., History] | None = None,
    watch: Watch | None = None,
    stage: Callable[[str], None] | None = None,
) -> Trained:
    """Train a prepared model and (if `out`) save it atomically; `watch` sees each epoch's parameters;
    `stage(name)` hears what comes after the epochs ("metrics": the final model scored on every row,
    checked and saved).

    `trainer` replaces `fit.fit` (same arguments and result): `torch.trainer.trainer` trains with PyTorch.

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
    hist = History()  # filled by fit; the epoch reporter reads the learning rate and penalty of the epoch
    unscale = std ** SCALED_LOSSES[prep.loss] if (std := _target_std(prep)) is not None else 1.0
    on_epoch = _reporter(prep, hist, unscale, progress, log, watch)
    names = list(prep.root.compiled_graph.param_names)  # of the graph trained, the order of the optimizer's state
    t0 = time.perf_counter()
    try:
        _fit(prep, trainer or fit, hist, on_epoch)
    finally:
        if log is not None:
            log.close()
    seconds = time.perf_counter() - t0
    if hist.interrupted and not (checkpoint and hist):
        # With no complete epoch there is no trained model to keep, checkpoint or not.
        raise KeyboardInterrupt
    if stage is not None:
        stage("metrics")
    root = prep.root
    if prep.data.target_stats is not None:
        root = _answering_in_raw_units(prep, root)
        hist[:] = [v * unscale for v in hist]
        hist.validation[:] = [v * unscale for v in hist.validation]
    if prep.continued is not None:
        hist = prep.continued.joined(hist)
    record = _record(prep, root, hist, names)
    graph = root.compiled_graph
    warnings = [] if log is None or log.fault is None else [_log_stopped(log)]
    # Before saving: under torchrun, the last exchange.
    dead = dead_unit_warning(graph, prep.data.train[0], prep.part, normalized=prep.data.stats is not None)
    if dead is not None:
        warnings.append(dead)
    if out is not None:
        save(out, record, force=force)
    warnings += _loss_warnings(hist, normalized=prep.data.stats is not None)
    coding = prep.data.recoding
    notes = said(prep.data.source, prep.data.rows, coding.dropped, coding.filled, prep.settings.missing)
    count = (len(graph.params), len(graph.order))
    return Trained(root, record, hist, seconds, out, *count, hist.interrupted, warnings, notes)


def _loss_warnings(hist: History, *, normalized: bool) -> list[str]:
    """What the losses of the run say is wrong with it: no epoch, or a loss that did not go down."""
    if not hist:
        return [
            "0 epochs: nothing was trained; the model saved has its starting parameters "
            "(give --epochs N, or training.epochs, to train it)"
        ]
    if len(hist) > 1 and not hist[-1] < hist[0]:
        return [
            f"the training loss did not go down (epoch 1: {hist[0]:.4g}, last: {hist[-1]:.4g}): "
            "try a smaller learning rate" + ("" if normalized else ", or normalize the inputs")
        ]
    return []


def _log_stopped(log: RunLog) -> str:
    """The warning for a run whose log the disk refused part way: training went on without it."""
    return (
        f"the run's log stopped after {log.rows} epoch(s): cannot write {log.fault}; training went on, "
        "and metrics.csv keeps the rows written before (make room, or give --log-dir a folder on another disk)"
    )


def _target_std(prep: Prepared) -> float | None:
    """The standard deviation a standardised target was divided by (None: not standardised)."""
    return None if prep.data.target_stats is None else prep.data.target_stats[1]


def _scaled(prep: Prepared, targets: list[Any]) -> list[Any]:
    """Targets as the model trains on them: (y - mean) / std with a standardised target."""
    if prep.data.target_stats is None:
        return targets
    mean, std = prep.data.target_stats
    return [(v - mean) / std for v in targets]


def _fit(prep: Prepared, trainer: Callable[..., History], hist: History, on_epoch: Callback) -> None:
    """Run the trainer on the prepared data with the run's settings, filling `hist`.

    With a standardised target the model trains on (y - mean) / std and reports its losses back
    in the target's units (the reporter's `unscale`), as eval computes them."""
    data, settings, cont = prep.data, prep.settings, prep.continued
    going_on: dict[str, Any] = {}
    if cont is not None:  # a recorded run going on: from its epoch and optimizer state
        settings = settings.model_copy(update={"epochs": settings.epochs - cont.epochs_done})
        names = prep.root.compiled_graph.param_names
        going_on = {"start_epoch": cont.epochs_done, "state": cont.fit_state(names), "best": cont.fit_best(names)}
    if not prep.part.alone:  # torch.trainer.fit: this part's training samples, of how many in all
        going_on["shares"] = (data.positions, data.train_count, data.validation_count)
        # fit refuses weights that are all 0, but a part's may be: where all parts' are, fit's
        # check refuses each part's, before any training.
        weights = data.train_weights
        if weights is not None and not prep.part.any(any(weights)):
            prep.part.agree(lambda: check_weights(weights, len(weights)))
    validation = (data.validation[0], _scaled(prep, data.validation[1])) if data.validation_count else None
    with _every_process(prep.part), _divergence_advice(prep):
        trainer(
            prep.root,
            data.train[0],
            _scaled(prep, data.train[1]),
            settings,
            loss=prep.loss,
            validation=validation,
            callback=on_epoch,
            describe_sample=data.describe_sample(data.train_rows),
            sample_weight=data.train_weights,
            history=hist,
            **going_on,
        )


def _reporter(
    prep: Prepared,
    hist: History,
    unscale: float,
    progress: Progress | None,
    log: RunLog | None,
    watch: Watch | None = None,
) -> Callback:
    """The callback of each epoch: the progress shown (`progress`) and the run's log (`log`),
    losses in the target's units, with the accuracy where it says something. Starts the log."""
    settings, data, kind = prep.settings, prep.data, prep.data.kind
    graph = prep.root.compiled_graph
    validating = data.validation_count > 0
    watch_X, watch_y = data.validation if validating else data.train
    watching = bool(progress or log)
    watched = "validation" if validating else "train"

    def on_epoch(epoch: int, train_loss: float, val_loss: float | None, params: list[float]) -> None:
        if watch is not None:
            watch(epoch, params)
        if not watching:
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
                extra["accuracy"] = accuracy(kind, _outputs(graph, params, watch_X), watch_y)
            except (ArithmeticError, ValueError):
                pass
        tl, vl = train_loss * unscale, None if val_loss is None else val_loss * unscale
        if log is not None:
            metrics = {"train_loss": tl, "validation_loss": vl, f"{watched}_accuracy": extra.get("accuracy")}
            log.epoch(epoch, {**metrics, "learning_rate": hist.learning_rates[-1], "penalty": extra.get("penalty")})
        if progress is not None:
            progress(epoch, tl, vl, extra)

    if progress is not None:
        progress(0, math.nan, None, {})  # training starts now
    if log is not None:
        columns = ["train_loss"] + (["validation_loss"] if validating else [])
        columns += [f"{watched}_accuracy"] if kind != "regression" and prep.part.alone else []
        columns += ["learning_rate"] + (["penalty"] if settings.l1 or settings.l2 else [])
        log.start(dump(prep.resolved), columns)
    return on_epoch


def _outputs(graph: Any, params: list[float], X: Any) -> Any:
    """The model's outputs on rows `X` at `params`: an array from whole arrays where the model has
    dense layers, else a list from the generated code (which raises where a row cannot be evaluated)."""
    fn = array_rows_fn(graph)
    if fn is not None:
        return fn(X, P=params)[0]
    prog = program(graph)
    return prog.predict_fn()(params, prog.constant_values(), X.tolist() if hasattr(X, "tolist") else X)


def _record(prep: Prepared, root: Any, hist: History, names: list[str]) -> ModelRecord:
    """The model file's record of the trained run: the model, its data, history and metrics."""
    data, settings, part = prep.data, prep.settings, prep.part
    graph = root.compiled_graph
    labels = class_labels(data.kind, data.classes, len(graph.elements))
    (Xtr, ytr), (Xva, yva) = data.train, data.validation
    train_place = data.describe_sample(data.train_rows)
    metrics = {
        "train": evaluate_rows(root, data.kind, prep.loss, Xtr, ytr, train_place, data.train_weights, labels, part)
    }
    if data.validation_count > 0:
        val_place = data.describe_sample(data.validation_rows)
        metrics["validation"] = evaluate_rows(root, data.kind, prep.loss, Xva, yva, val_place, labels=labels, part=part)
    return ModelRecord(
        format=FORMAT,
        version=VERSION,
        name=prep.name,
        spec_file=str(prep.spec_path),
        spec_text=prep.text,
        inputs=list(graph.input_names),
        task=data.kind,
        loss=prep.loss,
        classes=data.classes,
        normalization=dict(data.stats) if data.stats else None,
        target_normalization=data.target_stats,
        renamed=data.recoding.renamed or None,
        encodings=data.recoding.encodings or None,
        fill=data.recoding.fill or None,
        parameters=dict(zip(graph.param_names, graph.param_values())),
        training=settings,
        data=DataInfo(
            source=data.source,
            target=data.target,
            rows=data.rows,
            train_rows=data.train_count,
            validation_rows=data.validation_count,
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
        resume=saved_state(settings, hist, names, data) if part.alone else None,
        provenance=prep.provenance,
        input_ranges=input_ranges(Xtr, graph.input_names, part),
        lineage=prep.lineage,
    )


def _answering_in_raw_units(prep: Prepared, trained: Any) -> Any:
    """The trained model with the target's scaling folded in: mean + std * output, same parameters."""
    from ..spec.build import build_model

    root = build_model(prep.spec, seed=prep.settings.seed, stats=prep.data.stats, target=prep.data.target_stats)
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
        data = prep.data
        if not prep.settings.normalize:
            advice = "Try a smaller learning rate, or standardise the inputs (training.normalize: true)"
            if data.kind == "regression" and prep.loss in SCALED_LOSSES:
                advice += ", which standardises the target too"
            advice += "."
        else:
            scaled = "the inputs and the target are" if data.target_stats is not None else "the inputs are"
            advice = f"{scaled.capitalize()} standardised already (training.normalize); try a smaller learning rate"
            if data.target_stats is None and data.kind == "regression":
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
