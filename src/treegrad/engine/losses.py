"""The loss table: each loss's value and gradient, defined once, like the ops.

A loss entry writes straight-line statements for one sample: given the output variables
`p` (one per output element), the target variable `t` and the names to assign, it sets
the loss and dL/dp for each element. The reference evaluator runs these statements as
a function (`Loss.fn`); the compiled evaluator pastes them into its training loop.

Targets are a number for a single output, a sequence of numbers for a plain list output
(the loss is then the mean over the elements), and a class index for a softmax.

Every entry gives its statements twice, with one signature: `scalar` on numbers for one
sample, and `array` on NumPy arrays with one element per sample of a batch, for the
vectorized evaluator (arrays cannot branch with `if`). A loss of one output element is
written once as an `Elementwise` and extended to list outputs by `_mean_over_elements`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

from ..core.ops import NAMESPACE, wide_sum

BCE_EPS = 1e-8  # bce clamps p to [BCE_EPS, 1 - BCE_EPS]: no log(0), as in PyTorch-style BCE
CE_TINY = 1e-300  # cross-entropy clamps the true class's probability only to avoid log(0)
# The array forms clamp with these names, bound by `array_clamps` to numbers of the arrays' precision.
ARRAY_CLAMPS = ("bce_lo", "bce_hi", "ce_tiny")

# Elementwise: (p, t, loss, grad, tmp) -> statements setting `loss` and `grad` (= dL/dp).
Elementwise = Callable[[str, str, str, str, str], list[str]]
# LossCode: (p, t, loss, grads, tmp) -> statements setting `loss` and each grads[i] = dL/dp[i].
LossCode = Callable[[Sequence[str], str, str, Sequence[str], str], list[str]]


def _mse(p: str, t: str, loss: str, grad: str, tmp: str) -> list[str]:
    return [f"{tmp}d = {p} - {t}", f"{loss} = {tmp}d * {tmp}d", f"{grad} = 2.0 * {tmp}d"]


def _mae(p: str, t: str, loss: str, grad: str, tmp: str) -> list[str]:
    return [
        f"{tmp}d = {p} - {t}",
        f"{loss} = abs({tmp}d)",
        f"{grad} = (1.0 if {tmp}d > 0.0 else (-1.0 if {tmp}d < 0.0 else 0.0))",
    ]


def _mae_array(p: str, t: str, loss: str, grad: str, tmp: str) -> list[str]:
    return _mae(p, t, loss, grad, tmp)[:2] + [f"{grad} = sign({tmp}d)"]


def _bce(p: str, t: str, loss: str, grad: str, tmp: str) -> list[str]:
    # Written so that a NaN prediction stays NaN (and is caught as divergence) instead
    # of being clamped into a finite loss.
    lo, hi = repr(BCE_EPS), repr(1.0 - BCE_EPS)
    pc = f"{tmp}pc"
    return [
        f"{pc} = {lo} if {p} < {lo} else {p}",
        f"{pc} = {hi} if {pc} > {hi} else {pc}",
        f"{loss} = -{t} * log({pc}) - (1.0 - {t}) * log(1.0 - {pc})",
        f"{grad} = ({pc} - {t}) / ({pc} * (1.0 - {pc}))",
    ]


def _bce_array(p: str, t: str, loss: str, grad: str, tmp: str) -> list[str]:
    # The same clamp without branches; maximum and minimum keep a NaN a NaN too.
    return [f"{tmp}pc = minimum(maximum({p}, bce_lo), bce_hi)"] + _bce(p, t, loss, grad, tmp)[2:]


def array_clamps(dtype: type) -> dict[str, float]:
    """The clamp bounds of the array forms (`ARRAY_CLAMPS`) as numbers of `dtype`, a NumPy float
    type. In float64 they are BCE_EPS, 1 - BCE_EPS and CE_TINY themselves; in float32, where
    1 - BCE_EPS rounds to 1 and CE_TINY to 0 (so log would meet 0), the nearest numbers that
    keep every log finite: the largest float32 below 1 and the smallest normal float32."""
    import numpy as np

    one = dtype(1.0)
    hi = dtype(1.0 - BCE_EPS)
    if hi >= one:
        hi = np.nextafter(one, dtype(0.0))
    tiny = max(CE_TINY, float(np.finfo(dtype).tiny))
    return dict(zip(ARRAY_CLAMPS, (float(dtype(BCE_EPS)), float(hi), tiny), strict=True))


def _mean_over_elements(one: Elementwise) -> LossCode:
    """The loss of one output element as a loss of the whole output: the element's loss for a
    single output, the mean of the elements' losses for a list output."""

    def code(p: Sequence[str], t: str, loss: str, grads: Sequence[str], tmp: str) -> list[str]:
        if len(p) == 1:
            return one(p[0], t, loss, grads[0], tmp)
        lines, k = [], len(p)
        for i, (pi, gi) in enumerate(zip(p, grads)):
            lines += one(pi, f"{t}[{i}]", f"{tmp}l{i}", gi, f"{tmp}{i}")
            lines.append(f"{gi} = {gi} / {k}.0")
        lines.append(f"{loss} = ({wide_sum([f'{tmp}l{i}' for i in range(k)])}) / {k}.0")
        return lines

    return code


def _cross_entropy(p: Sequence[str], t: str, loss: str, grads: Sequence[str], tmp: str) -> list[str]:
    # t is the true class index; the gradient flows only into its probability.
    pt, lo = f"{tmp}pt", repr(CE_TINY)
    lines = [f"{pt} = ({', '.join(p)},)[{t}]", f"{pt} = {lo} if {pt} < {lo} else {pt}", f"{loss} = -log({pt})"]
    return lines + [f"{g} = -1.0 / {pt} if {t} == {i} else 0.0" for i, g in enumerate(grads)]


def _cross_entropy_array(p: Sequence[str], t: str, loss: str, grads: Sequence[str], tmp: str) -> list[str]:
    # The same for a batch: t is an array of class indices, one per sample.
    pt = f"{tmp}pt"
    lines = [
        f"{pt} = stack(({', '.join(p)},), 1)[arange(len({t})), {t}]",
        f"{pt} = maximum({pt}, ce_tiny)",
        f"{loss} = -log({pt})",
        f"{tmp}r = -1.0 / {pt}",
    ]
    return lines + [f"{g} = where({t} == {i}, {tmp}r, 0.0)" for i, g in enumerate(grads)]


def _cross_entropy_softmax(p: str, t: str, loss: str, gz: str, tmp: str) -> list[str]:
    # On a softmax the gradient with respect to the logits is p - onehot(t): the chain through
    # d loss / d p (-1/p_t) and the softmax's Jacobian, folded. `p` is overwritten with it.
    pt = f"{tmp}pt"
    return [
        f"{tmp}ar = arange(len({t}))",
        f"{pt} = maximum({p}[{tmp}ar, {t}], ce_tiny)",
        f"{loss} = -log({pt})",
        f"{gz} = {p}",
        f"{gz}[{tmp}ar, {t}] -= 1.0",
    ]


# What a model trained with a loss learns: numbers, the probability of one of two classes,
# or one probability per class (a softmax output, and only there).
TaskKind = Literal["regression", "binary", "classes"]


@dataclass(frozen=True, kw_only=True)
class Loss:
    """A loss: its name, the task it trains for, and the statements computing it."""

    name: str
    doc: str
    task: TaskKind
    scalar: LossCode  # statements for one sample, on numbers
    array: LossCode  # the same statements for a batch, on arrays with one element per sample
    # For a softmax's loss, optionally: (probabilities, targets, loss, gz, tmp) -> statements setting
    # the batch's losses and gz = d loss / d logits directly, (batch, k) arrays, cheaper than the chain.
    softmax_array: Callable[[str, str, str, str, str], list[str]] | None = None

    @property
    def on_softmax(self) -> bool:
        """True if the loss needs a softmax output; otherwise it never fits one."""
        return self.task == "classes"

    def code(
        self, p: Sequence[str], t: str, loss: str, grads: Sequence[str], tmp: str, vectorized: bool = False
    ) -> list[str]:
        """Statements setting `loss` and each `grads[i]` = dL/dp[i] for one sample.

        `vectorized`: for a batch, on arrays with one element per sample; a list output's
        `t[i]` is then the array of the i-th target element.
        """
        return (self.array if vectorized else self.scalar)(p, t, loss, grads, tmp)

    def fn(self, n: int) -> Callable[[Sequence[float], object], tuple[float, list[float]]]:
        """(predictions, target) -> (loss, dL/dprediction per element), for n outputs."""
        return _loss_fn(self, n)


# The first loss of a kind of output is its default.
LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in [
        Loss(
            name="mse",
            doc="mean squared error",
            task="regression",
            scalar=_mean_over_elements(_mse),
            array=_mean_over_elements(_mse),
        ),
        Loss(
            name="mae",
            doc="mean absolute error",
            task="regression",
            scalar=_mean_over_elements(_mae),
            array=_mean_over_elements(_mae_array),
        ),
        Loss(
            name="bce",
            doc="binary cross-entropy on a probability (a sigmoid output), labels 0/1",
            task="binary",
            scalar=_mean_over_elements(_bce),
            array=_mean_over_elements(_bce_array),
        ),
        Loss(
            name="cross_entropy",
            doc="categorical cross-entropy on a softmax, target a class index",
            task="classes",
            scalar=_cross_entropy,
            array=_cross_entropy_array,
            softmax_array=_cross_entropy_softmax,
        ),
    ]
}


def fitting(softmax: bool) -> list[str]:
    """The names of the losses that fit a softmax output (softmax=True) or any other output."""
    return [name for name, loss in LOSSES.items() if loss.on_softmax == softmax]


def default_loss(softmax: bool) -> str:
    """The loss a model trains with when its spec names none: the first that fits its output."""
    return fitting(softmax)[0]


@cache
def _loss_fn(loss: Loss, n: int) -> Callable[[Sequence[float], object], tuple[float, list[float]]]:
    p, g = [f"p{i}" for i in range(n)], [f"g{i}" for i in range(n)]
    body = loss.code(p, "t", "L", g, "_")
    src = f"def loss(P, t):\n {', '.join(p)}, = P\n " + "\n ".join(body) + f"\n return L, [{', '.join(g)}]"
    ns: dict[str, object] = dict(NAMESPACE)
    exec(src, ns)  # noqa: S102 - treegrad's own text
    return ns["loss"]  # type: ignore[return-value]
