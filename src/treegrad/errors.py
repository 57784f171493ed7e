"""The errors a user can cause: one base class, one subclass per kind of mistake.

The CLI catches `TreegradError` in one place and prints its message; anything else
that escapes is a bug in treegrad, not in the user's input.
"""

from __future__ import annotations


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
    """Training that cannot go on: divergence to NaN/inf, bad settings."""
