"""The benchmark's recipe: workloads, sizes and seeds, the data and the initial values every peer
starts from, and the loss they share (the whole recipe: `python -m pydoc treegrad.bench`)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

N_SAMPLES = 1000
LR = 0.01
EPS = 1e-8  # bce clamps p to [EPS, 1 - EPS]
EPOCHS = {"W1": 20, "W2a": 5, "W2b": 50, "W3": 1}
BATCH = 32
MLP_SIZES = (2, 16, 16, 1)
DEPTHS = tuple(2**k for k in range(1, 13))  # 2 .. 4096
SLOPE_RANGE = (16, 4096)
DATA_SEED, MLP_SEED, CHAIN_SEED = 0, 1, 2
MICROGRAD_MAX_DEPTH = 256
# Wider MLPs: (layer sizes, batch size, optimizer, learning rate, rows, epochs); hidden layers
# relu, a softmax head (cross-entropy) for 10 classes, a linear one (mse) for 1 output.
WIDE = {
    "W4s": ((64, 32, 10), 1, "sgd", 0.01, 1797, 1),
    "W4a": ((64, 32, 10), 32, "adam", 0.001, 1797, 5),
    "W5": ((8, 256, 1), 64, "sgd", 0.01, 4096, 3),
    "W6": ((64, 0, 10), 32, "adam", 0.001, 1797, 2),  # the hidden width is the sweep's
}
WIDTHS = (8, 16, 32, 64, 128, 256)
WIDE_SEED = 3
EPOCHS.update({w: spec[5] for w, spec in WIDE.items()})
# The CLI row: (w, b) to start from, rows of the f2c conversion, epochs.
CLI_INIT, CLI_ROWS = (0.5, 0.0), 100
EPOCHS["CLI"] = 100
WORKLOADS = ("W1", "W2a", "W2b", "W3", "W4s", "W4a", "W5", "W6", "CLI")
PEERS = ("treegrad", "python", "numpy", "micrograd", "torch", "torch1", "treegrad32")
LABELS = {"torch1": "torch 1 thread"}  # a peer's name in the table, where it is not its key
TITLES = {
    "W1": "W1  binary classifier, per sample, {e}",
    "W2a": "W2a MLP 2-16-16-1, per sample, {e}",
    "W2b": "W2b MLP 2-16-16-1, mini-batches of 32 (mean gradient), {e}",
    "W3": "W3  chain of depth d, per sample, {e}; microseconds per step",
    "W4s": "W4s MLP 64-32-10 softmax (digits-shaped, 1797 rows), per-sample SGD, {e}",
    "W4a": "W4a MLP 64-32-10 softmax (digits-shaped, 1797 rows), batches of 32, Adam, {e}",
    "W5": "W5  MLP 8-256-1 (mse, 4096 rows), batches of 64, SGD, {e}",
    "W6": "W6  MLP 64-h-10 softmax, batches of 32, Adam, {e}; microseconds per sample by width h",
    "CLI": "CLI `treegrad train` of a line fit (mse, 100 rows from a CSV), per sample, {e}, "
    "in a fresh process: start-up included",
}

Sample = tuple[tuple[float, ...], int]
Layers = list[tuple[list[list[float]], list[float]]]


def binary_setup(seed: int = DATA_SEED) -> tuple[list[float], list[Sample]]:
    """W1's parameters p1..p5, then the samples ((x, y), label), all from one generator."""
    rng = random.Random(seed)
    params = [rng.uniform(-1, 1) for _ in range(5)]
    data: list[Sample] = []
    for _ in range(N_SAMPLES):
        x, y = rng.uniform(-1, 1), rng.uniform(-1, 1)
        data.append(((x, y), 1 if y > x else 0))
    return params, data


def mlp_init(sizes: Sequence[int] = MLP_SIZES, seed: int = MLP_SEED) -> Layers:
    """Per layer (W, b): one row of weights per neuron, uniform on [-1, 1]; biases 0."""
    rng = random.Random(seed)
    return [
        ([[rng.uniform(-1, 1) for _ in range(nin)] for _ in range(nout)], [0.0] * nout)
        for nin, nout in zip(sizes[:-1], sizes[1:], strict=True)
    ]


def chain_init(depth: int, seed: int = CHAIN_SEED) -> list[tuple[float, float]]:
    """(a_k, b_k) for k = 1..depth, innermost first."""
    rng = random.Random(seed)
    return [(rng.uniform(-1, 1), rng.uniform(-1, 1)) for _ in range(depth)]


def chain_data(data: list[Sample]) -> list[Sample]:
    """W3's samples: the first coordinate of W1's, same labels."""
    return [((x[0],), t) for x, t in data]


def wide_setup(workload: str, width: int | None = None) -> tuple[Layers, list[Any]]:
    """A wide workload's layers (W as rows per neuron, uniform on +-1/sqrt(inputs); biases 0) and
    samples (x, target): x uniform on [0, 1); the class a random linear teacher picks, or
    sin of a random projection for one output."""
    sizes, _, _, _, rows, _ = WIDE[workload]
    sizes = (sizes[0], width or sizes[1], sizes[2])
    rng = random.Random(WIDE_SEED)
    layers: Layers = [
        ([[rng.uniform(-1, 1) / math.sqrt(nin) for _ in range(nin)] for _ in range(nout)], [0.0] * nout)
        for nin, nout in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    teacher = [[rng.gauss(0, 1) for _ in range(sizes[0])] for _ in range(sizes[-1])]
    data: list[Any] = []
    for _ in range(rows):
        x = tuple(rng.random() for _ in range(sizes[0]))
        scores = [sum((xi - 0.5) * w for xi, w in zip(x, row, strict=True)) for row in teacher]
        target = scores.index(max(scores)) if sizes[-1] > 1 else math.sin(scores[0])
        data.append((x, target))
    return layers, data


def cli_setup() -> tuple[tuple[float, float], list[Any]]:
    """The CLI row's (w, b) and its rows ((f,), c): f uniform on [-1, 1], c = (f - 32) * 5/9."""
    rng = random.Random(DATA_SEED)
    fs = [rng.uniform(-1, 1) for _ in range(CLI_ROWS)]
    return CLI_INIT, [((f,), (f - 32.0) * 5.0 / 9.0) for f in fs]


def setup(workload: str, size: int | None = None) -> tuple[Any, list[Any]]:
    """A workload's initial values and samples; `size` is W3's depth or W6's hidden width."""
    if workload in WIDE:
        return wide_setup(workload, size)
    if workload == "CLI":
        return cli_setup()
    params, data = binary_setup()
    if workload == "W1":
        return params, data
    if workload == "W3":
        return chain_init(size or 0), chain_data(data)
    return mlp_init(), data


def wide_shape(workload: str, init: Layers) -> tuple[int, str, float, bool]:
    """(batch size, optimizer, learning rate, softmax head) of a wide workload."""
    _, batch, opt, lr, _, _ = WIDE[workload]
    return batch, opt, lr, len(init[-1][1]) > 1


def bce(p: float, t: int) -> tuple[float, float]:
    """(loss, d loss / d p) with p clamped, written as treegrad's loss table writes it."""
    pc = EPS if p < EPS else p
    pc = 1.0 - EPS if pc > 1.0 - EPS else pc
    return -t * math.log(pc) - (1.0 - t) * math.log(1.0 - pc), (pc - t) / (pc * (1.0 - pc))
