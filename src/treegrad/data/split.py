"""The validation split (a seeded shuffle, its last fraction held out) and the standardisation
of inputs (each column's mean and standard deviation, of every part's rows under torchrun).
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import DataError
from ..seeds import stream
from .parts import WHOLE, Part


def split_indices(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(training rows, validation rows) of n rows: a seeded shuffle with its last `fraction` held out.

    With fraction > 0 and two rows or more, each side gets at least one row.
    """
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"the validation fraction is {fraction}; it must be at least 0 and below 1, e.g. 0.2")
    order = list(range(n))
    stream(seed, "split").shuffle(order)
    n_val = round(n * fraction)
    if fraction > 0.0:
        n_val = max(n_val, 1)
    n_val = min(n_val, max(n - 1, 0))
    return order[: n - n_val], order[n - n_val :]


def split(
    X: list[list[float]], y: list[Any], fraction: float, seed: int
) -> tuple[list[list[float]], list[Any], list[list[float]], list[Any]]:
    """(X_train, y_train, X_val, y_val): a seeded shuffle with its last `fraction` held out.

    With fraction > 0 and two rows or more, each side gets at least one row.
    """
    assert len(X) == len(y), "inputs and targets must have the same number of rows"
    train, val = split_indices(len(X), fraction, seed)
    return [X[i] for i in train], [y[i] for i in train], [X[i] for i in val], [y[i] for i in val]


def standardize_stats(X: Any, names: list[str], part: Part = WHOLE) -> dict[str, tuple[float, float]]:
    """Per input: (mean, population standard deviation); 1.0 for a constant column. With `part`,
    of the rows of every part together (each part's exact sums, summed exactly). `X`: rows of
    numbers, or one array of shape (rows, inputs).

    The sums are taken of values scaled by the column's largest magnitude, so that columns
    of numbers near 1e308 do not overflow on the way to a finite mean and deviation. They are
    exact (`math.fsum`), so that they do not depend on the order of the rows or how they are cut.
    """
    import numpy as np

    A = np.asarray(X, dtype=np.float64).reshape(len(X), len(names))
    n = sum(part.gather(len(A)))
    if not n:  # of every part: each process finds it (parts.py)
        part.fail(DataError("there are no rows to compute the input means and standard deviations from"))
    columns = [A[:, j] for j in range(len(names))]
    ends = part.gather([(float(c.min()), float(c.max()), float(np.abs(c).max())) if len(c) else None for c in columns])
    ranges = [[e[j] for e in ends if e[j] is not None] for j in range(len(names))]  # of the parts with rows
    low = [min(lo for lo, _, _ in r) for r in ranges]
    high = [max(hi for _, hi, _ in r) for r in ranges]
    scale = [max(m for _, _, m in r) for r in ranges]
    varies = [lo != hi for lo, hi in zip(low, high)]
    scaled = [c / s if ok else None for c, s, ok in zip(columns, scale, varies)]
    sums = part.gather([math.fsum(v.tolist()) if v is not None else 0.0 for v in scaled])
    means = [math.fsum(p[j] for p in sums) / n for j in range(len(names))]
    squares = part.gather([math.fsum(((v - m) ** 2).tolist()) if v is not None else 0.0 for v, m in zip(scaled, means)])
    stats: dict[str, tuple[float, float]] = {}
    for j, name in enumerate(names):
        if not varies[j]:
            # Dividing by 1 leaves a constant column as it is instead of dividing by zero.
            stats[name] = (low[j], 1.0)
            continue
        std = math.sqrt(math.fsum(p[j] for p in squares) / n) * scale[j]
        mean = means[j] * scale[j]
        if not (math.isfinite(mean) and math.isfinite(std)) or std == 0.0:
            part.fail(
                DataError(
                    f"input column '{name}' cannot be standardised: its values (from {low[j]:.6g} to "
                    f"{high[j]:.6g}) give no finite, nonzero standard deviation; rescale that column, "
                    "or train without --normalize"
                )
            )
        stats[name] = (mean, std)
    return stats
