"""Every optimizer of the table (optim.py) through every engine: the reference evaluator, the
compiled scalar code, the NumPy trainer and the torch trainer agree with each other over a few
epochs, and with the first step the entry works out by hand. A new optimizer is one entry in
optim.py; this file takes it through without a change."""

from __future__ import annotations

import importlib
import math
from importlib.util import find_spec
from typing import Any

import pytest

import treegrad as tg
from treegrad import Add, Input, Multiply, Node, Parameter
from treegrad.engine.optim import OPTIMIZERS
from treegrad.engine.vectorized import vectorized_epoch_fn

FIT = importlib.import_module("treegrad.engine.fit")

NO_TORCH = "torch is not installed (pip install torch==2.13.0): the torch trainer is not checked"
ENGINES = [
    "reference",
    "compiled",
    "vectorized",
    pytest.param("torch", marks=pytest.mark.skipif(find_spec("torch") is None, reason=NO_TORCH)),
]
INIT = (0.5, -0.25, 0.125)  # w1, w2, b


def dense() -> tuple[Node, list[Parameter]]:
    """w1 * x1 + w2 * x2 + b: one dense unit, which every engine takes (the NumPy trainer as a layer)."""
    params = [Parameter(v) for v in INIT]
    w1, w2, b = params
    model = Add([Multiply([w1, Input("x1")]), Multiply([w2, Input("x2")]), b])
    model.compile()
    return model, params


def train(engine: str, monkeypatch: pytest.MonkeyPatch, X: Any, T: Any, **kw: Any) -> tuple[list[float], list[float]]:
    """(per-epoch losses, final parameters) of the dense model trained by `engine`."""
    model, params = dense()
    if engine == "torch":
        from treegrad.torch.trainer import fit as torch_fit

        hist = torch_fit(model, X, T, **kw)
        return list(hist), [p.value for p in params]
    used: list[bool] = []

    def arrays(graph: Any, loss: Any, opt: Any, batch_size: Any, *rules: Any) -> Any:
        # "vectorized": NumPy arrays however small the batch (no cost estimate); "compiled": never.
        fn = vectorized_epoch_fn(graph, loss, opt, None, *rules) if engine == "vectorized" else None
        used.append(fn is not None)
        return fn

    with monkeypatch.context() as mp:
        mp.setattr(FIT, "vectorized_epoch_fn", arrays)
        hist = tg.fit(model, X, T, engine="reference" if engine == "reference" else "compiled", **kw)
    assert any(used) == (engine == "vectorized"), engine
    return list(hist), [p.value for p in params]


def test_the_table_has_the_optimizers_the_spec_offers() -> None:
    from treegrad.engine.settings import OptimizerName, Training

    assert set(OPTIMIZERS) >= {"sgd", "momentum", "adam"}
    assert OptimizerName.__args__ == tuple(OPTIMIZERS)  # type: ignore[attr-defined]
    for name in OPTIMIZERS:
        assert Training(optimizer=name).optimizer == name
    with pytest.raises(tg.TrainingError, match=f"unknown optimizer 'nadam'; use one of {', '.join(OPTIMIZERS)}"):
        tg.fit(dense()[0], [[1.0, 2.0]], [0.0], optimizer="nadam")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_the_first_step_is_the_one_worked_out_by_hand(
    optimizer: str, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    x1, x2, t, lr = 1.5, -2.0, 0.25, 0.1
    w1, w2, b = INIT
    d = 2 * (w1 * x1 + w2 * x2 + b - t)  # d (o - t)^2 / d o
    grads = (d * x1, d * x2, d)
    _, params = train(engine, monkeypatch, [[x1, x2]], [t], optimizer=optimizer, epochs=1, learning_rate=lr)
    first = OPTIMIZERS[optimizer].first_step
    expected = [first(p, g, lr) for p, g in zip(INIT, grads)]
    assert params == pytest.approx(expected, rel=1e-12, abs=1e-15), (optimizer, engine)
    assert all(p != p0 for p, p0 in zip(params, INIT)), "a first step that moves nothing checks nothing"


@pytest.mark.parametrize("engine", ENGINES[1:])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_every_engine_trains_as_the_reference_one(optimizer: str, engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several epochs of shuffled mini-batches (a last batch of one), with clipping and both penalties."""
    X = [[math.sin(i), math.cos(2 * i)] for i in range(9)]
    T = [0.3 * x1 - 0.7 * x2 + 0.1 for x1, x2 in X]
    kw: dict[str, Any] = {"optimizer": optimizer, "epochs": 4, "batch_size": 4, "shuffle": True, "seed": 3}
    kw |= {"learning_rate": 0.05, "l1": 0.01, "l2": 0.02, "clip_norm": 1.0}
    ours, ours_p = train("reference", monkeypatch, X, T, **kw)
    theirs, theirs_p = train(engine, monkeypatch, X, T, **kw)
    assert theirs == pytest.approx(ours, rel=1e-9), (optimizer, engine)
    assert theirs_p == pytest.approx(ours_p, rel=1e-9), (optimizer, engine)
    assert ours_p != list(INIT) and ours[-1] < ours[0]
