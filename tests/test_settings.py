"""The training settings are one record (engine/settings.Training): both trainers take it, and
`fit`'s keywords are its keys, checked by it, with messages read from its fields."""

from __future__ import annotations

import math
from importlib.util import find_spec
from typing import Any, get_args

import pytest

import treegrad as tg
from treegrad import Add, Input, Multiply, Node, Parameter
from treegrad.engine.optim import OPTIMIZERS
from treegrad.engine.settings import FIT_DEFAULTS, EarlyStopping, Training, with_keywords
from treegrad.errors import TrainingError

X = [[0.1 * i] for i in range(12)]
Y = [2.0 * x[0] - 0.5 for x in X]


def line() -> Node:
    return Add([Multiply([Parameter(0.3), Input("x")]), Parameter(0.0)]).compile()


# fit, and the torch trainer: a case of its own that skips, saying why, where torch is missing
TRAINERS = [
    "treegrad",
    pytest.param("torch", marks=pytest.mark.skipif(find_spec("torch") is None, reason="torch is not installed")),
]


def trainer(name: str) -> Any:
    if name == "torch":
        from treegrad.torch.trainer import fit as torch_fit

        return torch_fit
    return tg.fit


@pytest.mark.parametrize("name", TRAINERS)
def test_fit_takes_the_record_or_its_keys_and_keys_change_a_record(name: str) -> None:
    record = Training(epochs=4, learning_rate=0.1, optimizer="momentum", batch_size=3, shuffle=True, seed=5)
    fit = trainer(name)
    by_record = fit(line(), X, Y, record)
    by_keys = fit(line(), X, Y, epochs=4, learning_rate=0.1, optimizer="momentum", batch_size=3, shuffle=True, seed=5)
    assert list(by_record) == pytest.approx(list(by_keys), rel=1e-12) and len(by_record) == 4
    assert len(fit(line(), X, Y, record, epochs=2)) == 2  # a keyword changes the record given
    assert record.epochs == 4, "the caller's record is not changed"


def test_the_library_keeps_the_samples_in_order_unless_asked() -> None:
    assert Training().shuffle is True  # a spec's training: shuffles by default
    assert with_keywords(None, {}).shuffle is False == FIT_DEFAULTS["shuffle"]
    assert with_keywords(None, {}).model_dump() == {**Training().model_dump(), **FIT_DEFAULTS}
    shuffled = tg.fit(line(), X, Y, epochs=3, batch_size=4, shuffle=True)
    assert list(tg.fit(line(), X, Y, epochs=3, batch_size=4)) != list(shuffled)


def test_patience_is_early_stopping() -> None:
    val = ([[5.0]], [-100.0])  # the line moves away from this point: the validation loss grows
    by_key = tg.fit(line(), X, Y, epochs=50, learning_rate=0.05, validation=val, patience=2)
    record = Training(epochs=50, learning_rate=0.05, shuffle=False, early_stopping=EarlyStopping(patience=2))
    by_record = tg.fit(line(), X, Y, record, validation=val)
    assert by_key.stopped_early and by_record.stopped_early and len(by_key) == len(by_record) < 50
    assert not tg.fit(line(), X, Y, epochs=5, validation=val, patience=None).stopped_early


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"epochs": -1}, "epochs must be a whole number >= 0 and <= 1000000, got -1"),
        ({"epochs": 2.5}, "epochs must be a whole number"),
        ({"batch_size": 0}, "batch_size must be a whole number >= 1, got 0"),
        ({"learning_rate": math.nan}, "learning_rate must be a positive number, got nan"),
        ({"validation_split": 1.0}, "validation_split must be a number >= 0 and < 1, got 1.0"),
        ({"shuffle": "yes"}, "shuffle must be true or false, got 'yes'"),
        ({"optimizer": "adamw"}, f"unknown optimizer 'adamw'; use one of {', '.join(OPTIMIZERS)}"),
        ({"dtype": "float16"}, "unknown dtype 'float16'; use float64 or float32"),
        ({"epoch": 3}, "unknown key 'epoch' — did you mean 'epochs'?"),
        ({"lr_schedule": {"type": "cosin"}}, "unknown schedule type 'cosin' — did you mean 'cosine'?"),
        ({"patience": 0}, "early_stopping.patience: Input should be greater than or equal to 1"),
    ],
)
@pytest.mark.parametrize("name", TRAINERS)
def test_a_bad_keyword_names_the_setting_and_what_it_may_be(kw: dict[str, Any], message: str, name: str) -> None:
    fit = trainer(name)
    with pytest.raises(TrainingError) as e:
        fit(line(), X, Y, **kw)
    assert message in str(e.value), (fit.__module__, str(e.value))


def test_every_bounded_number_says_its_bounds() -> None:
    """Read from the record's fields: a setting added with bounds gets its message without a line here."""
    checked = 0
    for name, field in Training.model_fields.items():
        bounds = [m for m in field.metadata]
        for arg in get_args(field.annotation):  # an optional number: Annotated[float, Field(gt=0)] | None
            bounds += [m for meta in getattr(arg, "__metadata__", ()) for m in getattr(meta, "metadata", [meta])]
        low = [getattr(b, k) for b in bounds for k in ("ge", "gt") if getattr(b, k, None) is not None]
        if not low:
            continue
        with pytest.raises(TrainingError, match=rf"^{name} must be a .*number.*, got "):
            with_keywords(None, {name: low[0] - 1})
        checked += 1
    assert checked >= 6  # epochs, learning_rate, batch_size, validation_split, l1, l2, clip_norm
