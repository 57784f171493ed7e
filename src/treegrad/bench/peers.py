"""The peers that train through a library (treegrad itself, micrograd, PyTorch), the table of every
peer's function, and which of them can run here."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from typing import Any

from .by_hand import numpy_peer, python_peer
from .workloads import BATCH, LR, MLP_SIZES, WIDE, Sample, bce, wide_shape

# ---------------------------------------------------------------- peer: treegrad


def _treegrad(workload: str, init: Any, data: list[Sample], epochs: int, dtype: str = "float64") -> Callable[[], float]:
    from ..core.nodes import Add, Input, Multiply, Node, Parameter, ReLU, Sigmoid, Softmax
    from ..engine.fit import fit

    if workload in WIDE:
        batch, opt, lr, softmax = wide_shape(workload, init)

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


def _treegrad32(workload: str, init: Any, data: list[Sample], epochs: int) -> Callable[[], float] | None:
    """treegrad in float32, on the wide workloads (the others train on scalar code, float64 only)."""
    return _treegrad(workload, init, data, epochs, "float32") if workload in WIDE else None


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

    def bce_node(p: Any, t: int) -> Any:
        loss, g = bce(p.data, t)
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
                loss = bce_node(forward(x), t)
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
        batch, opt, lr, softmax = wide_shape(workload, init)
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


PEER_FNS: dict[str, Callable[[str, Any, list[Sample], int], Callable[[], float] | None]] = {
    "treegrad": _treegrad,
    "python": python_peer,
    "numpy": numpy_peer,
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
