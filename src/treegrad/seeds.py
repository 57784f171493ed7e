"""Independent random streams from one user seed.

One `seed` drives several things: the generated data, the initial parameters, the
validation split and the shuffle order. Drawn from one `random.Random(seed)` each, they
would be the same numbers: with seed 0 the first weights of a model would equal the
first data points. Each purpose gets its own stream, derived from the seed and the
purpose's name (a string seed is hashed with SHA-512, the same on every run).
"""

from __future__ import annotations

import random


def stream(seed: int, purpose: str) -> random.Random:
    """A generator for one purpose ('init', 'split', 'shuffle', ...), reproducible from `seed`."""
    return random.Random(f"treegrad/{purpose}/{seed}")
