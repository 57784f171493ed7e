"""What a training step does beyond the optimizer's update: clipping the gradient by its
global norm and adding the L2 penalty's gradient before the update, and the L1 penalty's
proximal step after it.

Which parameters are *weights* is decided here and nowhere else (`weight_mask`): a parameter
is a weight when it is a factor of a product (`mul: [param, x]`, as in every neuron of a
`linear` layer). Every other parameter (a bias that is added, a parameter under exp, a
divisor) is not penalised: shrinking a bias towards zero has no reason to make a model
simpler, and this is the usual choice (scikit-learn's `alpha`, Keras' kernel_regularizer).

The penalty of parameters w is `l2 / 2 * sum(w * w) + l1 * sum(|w|)`. Its L2 part adds
`l2 * w` to the gradient (weight decay with factor l2); like PyTorch's `clip_grad_norm_`
followed by an optimizer's `weight_decay`, clipping acts on the data loss's gradient and
`l2 * w` is added after it. The L1 part is applied after the update as its proximal step
(soft thresholding): each weight moves `lr * l1` towards 0 and stops *at* 0 rather than
crossing it. Adding `l1 * sign(w)` to the gradient instead would leave weights jittering
around zero, never at it; with the proximal step the weights the data does not hold away
from zero become exactly 0, and drop out of the printed formula. (For plain SGD this is the
proximal gradient method; with momentum and Adam it is the usual approximation.) With no
option set (`StepRules.active` False) the engines generate exactly the code they generate
without this module.

Both engines paste the same statements (`StepRules.code` before the update, `StepRules.after`
after it): the compiled one on numbers, the vectorized one on NumPy arrays (a dense layer's
weights), and the reference one runs them as functions (`StepRules.fns`). The values l1, l2
and the clipping norm are passed in at run time as `H = [l1, l2, clip]`; no number from a
spec is pasted into generated code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from ..core.nodes import Graph, Parameter
from ..core.ops import NAMESPACE, wide_sum


def weight_mask(graph: Graph) -> tuple[bool, ...]:
    """For each parameter of the graph (in `graph.params` order): True if it is a weight, a factor
    of some product, and so regularised; False for biases and every other parameter."""
    factors: set[int] = set()
    for node in graph.order:
        if node.op is not None and node.op.name == "mul":
            factors.update(id(c) for c in node.children if isinstance(c, Parameter))
    return tuple(id(p) in factors for p in graph.params)


@dataclass(frozen=True)
class StepRules:
    """The gradient rules of one training run: l1, l2 (penalty strengths, >= 0), `clip` (the
    largest global gradient norm, or None), and which parameters are weights."""

    l1: float = 0.0
    l2: float = 0.0
    clip: float | None = None
    weights: tuple[bool, ...] = ()

    @property
    def active(self) -> bool:
        """True if a step does anything beyond the optimizer's update."""
        return self.clip is not None or (any(self.weights) and (self.l1 > 0.0 or self.l2 > 0.0))

    @property
    def values(self) -> list[float]:
        """The run-time values the generated code unpacks as `l1, l2, clip`."""
        return [self.l1, self.l2, math.inf if self.clip is None else self.clip]

    def penalty(self, params: Sequence[float]) -> float:
        """The penalty at these parameter values: l2/2 * sum(w^2) + l1 * sum(|w|) over the weights."""
        ws = [p for p, w in zip(params, self.weights, strict=True) if w]
        return 0.5 * self.l2 * math.fsum(w * w for w in ws) + self.l1 * math.fsum(abs(w) for w in ws)

    def unpack(self) -> list[str]:
        """The statement (once per epoch, before `code`) binding l1, l2 and clip from H."""
        return ["l1, l2, clip = H"] if self.active else []

    def code(self, grads: Sequence[tuple[str, str, Sequence[int], bool]]) -> list[str]:
        """Statements changing gradient variables in place before the update.

        `grads`: (parameter variable, its gradient variable, the indices of the parameters it
        holds, True if it is an array of a dense layer's parameters rather than a number). An
        array holds weights only or no weights (a layer's W or its biases), never both.
        """
        if not self.active:
            return []
        lines: list[str] = []
        if self.clip is not None:
            squares = [f"({g} * {g}).sum()" if array else f"{g} * {g}" for _, g, _, array in grads]
            lines.append(f"_gn = sqrt({wide_sum(squares) if squares else '0.0'})")
            lines.append("_gc = clip / _gn if _gn > clip else 1.0")
            lines += [f"{g} = {g} * _gc" for _, g, _, _ in grads]
        for p, g, ix, _ in grads:
            kinds = {self.weights[i] for i in ix}
            assert len(kinds) <= 1, "an array mixes weights and biases"
            if kinds != {True}:
                continue
            if self.l2 > 0.0:
                lines.append(f"{g} = {g} + l2 * {p}")
        return lines

    def after(self, grads: Sequence[tuple[str, str, Sequence[int], bool]]) -> list[str]:
        """Statements after the update (the same `grads` as `code`): L1's proximal step on the
        weights, each moved `lr * l1` towards 0 and set to 0 where it would cross it."""
        if not (self.active and self.l1 > 0.0):
            return []
        lines = ["_l1 = lr * l1"]
        for p, _, ix, array in grads:
            if not all(self.weights[i] for i in ix):
                continue
            if array:
                lines.append(f"{p} = sign({p}) * maximum(abs({p}) - _l1, 0.0)")
            else:
                lines.append(f"{p} = {p} - _l1 if {p} > _l1 else ({p} + _l1 if {p} < -_l1 else 0.0)")
        return lines

    def fns(self) -> tuple[Callable[[list[float], list[float], list[float]], None], Callable[..., None]]:
        """Functions applying these rules in place: before(params, grads, H) to the gradients,
        after(params, H, lr) to the updated parameters."""
        return _rules_fns(self)


@cache
def _rules_fns(rules: StepRules) -> tuple[Callable[..., None], Callable[..., None]]:
    grads = [(f"P[{k}]", f"G[{k}]", [k], False) for k in range(len(rules.weights))]
    src = "def before(P, G, H):\n" + "".join(f"    {line}\n" for line in [*rules.unpack(), *rules.code(grads)])
    src += "    return None\ndef after(P, H, lr):\n"
    src += "".join(f"    {line}\n" for line in [*rules.unpack(), *rules.after(grads)]) + "    return None\n"
    ns: dict[str, object] = dict(NAMESPACE)
    exec(src, ns)  # noqa: S102 - treegrad's own text
    return ns["before"], ns["after"]  # type: ignore[return-value]
