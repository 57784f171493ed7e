"""Learning-rate schedules: the learning rate of each epoch, from the base rate `lr`.

The table of schedules is the classes below: each is one pydantic model of its parameters, their
defaults and bounds (`training.lr_schedule`, engine/settings.py), with its formula beside them.
A new schedule is one class marked `@schedule`; the spec's choices, its messages, the JSON Schema
and every engine (treegrad's and torch's both run `Scheduler`) follow, and
`tests/test_schedules.py` takes every entry through them. Epochs count from 1; the rate of an
epoch holds for all its steps.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field


class _Schedule(BaseModel):
    """Base of the learning-rate schedules: frozen, strict, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True, defer_build=True)

    def rate(self, lr: float, epoch: int, epochs: int, current: float) -> float:
        """The rate of `epoch` (1, 2, ...) of a run of `epochs`, from the base rate `lr`; `current`
        is the rate the schedule has set so far (by `after`)."""
        raise NotImplementedError

    def after(self, state: Scheduler, loss: float) -> None:
        """After an epoch, with the loss it watches: a schedule that follows the loss moves `state.current`."""

    def why_not_resumable(self, epochs: int) -> str | None:
        """Why a run of `epochs` under this schedule cannot go on bit for bit as one longer run (None: it can)."""
        return None


SCHEDULES: dict[str, type[_Schedule]] = {}


def schedule(cls: type[_Schedule]) -> type[_Schedule]:
    """Enter a schedule class in the table, under its `type`."""
    SCHEDULES[cls.model_fields["type"].default] = cls
    return cls


@schedule
class StepSchedule(_Schedule):
    """Multiply the learning rate by `gamma` every `step_size` epochs."""

    type: Literal["step"] = "step"
    step_size: Annotated[int, Field(ge=1)] = 10
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.1

    def rate(self, lr: float, epoch: int, epochs: int, current: float) -> float:
        """lr * gamma ** ((epoch - 1) // step_size)."""
        return lr * self.gamma ** ((epoch - 1) // self.step_size)


@schedule
class ExponentialSchedule(_Schedule):
    """Multiply the learning rate by `gamma` every epoch."""

    type: Literal["exponential"] = "exponential"
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.95

    def rate(self, lr: float, epoch: int, epochs: int, current: float) -> float:
        """lr * gamma ** (epoch - 1)."""
        return lr * self.gamma ** (epoch - 1)


@schedule
class CosineSchedule(_Schedule):
    """Half a cosine from the learning rate down towards `min_lr` over the epochs of the run."""

    type: Literal["cosine"] = "cosine"
    min_lr: Annotated[float, Field(ge=0)] = 0.0

    def rate(self, lr: float, epoch: int, epochs: int, current: float) -> float:
        """min_lr + (lr - min_lr) * (1 + cos(pi * (epoch - 1) / epochs)) / 2."""
        return self.min_lr + (lr - self.min_lr) * (1.0 + math.cos(math.pi * (epoch - 1) / max(1, epochs))) / 2.0

    def why_not_resumable(self, epochs: int) -> str | None:
        """Its rates depend on the run's length."""
        return (
            f"its cosine schedule spreads the learning rate over its {epochs} epochs: a longer "
            "run would have had other rates from the first epoch on"
        )


@schedule
class PlateauSchedule(_Schedule):
    """Multiply the learning rate by `factor` when the loss has not improved for `patience` epochs."""

    type: Literal["plateau"] = "plateau"
    factor: Annotated[float, Field(gt=0, lt=1)] = 0.1
    patience: Annotated[int, Field(ge=1)] = 10
    min_lr: Annotated[float, Field(ge=0)] = 0.0

    def rate(self, lr: float, epoch: int, epochs: int, current: float) -> float:
        """The rate so far: lr until the watched loss stalls."""
        return current

    def after(self, state: Scheduler, loss: float) -> None:
        """The watched loss (the validation loss if there is a validation set, else the training
        loss) not better than its best for `patience` epochs in a row: rate × factor, not below min_lr."""
        if loss < state.best:
            state.best, state.bad_epochs = loss, 0
            return
        state.bad_epochs += 1
        if state.bad_epochs >= self.patience:
            state.current, state.bad_epochs = max(state.current * self.factor, self.min_lr), 0

    def why_not_resumable(self, epochs: int) -> str | None:
        """Its rate depends on the losses watched, which the model file does not keep."""
        return "its plateau schedule lowers the rate by the losses it has watched, a state the file does not keep"


if TYPE_CHECKING:
    Schedule = _Schedule
    LrSchedule = _Schedule
else:  # the discriminated union of the table's classes, for pydantic
    Schedule = Union[tuple(SCHEDULES.values())]  # noqa: UP007 - built from the table at run time
    LrSchedule = Annotated[Schedule, Field(discriminator="type")]


class Scheduler:
    """The learning rate of each epoch of one run: `rate(epoch)` before it, `observe(loss)` after it."""

    def __init__(self, schedule: Schedule | None, lr: float, epochs: int) -> None:
        self.schedule, self.lr, self.epochs = schedule, lr, epochs
        self.current = lr  # the rate a schedule that follows the loss has set so far
        self.best = math.inf
        self.bad_epochs = 0

    def rate(self, epoch: int) -> float:
        """The learning rate of `epoch` (1, 2, ...)."""
        if self.schedule is None:
            return self.lr
        return self.schedule.rate(self.lr, epoch, self.epochs, self.current)

    def observe(self, loss: float) -> None:
        """After an epoch: the loss a schedule may watch."""
        if self.schedule is not None:
            self.schedule.after(self, loss)
