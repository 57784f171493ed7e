"""Going on from a model file: resuming its run, or starting a new one from its parameters.

`train --resume MODEL.json` continues the run the file records as if it had never stopped:
its own spec (the embedded text), settings, data and split, its parameters, and the
optimizer's state after its last epoch (`ModelRecord.resume`: momentum, Adam's moments and
step count); `fit` replays the shuffling stream up to there. N epochs, then M more, give the
parameters and the history of one run of N + M epochs, bit for bit. What could not continue
so is refused, with the reason (`why_not_resumable`), and so is data that is no longer the
rows the run trained on (`rows_digest`).

`train SPEC --init-from MODEL.json` is a new run whose parameters start at the model's,
matched by name (`start_from`), with a fresh optimizer.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.fit import History
from ..engine.optim import OPTIMIZERS
from ..engine.schedules import SCHEDULES
from ..engine.settings import Training
from ..errors import TreegradError, escaped, listed
from ..files import sha256_of
from ..limits import MAX_EPOCHS
from .modelfile import HistoryInfo, Lineage, ModelRecord, ResumeState
from .provenance import Provenance
from .runlog import INIT_FROM as INIT_FROM_KEY


class ResumeError(TreegradError):
    """A run that cannot be continued, or started from a model file, as asked."""


INIT_FROM = "or start a new run from its parameters (a fresh optimizer): treegrad train SPEC --init-from {path}"


def why_not_resumable(settings: Training, epochs_done: int, stopped_early: bool) -> str | None:
    """Why a run with these settings, stopped after `epochs_done`, cannot go on bit for bit; None if it can."""
    schedule = settings.lr_schedule
    if stopped_early:
        return (
            f"it stopped early after {epochs_done} epochs, its validation loss no better for the patience "
            "it was given, so a longer run stops there too"
        )
    why = schedule.why_not_resumable(settings.epochs) if schedule is not None else None
    if why is not None:
        resumable = [name for name, cls in SCHEDULES.items() if cls().why_not_resumable(settings.epochs) is None]
        return f"{why} ({' and '.join(resumable)} schedules resume)"
    if epochs_done != settings.epochs:
        return f"it stopped after {epochs_done} of its {settings.epochs} epochs (interrupted)"
    return None


def rows_digest(
    train: tuple[Sequence[Any], Sequence[Any]],
    validation: tuple[Sequence[Any], Sequence[Any]],
    weights: Sequence[float] | None,
) -> str:
    """SHA-256 of the rows as trained: training and validation inputs and targets, and the weights.

    JSON writes every float exactly (its shortest repr), so equal digests mean equal rows. The
    rows go in a few thousand at a time: the text of a million rows is not held at once.
    """
    h = hashlib.sha256()
    for part in (*train, *validation, weights or []):
        h.update(b"[")
        for i in range(0, len(part), 4096):
            chunk: Any = part[i : i + 4096]
            h.update(json.dumps(chunk.tolist() if hasattr(chunk, "tolist") else list(chunk)).encode())
        h.update(b"]")
    return h.hexdigest()


def saved_state(settings: Training, hist: History, names: Sequence[str], data: Any) -> ResumeState | None:
    """What the model file keeps to resume this run on `data` (prepare.Dataset): None when it
    cannot go on bit for bit (see `why_not_resumable`), when the trainer kept no state
    (--engine torch), or when the state is not finite."""
    if hist.state is None or why_not_resumable(settings, len(hist), hist.stopped_early) is not None:
        return None
    moments, steps = hist.state
    if not all(math.isfinite(v) for m in moments for v in m):
        return None
    kinds = OPTIMIZERS[settings.optimizer].state
    assert len(kinds) == len(moments), "the optimizer's state has one list per state variable"
    last = hist.last if settings.early_stopping is not None else None
    if last is not None and not all(math.isfinite(v) for v in last):
        return None
    return ResumeState(
        epochs=len(hist),
        steps=steps,
        moments={kind: dict(zip(names, m, strict=True)) for kind, m in zip(kinds, moments)},
        data_sha256=rows_digest(data.train, data.validation, data.train_weights),
        last=None if last is None else dict(zip(names, last, strict=True)),
        best_loss=hist.best_loss if last is not None and hist.best_loss is not None and hist.best_epoch else None,
    )


@dataclass
class Continuation:
    """A recorded run, checked to go on: where it stopped and with what optimizer state."""

    path: Path
    epochs_done: int
    more: int
    state: ResumeState
    history: HistoryInfo
    learning_rate: float
    parameters: dict[str, float] = field(default_factory=dict)  # the model's: with early stopping, the best

    def fit_state(self, names: Sequence[str]) -> tuple[list[list[float]], int]:
        """The optimizer's state as `fit(state=)` takes it: one list per state variable, in `names` order."""
        return [[m[n] for n in names] for m in self.state.moments.values()], self.state.steps

    def fit_best(self, names: Sequence[str]) -> tuple[float, list[float], int] | None:
        """Early stopping's best so far as `fit(best=)` takes it (None: the run had no early stopping)."""
        best, epoch = self.state.best_loss, self.history.best_epoch
        if self.state.last is None or best is None or epoch is None:
            return None
        return best, [self.parameters[n] for n in names], epoch

    def last(self, names: Sequence[str]) -> list[float] | None:
        """The parameters after the last epoch, where early stopping kept another epoch's (None: the model's)."""
        return None if self.state.last is None else [self.state.last[n] for n in names]

    def joined(self, hist: History) -> History:
        """The recorded history followed by that of the epochs run now: one run's history."""
        prior = self.history
        out = History()
        out.extend([*prior.train, *hist])
        out.validation = [*prior.validation, *hist.validation]
        # A run without a schedule records no rates (they are all the base rate).
        out.learning_rates = [*(prior.learning_rates or [self.learning_rate] * len(prior.train)), *hist.learning_rates]
        out.penalty = [*prior.penalty, *hist.penalty]
        out.best_epoch = prior.best_epoch
        seeded = self.state.best_loss is not None  # fit set best_epoch only for an epoch better than the prior best
        if hist.best_epoch is not None and (
            seeded or prior.best_epoch is None or hist.validation[hist.best_epoch - self.epochs_done - 1] < _best(prior)
        ):
            out.best_epoch = hist.best_epoch
        out.stopped_early, out.interrupted, out.state = hist.stopped_early, hist.interrupted, hist.state
        out.last, out.best_loss = hist.last, hist.best_loss
        return out


def _best(history: HistoryInfo) -> float:
    assert history.best_epoch is not None
    return history.validation[history.best_epoch - 1]


def _first_step_fails(settings: Training, params: dict[str, float], state: ResumeState) -> str | None:
    """Why the optimizer cannot take one step from the recorded state (with no gradient), or None.

    A state no run reaches (Adam's mean of squares below 0), or one whose step overflows, would fail
    at the resumed run's first step, where the message blamed a row of the data ("math domain
    error at line 43") or the learning rate. Each parameter steps alone: the optimizer's statements
    are per parameter."""
    step = OPTIMIZERS[settings.optimizer].step_fn(1)
    for name, p in params.items():
        P, S = [p], [[values[name]] for values in state.moments.values()]
        try:
            step(P, [0.0], S, [state.steps], settings.learning_rate)
        except (ArithmeticError, ValueError) as e:
            return f"a step of {name} from it fails: {e}"
        if not all(math.isfinite(v) for v in [*P, *(s[0] for s in S)]):
            return f"a step of {name} from it gives a number that is not finite"
    return None


def continuation(path: Path, record: ModelRecord, more: int | None) -> Continuation:
    """The run recorded in the model file at `path`, checked to go on for `more` epochs (default:
    as many again as it has done); a ResumeError says why it cannot."""
    shown = escaped(str(path))
    history, settings, state = record.history, record.training, record.resume
    reason = why_not_resumable(settings, len(history.train), history.stopped_early)
    if reason is not None:
        raise ResumeError(f"{shown} cannot be resumed: {reason}; train it again, {INIT_FROM.format(path=shown)}")
    if state is None:
        raise ResumeError(
            f"{shown} cannot be resumed: it records no optimizer state (it was written before `--resume` "
            "existed, by simplify or import-params, or trained with --engine torch); train it again, "
            + INIT_FROM.format(path=shown)
        )
    damaged = f"; the file was edited or damaged: train it again, {INIT_FROM.format(path=shown)}"
    kinds = OPTIMIZERS[settings.optimizer].state
    if state.epochs != len(history.train) or list(state.moments) != list(kinds) or state.steps < 0:
        raise ResumeError(
            f"{shown}: its optimizer state does not fit its run ({state.epochs} epochs, state "
            f"{_few(list(state.moments)) or 'none'} for {settings.optimizer}){damaged}"
        )
    names = set(record.parameters)
    for kind, values in [*state.moments.items(), *([("last", state.last)] if state.last is not None else [])]:
        if set(values) != names or not all(math.isfinite(v) for v in values.values()):
            raise ResumeError(f"{shown}: its optimizer state '{kind}' does not match its parameters{damaged}")
    if settings.early_stopping is not None and (state.last is None) != (history.best_epoch is None):
        raise ResumeError(f"{shown}: its early stopping state does not fit its history{damaged}")
    failed = _first_step_fails(settings, state.last or record.parameters, state)
    if failed is not None:
        raise ResumeError(f"{shown}: its optimizer state is none a run can reach ({failed}){damaged}")
    if more is None:
        more = state.epochs
    if more < 1 or state.epochs + more > MAX_EPOCHS:
        raise ResumeError(
            f"--epochs {more}: give the number of epochs to add, from 1 to {MAX_EPOCHS - state.epochs:,} "
            f"(the run has done {state.epochs})"
        )
    return Continuation(path, state.epochs, more, state, history, settings.learning_rate, dict(record.parameters))


def resumed_lineage(record: ModelRecord, now: Provenance | None) -> tuple[Provenance | None, Lineage]:
    """The provenance of a run resumed from `record` (`now`: its own command line and folder, with
    the data as the recorded run first read it, since the same rows are checked to be read again)
    and its lineage: the runs it continues, and the model file the first began from, if any."""
    before = record.lineage or Lineage()
    if now is not None and record.provenance is not None and record.provenance.data is not None:
        now = now.model_copy(update={"data": record.provenance.data})
    return now, before.model_copy(update={"continues": [*before.continues, record.provenance]})


def check_same_data(cont: Continuation, record: ModelRecord, data: Any) -> None:
    """The data read now (prepare.Dataset) are the rows the recorded run trained on, split the same way."""
    info = record.data
    now = (data.rows, len(data.train[0]), len(data.validation[0]))
    then = (info.rows, info.train_rows, info.validation_rows)
    what = None
    if now != then:
        what = f"it has {now[0]} rows ({now[1]} training, {now[2]} validation)"
    elif rows_digest(data.train, data.validation, data.train_weights) != cont.state.data_sha256:
        what = "it has as many rows, but not the same values"
    if what is not None:
        raise ResumeError(
            f"{escaped(str(cont.path))} was trained on {escaped(info.source)}: {then[0]} rows ({then[1]} training, "
            f"{then[2]} validation), and the data read now is not the same: {what}. Resuming on other data "
            f"would not continue that run: pass the same data with --data FILE.csv, "
            f"{INIT_FROM.format(path=escaped(str(cont.path)))} --data NEW.csv"
        )


def warm_start(prep: Any, path: Path) -> None:
    """Start the prepared run (prepare.Prepared) from the parameters of the model file at `path`,
    and say so in its record (`lineage`: the file and its SHA-256) and its resolved spec.

    A model trained with standardised inputs (or target) keeps its statistics here, so that
    training starts from that model's function; the run must standardise as the model did.
    """
    from ..spec.build import build_model
    from .modelfile import load

    record = load(path).record
    shown = escaped(str(path))
    then = (record.normalization is not None, record.target_normalization is not None)
    now = (prep.data.stats is not None, prep.data.target_stats is not None)
    if then != now:
        raise ResumeError(
            f"--init-from {shown}: the model was trained with {_scaling(*then)}, this run would train with "
            f"{_scaling(*now)}, so its parameters would mean something else here; set training.normalize: "
            f"{'true' if then[0] else 'false'} as the model had it"
        )
    if record.normalization is not None:
        if set(record.normalization) != set(prep.spec.inputs):
            raise ResumeError(
                f"--init-from {shown}: the model standardises the inputs {_few(list(record.normalization))}, "
                f"this spec has {_few(list(prep.spec.inputs))}; give the spec the model's inputs"
            )
        prep.data.stats = {k: (v[0], v[1]) for k, v in record.normalization.items()}
        prep.data.target_stats = record.target_normalization
        prep.root = build_model(prep.spec, seed=prep.settings.seed, stats=prep.data.stats)
    start_from(prep.root.compiled_graph, record, path)
    where = str(path.resolve())
    sha = sha256_of(path)
    prep.lineage = Lineage(init_from=where, init_sha256=sha)
    prep.resolved[INIT_FROM_KEY] = where


def _scaling(inputs: bool, target: bool) -> str:
    if not inputs:
        return "raw inputs"
    return "standardised inputs and target" if target else "standardised inputs"


def start_from(graph: Any, record: ModelRecord, path: Path) -> None:
    """Set the graph's parameters to the model file's, matched by name: the names must be the same."""
    names = list(graph.param_names)
    known = set(names)
    missing = [n for n in names if n not in record.parameters]
    extra = [n for n in record.parameters if n not in known]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"the spec has {len(missing)} the model file lacks ({_few(missing)})")
        if extra:
            parts.append(f"the model file has {len(extra)} the spec lacks ({_few(extra)})")
        raise ResumeError(
            f"--init-from {escaped(str(path))}: its parameters are not the spec's: {'; '.join(parts)}. "
            "The spec must build the same parameters (the same layers and names) as the model's own spec"
        )
    graph.set_param_values([record.parameters[n] for n in names])


def _few(names: Sequence[str]) -> str:
    """Names from a file for a message, escaped, shortened as every list of names is (`errors.listed`)."""
    return listed([escaped(n) for n in names])
