"""Numerical gradient check: backward() against central finite differences.

The check runs at a few input points: rows of the data when the caller has them, else
random inputs in (-1, 1). A point where the model or its gradient cannot be evaluated (the
log of a negative input, the slope of sqrt at 0) says nothing about the gradient code, so
it is skipped and another point tried.

How it measures, as mature gradient checkers do:
- The step is scaled to the parameter: h = STEP * max(1, |p|), with STEP = eps^(1/3), the
  step that balances the central difference's truncation error (h^2) against rounding (eps/h).
- An error is measured against the whole gradient's norm, not the one entry: a tiny entry
  of a wide model (a 64-input softmax) is mostly rounding, and dividing by its own size
  turned that rounding into a false mismatch. The norm has an absolute floor, FLOOR times
  the output's size, under which a gradient counts as zero.

What it costs is bounded, whatever the model's size: each finite difference evaluates the
whole model twice, so checking every parameter would be quadratic (a 3000-unit layer took
a minute). At each point it checks at most SAMPLE parameters one by one (a seeded sample
when there are more), plus the derivative along one random direction over all the
parameters, which catches a wrong gradient anywhere for two more evaluations.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..core.graph import backward, evaluate
from ..core.nodes import Graph, Node
from ..errors import ModelError
from .compiled import program

POINTS = 3  # points to check
TRIES = 50  # candidate points tried at most (rows of the data, or random inputs)
SAMPLE = 32  # parameters checked one by one at each point; a seeded sample when there are more
STEP = 6e-6  # finite-difference step per unit of parameter size: about eps^(1/3)
FLOOR = 1e-7  # gradient norms below FLOOR * max(1, |output|) count as zero
TOLERANCE = 1e-4  # the largest error (relative to the gradient's norm) that counts as agreement


@dataclass(frozen=True)
class GradientCheck:
    """What a gradient check found: the worst disagreement, and where it looked."""

    worst: float  # worst |analytic - numeric| / gradient norm, over checked parameters, directions and points
    params: int  # parameters checked one by one at each point
    points: int  # points checked
    skipped: int  # points tried and skipped: the model or its gradient could not be evaluated there
    total: int = 0  # parameters of the model (the random direction spans all of them)
    directions: int = 1  # random directions over all parameters checked at each point

    @property
    def ok(self) -> bool:
        """True if backward() agrees with finite differences within TOLERANCE."""
        return self.worst < TOLERANCE

    @property
    def sampled(self) -> bool:
        """True if only a sample of the parameters was checked one by one."""
        return self.params < self.total


def gradient_check(
    root: Node,
    *,
    rows: Sequence[Sequence[float]] | None = None,
    seed: int = 0,
    points: int = POINTS,
    sample: int = SAMPLE,
) -> GradientCheck:
    """Compare d output / d parameter from backward() with central differences at `points` inputs.

    The inputs are rows of `rows` in a seeded random order, or random inputs in (-1, 1)
    without rows; a candidate where the model or its gradient cannot be evaluated is
    skipped, up to TRIES candidates. A list output is reduced to the weighted sum of its
    elements with fixed random weights, so every element's gradient path is exercised.
    At most `sample` parameters are checked one by one (a seeded sample), and one random
    direction over all of them. Raises ModelError if no candidate could be evaluated.
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
    n = len(g.params)
    chosen = sorted(rng.sample(range(n), sample)) if n > sample else list(range(n))
    direction = [rng.gauss(0.0, 1.0) for _ in range(n)]
    length = math.sqrt(sum(d * d for d in direction)) or 1.0
    direction = [d / length for d in direction]
    prog = program(g)
    predict = prog.predict_fn()
    constants = prog.constant_values()

    worst, used, skipped = 0.0, 0, 0
    problem = ""
    for row in candidates:
        if used == points:
            break
        x = g.row(row)
        g.set_inputs(x)

        def scalar(values: list[float], x: list[float] = x) -> float:
            v = predict(values, constants, [x])[0]
            return sum(w * e for w, e in zip(weights, v)) if g.is_list else float(v)

        try:
            err = _worst_at_point(g, weights, scalar, chosen, direction)
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
    return GradientCheck(worst, len(chosen), used, skipped, total=n, directions=1 if n else 0)


def _worst_at_point(
    g: Graph,
    weights: list[float],
    scalar: Callable[[list[float]], float],
    chosen: Sequence[int],
    direction: Sequence[float],
) -> float | None:
    """The worst error at the current inputs, over the chosen parameters and the direction;
    None if the output or a gradient is not finite there. Parameters are left as they were."""
    out = evaluate(g.output)
    value = sum(w * e for w, e in zip(weights, out)) if g.is_list else float(out)
    if not math.isfinite(value):
        return None
    backward(g.output, weights if g.is_list else 1.0)
    analytic = [float(p.grad) for p in g.params]
    if not all(math.isfinite(a) for a in analytic):
        return None
    p0 = g.param_values()

    def central(shift: Sequence[float], h: float) -> float:
        up = scalar([p + h * s for p, s in zip(p0, shift)])
        down = scalar([p - h * s for p, s in zip(p0, shift)])
        return (up - down) / (2 * h)

    pairs: list[tuple[float, float]] = []  # (analytic, numeric)
    for i in chosen:
        h = STEP * max(1.0, abs(p0[i]))
        up_p, down_p = list(p0), list(p0)
        up_p[i] += h
        down_p[i] -= h
        pairs.append((analytic[i], (scalar(up_p) - scalar(down_p)) / (up_p[i] - down_p[i])))
    if p0:
        h = STEP * max(1.0, max(abs(p) for p in p0))
        pairs.append((sum(a * d for a, d in zip(analytic, direction)), central(direction, h)))
    if not all(math.isfinite(num) for _, num in pairs):
        return None
    norm = math.sqrt(sum(a * a for a in analytic))
    scale = max(norm, FLOOR * max(1.0, abs(value)))
    return max((abs(a - num) / scale for a, num in pairs), default=0.0)
