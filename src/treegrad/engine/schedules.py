"""Learning-rate schedules: the learning rate of each epoch, from the base rate `lr`.

A schedule's parameters, their defaults and bounds are the pydantic models in spec/models.py
(`StepSchedule`, ...; `training.lr_schedule`); this module reads them by their `type` and
field names and imports no pydantic, so that training stays light to import.
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
from typing import Any

SCHEDULE_TYPES = ("step", "exponential", "cosine", "plateau")


class Scheduler:
    """The learning rate of each epoch of one run: `rate(epoch)` before it, `observe(loss)` after it."""

    def __init__(self, schedule: Any, lr: float, epochs: int) -> None:
        self.schedule, self.lr, self.epochs = schedule, lr, epochs
        self.current = lr  # the plateau schedule's rate so far
        self.best = math.inf
        self.bad_epochs = 0

    def rate(self, epoch: int) -> float:
        """The learning rate of `epoch` (1, 2, ...)."""
        s, lr = self.schedule, self.lr
        kind = None if s is None else s.type
        if kind == "step":
            return lr * s.gamma ** ((epoch - 1) // s.step_size)
        if kind == "exponential":
            return lr * s.gamma ** (epoch - 1)
        if kind == "cosine":
            return s.min_lr + (lr - s.min_lr) * (1.0 + math.cos(math.pi * (epoch - 1) / max(1, self.epochs))) / 2.0
        return self.current  # none, or plateau

    def observe(self, loss: float) -> None:
        """After an epoch: the loss the plateau schedule watches."""
        s = self.schedule
        if s is None or s.type != "plateau":
            return
        if loss < self.best:
            self.best, self.bad_epochs = loss, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= s.patience:
            self.current, self.bad_epochs = max(self.current * s.factor, s.min_lr), 0
