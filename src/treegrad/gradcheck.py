"""Numerical gradient check: backward() against central finite differences."""

from __future__ import annotations

import random
from typing import Any

from .graph import backward, evaluate


def gradient_check(root: Any, *, seed: int = 0, h: float = 1e-6) -> tuple[float, int]:
    """(worst relative error, parameters checked) of d output / d parameter at a random input.

    A list output is reduced to the weighted sum of its elements with fixed random
    weights, so every element's gradient path is exercised.
    """
    g = root.graph
    rng = random.Random(seed)
    g.set_inputs([rng.uniform(-1.0, 1.0) for _ in g.input_names])
    weights = [rng.uniform(0.5, 1.5) for _ in g.elements]

    def scalar() -> float:
        v = evaluate(g.output)
        return sum(w * x for w, x in zip(weights, v)) if g.is_list else float(v)

    backward(g.output, weights if g.is_list else 1.0)
    analytic = [float(p.grad) for p in g.params]
    worst = 0.0
    for p, a in zip(g.params, analytic):
        v0 = p.value
        p.value = v0 + h
        up = scalar()
        p.value = v0 - h
        down = scalar()
        p.value = v0
        numeric = (up - down) / (2 * h)
        worst = max(worst, abs(a - numeric) / max(1e-6, abs(a) + abs(numeric)))
    return worst, len(g.params)
