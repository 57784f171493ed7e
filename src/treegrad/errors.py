"""The errors a user can cause: one base class, one subclass per kind of mistake.

The CLI catches `TreegradError` in one place and prints its message; anything else
that escapes is a bug in treegrad, not in the user's input.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TreegradError(Exception):
    """Base of every error caused by the user's input; its message says what to fix."""


class ModelError(TreegradError):
    """A node graph that cannot be compiled or evaluated (a cycle, a missing input, ...)."""


class SpecError(TreegradError):
    """A spec file that does not load, validate or compile."""


class DataError(TreegradError):
    """A dataset that cannot be read or does not fit the model."""


class ModelFileError(TreegradError):
    """A saved model file that is unreadable, of another format, or inconsistent."""


class TrainingError(TreegradError):
    """Training that cannot go on: divergence to NaN/inf, an op outside its domain, bad settings."""

    def __init__(self, message: str, *, sample: int | None = None) -> None:
        super().__init__(message)
        self.sample = sample  # where it stopped, if at one sample: an index into fit's inputs


# ----------------------------------------------------------------- writing messages


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """` — did you mean 'x'?` for the closest option, or `.` (ending the sentence) if none is close."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    if not close and isinstance(word, str):
        folded = {o.lower(): o for o in options}
        close = difflib.get_close_matches(word.lower(), list(folded), n=1, cutoff=0.6)
        close = [folded[c] for c in close]
    return f" — did you mean '{close[0]}'?" if close else "."


def clip(text: str) -> str:
    """A value's text as quoted in messages: a long one is cut, so that a message stays one line."""
    return text if len(text) <= 40 else text[:37] + "..."
