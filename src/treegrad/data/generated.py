"""The built-in datasets, made on the fly from a seed: `--data NAME` or `--data NAME:N` (N rows).

Each is one entry of GENERATORS: a function of (rows, seed) giving the rows, its columns
(the last one the target) and the kind of target it has.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, clip, did_you_mean
from ..limits import MAX_GENERATED
from .parts import WHOLE, Part
from .table import ROWS, Cell, Origin, Table, share


@dataclass(frozen=True)
class Generator:
    """A built-in dataset made on the fly: `make(n, seed)` gives a table of n rows."""

    name: str
    description: str
    columns: tuple[str, ...]
    target: str
    kind: str  # "regression" | "binary" | "classes"
    default_n: int
    make: Callable[[int, int], Table]


def _f2c(n: int, seed: int) -> list[list[Cell]]:
    # The article's setup: Fahrenheit in [-1, 1] (so the inputs need no scaling) and the
    # exact conversion, which a single Linear unit can learn perfectly.
    rng = random.Random(seed)
    rows: list[list[Cell]] = []
    for _ in range(n):
        f = rng.uniform(-1.0, 1.0)
        rows.append([f, (f - 32.0) * 5.0 / 9.0])
    return rows


def _line(n: int, seed: int) -> list[list[Cell]]:
    rng = random.Random(seed)
    rows: list[list[Cell]] = []
    for _ in range(n):
        x, y = rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0)
        rows.append([x, y, 1.0 if y > x else 0.0])
    return rows


def _xor(n: int, seed: int) -> list[list[Cell]]:
    rng = random.Random(seed)
    rows: list[list[Cell]] = []
    for _ in range(n):
        x, y = rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0)
        rows.append([x, y, 1.0 if x * y > 0 else 0.0])
    return rows


def _circles(n: int, seed: int) -> list[list[Cell]]:
    # Alternating rings keep the classes balanced whatever n is.
    rng = random.Random(seed)
    rows: list[list[Cell]] = []
    for i in range(n):
        inner = i % 2 == 0
        radius = 0.5 if inner else 1.0
        angle = rng.uniform(0.0, 2.0 * math.pi)
        x = radius * math.cos(angle) + rng.gauss(0.0, 0.05)
        y = radius * math.sin(angle) + rng.gauss(0.0, 0.05)
        rows.append([x, y, 1.0 if inner else 0.0])
    return rows


def _moons(n: int, seed: int) -> list[list[Cell]]:
    # The upper half circle (label 0) and the lower one shifted right and up (label 1),
    # then the whole picture moved so that it is centred on the origin.
    rng = random.Random(seed)
    rows: list[list[Cell]] = []
    for i in range(n):
        t = rng.uniform(0.0, math.pi)
        label = i % 2
        if label == 0:
            x, y = math.cos(t), math.sin(t)
        else:
            x, y = 1.0 - math.cos(t), 0.5 - math.sin(t)
        x += rng.gauss(0.0, 0.1) - 0.5
        y += rng.gauss(0.0, 0.1) - 0.25
        rows.append([x, y, float(label)])
    return rows


def _spiral(n: int, seed: int) -> list[list[Cell]]:
    # Three arms winding out from the origin, each a third of a turn apart, with noise on
    # the angle; one class per arm.
    rng = random.Random(seed)
    rows: list[list[Cell]] = []
    for i in range(n):
        arm = i % 3
        r = rng.uniform(0.0, 1.0)
        theta = arm * 2.0 * math.pi / 3.0 + 4.0 * r + rng.gauss(0.0, 0.2)
        rows.append([r * math.cos(theta), r * math.sin(theta), "abc"[arm]])
    return rows


def _sine(n: int, seed: int) -> list[list[Cell]]:
    rng = random.Random(seed)
    rows: list[list[Cell]] = []
    for _ in range(n):
        x = rng.uniform(-3.0, 3.0)
        rows.append([x, math.sin(x) + rng.gauss(0.0, 0.05)])
    return rows


def _generator(
    name: str, description: str, columns: tuple[str, ...], kind: str, rows: Callable[[int, int], list[list[Cell]]]
) -> Generator:
    default_n = 1000

    def make(n: int, seed: int) -> Table:
        """A table of n rows drawn with `seed`; its source is NAME, or NAME:N for another n than the default."""
        source = name if n == default_n else f"{name}:{n}"
        return Table(source, list(columns), rows(n, seed), numbering=ROWS)

    return Generator(name, description, columns, columns[-1], kind, default_n, make)


GENERATORS: dict[str, Generator] = {
    g.name: g
    for g in [
        _generator("f2c", "Fahrenheit f in [-1, 1] to Celsius c = (f - 32) * 5 / 9", ("f", "c"), "regression", _f2c),
        _generator("line", "points in [-1, 1]^2, label 1 above the line y = x", ("x", "y", "label"), "binary", _line),
        _generator("xor", "points in [-1, 1]^2, label 1 where x * y > 0", ("x", "y", "label"), "binary", _xor),
        _generator(
            "circles",
            "two noisy concentric rings (radius 0.5 and 1), label 1 on the inner one",
            ("x", "y", "label"),
            "binary",
            _circles,
        ),
        _generator("moons", "two interleaving noisy half circles", ("x", "y", "label"), "binary", _moons),
        _generator("spiral", "three noisy spiral arms, classes a, b, c", ("x", "y", "class"), "classes", _spiral),
        _generator("sine", "x in [-3, 3], y = sin(x) plus noise", ("x", "y"), "regression", _sine),
    ]
}

_GENERATED = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)(?::(.*))?$")


def generated_name(source: str) -> str | None:
    """The generator named by "NAME" or "NAME:N", or None if `source` is not of that form."""
    m = _GENERATED.match(source)
    return m.group(1) if m and m.group(1) in GENERATORS else None


def bare_word(source: str) -> str | None:
    """The word `source` is if it could name a built-in dataset ("NAME" or "NAME:N"), known or not."""
    m = _GENERATED.match(source)
    return m.group(1) if m else None


def generate(source: str, seed: int = 0, part: Part = WHOLE) -> Table:
    """The built-in dataset `source` names ("NAME" or "NAME:N", `generated_name`), drawn with `seed`;
    with `part` of several processes, this process's equal share of its rows (MAX_GENERATED at most)."""
    m = _GENERATED.match(source)
    assert m and m.group(1) in GENERATORS, source
    gen = GENERATORS[m.group(1)]
    n = gen.default_n
    if m.group(2) is not None:
        count = m.group(2).strip()
        if not re.fullmatch(r"[0-9]{1,9}", count) or not 1 <= int(count) <= MAX_GENERATED:
            part.fail(
                DataError(
                    f"dataset '{clip(source)}': the sample count '{clip(count)}' must be a whole number "
                    f"from 1 to {MAX_GENERATED:,}, e.g. '{gen.name}:500'"
                )
            )
        n = int(count)
    table = gen.make(n, seed)
    table.source = source
    table.origin = Origin(rows=n, generator=gen.name, seed=seed)
    return share(table, part)


def unknown(source: str, folder: Path) -> DataError:
    """The error for a bare word that names neither a built-in dataset nor a file in `folder`."""
    names = list(GENERATORS)
    return DataError(
        f"unknown dataset '{source}' (not a built-in name, and no file of that name in {folder})"
        f"{did_you_mean(bare_word(source) or source, names)} Built-in datasets: {', '.join(names)}; "
        "or give the path of a CSV file."
    )
