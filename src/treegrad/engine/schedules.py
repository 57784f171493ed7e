"""Learning-rate schedules: the learning rate of each epoch, from the base rate `lr`.

Each schedule is a pydantic model of its parameters, their defaults and bounds (`StepSchedule`,
...; `training.lr_schedule`, engine/settings.py), and its formula in `Scheduler`, below.
Epochs count from 1; the rate of an epoch holds for all its steps.

- step:        lr * gamma ** ((epoch - 1) // step_size)
- exponential: lr * gamma ** (epoch - 1)
- cosine:      min_lr + (lr - min_lr) * (1 + cos(pi * (epoch - 1) / epochs)) / 2
- plateau:     lr, multiplied by `factor` (not below min_lr) whenever the watched loss (the
               validation loss if there is a validation set, else the training loss) has not
               improved on its best for `patience` epochs in a row
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Schedule(BaseModel):
    """Base of the learning-rate schedules: frozen, strict, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True, defer_build=True)


class StepSchedule(_Schedule):
    """Multiply the learning rate by `gamma` every `step_size` epochs."""

    type: Literal["step"] = "step"
    step_size: Annotated[int, Field(ge=1)] = 10
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.1


class ExponentialSchedule(_Schedule):
    """Multiply the learning rate by `gamma` every epoch."""

    type: Literal["exponential"] = "exponential"
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.95


class CosineSchedule(_Schedule):
    """Half a cosine from the learning rate down towards `min_lr` over the epochs of the run."""

    type: Literal["cosine"] = "cosine"
    min_lr: Annotated[float, Field(ge=0)] = 0.0


class PlateauSchedule(_Schedule):
    """Multiply the learning rate by `factor` when the loss has not improved for `patience` epochs."""

    type: Literal["plateau"] = "plateau"
    factor: Annotated[float, Field(gt=0, lt=1)] = 0.1
    patience: Annotated[int, Field(ge=1)] = 10
    min_lr: Annotated[float, Field(ge=0)] = 0.0


Schedule = StepSchedule | ExponentialSchedule | CosineSchedule | PlateauSchedule
SCHEDULES: dict[str, type[Schedule]] = {
    "step": StepSchedule,
    "exponential": ExponentialSchedule,
    "cosine": CosineSchedule,
    "plateau": PlateauSchedule,
}
LrSchedule = Annotated[Schedule, Field(discriminator="type")]


class Scheduler:
    """The learning rate of each epoch of one run: `rate(epoch)` before it, `observe(loss)` after it."""

    def __init__(self, schedule: Schedule | None, lr: float, epochs: int) -> None:
        self.schedule, self.lr, self.epochs = schedule, lr, epochs
        self.current = lr  # the plateau schedule's rate so far
        self.best = math.inf
        self.bad_epochs = 0

    def rate(self, epoch: int) -> float:
        """The learning rate of `epoch` (1, 2, ...)."""
        s, lr = self.schedule, self.lr
        if isinstance(s, StepSchedule):
            return lr * s.gamma ** ((epoch - 1) // s.step_size)
        if isinstance(s, ExponentialSchedule):
            return lr * s.gamma ** (epoch - 1)
        if isinstance(s, CosineSchedule):
            return s.min_lr + (lr - s.min_lr) * (1.0 + math.cos(math.pi * (epoch - 1) / max(1, self.epochs))) / 2.0
        return self.current  # none, or plateau

    def observe(self, loss: float) -> None:
        """After an epoch: the loss the plateau schedule watches."""
        s = self.schedule
        if not isinstance(s, PlateauSchedule):
            return
        if loss < self.best:
            self.best, self.bad_epochs = loss, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= s.patience:
            self.current, self.bad_epochs = max(self.current * s.factor, s.min_lr), 0
