"""Training cut in two and continued (`fit(start_epoch=, state=)`) gives the parameters and
history of one uninterrupted run, bit for bit, for every optimizer, per sample and in batches."""

from __future__ import annotations

import random
from typing import Any

import pytest

import treegrad as tg
from treegrad.build import build_model
from treegrad.errors import TrainingError
from treegrad.spec import parse_spec

MLP = """
inputs: [x, y]
layers:
  - {linear: 4, activation: tanh}
  - {linear: 1, activation: none}
"""


def data(n: int = 24) -> tuple[list[list[float]], list[float]]:
    rng = random.Random(5)
    X = [[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(n)]
    return X, [x * y + 0.5 * x for x, y in X]


def model() -> Any:
    return build_model(parse_spec(MLP), seed=1)


def params(m: Any) -> list[float]:
    return m.compiled_graph.param_values()


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("batch_size", [1, 5])  # per sample; mini-batches (the vectorized trainer)
def test_fifty_and_fifty_more_is_one_run_of_a_hundred(optimizer: str, batch_size: int) -> None:
    X, y = data()
    kw: dict[str, Any] = {"optimizer": optimizer, "batch_size": batch_size, "learning_rate": 0.02}
    kw |= {"shuffle": True, "seed": 7, "lr_schedule": tg.spec.StepSchedule(step_size=30, gamma=0.5)}
    whole = model()
    h100 = tg.fit(whole, X, y, epochs=100, **kw)
    cut = model()
    h50 = tg.fit(cut, X, y, epochs=50, **kw)
    assert params(cut) != params(whole)
    h_rest = tg.fit(cut, X, y, epochs=50, start_epoch=50, state=h50.state, **kw)
    assert params(cut) == params(whole)  # bit for bit
    assert [*h50, *h_rest] == list(h100) and len(h100) == 100
    assert [*h50.learning_rates, *h_rest.learning_rates] == h100.learning_rates
    assert h_rest.state == h100.state


def test_without_the_optimizer_state_adam_differs() -> None:
    """The state matters: continuing Adam from fresh moments is another run (the test can fail)."""
    X, y = data()
    kw: dict[str, Any] = {"optimizer": "adam", "learning_rate": 0.02, "shuffle": True, "seed": 7}
    whole, cut = model(), model()
    tg.fit(whole, X, y, epochs=20, **kw)
    tg.fit(cut, X, y, epochs=10, **kw)
    tg.fit(cut, X, y, epochs=10, start_epoch=10, **kw)
    assert params(cut) != params(whole)


def test_a_state_of_another_optimizer_is_refused() -> None:
    X, y = data()
    h = tg.fit(model(), X, y, epochs=2, optimizer="sgd")
    assert h.state is not None and h.state[0] == []
    with pytest.raises(TrainingError, match="optimizer state does not fit"):
        tg.fit(model(), X, y, epochs=2, optimizer="adam", start_epoch=2, state=h.state)
