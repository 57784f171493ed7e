"""The benchmark behind `treegrad bench`: treegrad's training speed beside its peers.

This module is library code (workloads, peers, measurement, the table); the command line,
its one argument parser, is `treegrad bench` in the cli. A new workload is a name in
`WORKLOADS`, its model in `_treegrad` and each peer's function, and a line in `run`.

Every peer trains the same models on the same 1000 samples from the same initial
parameters, with the same loss (binary cross-entropy, p clamped to [1e-8, 1 - 1e-8]),
learning rate 0.01, plain SGD and no shuffling; one run prints one table of steps/s and
samples/s, and how many times faster treegrad is than each peer.

Workloads (a step is forward + backward + update):
  W1   sigmoid(p1*relu(p2*x + p3*y + p4) + p5), per sample, 20 epochs
  W2a  MLP 2-16-16-1, relu hidden, sigmoid out, per sample, 5 epochs
  W2b  the same MLP in mini-batches of 32 (the last one has 8), 50 epochs; the gradient of
       a batch is the MEAN of its samples' gradients (fit's contract; every peer here does
       the same, so the losses are comparable)
  W3   a chain v_k = sigmoid(a_k*v_(k-1) + b_k), v_0 = x, per sample, 1 epoch, at depths
       2, 4, ..., 4096; the log-log slope of time per step against depth says how the cost grows
  W4s  MLP 64-32-10 with a softmax (digits-shaped: 1797 rows of 64 inputs, 10 classes), per-sample SGD
  W4a  the same in batches of 32 with Adam (learning rate 0.001)
  W5   a wide MLP 8-256-1 (mse, 4096 rows) in batches of 64
  W6   64-h-10 as W4a for widths h = 8 .. 256, with the log-log slope of time per sample against h
       (W4-W6: relu hidden layers, the MEAN batch loss, data from random.Random(3): x uniform on
       [0, 1), the class a random linear teacher picks (or sin of a random projection for W5);
       weights uniform on +-1/sqrt(inputs), biases 0; peers treegrad, numpy, torch)
  CLI  a first call: `treegrad train` of a line fit c = w*f + b (mse, 100 rows of the f2c
       conversion from a CSV, per-sample SGD, 100 epochs) in a fresh process, start-up included,
       beside the same training written out in a fresh `python`; the table says how much of
       each process's time went to imports (-X importtime)

Data: 1000 points (x, y) uniform on [-1, 1]^2 from random.Random(0), label 1 if y > x, drawn
after W1's five parameters from the same generator; MLP weights uniform on [-1, 1] from
random.Random(1), layer by layer, neuron by neuron, biases 0; chain (a_k, b_k) uniform on
[-1, 1] from random.Random(2), innermost first. W3 uses the first coordinate only.

Peers, each optional except the first two:
  python     written out by hand below: floats and lists, straight-line, no graph
  numpy      by hand, forward and backward as matmuls (W2a, W2b)
  micrograd  if importable (W1, W2a, W3 up to depth 256: its recursive sort fails beyond ~300)
  torch      if importable (W1, W2a, W2b, W4-W6), float64, CPU, its default threads
  torch1     the same with torch.set_num_threads(1) while it trains (restored afterwards): on a
             busy machine a small model's threads cost more than they give
  treegrad32 treegrad with training.dtype float32 (W4-W6, on NumPy arrays in single precision)

A measurement repeats a whole training (from building the model to the last update) until
one second has passed and reports the time of one. `--reps N` interleaves N rounds of all
measurements and reports medians. W1 and W3 do the same float operations in the same
order in treegrad and in the python peer, so their losses are equal to the last bit.
"""

from __future__ import annotations

import importlib.util
import json
import math
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import mul
from pathlib import Path
from typing import Any

from ..limits import MAX_BENCH_DEPTH

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


# ---------------------------------------------------------------- data and initial values


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


def _wide_shape(workload: str, init: Layers) -> tuple[int, str, float, bool]:
    """(batch size, optimizer, learning rate, softmax head) of a wide workload."""
    _, batch, opt, lr, _, _ = WIDE[workload]
    return batch, opt, lr, len(init[-1][1]) > 1


def _bce(p: float, t: int) -> tuple[float, float]:
    """(loss, d loss / d p) with p clamped, written as treegrad's loss table writes it."""
    pc = EPS if p < EPS else p
    pc = 1.0 - EPS if pc > 1.0 - EPS else pc
    return -t * math.log(pc) - (1.0 - t) * math.log(1.0 - pc), (pc - t) / (pc * (1.0 - pc))


# ---------------------------------------------------------------- peer: treegrad


def _treegrad(workload: str, init: Any, data: list[Sample], epochs: int, dtype: str = "float64") -> Callable[[], float]:
    from ..core.nodes import Add, Input, Multiply, Node, Parameter, ReLU, Sigmoid, Softmax
    from ..engine.fit import fit

    if workload in WIDE:
        batch, opt, lr, softmax = _wide_shape(workload, init)

        def build_wide() -> Node:
            acts: list[Node] = [Input(f"x{j}") for j in range(len(init[0][0][0]))]
            for k, (W, bias) in enumerate(init):
                zs: list[Node] = [
                    Add([*[Multiply([Parameter(w), a]) for w, a in zip(row, acts, strict=True)], Parameter(b)])
                    for row, b in zip(W, bias, strict=True)
                ]
                acts = zs if k == len(init) - 1 else [ReLU([z]) for z in zs]
            return Softmax(acts) if softmax else acts[0]

        rows, targets = [list(x) for x, _ in data], [t for _, t in data]
        loss = "cross_entropy" if softmax else "mse"

        def train_wide() -> float:
            model = build_wide().compile()
            return fit(
                model,
                rows,
                targets,
                loss=loss,
                epochs=epochs,
                learning_rate=lr,
                batch_size=batch,
                optimizer=opt,
                dtype=dtype,
            )[-1]

        return train_wide

    def build() -> Node:
        if workload == "W1":
            p1, p2, p3, p4, p5 = (Parameter(v) for v in init)
            inner = Add([Multiply([p2, Input("x")]), Multiply([p3, Input("y")]), p4])
            return Sigmoid([Add([Multiply([p1, ReLU([inner])]), p5])])
        if workload == "W3":
            v: Node = Input("x")
            for a, b in init:
                v = Sigmoid([Add([Multiply([Parameter(a), v]), Parameter(b)])])
            return v
        acts: list[Node] = [Input("x"), Input("y")]
        for k, (W, bias) in enumerate(init):
            act = Sigmoid if k == len(init) - 1 else ReLU
            acts = [
                act([Add([Parameter(b)] + [Multiply([Parameter(w), a]) for w, a in zip(row, acts, strict=True)])])
                for row, b in zip(W, bias, strict=True)
            ]
        return acts[0]

    xs = [list(x) for x, _ in data]
    ys = [float(t) for _, t in data]
    batch = BATCH if workload == "W2b" else 1

    def train() -> float:
        model = build().compile()
        return fit(model, xs, ys, loss="bce", epochs=epochs, learning_rate=LR, batch_size=batch)[-1]

    return train


# ---------------------------------------------------------------- peer: hand-written Python


def _python_binary(init: list[float], data: list[Sample], epochs: int) -> float:
    p1, p2, p3, p4, p5 = init
    exp, total = math.exp, 0.0
    for _ in range(epochs):
        total = 0.0
        for (x, y), t in data:
            a = p2 * x + p3 * y + p4
            h = a if a > 0.0 else 0.0
            s = 1.0 / (1.0 + exp(-(p1 * h + p5)))
            loss, gs = _bce(s, t)
            total += loss
            gz = gs * (s * (1.0 - s))
            ga = gz * p1 * (1.0 if a > 0.0 else 0.0)
            p1 -= LR * (gz * h)
            p2 -= LR * (ga * x)
            p3 -= LR * (ga * y)
            p4 -= LR * ga
            p5 -= LR * gz
    return total / len(data)


def _python_chain(init: list[tuple[float, float]], data: list[Sample], epochs: int) -> float:
    a = [ak for ak, _ in init]
    b = [bk for _, bk in init]
    exp, total, d = math.exp, 0.0, len(init)
    vs = [0.0] * (d + 1)
    for _ in range(epochs):
        total = 0.0
        for (x,), t in data:
            v = vs[0] = x
            for k in range(d):
                v = vs[k + 1] = 1.0 / (1.0 + exp(-(a[k] * v + b[k])))
            loss, g = _bce(v, t)
            total += loss
            for k in range(d - 1, -1, -1):  # gradients before updates: a_k's old value passes g down
                v = vs[k + 1]
                gz = g * (v * (1.0 - v))
                g = gz * a[k]
                a[k] -= LR * (gz * vs[k])
                b[k] -= LR * gz
    return total / len(data)


def _python_mlp(init: Layers, data: list[Sample], epochs: int, batch: int) -> float:
    """The MLP with lists; per sample (batch 1) or the mean gradient of each batch."""
    Ws = [[row[:] for row in W] for W, _ in init]
    bs = [b[:] for _, b in init]
    last = len(Ws) - 1
    exp, total = math.exp, 0.0
    for _ in range(epochs):
        total = 0.0
        for start in range(0, len(data), batch):
            chunk = data[start : start + batch]
            gW = [[[0.0] * len(row) for row in W] for W in Ws]
            gb = [[0.0] * len(b) for b in bs]
            for x, t in chunk:
                acts: list[list[float]] = [list(x)]
                for W, b in zip(Ws[:-1], bs[:-1], strict=True):
                    zs = [sum(map(mul, row, acts[-1]), bj) for row, bj in zip(W, b, strict=True)]
                    acts.append([z if z > 0.0 else 0.0 for z in zs])
                s = 1.0 / (1.0 + exp(-sum(map(mul, Ws[last][0], acts[-1]), bs[last][0])))
                loss, gs = _bce(s, t)
                total += loss
                g = [gs * (s * (1.0 - s))]
                for li in range(last, -1, -1):
                    h, W = acts[li], Ws[li]
                    for j, gj in enumerate(g):
                        row = gW[li][j]
                        for k, hk in enumerate(h):
                            row[k] += gj * hk
                        gb[li][j] += gj
                    if li:  # through the layer's old weights and the ReLU below
                        g = [sum(W[j][k] * g[j] for j in range(len(g))) if h[k] > 0.0 else 0.0 for k in range(len(h))]
            n = len(chunk)
            for W, b, gWl, gbl in zip(Ws, bs, gW, gb, strict=True):
                for row, grow in zip(W, gWl, strict=True):
                    for k, gk in enumerate(grow):
                        row[k] -= LR * (gk / n)
                for j, gj in enumerate(gbl):
                    b[j] -= LR * (gj / n)
    return total / len(data)


def _python_mlp_per_sample(init: Layers, data: list[Sample], epochs: int) -> float:
    """The MLP per sample, updating in place as the gradients are found (no accumulators)."""
    Ws = [[row[:] for row in W] for W, _ in init]
    bs = [b[:] for _, b in init]
    last = len(Ws) - 1
    exp, total = math.exp, 0.0
    for _ in range(epochs):
        total = 0.0
        for x, t in data:
            acts: list[list[float]] = [list(x)]
            for W, b in zip(Ws[:-1], bs[:-1], strict=True):
                acts.append(
                    [
                        z if z > 0.0 else 0.0
                        for z in [sum(map(mul, row, acts[-1]), bj) for row, bj in zip(W, b, strict=True)]
                    ]
                )
            s = 1.0 / (1.0 + exp(-sum(map(mul, Ws[last][0], acts[-1]), bs[last][0])))
            loss, gs = _bce(s, t)
            total += loss
            g = [gs * (s * (1.0 - s))]
            for li in range(last, -1, -1):
                h, W, b = acts[li], Ws[li], bs[li]
                below = (
                    [sum(map(mul, col, g)) if hk > 0.0 else 0.0 for col, hk in zip(zip(*W), h, strict=True)]
                    if li
                    else []
                )
                for j, gj in enumerate(g):
                    W[j] = [w - LR * (gj * hk) for w, hk in zip(W[j], h, strict=True)]
                    b[j] -= LR * gj
                g = below
    return total / len(data)


def _python(workload: str, init: Any, data: list[Sample], epochs: int) -> Callable[[], float] | None:
    if workload in WIDE:
        return None
    if workload == "W1":
        return lambda: _python_binary(init, data, epochs)
    if workload == "W2a":
        return lambda: _python_mlp_per_sample(init, data, epochs)
    if workload == "W2b":
        return lambda: _python_mlp(init, data, epochs, BATCH)
    return lambda: _python_chain(init, data, epochs)


# ---------------------------------------------------------------- peer: NumPy by hand


def _numpy(workload: str, init: Layers, data: list[Sample], epochs: int) -> Callable[[], float] | None:
    if workload in WIDE:
        return _numpy_wide(workload, init, data, epochs)
    if workload not in ("W2a", "W2b"):
        return None
    import numpy as np

    X = np.array([x for x, _ in data], dtype=np.float64)
    Y = np.array([[t] for _, t in data], dtype=np.float64)
    batch = BATCH if workload == "W2b" else 1
    chunks = [(X[i : i + batch], Y[i : i + batch]) for i in range(0, len(X), batch)]

    def train() -> float:
        Ws = [np.array(W).T.copy() for W, _ in init]  # (inputs, neurons)
        bs = [np.array(b) for _, b in init]
        total = 0.0
        for _ in range(epochs):
            total = 0.0
            for xb, yb in chunks:
                hs = [xb]
                for W, b in zip(Ws[:-1], bs[:-1], strict=True):
                    hs.append(np.maximum(hs[-1] @ W + b, 0.0))
                s = 1.0 / (1.0 + np.exp(-(hs[-1] @ Ws[-1] + bs[-1])))
                pc = np.minimum(np.maximum(s, EPS), 1.0 - EPS)
                total += float((-yb * np.log(pc) - (1.0 - yb) * np.log(1.0 - pc)).sum())
                g = (pc - yb) / (pc * (1.0 - pc)) * (s * (1.0 - s)) / len(xb)  # mean over the batch
                for li in range(len(Ws) - 1, -1, -1):
                    gW, gb = hs[li].T @ g, g.sum(axis=0)
                    if li:
                        g = (g @ Ws[li].T) * (hs[li] > 0.0)  # with the old weights
                    Ws[li] -= LR * gW
                    bs[li] -= LR * gb
        return total / len(X)

    return train


def _numpy_wide(workload: str, init: Layers, data: list[Any], epochs: int) -> Callable[[], float]:
    """A wide workload by hand: batches as matrices, per-sample steps on 1-D vectors."""
    import numpy as np

    batch, opt, lr, softmax = _wide_shape(workload, init)
    X = np.array([x for x, _ in data], dtype=np.float64)
    Y = np.array([t for _, t in data], dtype=np.intp if softmax else np.float64)
    chunks = [(X[i : i + batch], Y[i : i + batch]) for i in range(0, len(X), batch)]
    if batch == 1:
        chunks = [(x, y) for x, y in zip(X, Y, strict=True)]

    def train() -> float:
        P = [np.array(W).T.copy() for W, _ in init] + [np.array(b) for _, b in init]  # W (inputs, neurons)
        M = [np.zeros_like(p) for p in P]
        V = [np.zeros_like(p) for p in P]
        n, step, total = len(init), 0, 0.0
        for _ in range(epochs):
            total = 0.0
            for xb, yb in chunks:
                hs, zs = [xb], []
                for k in range(n):
                    zs.append(hs[-1] @ P[k] + P[n + k])
                    hs.append(np.maximum(zs[-1], 0.0))
                z = zs[-1]
                nb = 1 if batch == 1 else len(xb)
                if softmax:
                    e = np.exp(z - z.max(axis=-1, keepdims=True))
                    p = e / e.sum(axis=-1, keepdims=True)
                    if batch == 1:
                        total -= math.log(p[yb])
                        p[yb] -= 1.0
                    else:
                        ar = np.arange(nb)
                        total -= float(np.log(p[ar, yb]).sum())
                        p[ar, yb] -= 1.0
                    g = p / nb
                else:
                    d = z[..., 0] - yb
                    total += float((d * d).sum())
                    g = (2.0 / nb * d)[..., None]
                grads: list[Any] = [None] * (2 * n)
                for k in range(n - 1, -1, -1):
                    grads[k] = np.outer(hs[k], g) if batch == 1 else hs[k].T @ g
                    grads[n + k] = g if batch == 1 else g.sum(axis=0)
                    if k:
                        g = (g @ P[k].T) * (zs[k - 1] > 0.0)
                step += 1
                b1c, b2c = 1.0 - 0.9**step, 1.0 - 0.999**step
                for p_, g_, m, v in zip(P, grads, M, V, strict=True):
                    if opt == "adam":
                        m *= 0.9
                        m += 0.1 * g_
                        v *= 0.999
                        v += 0.001 * g_ * g_
                        p_ -= lr * (m / b1c) / (np.sqrt(v / b2c) + 1e-8)
                    else:
                        p_ -= lr * g_
        return total / len(X)

    return train


# ---------------------------------------------------------------- peer: micrograd


def _micrograd(workload: str, init: Any, data: list[Sample], epochs: int) -> Callable[[], float] | None:
    if workload == "W2b" or workload in WIDE:
        return None
    from micrograd.engine import Value
    from micrograd.nn import MLP

    # micrograd 0.1.0 has no exp or log: a sigmoid node and a bce node in its own style.
    def sigmoid(z: Any) -> Any:
        s = 1.0 / (1.0 + math.exp(-z.data))
        out = Value(s, (z,), "sigmoid")

        def _backward() -> None:
            z.grad += s * (1.0 - s) * out.grad

        out._backward = _backward
        return out

    def bce(p: Any, t: int) -> Any:
        loss, g = _bce(p.data, t)
        out = Value(loss, (p,), "bce")

        def _backward() -> None:
            p.grad += g * out.grad

        out._backward = _backward
        return out

    def epochs_of(params: list[Any], forward: Callable[[Any], Any]) -> float:
        total = 0.0
        for _ in range(epochs):
            total = 0.0
            for x, t in data:
                loss = bce(forward(x), t)
                total += loss.data
                for p in params:
                    p.grad = 0.0
                loss.backward()
                for p in params:
                    p.data -= LR * p.grad
        return total / len(data)

    if workload == "W1":

        def train_w1() -> float:
            P = [Value(v) for v in init]
            p1, p2, p3, p4, p5 = P
            return epochs_of(P, lambda x: sigmoid(p1 * (p2 * x[0] + p3 * x[1] + p4).relu() + p5))

        return train_w1
    if workload == "W2a":

        def train_w2a() -> float:
            model = MLP(MLP_SIZES[0], list(MLP_SIZES[1:]))
            params = model.parameters()  # neuron by neuron: its weights, then its bias
            for p, v in zip(
                params, [v for W, b in init for row, bj in zip(W, b, strict=True) for v in [*row, bj]], strict=True
            ):
                p.data = v
            return epochs_of(params, lambda x: sigmoid(model(list(x))))

        return train_w2a

    def train_w3() -> float:
        P = [(Value(a), Value(b)) for a, b in init]

        def forward(x: tuple[float, ...]) -> Any:
            v = x[0]
            for a, b in P:
                v = sigmoid(a * v + b)
            return v

        return epochs_of([p for ab in P for p in ab], forward)

    return train_w3


# ---------------------------------------------------------------- peer: PyTorch


def _torch_mlp(torch: Any, init: Any, dt: Any, last: Any) -> Any:
    """The peer's MLP from the shared initial weights: ReLU between layers, `last` (or nothing) at the end."""
    layers: list[Any] = []
    for k, (W, b) in enumerate(init):
        lin = torch.nn.Linear(len(W[0]), len(W), dtype=dt)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(W, dtype=dt))
            lin.bias.copy_(torch.tensor(b, dtype=dt))
        layers.append(lin)
        if k < len(init) - 1:
            layers.append(torch.nn.ReLU())
        elif last is not None:
            layers.append(last)
    return torch.nn.Sequential(*layers)


def _torch(workload: str, init: Any, data: list[Sample], epochs: int) -> Callable[[], float] | None:
    if workload == "W3":
        return None
    import torch
    import torch.nn.functional as F

    dt = torch.float64
    if workload in WIDE:
        batch, opt, lr, softmax = _wide_shape(workload, init)
        X = torch.tensor([x for x, _ in data], dtype=dt)
        Y = torch.tensor([t for _, t in data], dtype=torch.long if softmax else dt)
        wchunks = [(X[i : i + batch], Y[i : i + batch]) for i in range(0, len(data), batch)]

        def train_wide() -> float:
            model = _torch_mlp(torch, init, dt, last=None)
            params = list(model.parameters())
            step = torch.optim.Adam(params, lr=lr) if opt == "adam" else torch.optim.SGD(params, lr=lr)
            total = 0.0
            for _ in range(epochs):
                total = 0.0
                for xb, yb in wchunks:
                    out = model(xb)
                    loss = F.cross_entropy(out, yb) if softmax else F.mse_loss(out[:, 0], yb)
                    total += loss.item() * len(xb)
                    step.zero_grad(set_to_none=True)
                    loss.backward()
                    step.step()
            return total / len(data)

        return train_wide

    def sgd(params: list[Any]) -> None:
        with torch.no_grad():
            for p in params:
                p -= LR * p.grad
                p.grad = None

    if workload == "W1":
        rows = [(x, torch.tensor(float(t), dtype=dt)) for x, t in data]

        def train_w1() -> float:
            P = [torch.tensor(v, dtype=dt, requires_grad=True) for v in init]
            p1, p2, p3, p4, p5 = P
            total = 0.0
            for _ in range(epochs):
                total = 0.0
                for (x, y), t in rows:
                    loss = F.binary_cross_entropy(torch.sigmoid(p1 * torch.relu(p2 * x + p3 * y + p4) + p5), t)
                    total += loss.item()
                    loss.backward()
                    sgd(P)
            return total / len(data)

        return train_w1

    X = torch.tensor([x for x, _ in data], dtype=dt)
    Y = torch.tensor([[float(t)] for _, t in data], dtype=dt)
    batch = BATCH if workload == "W2b" else 1
    chunks = [(X[i : i + batch], Y[i : i + batch]) for i in range(0, len(data), batch)]

    def train_mlp() -> float:
        model = _torch_mlp(torch, init, dt, last=torch.nn.Sigmoid())
        params = list(model.parameters())
        total = 0.0
        for _ in range(epochs):
            total = 0.0
            for xb, yb in chunks:
                loss = F.binary_cross_entropy(model(xb), yb)  # the mean over the batch
                total += loss.item() * len(xb)
                loss.backward()
                sgd(params)
        return total / len(data)

    return train_mlp


def _one_thread(torch: Any, train: Callable[[], float]) -> Callable[[], float]:
    """`train` run with PyTorch on one thread, its thread count restored afterwards."""

    def train_one_thread() -> float:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return train()
        finally:
            torch.set_num_threads(before)

    return train_one_thread


def _torch1(workload: str, init: Any, data: list[Sample], epochs: int) -> Callable[[], float] | None:
    train = _torch(workload, init, data, epochs)
    if train is None:
        return None
    import torch

    return _one_thread(torch, train)


# ---------------------------------------------------------------- CLI: a first call, start-up included

# The python peer of the CLI row, run as `python -c`: read the same CSV, take its rows in the
# order `treegrad train` does (its seeded split shuffles them once), train the same line with the
# same float operations in the same order (treegrad takes every gradient before it updates),
# print the last epoch's mean loss.
_CLI_PYTHON = """
import csv, sys
path, epochs, lr, w, b = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
with open(path, newline="") as fh:
    rows = [(float(r["f"]), float(r["c"])) for r in csv.DictReader(fh)]
rows = [rows[int(i)] for i in sys.argv[6].split(",")]
total = 0.0
for _ in range(epochs):
    total = 0.0
    for f, c in rows:
        d = w * f + b - c
        total += d * d
        g = 2.0 * d
        w, b = w - lr * (g * f), b - lr * g
print(repr(total / len(rows)))
"""


def import_seconds(importtime: str) -> float:
    """Seconds spent importing, from `python -X importtime` output: the sum of the top-level
    modules' cumulative times (a nested import is inside its importer's)."""
    return sum(int(m[1]) for m in re.finditer(r"^import time:\s+\d+ \|\s+(\d+) \| (?! )", importtime, re.M)) / 1e6


def _in_fresh_process(args: list[str], imports: list[float]) -> str:
    """Run `python -X importtime ARGS`; note its seconds of imports in `imports`, return its stdout."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the CLI row's process failed ({' '.join(args[:3])} ...): {proc.stderr[-2000:]}")
    imports.append(import_seconds(proc.stderr))
    return proc.stdout


def _cli_files(folder: Path, init: tuple[float, float], data: list[Any], epochs: int) -> tuple[Path, Path]:
    """The CLI row's CSV and spec, written into `folder`."""
    csv_path, spec = folder / "line.csv", folder / "line.yaml"
    csv_path.write_text("f,c\n" + "".join(f"{x[0]!r},{c!r}\n" for x, c in data), encoding="utf-8")
    w, b = init
    spec.write_text(
        f"inputs: [f]\noutput: {{add: [{{mul: [{{param: {w!r}}}, f]}}, {{param: {b!r}}}]}}\nloss: mse\n"
        f"data: {json.dumps(str(csv_path))}\ntarget: c\n"
        f"training: {{epochs: {epochs}, learning_rate: {LR}, batch_size: 1, optimizer: sgd, shuffle: false}}\n",
        encoding="utf-8",
    )
    return csv_path, spec


def _cli(peer: str, init: Any, data: list[Any], epochs: int, imports: list[float]) -> Callable[[], float] | None:
    """The CLI row's training in a fresh process (treegrad: the command; python: by hand), or None."""
    if peer not in ("treegrad", "python"):
        return None
    from ..data.table import split_indices

    order, _ = split_indices(len(data), 0.0, 0)  # the rows' order in `treegrad train` (seed 0, no validation)

    def train() -> float:
        with tempfile.TemporaryDirectory(prefix="treegrad-bench-") as folder:
            csv_path, spec = _cli_files(Path(folder), init, data, epochs)
            if peer == "python":
                args = [str(csv_path), str(epochs), repr(LR), *(repr(v) for v in init), ",".join(map(str, order))]
                return float(_in_fresh_process(["-c", _CLI_PYTHON, *args], imports))
            model = Path(folder) / "line.json"
            _in_fresh_process(["-m", "treegrad", "train", str(spec), "--out", str(model), "--quiet"], imports)
            return float(json.loads(model.read_text(encoding="utf-8"))["history"]["train"][-1])

    return train


def _treegrad32(workload: str, init: Any, data: list[Sample], epochs: int) -> Callable[[], float] | None:
    """treegrad in float32, on the wide workloads (the others train on scalar code, float64 only)."""
    return _treegrad(workload, init, data, epochs, "float32") if workload in WIDE else None


PEER_FNS: dict[str, Callable[[str, Any, list[Sample], int], Callable[[], float] | None]] = {
    "treegrad": _treegrad,
    "python": _python,
    "numpy": _numpy,
    "micrograd": _micrograd,
    "torch": _torch,
    "torch1": _torch1,
    "treegrad32": _treegrad32,
}


def missing(peer: str) -> str | None:
    """None if the peer can run here, else why not."""
    module = {"numpy": "numpy", "micrograd": "micrograd", "torch": "torch", "torch1": "torch"}.get(peer)
    if module is None or importlib.util.find_spec(module) is not None:
        return None
    pins = {"micrograd": "micrograd==0.1.0", "torch": "torch==2.13.0", "numpy": "numpy"}
    return f"{module} is not installed (pip install {pins[module]})"


# ---------------------------------------------------------------- measuring


@dataclass
class Result:
    """One measurement: a peer training one workload (at one depth)."""

    workload: str
    peer: str
    depth: int | None
    steps: int
    samples: int
    seconds: list[float] = field(default_factory=list)  # per training, one entry per rep
    final_loss: float = math.nan
    note: str = ""
    imports: list[float] = field(default_factory=list)  # CLI: seconds of imports, one entry per process

    @property
    def time(self) -> float:
        """The median seconds of one training."""
        return statistics.median(self.seconds)

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.time

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.time

    @property
    def us_per_step(self) -> float:
        return 1e6 * self.time / self.steps


def measure(train: Callable[[], float], min_time: float) -> tuple[float, float]:
    """(seconds per training, final loss): train from scratch until `min_time` has passed."""
    spent, runs = 0.0, 0
    while True:
        t0 = time.perf_counter()
        loss = train()
        spent += time.perf_counter() - t0
        runs += 1
        if spent >= min_time:
            return spent / runs, loss


def run(
    workloads: Sequence[str] = WORKLOADS,
    peers: Sequence[str] = PEERS,
    *,
    quick: bool = False,
    depths: Sequence[int] | None = None,
    reps: int = 1,
    min_time: float | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[list[Result], list[str]]:
    """Measure every (workload, peer, depth); return the results and notes on what was skipped."""
    epochs = {w: 1 for w in EPOCHS} if quick else dict(EPOCHS)
    depths = tuple(depths or ((2, 4) if quick else DEPTHS))
    min_time = (0.0 if quick else 1.0) if min_time is None else min_time
    init1, data = binary_setup()
    skipped: dict[str, list[str]] = {}  # why -> the peers skipped for it
    for p in peers:
        if why := missing(p):
            skipped.setdefault(why, []).append(p)
    notes = [f"{why}: no {', '.join(ps)} rows" for why, ps in skipped.items()]
    peers = [p for p in peers if not missing(p)]
    jobs: list[tuple[Result, Callable[[], float]]] = []
    for w in workloads:
        for d in depths if w == "W3" else (WIDTHS[:2] if quick else WIDTHS) if w == "W6" else (None,):
            init: Any
            wdata: list[Any]
            if w in WIDE:
                init, wdata = wide_setup(w, d)
            elif w == "CLI":
                init, wdata = cli_setup()
            else:
                init = init1 if w == "W1" else mlp_init() if w in ("W2a", "W2b") else chain_init(d or 0)
                wdata = chain_data(data) if w == "W3" else data
            for p in peers:
                if p == "micrograd" and w == "W3" and d is not None and d > MICROGRAD_MAX_DEPTH:
                    continue
                samples = epochs[w] * len(wdata)
                batch = BATCH if w == "W2b" else WIDE[w][1] if w in WIDE else 1
                steps = epochs[w] * -(-len(wdata) // batch)
                res = Result(w, p, d, steps, samples)
                if w == "CLI":
                    train = _cli(p, init, wdata, epochs[w], res.imports)
                else:
                    train = PEER_FNS[p](w, init, wdata, epochs[w])
                if train is None:
                    continue
                jobs.append((res, train))
    if "micrograd" in peers and "W3" in workloads and max(depths) > MICROGRAD_MAX_DEPTH:
        notes.append(
            f"micrograd: W3 only up to depth {MICROGRAD_MAX_DEPTH} (its recursive topological sort "
            "overflows Python's stack on deeper chains)"
        )
    for rep in range(reps):
        for res, train in jobs:  # rounds interleaved, so that machine noise hits every peer alike
            seconds, res.final_loss = measure(train, min_time)
            res.seconds.append(seconds)
            if log:
                depth = f" d={res.depth}" if res.depth is not None else ""
                log(f"[{rep + 1}/{reps}] {res.workload}{depth} {res.peer}: {res.samples / seconds:,.0f} samples/s")
    return [r for r, _ in jobs], notes


# ---------------------------------------------------------------- the table


def slope(points: Sequence[tuple[int, float]]) -> float | None:
    """Least-squares slope of log(time) against log(depth); None with fewer than 2 depths."""
    if len(points) < 2:
        return None
    xs = [math.log(d) for d, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def _ratio(a: float, b: float) -> str:
    r = a / b
    return f"{r:,.0f}x" if r >= 100 else f"{r:.3g}x"


def _grid(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    # the first column (names) to the left, the numbers to the right
    return [
        "  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]


def table(results: Sequence[Result], notes: Sequence[str] = (), reps: int = 1) -> str:
    """The results as plain text: per workload one row per peer, W3 one row per depth."""
    lines: list[str] = []
    by_workload: dict[str, list[Result]] = {}
    for r in results:
        by_workload.setdefault(r.workload, []).append(r)
    for w, rs in by_workload.items():
        epochs = rs[0].samples // (WIDE[w][4] if w in WIDE else CLI_ROWS if w == "CLI" else N_SAMPLES)
        title = TITLES[w].format(e=f"{epochs} epoch" + "s" * (epochs != 1))
        lines.append(title + ("" if reps == 1 else f" (medians of {reps} rounds)"))
        if w == "W3":
            lines += _chain_table(rs)
        elif w == "W6":
            lines += _chain_table(rs, "width", (WIDTHS[0], WIDTHS[-1]), per_sample=True)
        else:
            tg = next((r for r in rs if r.peer == "treegrad"), None)
            rows = [["peer", "steps/s", "samples/s", "final loss", "treegrad is"]]
            for r in rs:
                vs = "-" if tg is None or r is tg else _ratio(tg.samples_per_s, r.samples_per_s)
                speeds = [f"{r.steps_per_s:,.0f}", f"{r.samples_per_s:,.0f}"]
                rows.append([_label(r.peer), *speeds, f"{r.final_loss:.10g}", vs])
            lines += _grid(rows)
            lines += [
                f"  {r.peer}: {r.time:.3g} s a process, {statistics.median(r.imports):.3g} s of it in imports"
                f" ({statistics.median(r.imports) / r.time:.0%})"
                for r in rs
                if r.imports
            ]
        lines.append("")
    if "CLI" in by_workload and sys.dont_write_bytecode:
        notes = [*notes, "PYTHONDONTWRITEBYTECODE is set: the CLI row's processes compile every module not yet cached"]
    if notes:
        lines += [f"note: {n}" for n in notes]
    lines.append(f"Python {platform.python_version()}, {_versions()}")
    if "numpy" in sys.modules:
        from ..engine.vectorized import blas_threads

        lines.append(f"BLAS: {blas_threads()}; treegrad trains on arrays with 1 thread, the peers with the default")
    if "torch" in sys.modules:
        import torch

        lines.append(f"PyTorch: torch with its default {torch.get_num_threads()} threads, torch1 with 1")
    return "\n".join(lines)


def _label(peer: str) -> str:
    return LABELS.get(peer, peer)


def _chain_table(
    rs: list[Result], label: str = "depth", span: tuple[int, int] = SLOPE_RANGE, per_sample: bool = False
) -> list[str]:
    """Time per step (per sample) against the depth (width) of the model, one row each, and the
    log-log slope over `span`."""
    peers = list(dict.fromkeys(r.peer for r in rs))
    depths = sorted({r.depth for r in rs if r.depth is not None})
    cell = {(r.peer, r.depth): r for r in rs}
    others = [p for p in peers if p != "treegrad"]
    head = [label, *[f"{_label(p)} us" for p in peers]]

    def us(r: Result) -> float:
        return 1e6 * r.time / r.samples if per_sample else r.us_per_step

    if "treegrad" in peers:
        head += [f"treegrad vs {_label(p)}" for p in others]
    rows = [head]
    for d in depths:
        row = [str(d)] + [f"{us(cell[p, d]):,.1f}" if (p, d) in cell else "-" for p in peers]
        if "treegrad" in peers:
            row += [
                _ratio(cell["treegrad", d].steps_per_s, cell[p, d].steps_per_s)
                if (p, d) in cell and ("treegrad", d) in cell
                else "-"
                for p in others
            ]
        rows.append(row)
    lo, hi = span
    srow = [f"slope {lo}-{hi}"]
    for p in peers:
        s = slope([(d, us(cell[p, d])) for d in depths if lo <= d <= hi and (p, d) in cell])
        srow.append("-" if s is None else f"{s:.2f}")
    rows.append(srow + ["" for _ in others] * ("treegrad" in peers))
    losses = [
        f"final loss at {label} {depths[-1]}: "
        + ", ".join(f"{p} {cell[p, depths[-1]].final_loss:.10g}" for p in peers if (p, depths[-1]) in cell)
    ]
    return _grid(rows) + ["  " + losses[0]]


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("numpy", "torch", "micrograd"):
        if name in sys.modules:
            try:
                found.append(f"{name} {version(name)}")
            except PackageNotFoundError:
                found.append(name)
    return ", ".join(found) or "no peer packages imported"


# ---------------------------------------------------------------- parsing the command's values (for the cli)


def parse_names(text: str, allowed: Sequence[str], what: str) -> list[str]:
    """Comma-separated names, each one of `allowed`; ValueError saying which are unknown."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise ValueError(f"unknown {what} {', '.join(unknown) or '(none given)'}; use some of {','.join(allowed)}")
    return names


def parse_depths(text: str) -> list[int]:
    """Comma-separated chain depths (whole numbers from 1 to MAX_BENCH_DEPTH), sorted; ValueError otherwise."""
    try:
        depths = sorted({int(d) for d in text.split(",") if d.strip()})
    except ValueError:
        raise ValueError(f"depths must be whole numbers separated by commas, got {text!r}") from None
    if not depths or depths[0] < 1:
        raise ValueError(f"depths must be 1 or more, got {text!r}")
    if depths[-1] > MAX_BENCH_DEPTH:
        raise ValueError(
            f"depths must be at most {MAX_BENCH_DEPTH:,} (a W3 chain has as many nodes as its depth), "
            f"got {depths[-1]:,}"
        )
    return depths
