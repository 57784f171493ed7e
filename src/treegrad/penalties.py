"""What a training step does to the gradient between the backward pass and the optimizer:
clipping by global norm, then the gradients of the L2 and L1 penalties on the weights.

Which parameters are *weights* is decided here and nowhere else (`weight_mask`): a parameter
is a weight when it is a factor of a product (`mul: [param, x]`, as in every neuron of a
`linear` layer). Every other parameter (a bias that is added, a parameter under exp, a
divisor) is not penalised: shrinking a bias towards zero has no reason to make a model
simpler, and this is the usual choice (scikit-learn's `alpha`, Keras' kernel_regularizer).

The penalty of parameters w is `l2 / 2 * sum(w * w) + l1 * sum(|w|)`, so its gradient is
`l2 * w + l1 * sign(w)` (weight decay with factor l2). Like PyTorch's `clip_grad_norm_`
followed by an optimizer's `weight_decay`, clipping acts on the data loss's gradient and the
penalty's gradient is added after it. With no option set (`StepRules.active` False) the
engines generate exactly the code they generate without this module.

Both engines paste the same statements (`StepRules.code`): the compiled one on numbers, the
vectorized one on NumPy arrays (a dense layer's weights), and the reference one runs them as
a function (`StepRules.fn`). The values l1, l2 and the clipping norm are passed in at run
time as `H = [l1, l2, clip]`; no number from a spec is pasted into generated code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from .graph import Graph
from .nodes import Parameter
from .ops import NAMESPACE, wide_sum


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

    def code(self, grads: Sequence[tuple[str, str, Sequence[int], bool]], vectorized: bool = False) -> list[str]:
        """Statements changing gradient variables in place before the update.

        `grads`: (parameter variable, its gradient variable, the indices of the parameters it
        holds, True if it is an array of a dense layer's parameters rather than a number). An
        array holds weights only or no weights (a layer's W or its biases), never both.
        `vectorized`: the code runs on NumPy arrays (those are `sign`ed and summed with `.sum()`).
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
            if self.l1 > 0.0:
                sign = f"sign({p})" if vectorized else f"(1.0 if {p} > 0.0 else (-1.0 if {p} < 0.0 else 0.0))"
                lines.append(f"{g} = {g} + l1 * {sign}")
        return lines

    def fn(self) -> Callable[[list[float], list[float], list[float]], None]:
        """A function (params, grads, H) applying these rules to `grads` in place."""
        return _rules_fn(self)


@cache
def _rules_fn(rules: StepRules) -> Callable[[list[float], list[float], list[float]], None]:
    n = len(rules.weights)
    body = [*rules.unpack(), *rules.code([(f"P[{k}]", f"G[{k}]", [k], False) for k in range(n)]), "return None"]
    src = "def rules(P, G, H):\n" + "\n".join(f"    {line}" for line in body) + "\n"
    ns: dict[str, object] = dict(NAMESPACE)
    exec(src, ns)  # noqa: S102 - treegrad's own text
    return ns["rules"]  # type: ignore[return-value]
