"""The training loop: `fit(model, inputs, targets, ...)`.

It runs the compiled evaluator (`compiled.py`) by default; `engine="reference"` runs the
node-by-node forward/backward of `graph.py` instead, with the same arithmetic in the same
order, so both give the same numbers. `fit` never prints: progress goes to `callback`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from ..core.nodes import Graph, Leaf, Node, Output
from ..core.ops import OPS
from ..errors import ModelError, TrainingError
from .compiled import SampleFailure, program
from .losses import LOSSES, Loss, fitting
from .optim import OPTIMIZERS, Optimizer
from .penalties import StepRules, weight_mask
from .schedules import Scheduler
from .vectorized import DTYPES, VectorizedEpoch, limit_blas_threads, vectorized_epoch_fn

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


def _check_rows(graph: Graph, rows: Sequence[Sequence[float]]) -> list[list[float]]:
    n = len(graph.input_names)
    out = []
    for i, r in enumerate(rows):
        if len(r) != n:
            raise TrainingError(f"sample {i} has {len(r)} value(s), the model has {n} input(s)")
        out.append([float(v) for v in r])
    return out


def fit(
    model: Node,
    inputs: Sequence[Sequence[float]],
    targets: Sequence[Any],
    *,
    loss: str | Loss = "mse",
    epochs: int = 100,
    learning_rate: float = 0.01,
    batch_size: int = 1,
    optimizer: str = "sgd",
    shuffle: bool = False,
    seed: int = 0,
    validation: tuple[Sequence[Sequence[float]], Sequence[Any]] | None = None,
    patience: int | None = None,
    callback: Callback | None = None,
    engine: str = "compiled",
    describe_sample: Callable[[int], str] | None = None,
    l1: float = 0.0,
    l2: float = 0.0,
    clip_norm: float | None = None,
    lr_schedule: Any = None,
    sample_weight: Sequence[float] | None = None,
    history: History | None = None,
    start_epoch: int = 0,
    state: tuple[Sequence[Sequence[float]], int] | None = None,
    dtype: str = "float64",
) -> History:
    """Train a model; return the per-epoch mean training loss.

    Ctrl-C stops training after the last complete epoch (`History.interrupted`).

    Per-sample steps when `batch_size` is 1, mean-gradient mini-batches otherwise.
    With `validation` = (inputs, targets) the validation loss is computed each epoch,
    and with `patience` training stops when it has not improved for that many epochs,
    keeping the parameters of the best epoch.

    An op that cannot be evaluated (the log of a negative input) stops training with a
    TrainingError naming the epoch, the sample and the op; values that overflow or become
    NaN stop it as divergence. `describe_sample(i)` says where sample i came from (a line of
    a file); by default it is "sample i".

    `l1`, `l2`: penalties on the weights, and `clip_norm`: the largest global gradient norm
    (see penalties.py); `lr_schedule`: the learning rate per epoch (a schedule of spec/models.py, such as
    `StepSchedule(step_size=10, gamma=0.5)`; see schedules.py);
    `sample_weight`: how much each sample's loss counts (1 each by default). `history`: the
    History to fill, so a callback can read the learning rate and penalty of its epoch.

    To continue a run: `start_epoch`, the epochs it has done, and `state`, its `History.state`
    (the optimizer's state). The epochs are numbered on from there, the shuffling continues its
    stream (replayed from `seed`), so that n epochs, then m more, give the parameters of one run
    of n + m bit for bit (a schedule whose rate depends on the total, cosine, aside).

    `dtype`: "float64" (the reference), or "float32": the NumPy trainer then runs every batch,
    of one sample too, in float32 (parameters, data, gradients, optimizer state), whatever its
    cost estimate says; the parameters it returns are the float32 values as Python floats, and
    the validation loss is computed from them in float64. The scalar engines compute in float64
    only, so float32 is refused for a graph the NumPy trainer cannot take (one without dense layers).
    """
    if model.graph is None:
        model.compile()
    graph = model.graph
    assert graph is not None
    lossobj = resolve_loss(graph, loss)
    if optimizer not in OPTIMIZERS:
        raise TrainingError(f"unknown optimizer '{optimizer}'; use one of {', '.join(OPTIMIZERS)}")
    opt = OPTIMIZERS[optimizer]
    if not (isinstance(epochs, int) and epochs >= 0):
        raise TrainingError(f"epochs must be a whole number >= 0, got {epochs!r}")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise TrainingError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise TrainingError(f"learning_rate must be a positive number, got {learning_rate!r}")
    for name, value in (("l1", l1), ("l2", l2)):
        if not (math.isfinite(value) and value >= 0):
            raise TrainingError(f"{name} must be a number >= 0, got {value!r}")
    if clip_norm is not None and not (math.isfinite(clip_norm) and clip_norm > 0):
        raise TrainingError(f"clip_norm must be a positive number, got {clip_norm!r}")
    if engine not in ("compiled", "reference"):
        raise TrainingError(f"unknown engine '{engine}'; use compiled or reference")
    if dtype not in DTYPES:
        raise TrainingError(f"unknown dtype '{dtype}'; use {' or '.join(DTYPES)}")
    if dtype != "float64" and engine != "compiled":
        raise TrainingError(f"the {engine} engine computes in float64 only; train with dtype float64")
    X = _check_rows(graph, inputs)
    T = check_targets(graph, lossobj, targets)
    if len(X) != len(T):
        raise TrainingError(f"{len(X)} input rows but {len(T)} targets")
    if not X:
        raise TrainingError("no training samples")
    W = None if sample_weight is None else _check_weights(sample_weight, len(X))
    val = None
    if validation is not None and len(validation[0]):
        val = (_check_rows(graph, validation[0]), check_targets(graph, lossobj, validation[1]))

    prog = program(graph)
    P = graph.param_values()
    C = prog.constant_values()
    S = [[0.0] * len(P) for _ in opt.state]
    STEP = [0]
    if not (isinstance(start_epoch, int) and start_epoch >= 0):
        raise TrainingError(f"start_epoch must be a whole number >= 0, got {start_epoch!r}")
    if state is not None:
        moments, steps = state
        if len(moments) != len(S) or any(len(m) != len(P) for m in moments):
            raise TrainingError(
                f"the saved optimizer state does not fit: {optimizer} keeps {len(S)} value(s) per parameter "
                f"for {len(P)} parameters"
            )
        S, STEP = [[float(v) for v in m] for m in moments], [int(steps)]
    batched = batch_size > 1
    rules = StepRules(l1, l2, clip_norm, weight_mask(graph))
    H = rules.values
    weighted = W is not None
    # Batches, of one sample too, run on NumPy arrays where the graph has dense layers that pay
    # for it (wide ones, or in large batches), else as scalar code; in float32 on arrays always.
    run_epoch: Callable[..., float]
    if engine == "reference":
        run_epoch = _reference_epoch(graph, lossobj, opt, batched, rules, weighted)
    else:
        cost_of = batch_size if dtype == "float64" else None  # None: no cost estimate, arrays if they can
        vec = vectorized_epoch_fn(graph, lossobj, opt, cost_of, rules, weighted, dtype)
        if vec is None and dtype != "float64":
            raise TrainingError(
                f"dtype {dtype} needs the NumPy trainer, which takes only models with dense layers (linear "
                "layers, or sums of weight * input); this model trains on the scalar engine, which computes "
                "in float64 only: use dtype float64, the default (training.dtype in a spec)"
            )
        run_epoch = vec or prog.epoch_fn(lossobj, opt, batched, rules, weighted)
    scheduler = Scheduler(lr_schedule, learning_rate, start_epoch + epochs)
    val_loss = prog.loss_fn(lossobj) if val else None

    def checked_epoch(epoch: int, idx: Any, learning_rate: float) -> float:
        """Run one epoch and return its mean loss. A math error, or a loss or parameter that is
        not finite, stops training with a TrainingError saying which sample and op, or divergence."""
        # NumPy turns a math error into NaN: to name it, the scalar code reruns the epoch from its start.
        start = (list(P), [list(s) for s in S], list(STEP)) if isinstance(run_epoch, VectorizedEpoch) else None
        try:
            total = run_epoch(P, C, S, STEP, X, T, idx, learning_rate, H, W)
        except SampleFailure as failure:
            raise _failure_error(graph, epoch, failure, X, describe_sample) from None
        except ArithmeticError:
            # From plain numbers in the vectorized code (a division by a parameter at 0): the
            # scalar rerun below names it. A ValueError there is no math error but a bug (NumPy's
            # shape mismatch, say), and is not to be reported as divergence.
            total = math.nan
        mean = total / len(X)
        if math.isfinite(mean) and all(math.isfinite(p) for p in P):
            return mean
        if start is not None:
            P[:], S[:], STEP[:] = start
            scalar_epoch = prog.epoch_fn(lossobj, opt, batched, rules, weighted)
            try:
                scalar_epoch(list(P), C, [list(s) for s in S], list(STEP), X, T, idx, learning_rate, H, W)
            except SampleFailure as failure:
                raise _failure_error(graph, epoch, failure, X, describe_sample) from None
        raise _diverged(epoch, "the loss became NaN or infinite")

    rng = random.Random(seed)
    order = list(range(len(X)))
    if shuffle:
        for _ in range(start_epoch):  # the order the cut run had reached
            rng.shuffle(order)
    hist = History() if history is None else history
    best = (math.inf, list(P))
    since_best = 0
    limit = limit_blas_threads() if isinstance(run_epoch, VectorizedEpoch) else None
    try:
        for epoch in range(start_epoch + 1, start_epoch + epochs + 1):
            if shuffle:
                rng.shuffle(order)
            idx: Any = [order[i : i + batch_size] for i in range(0, len(order), batch_size)] if batched else order
            lr = scheduler.rate(epoch)
            mean = checked_epoch(epoch, idx, lr)
            hist.learning_rates.append(lr)
            if rules.active and (l1 or l2):
                hist.penalty.append(rules.penalty(P))
            hist.append(mean)
            v = None
            if val and val_loss is not None:
                try:
                    v = val_loss(P, C, val[0], val[1]) / len(val[0])
                except (ArithmeticError, ValueError):
                    v = math.inf
                hist.validation.append(v)
                if v < best[0]:
                    best, since_best, hist.best_epoch = (v, list(P)), 0, epoch
                else:
                    since_best += 1
            scheduler.observe(mean if v is None else v)
            if callback is not None and callback(epoch, mean, v, P) is False:
                break
            if patience is not None and val and since_best >= patience:
                hist.stopped_early = True
                break
    except KeyboardInterrupt:
        # Ctrl-C may land anywhere in an epoch: in the epoch function, the validation loss
        # or the callback (a progress bar). Epoch functions write P back only at their
        # end, so P holds the parameters after the last complete epoch: keep those.
        hist.interrupted = True
    finally:
        if limit is not None:
            limit.restore_original_limits()
    if patience is not None and val and hist.best_epoch is not None:
        P = best[1]
    graph.set_param_values(P)
    hist.state = ([list(m) for m in S], STEP[0])
    return hist


# The advice that ends a divergence message; the caller, which knows what was standardised,
# may replace it (workflow.py) with advice that is true of the run.
DIVERGED_ADVICE = "Try a smaller learning rate, or normalize the inputs (training.normalize: true)."


def _diverged(epoch: int, what: str, sample: int | None = None) -> TrainingError:
    """Divergence: values grew until they overflowed or became NaN, in this epoch."""
    return TrainingError(f"training diverged in epoch {epoch}: {what}. {DIVERGED_ADVICE}", sample=sample)


def _failure_error(
    graph: Graph,
    epoch: int,
    failure: SampleFailure,
    X: list[list[float]],
    describe_sample: Callable[[int], str] | None = None,
) -> TrainingError:
    """The error for an epoch stopped by a math error at a sample: divergence if a value
    overflowed or was infinite already, else the op evaluated outside its domain, named."""
    error = failure.error
    # The reference evaluator reports the math error as a ModelError raised while handling it.
    cause = error.__context__ if isinstance(error, ModelError) and error.__context__ is not None else error
    found = _find_failing_op(graph, failure.params, X[failure.index])
    where = describe_sample(failure.index) if describe_sample else f"sample {failure.index}"
    detail = found[0] if found else str(cause)
    finite = all(math.isfinite(v) for v in failure.params + (found[2] if found else []))
    if isinstance(cause, OverflowError) or not finite:
        return _diverged(epoch, f"a value became infinite at {where} ({detail})", sample=failure.index)
    if found is None:
        message = f"epoch {epoch}, {where}: the model cannot be evaluated there ({detail})"
    else:
        text, op, args, slope = found
        message = f"epoch {epoch}, {where}: {text} — {OPS[op].domain_advice(args, slope)}"
    return TrainingError(message, sample=failure.index)


def _find_failing_op(graph: Graph, params: list[float], row: list[float]) -> tuple[str, str, list[float], bool] | None:
    """(what failed, op name, its arguments, True if it was the op's slope) for the first op that
    cannot be evaluated, or differentiated, at this sample with these parameters; None if all can.

    Runs the reference evaluator, whose ModelError names the op and its arguments; the graph's
    parameters are put back afterwards.
    """
    saved = graph.param_values()
    graph.set_param_values(params)
    try:
        try:
            graph.predict(row)
        except ModelError as e:
            # predict computes stale nodes in order and stops at the failing one, which stays stale.
            node = next((n for n in graph.order if n._dirty and n.op is not None), None)
            if node is None or node.op is None:
                return None
            return str(e), node.op.name, [float(c._value) for c in node.children], False  # type: ignore[arg-type]
        for node in graph.order:
            if isinstance(node, (Leaf, Output)) or node.op is None:
                continue
            args = [float(c._value) for c in node.children]  # type: ignore[arg-type]
            try:
                node.op.derivs_fn(len(args))(node._value, *args)
            except (ArithmeticError, ValueError) as e:
                return f"cannot differentiate '{node.op.name}' at {args}: {e}", node.op.name, args, True
        return None
    finally:
        graph.set_param_values(saved)


def _check_weights(weights: Sequence[float], n: int) -> list[float]:
    """Sample weights as floats: one per sample, finite and >= 0, not all zero."""
    if len(weights) != n:
        raise TrainingError(f"{len(weights)} sample weights for {n} samples")
    out = [float(w) for w in weights]
    bad = next((i for i, w in enumerate(out) if not (math.isfinite(w) and w >= 0)), None)
    if bad is not None:
        raise TrainingError(f"the weight of sample {bad} is {out[bad]}: weights must be finite and >= 0")
    if not any(out):
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
