"""The training loop: `fit(model, inputs, targets, settings)`.

It runs the compiled evaluator (`compiled.py`) by default; `engine="reference"` runs the
node-by-node forward/backward of `graph.py` instead, with the same arithmetic in the same
order, so both give the same numbers. `fit` never prints: progress goes to `callback`.
What every trainer shares (the torch one too) is here: the checks of the samples
(`check_samples`) and the loop over epochs (`run_epochs`): order, schedule, validation,
early stopping, history.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.nodes import Graph, Node
from ..errors import ModelError, TrainingError
from .compiled import SampleFailure, program
from .failures import diverged, failure_error
from .losses import LOSSES, Loss, fitting
from .optim import OPTIMIZERS, Optimizer
from .penalties import StepRules, weight_mask
from .schedules import Scheduler
from .settings import Training, with_keywords
from .vectorized import VectorizedEpoch, array_rows_fn, limit_blas_threads, vectorized_epoch_fn

# callback(epoch, train_loss, validation_loss or None, current parameter values) -> False to stop
Callback = Callable[[int, float, "float | None", list[float]], "bool | None"]


class History(list[float]):
    """Per-epoch mean training loss (a list), with validation losses alongside."""

    def __init__(self) -> None:
        super().__init__()
        self.validation: list[float] = []
        self.best_epoch: int | None = None
        self.stopped_early = False
        self.interrupted = False
        self.learning_rates: list[float] = []  # the rate of each epoch
        self.penalty: list[float] = []  # with l1 or l2: the penalty after each epoch, apart from the loss
        # The optimizer's state after the last epoch (moments or velocity per parameter, and the
        # step count): with `fit(..., start_epoch=, state=)` training continues as if never cut.
        self.state: tuple[list[list[float]], int] | None = None
        # With early stopping, what going on needs besides the state: the parameters after the last
        # epoch (those the state belongs to; the ones kept are the best epoch's) and the best
        # validation loss as training compared it.
        self.last: list[float] | None = None
        self.best_loss: float | None = None


def resolve_loss(graph: Graph, loss: str | Loss) -> Loss:
    """The loss object for a name, checked against the model's kind of output."""
    if isinstance(loss, Loss):
        obj = loss
    elif loss in LOSSES:
        obj = LOSSES[loss]
    else:
        raise TrainingError(f"unknown loss '{loss}'; use one of {', '.join(LOSSES)}")
    if graph.is_softmax and not obj.on_softmax:
        raise TrainingError(f"loss '{obj.name}' does not fit a softmax output; use {' or '.join(fitting(True))}")
    if obj.on_softmax and not graph.is_softmax:
        raise TrainingError(f"loss '{obj.name}' needs a softmax output; use {', '.join(fitting(False))} here")
    return obj


def check_targets(graph: Graph, loss: Loss, targets: Sequence[Any]) -> list[Any]:
    """Targets in the form the generated code expects, or a TrainingError saying why not."""
    k = len(graph.elements)
    if not graph.is_softmax and not graph.is_list and len(targets) > 1000:
        import numpy as np

        # Many numbers at once; where one is not fine, the loop below says which and why.
        if all(type(t) is float for t in targets):  # noqa: E721 - exactly floats: kept as they are
            a = np.array(targets, dtype=np.float64)
            fine = np.isfinite(a).all() and (loss.task != "binary" or ((a >= 0.0) & (a <= 1.0)).all())
            if fine:
                return list(targets)
    out: list[Any] = []
    for i, t in enumerate(targets):
        if graph.is_softmax:
            if isinstance(t, float) and t.is_integer():
                t = int(t)
            if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < k:
                raise TrainingError(f"target {i} is {t!r}: a softmax of {k} needs a class index 0..{k - 1}")
            out.append(t)
        elif graph.is_list:
            if not isinstance(t, (list, tuple)) or len(t) != k:
                raise TrainingError(f"target {i} is {t!r}: a list output of {k} needs {k} numbers per sample")
            out.append(tuple(_finite(v, i) for v in t))
        else:
            v = _finite(t, i)
            if loss.task == "binary" and not 0.0 <= v <= 1.0:
                raise TrainingError(f"target {i} is {v}: {loss.name} needs labels between 0 and 1")
            out.append(v)
    return out


def _finite(v: Any, i: int) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise TrainingError(f"target {i} is {v!r}, not a number") from None
    if not math.isfinite(f):
        raise TrainingError(f"target {i} is {f}: targets must be finite")
    return f


def _check_rows(graph: Graph, rows: Sequence[Sequence[float]]) -> Any:
    """The rows as the trainers take them: lists of floats, or a 2-D array kept as one (float64)."""
    n = len(graph.input_names)
    shape = getattr(rows, "shape", None)
    if shape is not None and len(shape) == 2:  # an array: every row is as long
        if len(rows) and shape[1] != n:
            raise TrainingError(f"sample 0 has {shape[1]} value(s), the model has {n} input(s)")
        import numpy as np

        return np.asarray(rows, dtype=np.float64)
    out = []
    for i, r in enumerate(rows):
        if len(r) != n:
            raise TrainingError(f"sample {i} has {len(r)} value(s), the model has {n} input(s)")
        out.append([float(v) for v in r])
    return out


@dataclass
class Samples:
    """What a trainer trains on, checked: the rows and targets in the form the generated code
    takes, one weight per sample (None: 1 each), and the validation set (None: none)."""

    X: Any  # rows: lists of floats, or one float64 array (rows, inputs), which the NumPy trainer keeps
    T: list[Any]
    W: list[float] | None
    validation: tuple[Any, list[Any]] | None

    def as_lists(self) -> Samples:
        """These samples with their rows as lists of floats, as the scalar code reads them."""
        val = None if self.validation is None else (_listed(self.validation[0]), self.validation[1])
        return Samples(_listed(self.X), self.T, self.W, val)


def _listed(rows: Any) -> Any:
    """Rows as lists of floats (an array's converted at once)."""
    return rows.tolist() if hasattr(rows, "tolist") else rows


def check_samples(
    graph: Graph,
    loss: Loss,
    inputs: Sequence[Sequence[float]],
    targets: Sequence[Any],
    validation: tuple[Sequence[Sequence[float]], Sequence[Any]] | None = None,
    sample_weight: Sequence[float] | None = None,
    *,
    part: bool = False,
) -> Samples:
    """The samples checked against the model and the loss; a TrainingError says what does not fit.

    With `part` (one process's part of a data-parallel run) there may be no samples here, the
    weights here may all be 0 (the caller checks those of every part), and an empty validation
    set is kept: the other parts may have some."""
    X = _check_rows(graph, inputs)
    T = check_targets(graph, loss, targets)
    if len(X) != len(T):
        raise TrainingError(f"{len(X)} input rows but {len(T)} targets")
    if not len(X) and not part:
        raise TrainingError("no training samples")
    W = None if sample_weight is None else check_weights(sample_weight, len(X), all_zero=part)
    val = None
    if validation is not None and (part or len(validation[0])):
        val = (_check_rows(graph, validation[0]), check_targets(graph, loss, validation[1]))
    return Samples(X, T, W, val)


def step_rules(settings: Training, graph: Graph) -> StepRules:
    """The clipping and penalties of a run's steps (penalties.py)."""
    return StepRules(settings.l1, settings.l2, settings.clip_norm, weight_mask(graph))


class Epochs(Protocol):
    """One trainer's epochs over a run's parameters: what `run_epochs` drives."""

    rules: StepRules
    validating: bool

    def epoch(self, epoch: int, order: list[int], lr: float) -> float:
        """Train one epoch over the samples in `order` at rate `lr`; return its mean loss."""

    def params(self) -> list[float]:
        """The parameters now, in the graph's order."""

    def validation_loss(self, params: list[float]) -> float:
        """The mean validation loss at `params` (inf where it cannot be computed)."""


# A run's best validation loss so far, the parameters it had then, and that epoch's number.
Best = tuple[float, list[float], int]


def run_epochs(
    settings: Training,
    count: int,
    run: Epochs,
    hist: History,
    callback: Callback | None,
    start_epoch: int = 0,
    best: Best | None = None,
) -> list[float]:
    """Train `settings.epochs` epochs after `start_epoch` with either trainer, filling `hist`; return the
    parameters to keep: the best epoch's with early stopping, else those of the last complete epoch.
    A run going on passes its `best` so far, and `hist.best_epoch` is then set only by a better epoch.

    Every trainer walks the same order of the `count` samples: shuffled each epoch from the
    seed's stream (replayed up to `start_epoch`), at the schedule's rate of each epoch. Ctrl-C
    stops after the last complete epoch (`History.interrupted`).
    """
    rng = random.Random(settings.seed)
    order = list(range(count))
    if settings.shuffle:
        for _ in range(start_epoch):  # the order the cut run had reached
            rng.shuffle(order)
    scheduler = Scheduler(settings.lr_schedule, settings.learning_rate, start_epoch + settings.epochs)
    patience = settings.early_stopping.patience if settings.early_stopping and run.validating else None
    penalised = run.rules.active and bool(settings.l1 or settings.l2)
    current = run.params()
    seeded = best is not None
    kept, since_best = (best[0], best[1]) if best is not None else (math.inf, list(current)), 0
    if best is not None:
        since_best = start_epoch - best[2]
    try:
        for epoch in range(start_epoch + 1, start_epoch + settings.epochs + 1):
            if settings.shuffle:
                rng.shuffle(order)
            lr = scheduler.rate(epoch)
            mean = run.epoch(epoch, order, lr)
            current = run.params()
            hist.learning_rates.append(lr)
            if penalised:
                hist.penalty.append(run.rules.penalty(current))
            hist.append(mean)
            v = None
            if run.validating:
                v = run.validation_loss(current)
                hist.validation.append(v)
                if v < kept[0]:
                    kept, since_best, hist.best_epoch = (v, list(current)), 0, epoch
                else:
                    since_best += 1
            scheduler.observe(mean if v is None else v)
            if callback is not None and callback(epoch, mean, v, current) is False:
                break
            if patience is not None and since_best >= patience:
                hist.stopped_early = True
                break
    except KeyboardInterrupt:
        # Ctrl-C may land anywhere in an epoch: in the epoch function, the validation loss
        # or the callback (a progress bar). Epoch functions write their parameters back only
        # at their end, so `current` holds those after the last complete epoch: keep those.
        hist.interrupted = True
    if run.validating:
        hist.best_loss = kept[0]
    if patience is not None and (seeded or hist.best_epoch is not None):
        hist.last = list(current)
        return kept[1]
    return current


ENGINES = ("compiled", "reference")


def fit(
    model: Node,
    inputs: Sequence[Sequence[float]],
    targets: Sequence[Any],
    settings: Training | None = None,
    *,
    loss: str | Loss = "mse",
    validation: tuple[Sequence[Sequence[float]], Sequence[Any]] | None = None,
    callback: Callback | None = None,
    engine: str = "compiled",
    describe_sample: Callable[[int], str] | None = None,
    sample_weight: Sequence[float] | None = None,
    history: History | None = None,
    start_epoch: int = 0,
    state: tuple[Sequence[Sequence[float]], int] | None = None,
    best: Best | None = None,
    **keywords: Any,
) -> History:
    """Train a model; return the per-epoch mean training loss.

    How to train is `settings`, a spec's `training:` record (engine/settings.Training), or
    its keys as keywords: `fit(model, X, y, loss="bce", epochs=20, learning_rate=0.1,
    batch_size=1, optimizer="sgd", shuffle=False, seed=0, l1=, l2=, clip_norm=, lr_schedule=,
    dtype=, patience=)`, with the record's defaults but `shuffle`, False here; keywords given
    with a record change it. A bad value is a TrainingError. Ctrl-C stops training after the
    last complete epoch (`History.interrupted`).

    Per-sample steps when `batch_size` is 1, mean-gradient mini-batches otherwise. With
    `validation` = (inputs, targets) the validation loss is computed each epoch, and with
    early stopping (`patience`) training stops when it has not improved for that many
    epochs, keeping the parameters of the best epoch.

    An op that cannot be evaluated (the log of a negative input) stops training with a
    TrainingError naming the epoch, the sample and the op; values that overflow or become
    NaN stop it as divergence. `describe_sample(i)` says where sample i came from (a line of
    a file); by default it is "sample i". `sample_weight`: how much each sample's loss counts
    (1 each by default). `history`: the History to fill, so a callback can read the learning
    rate and penalty of its epoch. `engine`: "compiled" (generated code, NumPy arrays where
    they pay) or "reference" (the node-by-node evaluator of graph.py, the same arithmetic).

    To continue a run: `start_epoch`, the epochs it has done, and `state`, its `History.state`
    (the optimizer's state). The epochs are numbered on from there, the shuffling continues its
    stream (replayed from `seed`), so that n epochs, then m more, give the parameters of one run
    of n + m bit for bit (a schedule whose rate depends on the total, cosine, aside). With early
    stopping the model's parameters are the best epoch's: continue from `History.last` (the model
    set to them) with `best` = (History.best_loss, the best parameters, History.best_epoch), so that
    patience counts on from that epoch.

    `dtype` "float32": the NumPy trainer then runs every batch, of one sample too, in float32
    (parameters, data, gradients, optimizer state), whatever its cost estimate says; the
    parameters it returns are the float32 values as Python floats, and the validation loss is
    computed from them in float64. The scalar engines compute in float64 only, so float32 is
    refused for a graph the NumPy trainer cannot take (one without dense layers).
    """
    settings = with_keywords(settings, keywords)
    graph = model.compiled_graph
    lossobj = resolve_loss(graph, loss)
    if engine not in ENGINES:
        raise TrainingError(f"unknown engine '{engine}'; use {' or '.join(ENGINES)}")
    if settings.dtype != "float64" and engine != "compiled":
        raise TrainingError(f"the {engine} engine computes in float64 only; train with dtype float64")
    samples = check_samples(graph, lossobj, inputs, targets, validation, sample_weight)
    if not (isinstance(start_epoch, int) and start_epoch >= 0):
        raise TrainingError(f"start_epoch must be a whole number >= 0, got {start_epoch!r}")
    run = _Run(graph, lossobj, settings, samples, engine, describe_sample)
    if state is not None:
        run.restore(state)
    hist = History() if history is None else history
    limit = limit_blas_threads() if isinstance(run.run_epoch, VectorizedEpoch) else None
    try:
        graph.set_param_values(run_epochs(settings, len(samples.X), run, hist, callback, start_epoch, best))
    finally:
        if limit is not None:
            limit.restore_original_limits()
    hist.state = ([list(m) for m in run.S], run.STEP[0])
    return hist


class _Run:
    """treegrad's own epochs of one run: its parameters P, constants C, optimizer state S and step
    count STEP, and the epoch function (compiled, NumPy or reference) that updates them in place."""

    def __init__(
        self,
        graph: Graph,
        loss: Loss,
        settings: Training,
        samples: Samples,
        engine: str,
        describe_sample: Callable[[int], str] | None,
    ) -> None:
        self.graph, self.loss, self.samples, self.describe_sample = graph, loss, samples, describe_sample
        self.opt = OPTIMIZERS[settings.optimizer]
        self.batch_size = settings.batch_size
        self.prog = program(graph)
        self.P = graph.param_values()
        self.C = self.prog.constant_values()
        self.S = [[0.0] * len(self.P) for _ in self.opt.state]
        self.STEP = [0]
        self.rules = step_rules(settings, graph)
        self.H = self.rules.values
        self.validating = samples.validation is not None
        self.val_loss = self.prog.loss_fn(loss) if self.validating else None
        self._val_arrays: tuple[Any, Any] | None = None
        weighted = samples.W is not None
        batched = self.batch_size > 1
        # Batches, of one sample too, run on NumPy arrays where the graph has dense layers that pay
        # for it (wide ones, or in large batches), else as scalar code; in float32 on arrays always.
        self.run_epoch: Callable[..., float]
        if engine == "reference":
            self.samples = samples.as_lists()
            self.run_epoch = _reference_epoch(graph, loss, self.opt, batched, self.rules, weighted)
            return
        dtype = settings.dtype
        cost_of = self.batch_size if dtype == "float64" else None  # None: no cost estimate, arrays if they can
        vec = vectorized_epoch_fn(graph, loss, self.opt, cost_of, self.rules, weighted, dtype)
        if vec is None and dtype != "float64":
            raise TrainingError(
                f"dtype {dtype} needs the NumPy trainer, which takes only models with dense layers (linear "
                "layers, or sums of weight * input); this model trains on the scalar engine, which computes "
                "in float64 only: use dtype float64, the default (training.dtype in a spec)"
            )
        if vec is None:
            self.samples = samples.as_lists()
        self.run_epoch = vec or self.scalar_epoch()

    def scalar_epoch(self) -> Callable[..., float]:
        """The compiled scalar epoch function of this run."""
        return self.prog.epoch_fn(self.loss, self.opt, self.batch_size > 1, self.rules, self.samples.W is not None)

    def restore(self, state: tuple[Sequence[Sequence[float]], int]) -> None:
        """Go on from a cut run's optimizer state (its History.state)."""
        moments, steps = state
        if len(moments) != len(self.S) or any(len(m) != len(self.P) for m in moments):
            raise TrainingError(
                f"the saved optimizer state does not fit: {self.opt.name} keeps {len(self.S)} value(s) per "
                f"parameter for {len(self.P)} parameters"
            )
        self.S, self.STEP = [[float(v) for v in m] for m in moments], [int(steps)]

    def params(self) -> list[float]:
        """The parameters (the list the epoch functions update in place)."""
        return self.P

    def validation_loss(self, params: list[float]) -> float:
        """The mean validation loss at `params`; inf where it cannot be computed. On NumPy arrays
        where the epochs are (the sum in another order: equal to rounding), else by the scalar code."""
        assert self.val_loss is not None and self.samples.validation is not None
        Xv, Tv = self.samples.validation
        if isinstance(self.run_epoch, VectorizedEpoch):
            if self._val_arrays is None:
                import numpy as np

                self._val_arrays = (np.asarray(Xv, dtype=np.float64).reshape(len(Xv), -1), Tv)
            rows = array_rows_fn(self.graph, self.loss)
            if rows is not None:
                Xa, Ta = self._val_arrays
                _, losses, _ = rows(Xa, Ta, P=params)
                total = float(losses.sum())
                return total / len(Xv) if math.isfinite(total) else math.inf
        try:
            return float(self.val_loss(params, self.C, Xv, Tv) / len(Xv))
        except (ArithmeticError, ValueError):
            return math.inf

    def epoch(self, epoch: int, order: list[int], lr: float) -> float:
        """Run one epoch and return its mean loss. A math error, or a loss or parameter that is
        not finite, stops training with a TrainingError saying which sample and op, or divergence."""
        b, X, T, W = self.batch_size, self.samples.X, self.samples.T, self.samples.W
        idx: Any = [order[i : i + b] for i in range(0, len(order), b)] if b > 1 else order
        P, S, STEP = self.P, self.S, self.STEP
        # NumPy turns a math error into NaN: to name it, the scalar code reruns the epoch from its start.
        start = (list(P), [list(s) for s in S], list(STEP)) if isinstance(self.run_epoch, VectorizedEpoch) else None
        try:
            total = self.run_epoch(P, self.C, S, STEP, X, T, idx, lr, self.H, W)
        except SampleFailure as failure:
            raise self._failed(epoch, failure, X) from None
        except ArithmeticError:
            # From plain numbers in the vectorized code (a division by a parameter at 0): the
            # scalar rerun below names it. A ValueError there is no math error but a bug (NumPy's
            # shape mismatch, say), and is not to be reported as divergence.
            total = math.nan
        mean = total / len(X)
        if math.isfinite(mean) and all(math.isfinite(p) for p in P):
            return float(mean)
        if start is not None:
            P[:], S[:], STEP[:] = start
            try:
                rows = _listed(X)
                self.scalar_epoch()(list(P), self.C, [list(s) for s in S], list(STEP), rows, T, idx, lr, self.H, W)
            except SampleFailure as failure:
                raise self._failed(epoch, failure, X) from None
        raise diverged(epoch, "the loss became NaN or infinite")

    def _failed(self, epoch: int, failure: SampleFailure, X: Any) -> TrainingError:
        """The error for the math error at a sample that stopped this epoch."""
        return failure_error(self.graph, epoch, failure, _listed(X[failure.index]), self.describe_sample)


def check_weights(weights: Sequence[float], n: int, *, all_zero: bool = False) -> list[float]:
    """Sample weights as floats: one per sample, finite and >= 0, not all zero (unless `all_zero`)."""
    if len(weights) != n:
        raise TrainingError(f"{len(weights)} sample weights for {n} samples")
    out = [float(w) for w in weights]
    bad = next((i for i, w in enumerate(out) if not (math.isfinite(w) and w >= 0)), None)
    if bad is not None:
        raise TrainingError(f"the weight of sample {bad} is {out[bad]}: weights must be finite and >= 0")
    if not any(out) and not all_zero:
        raise TrainingError("every sample weight is 0: nothing would be learned")
    return out


def _reference_epoch(
    graph: Graph, loss: Loss, opt: Optimizer, batched: bool, rules: StepRules, weighted: bool
) -> Callable[..., float]:
    """One epoch with the node-by-node evaluator (same signature as the compiled one)."""
    lossfn = loss.fn(len(graph.elements))
    step = opt.step_fn(len(graph.params))
    before, after = rules.fns() if rules.active else (None, None)

    def sample(row: list[float], t: Any, G: list[float], w: float | None) -> float:
        out = graph.predict(row)
        L, g = lossfn(out if graph.is_list else [out], t)
        if w is not None:
            L, g = L * w, [gi * w for gi in g]
        graph.output.backward(g if graph.is_list else g[0])
        for k, p in enumerate(graph.params):
            G[k] += p.grad
        return float(L)

    def epoch(
        P: list[float],
        C: list[float],
        S: list[list[float]],
        STEP: list[int],
        X: list[list[float]],
        T: list[Any],
        idx: Any,
        lr: float,
        H: list[float] | tuple[()] = (),
        W: list[float] | None = None,
    ) -> float:
        # Steps go to copies, written back at the end, as the compiled epoch does: an
        # interrupted epoch leaves P as it was after the previous one.
        Q, S2, STEP2 = list(P), [list(s) for s in S], list(STEP)
        graph.set_param_values(Q)
        total = 0.0
        for chunk in idx if batched else ([i] for i in idx):
            G = [0.0] * len(Q)
            for i in chunk:
                try:
                    total += sample(X[i], T[i], G, W[i] if weighted and W is not None else None)
                except (ArithmeticError, ValueError, ModelError) as e:
                    raise SampleFailure(i, list(Q), e) from None
            if batched:
                G = [gk / len(chunk) for gk in G]
            if before is not None and after is not None:
                before(Q, G, list(H))
                step(Q, G, S2, STEP2, lr)
                after(Q, list(H), lr)
            else:
                step(Q, G, S2, STEP2, lr)
            graph.set_param_values(Q)
        P[:] = Q
        for s, s2 in zip(S, S2):
            s[:] = s2
        STEP[:] = STEP2
        return total

    return epoch
