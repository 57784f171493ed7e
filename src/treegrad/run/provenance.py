"""What a model file records of how it was made, and the check `predict` makes against it.

Provenance: the Python and NumPy versions, the platform, the command line as it was run and
the folder it ran in, and the data: a CSV by its row count and the SHA-256 of its bytes as
read (the reader hashes them as it reads, see `data.Origin`), a generated dataset by its
name, row count and seed. Input ranges: each input's smallest and largest value over the
training rows, in raw units (before standardisation).

An input value is *far outside* its training range when it lies beyond the range by more
than `FAR` (half) of the range's width; for an input that had one value in training (a range
of width 0), any other value is. `predict` warns about such values and answers all the same.
Why half: the range of n training rows never covers new rows of the same source (2/(n+1) of
them fall outside it), and in a long-tailed column they fall well outside: held-out rows of
ordinary tables went beyond it by up to 36 % of its width (breast cancer, wine), which a
margin of 10 % flagged on every such test set. Beyond half the width is rare for rows like the
training rows, and is where a model's answer is extrapolation (tests/benchmarks/real_tables.py).
"""

from __future__ import annotations

import platform
import shlex
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from ..data.columns import drop_missing
from ..data.parts import WHOLE, Part
from ..data.table import Origin, Table
from ..data.targets import input_array
from ..errors import UNPRINTABLE

FAR = 0.5  # beyond the training range by more than this fraction of its width (see the docstring)
MAX_WARNINGS = 3  # inputs named one by one in predict's warning; the others are counted


class DataOrigin(BaseModel):
    """The training data as read: a CSV's rows and SHA-256, or a generated dataset's name, rows and seed."""

    model_config = ConfigDict(extra="forbid")
    rows: int
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
    generator: str | None = None
    seed: int | None = None
    # A data-parallel run (torchrun): the rows each process read, in rank order; they add up to `rows`.
    parts: list[int] | None = None


class Step(BaseModel):
    """A command that changed a trained model (simplify, import-params): its command line and the
    folder it ran in, as the card writes it again (None: run from Python, so not recorded)."""

    model_config = ConfigDict(extra="forbid")
    command: list[str] | None = None
    cwd: str | None = None


class Provenance(BaseModel):
    """How a model was made: the software and machine, the command line, the data read."""

    model_config = ConfigDict(extra="forbid")
    python: str
    numpy: str | None = None
    platform: str
    command: list[str] | None = None  # argv as run (argv[0] as `treegrad`); None when trained from Python
    cwd: str | None = None  # the folder the command ran in (its relative paths are from there)
    data: DataOrigin | None = None
    # Commands that changed the model after training (simplify, import-params): the command
    # line above trained the model they started from, not this one.
    derived_by: list[str] = []
    # Each of those commands as run, in the same order (absent in files written before it was kept).
    derived_steps: list[Step] = []


def derived(provenance: Provenance | None, how: str, command: Sequence[str] | None = None) -> Provenance | None:
    """The provenance of a model made by `how` (e.g. `treegrad simplify`) from one trained as recorded,
    by the command line `command` (argv) run in this folder, if given."""
    if provenance is None:
        return None
    step = Step(command=list(command), cwd=str(Path.cwd())) if command is not None else Step()
    return provenance.model_copy(
        update={"derived_by": [*provenance.derived_by, how], "derived_steps": [*provenance.derived_steps, step]}
    )


def describe(origin: Origin | None, command: Sequence[str] | None = None) -> Provenance:
    """The provenance of a model trained now, on data of `origin`, by `command` (argv) if given."""
    from importlib import metadata

    try:
        numpy: str | None = metadata.version("numpy")
    except metadata.PackageNotFoundError:
        numpy = None
    return Provenance(
        python=platform.python_version(),
        numpy=numpy,
        platform=platform.platform(),
        command=list(command) if command is not None else None,
        cwd=str(Path.cwd()) if command is not None else None,
        data=None
        if origin is None
        else DataOrigin(
            rows=origin.rows,
            sha256=origin.sha256,
            generator=origin.generator,
            seed=origin.seed,
            parts=None if origin.parts is None else list(origin.parts),
        ),
    )


# ----------------------------------------------------------------- the command line, quoted


_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _ansi_c(c: str) -> str:
    """One character inside bash's $'...' quotes."""
    if c in "\\'":
        return "\\" + c
    if c in _NAMED:
        return _NAMED[c]
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by Python as a lone surrogate
        return f"\\x{code - 0xDC00:02x}"
    if unicodedata.category(c) not in UNPRINTABLE:
        return c
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def quoted(argv: Sequence[str]) -> str:
    """A command line as a shell reads it back: each argument quoted where it needs it, and one
    holding a control character (a newline, an escape) written as bash's $'...' with escapes,
    so that printing it can neither run nor hide anything."""
    return " ".join(
        "$'" + "".join(_ansi_c(c) for c in arg) + "'"
        if any(unicodedata.category(c) in UNPRINTABLE for c in arg)
        else shlex.quote(arg)
        for arg in argv
    )


# ----------------------------------------------------------------- input ranges


def input_ranges(rows: Any, names: Sequence[str], part: Part = WHOLE) -> dict[str, tuple[float, float]] | None:
    """Per input: (smallest, largest) value over `rows` (rows of numbers, or an array of shape
    (rows, inputs); of every part; None for no rows)."""
    import numpy as np

    A = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))
    mine = list(zip(A.min(axis=0).tolist(), A.max(axis=0).tolist())) if len(A) else None
    ends = [e for e in part.gather(mine) if e is not None]
    if not ends:
        return None
    return {name: (min(e[j][0] for e in ends), max(e[j][1] for e in ends)) for j, name in enumerate(names)}


def far_outside(value: float, low: float, high: float) -> bool:
    """True when `value` lies beyond [low, high] by more than FAR of its width (any amount for width 0)."""
    margin = FAR * (high - low)
    return value < low - margin or value > high + margin


@dataclass
class Outside:
    """The rows whose value of one input is far outside its training range."""

    input: str
    low: float
    high: float
    rows: int  # how many
    farthest: float  # the value farthest from the range
    row: int  # its row (0-based)


def outside(ranges: dict[str, tuple[float, float]] | None, names: Sequence[str], rows: Any) -> list[Outside]:
    """Per input (in input order), the rows far outside its training range; none without ranges.
    `rows`: rows of numbers (one sample, say: no NumPy needed), or an array (rows, inputs), whole."""
    if not ranges:
        return []
    found = []
    for j, name in enumerate(names):
        if name not in ranges:
            continue
        low, high = ranges[name]
        if hasattr(rows, "shape"):
            o = _outside_array(rows[:, j], name, low, high)
            found += [o] if o is not None else []
            continue
        count, farthest, where, distance = 0, 0.0, 0, -1.0
        for i, row in enumerate(rows):
            v = row[j]
            if far_outside(v, low, high):
                count += 1
                d = low - v if v < low else v - high
                if d > distance:
                    farthest, where, distance = v, i, d
        if count:
            found.append(Outside(name, low, high, count, farthest, where))
    return found


def _outside_array(values: Any, name: str, low: float, high: float) -> Outside | None:
    """`outside` for one input's values as an array: as far_outside says, the farthest first found."""
    import numpy as np

    margin = FAR * (high - low)
    far = (values < low - margin) | (values > high + margin)
    if not far.any():
        return None
    distance = np.where(far, np.where(values < low, low - values, values - high), -1.0)
    i = int(np.argmax(distance))
    return Outside(name, low, high, int(far.sum()), float(values[i]), i)


def range_warnings(
    ranges: dict[str, tuple[float, float]] | None,
    names: Sequence[str],
    rows: Any,
    describe_row: Callable[[int], str] | None = None,
    shown: Mapping[str, str] | None = None,
) -> list[str]:
    """Warnings for inputs far outside their training ranges: one line per input, at most
    MAX_WARNINGS of them and a line counting the rest, however many rows there are. An input is
    named as `shown` maps it (`column_names`: the CSV's name of a renamed column), else by itself."""
    found = outside(ranges, names, rows)
    shown = shown or {}
    lines = []
    for o in found[:MAX_WARNINGS]:
        span = f"its training range [{o.low:.6g}, {o.high:.6g}]"
        name = shown.get(o.input, o.input)
        if len(rows) == 1:
            lines.append(f"input '{name}' is {o.farthest:.6g}, far outside {span}: the prediction extrapolates")
        else:
            where = f" ({describe_row(o.row)})" if describe_row is not None else ""
            lines.append(
                f"input '{name}': {o.rows} of {len(rows)} rows far outside {span}, the farthest "
                f"{o.farthest:.6g}{where}: those predictions extrapolate"
            )
    if len(found) > MAX_WARNINGS:
        rest = [shown.get(o.input, o.input) for o in found[MAX_WARNINGS:]]
        lines.append(
            f"and {len(rest)} more inputs far outside their training ranges "
            f"({', '.join(rest[:5])}{', ...' if len(rest) > 5 else ''})"
        )
    return lines


def column_names(record: Any) -> dict[str, str]:
    """A model file's renamed inputs by the names of their columns in the CSV (`renamed` undone),
    for messages to speak the user's columns."""
    return {name: column for column, name in (record.renamed or {}).items()}


def table_range_warnings(record: Any, table: Table, also: Sequence[str | None] = ()) -> list[str]:
    """range_warnings for a model file's `record` over the rows of a table a command has read, each
    named by its line in the file: a row with an empty cell in an input or in the columns `also`
    (which `missing: drop` left out) is left out here too."""
    kept, _ = drop_missing(table, [*record.inputs, *(c for c in also if c is not None)])
    inputs = list(record.inputs)
    return range_warnings(record.input_ranges, inputs, input_array(kept, inputs), kept.place, column_names(record))
