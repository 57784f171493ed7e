"""Optimizers, each defined once as the statements of its update.

An optimizer entry writes, for one parameter `p` with gradient `g` and its own state
variables, the statements that update it; `prelude` runs once per step before the
updates (Adam's bias corrections). Every engine carries out these statements: the compiled
trainer pastes them into its loop on numbers, the NumPy trainer and the torch trainer run
them once per step on one flat array (tensor) of all parameters, and the reference trainer
runs them as a function (`Optimizer.step_fn`). Adding an optimizer is one entry here; the
spec's choices (`training.optimizer`), the messages and the tests over every engine
(tests/test_optimizers.py) are read from this table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

Update = Callable[[str, str, Sequence[str]], list[str]]


@dataclass(frozen=True, kw_only=True)
class Optimizer:
    """An update rule: per-parameter state, per-step prelude, per-parameter statements."""

    name: str
    doc: str
    state: tuple[str, ...]
    prelude: tuple[str, ...]
    update: Update
    # The parameter after one step from a fresh state, worked out by hand: (p, g, lr) -> p.
    # Not used in training; every engine is checked against it.
    first_step: Callable[[float, float, float], float]

    def step_fn(self, n: int) -> Callable[[list[float], Sequence[float], list[list[float]], list[int], float], None]:
        """A function (params, grads, state, step, lr) updating n parameters in place."""
        return _step_fn(self.name, n)


OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in [
        Optimizer(
            name="sgd",
            doc="plain gradient descent: p -= lr * g",
            state=(),
            prelude=(),
            update=lambda p, g, s: [f"{p} -= lr * {g}"],
            first_step=lambda p, g, lr: p - lr * g,
        ),
        Optimizer(
            name="momentum",
            doc="SGD with momentum 0.9: m = 0.9 m + g; p -= lr * m",
            state=("m",),
            prelude=(),
            update=lambda p, g, s: [f"{s[0]} = 0.9 * {s[0]} + {g}", f"{p} -= lr * {s[0]}"],
            first_step=lambda p, g, lr: p - lr * g,  # m = g
        ),
        Optimizer(
            name="adam",
            doc="Adam (beta1 0.9, beta2 0.999, eps 1e-8), bias-corrected",
            state=("m", "v"),
            prelude=("step += 1", "b1c = 1.0 - 0.9 ** step", "b2c = 1.0 - 0.999 ** step"),
            update=lambda p, g, s: [
                f"{s[0]} = 0.9 * {s[0]} + 0.1 * {g}",
                f"{s[1]} = 0.999 * {s[1]} + 0.001 * {g} * {g}",
                f"{p} -= lr * ({s[0]} / b1c) / (sqrt({s[1]} / b2c) + 1e-08)",
            ],
            first_step=lambda p, g, lr: p - lr * g / (abs(g) + 1e-08),  # m / b1c = g, v / b2c = g^2
        ),
    ]
}


@cache
def _step_fn(name: str, n: int) -> Callable[..., None]:
    # The op table is imported here, not with the optimizers: `train --help` lists them without it.
    from ..core.ops import NAMESPACE

    opt = OPTIMIZERS[name]
    lines = ["def step_fn(P, G, S, STEP, lr):", " step = STEP[0]", *[f" {s}" for s in opt.prelude]]
    for i in range(n):
        state = [f"S[{k}][{i}]" for k in range(len(opt.state))]
        lines += [f" {line}" for line in opt.update(f"P[{i}]", f"G[{i}]", state)]
    lines.append(" STEP[0] = step")
    ns: dict[str, object] = dict(NAMESPACE)
    exec("\n".join(lines), ns)  # noqa: S102 - treegrad's own text
    return ns["step_fn"]  # type: ignore[return-value]
