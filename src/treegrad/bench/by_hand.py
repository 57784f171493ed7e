"""The peers written out by hand: plain Python (floats and lists, straight-line, no graph) and
NumPy (forward and backward as matmuls), each returning a function that trains from scratch."""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import mul
from typing import Any

from .workloads import BATCH, EPS, LR, WIDE, Layers, Sample, bce, wide_shape

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
            loss, gs = bce(s, t)
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
            loss, g = bce(v, t)
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
                loss, gs = bce(s, t)
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
            loss, gs = bce(s, t)
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


def python_peer(workload: str, init: Any, data: list[Sample], epochs: int) -> Callable[[], float] | None:
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


def numpy_peer(workload: str, init: Layers, data: list[Sample], epochs: int) -> Callable[[], float] | None:
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

    batch, opt, lr, softmax = wide_shape(workload, init)
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
