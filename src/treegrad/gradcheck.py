"""Numerical gradient check: backward() against central finite differences.

The check runs at a few input points: rows of the data when the caller has them, else
random inputs in (-1, 1). A point where the model or its gradient cannot be evaluated (the
log of a negative input, the slope of sqrt at 0) says nothing about the gradient code, so
it is skipped and another point tried.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ModelError
from .graph import Graph, backward, evaluate
from .nodes import Node

POINTS = 3  # points to check
TRIES = 50  # candidate points tried at most (rows of the data, or random inputs)


@dataclass(frozen=True)
class GradientCheck:
    """What a gradient check found: the worst disagreement, and where it looked."""

    worst: float  # worst relative error of d output / d parameter, over parameters and points
    params: int  # parameters checked at each point
    points: int  # points checked
    skipped: int  # points tried and skipped: the model or its gradient could not be evaluated there


def gradient_check(
    root: Node,
    *,
    rows: Sequence[Sequence[float]] | None = None,
    seed: int = 0,
    h: float = 1e-6,
    points: int = POINTS,
) -> GradientCheck:
    """Compare d output / d parameter from backward() with central differences at `points` inputs.

    The inputs are rows of `rows` in a seeded random order, or random inputs in (-1, 1)
    without rows; a candidate where the model or its gradient cannot be evaluated is
    skipped, up to TRIES candidates. A list output is reduced to the weighted sum of its
    elements with fixed random weights, so every element's gradient path is exercised.
    Raises ModelError if no candidate could be evaluated.
    """
    g = root.compiled_graph
    rng = random.Random(seed)
    weights = [rng.uniform(0.5, 1.5) for _ in g.elements]
    if rows:
        order = rng.sample(range(len(rows)), min(len(rows), TRIES))
        candidates = [list(rows[i]) for i in order]
        where = f"{len(candidates)} rows of the data"
    else:
        tries = TRIES if g.input_names else 1  # without inputs every candidate is the same point
        candidates = [[rng.uniform(-1.0, 1.0) for _ in g.input_names] for _ in range(tries)]
        where = f"{tries} random inputs in (-1, 1)"
    worst, used, skipped = 0.0, 0, 0
    problem = ""
    for row in candidates:
        if used == points:
            break
        g.set_inputs(g.row(row))
        try:
            err = _worst_at_point(g, weights, h)
        except (ModelError, ArithmeticError, ValueError) as e:
            skipped, problem = skipped + 1, str(e)
            continue
        if err is None:
            skipped, problem = skipped + 1, "the output or a gradient is not a finite number"
            continue
        worst, used = max(worst, err), used + 1
    if not used:
        raise ModelError(
            f"cannot check the gradients: the model could not be evaluated at any of the {where} tried "
            f"(the last: {problem})"
        )
    return GradientCheck(worst, len(g.params), used, skipped)


def _worst_at_point(g: Graph, weights: list[float], h: float) -> float | None:
    """The worst relative error over the parameters at the current inputs; None if the output
    or a gradient is not finite there. Parameter values are restored even when this raises."""

    def scalar() -> float:
        v = evaluate(g.output)
        return sum(w * x for w, x in zip(weights, v)) if g.is_list else float(v)

    if not math.isfinite(scalar()):
        return None
    backward(g.output, weights if g.is_list else 1.0)
    analytic = [float(p.grad) for p in g.params]
    worst = 0.0
    for p, a in zip(g.params, analytic):
        v0 = p.value
        try:
            p.value = v0 + h
            up = scalar()
            p.value = v0 - h
            down = scalar()
        finally:
            p.value = v0
        numeric = (up - down) / (2 * h)
        if not (math.isfinite(a) and math.isfinite(numeric)):
            return None
        worst = max(worst, abs(a - numeric) / max(1e-6, abs(a) + abs(numeric)))
    return worst
