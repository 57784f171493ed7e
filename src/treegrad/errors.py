"""The errors a user can cause: one base class, one subclass per kind of mistake.

The CLI catches `TreegradError` in one place and prints its message; anything else
that escapes is a bug in treegrad, not in the user's input.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any


class TreegradError(Exception):
    """Base of every error caused by the user's input; its message says what to fix."""


class ModelError(TreegradError):
    """A node graph that cannot be compiled or evaluated (a cycle, a missing input, ...)."""


class SpecError(TreegradError):
    """A spec file that does not load, validate or compile."""


class SettingError(SpecError):
    """A spec key set on the command line (`--set`, `--grid`) that is malformed, names no key or
    holds a bad value: a usage error (exit 2 where the command treats it as one)."""


class OptionError(TreegradError):
    """Options of a command that cannot go together (`train --resume` with a spec, `--device cuda`
    on an engine that has none): a usage error (exit 2), placed at `option`."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


class DataError(TreegradError):
    """A dataset that cannot be read or does not fit the model."""


class ModelFileError(TreegradError):
    """A saved model file that is unreadable, of another format, or inconsistent."""


class FileError(TreegradError):
    """A file that cannot be written safely: a device, a link, the command's own input, a full disk."""


class ProcessError(TreegradError):
    """Another process that failed the command: a sweep's worker killed, a data-parallel run's
    processes given different data or specs."""


class StorageError(TreegradError):
    """A study database (`sweep --storage`) that cannot be opened or written."""


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


MAX_LISTED = 12  # names a message lists one by one; a longer list shows its ends and its length


def describe(v: Any) -> str:
    """A value as named in messages: `the text 'x'`, `a list of 2`, ..."""
    if v is None:
        return "nothing (an empty value)"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)):
        return f"the number {v}"
    if isinstance(v, str):
        return f"the text '{v}'" if len(v) <= 40 else f"the text '{v[:37]}...'"
    if isinstance(v, list):
        return f"a list of {len(v)}"
    if isinstance(v, dict):
        keys = ", ".join(str(k) for k in list(v)[:4])
        return f"a mapping with keys {keys}" if v else "an empty mapping {}"
    return type(v).__name__


def listed(names: Sequence[str]) -> str:
    """Names joined for a message: `a, b, c`; past MAX_LISTED, the first 8 and the last 2 with how
    many there are in all (`pixel_0, ..., pixel_63 (64 in all)`), so that 64 columns stay readable."""
    if len(names) <= MAX_LISTED:
        return ", ".join(names)
    return f"{', '.join(names[:8])}, ..., {', '.join(names[-2:])} ({len(names)} in all)"


# Characters that must not reach a terminal from a file: they could move the cursor, recolour
# or hide text (ESC, bidi overrides), or break the one-line shape of a message.
UNPRINTABLE = {
    "Cc": "the control character",
    "Cf": "the control character",
    "Zl": "the line separator",
    "Zp": "the paragraph separator",
    "Cs": "the lone surrogate",
}


def unprintable(text: str) -> str | None:
    """The first character of `text` that may not be printed, if any."""
    return next((c for c in text if unicodedata.category(c) in UNPRINTABLE), None)


def describe_char(c: str) -> str:
    """`the control character U+001B` and the like, for messages."""
    return f"{UNPRINTABLE.get(unicodedata.category(c), 'the character')} U+{ord(c):04X}"


def escaped(text: str) -> str:
    """`text` with every unprintable character written as an escape (\\x1b), newlines and tabs kept."""
    return "".join(
        c.encode("unicode_escape").decode("ascii") if c not in "\n\t" and unicodedata.category(c) in UNPRINTABLE else c
        for c in text
    )
