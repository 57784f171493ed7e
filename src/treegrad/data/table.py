"""Datasets: reading CSV files, the built-in generated datasets, and turning a table into
model inputs and targets (column selection, label encoding, splitting, standardization).

A table keeps numeric cells as floats and everything else as text, so a CSV of a million
rows costs floats, not strings. Nothing is checked against a model here until `select`
and `encode_targets` are asked for columns; they report bad cells by file, line and column.
In a CSV table, row i (0-based) is line i + 2 of the file: the header is line 1, and
`read_csv` refuses the blank or multi-line records that would break that correspondence.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import math
import os
import random
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from ..errors import DataError, describe_char, did_you_mean, escaped, listed, unprintable
from ..errors import clip as _clip
from ..files import note_read, sha256_of
from ..limits import MAX_GENERATED
from ..seeds import stream
from .parts import WHOLE, Part

Cell = float | str

MAX_LINE = 1_000_000  # characters in one CSV line: more is no table of numbers, and would fill memory

# What a CSV user means by a number: ASCII digits, an optional sign, point and exponent, or
# the words nan and inf (read so that messages can call them not finite). Python's float()
# also takes '٣', '３２', '1_000' and ' 1 ', which no spreadsheet writes.
_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|inf|infinity)", re.ASCII | re.IGNORECASE
)


def number(text: str) -> float | None:
    """The number `text` spells in the one grammar treegrad accepts (`-3.5`, `1e-3`, `.5`), else None.

    nan, inf and a number too large for a float (1e999) read as non-finite floats, which
    callers refuse as data.
    """
    return float(text) if _NUMBER.fullmatch(text) else None


def _is_number(text: str) -> bool:
    return _NUMBER.fullmatch(text) is not None


@dataclass(frozen=True)
class Origin:
    """What a table was read from, to record with a model: a CSV's rows and the SHA-256 of
    its bytes as read, or a generated dataset's name, rows and seed."""

    rows: int
    sha256: str | None = None  # hex, of every byte read (a file or standard input)
    generator: str | None = None
    seed: int | None = None
    parts: tuple[int, ...] | None = None  # data-parallel: the rows each process read (parts.py)


@dataclass
class Table:
    """A dataset: column names and rows; numeric cells as float, other cells as str."""

    source: str  # "f2c", "f2c:500", or the CSV path as given
    columns: list[str]
    rows: list[list[Cell]]
    origin: Origin | None = None  # as read or generated; a table derived from it has none
    # Each row's index among the rows as read (row i is line i + 2 of a CSV), where it is not
    # simply its position: a part of the file (parts.py), or rows left after some were dropped.
    index: Sequence[int] | None = None

    def place(self, i: int) -> str:
        """Where row i of this table is, in words a user can find in the file."""
        return row_place(self.source, i, self.index)

    def derived(self, columns: list[str], rows: list[list[Cell]]) -> Table:
        """A table of the same rows with other cells (recoded, a column taken out), placed as these."""
        return Table(self.source, columns, rows, index=self.index)


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


# --- generated datasets -------------------------------------------------------------


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
        return Table(source, list(columns), rows(n, seed))

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


def _generated_name(source: str) -> str | None:
    """The generator named by "NAME" or "NAME:N", or None if `source` is not of that form."""
    m = _GENERATED.match(source)
    return m.group(1) if m and m.group(1) in GENERATORS else None


def load_data(
    source: str, base_dir: Path | None = None, seed: int = 0, *, named_in: str | None = None, part: Part = WHOLE
) -> Table:
    """A generated dataset ("NAME" or "NAME:N", seeded), the CSV file at `source`, or `-` (stdin).
    With `part` of several processes, this process's part of its rows (`read_csv`; a generated
    dataset is made whole, MAX_GENERATED rows at most, and cut in equal parts).

    A relative path is taken from `base_dir` (default: the current directory). `named_in`
    is the model file that names `source` when the user did not: such a source is read only
    if it is a .csv file, and no line of it is ever quoted in a message (an untrusted model
    file could name /etc/passwd).
    """
    source = source.strip()
    # A source that names nothing is every process's mistake: rank 0 alone reports it (parts.py).
    if not source:
        part.fail(DataError("the data source is empty; give a CSV file, `-` for standard input, or a built-in dataset"))
    if source == "-" and named_in is None:
        return read_csv(Path("-"), "standard input", part)
    m = _GENERATED.match(source)
    if m and m.group(1) in GENERATORS:
        gen = GENERATORS[m.group(1)]
        n = gen.default_n
        if m.group(2) is not None:
            count = m.group(2).strip()
            if not re.fullmatch(r"[0-9]{1,9}", count) or not 1 <= int(count) <= MAX_GENERATED:
                part.fail(
                    DataError(
                        f"dataset '{source}': the sample count '{count}' must be a whole number "
                        f"from 1 to {MAX_GENERATED:,}, e.g. '{gen.name}:500'"
                    )
                )
            n = int(count)
        table = gen.make(n, seed)
        table.source = source
        table.origin = Origin(rows=n, generator=gen.name, seed=seed)
        if not part.alone:
            first, stop = n * part.rank // part.world, n * (part.rank + 1) // part.world
            table.rows, table.index = table.rows[first:stop], range(first, stop)
            table.origin = Origin(rows=n, generator=gen.name, seed=seed, parts=tuple(part.gather(stop - first)))
        return table
    path = Path(source)
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    if m and not path.exists():
        # A bare word that is not a file either: most likely a misspelt built-in name.
        names = list(GENERATORS)
        part.fail(
            DataError(
                f"unknown dataset '{source}' (not a built-in name, and no file of that name in {path.parent})"
                f"{did_you_mean(m.group(1), names)} Built-in datasets: {', '.join(names)}; "
                "or give the path of a CSV file."
            )
        )
    if named_in is None:
        return read_csv(path, source, part)
    if path.suffix.lower() != ".csv":
        raise DataError(
            f"{named_in} says it was trained on '{_clip(escaped(source))}', which is not a .csv file, so "
            "treegrad does not read it; pass the data with --data FILE.csv"
        )
    try:
        return read_csv(path, source)
    except DataError:
        raise DataError(
            f"{source}, the training data named in {named_in}, cannot be read as a CSV table; "
            "pass the data with --data FILE.csv"
        ) from None


# --- CSV ----------------------------------------------------------------------------


# Bytes that are not UTF-8, as a text stream decoded with errors="surrogateescape" keeps them.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def _check_line(line: str, name: str, number: int) -> None:
    """Refuse bytes that are not UTF-8 (kept as escapes, see `_open_csv`), NUL characters
    (binary data or UTF-16 text) and lines too long for a table of numbers."""
    if not line.isascii() and _NOT_UTF8.search(line):
        raise _not_utf8(name, number)
    if "\x00" in line:
        raise DataError(
            f"{name} is not a text CSV file: line {number} contains NUL bytes "
            "(a binary file, or text saved as UTF-16); save it as UTF-8 CSV"
        )
    if len(line) > MAX_LINE:
        raise DataError(
            f"{name}, line {number} is longer than {MAX_LINE:,} characters: too long for a row "
            "of a table; check that this is the CSV file you meant, with one row per line"
        )


def _checked_lines(f: IO[str], name: str, first: int = 1) -> Iterator[str]:
    """The file's lines, each read with a length bound and checked (`_check_line`); the first is line `first`."""
    line_number = first - 1
    while line := f.readline(MAX_LINE + 1):
        line_number += 1
        _check_line(line, name, line_number)
        yield line


def _check_header(cells: list[str], name: str) -> list[str]:
    header = [c.strip() for c in cells]
    if all(_is_number(c) for c in header):
        raise DataError(
            f"{name} has no header row: line 1 holds numbers ({', '.join(header[:5])}); "
            "add a first line with the column names, e.g. 'x,y,label'"
        )
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        sep = "';'" if ";" in header[0] else "tabs"
        raise DataError(
            f"{name}, line 1: the columns seem to be separated by {sep}; treegrad reads "
            "comma-separated files, so save it with commas"
        )
    seen: dict[str, int] = {}
    for k, col in enumerate(header, start=1):
        if not col:
            raise DataError(f"{name}, line 1: column {k} of the header has no name; give every column a name")
        bad = unprintable(col)
        if bad is not None:
            raise DataError(
                f"{name}, line 1: the name of column {k} holds {describe_char(bad)}; "
                "column names are printed, so remove it"
            )
        if col in seen:
            raise DataError(
                f"{name}, line 1: the column name '{col}' appears twice (columns {seen[col]} and {k}); rename one"
            )
        seen[col] = k
    return header


def _not_utf8(name: str, line: int) -> DataError:
    return DataError(
        f"{name} is not a UTF-8 text file: line {line} has bytes that are not "
        "UTF-8 (a binary file, or text in another encoding); save it as UTF-8 CSV"
    )


@dataclass
class _Records:
    """What `_records` read: the header (if it read line 1), the rows, and the first of the
    empty lines that end the file (None if it does not end with any)."""

    header: list[str] | None
    rows: list[list[Cell]]
    blank: int | None


def _is_blank(record: list[str]) -> bool:
    return not record or (len(record) == 1 and not record[0].strip())


def _records(
    lines: Iterator[str],
    name: str,
    header: list[str] | None = None,
    first: int = 1,
    blank: int | None = None,
    last: int | None = None,
) -> _Records:
    """The rows of CSV `lines`, the first of which is line `first` of the file (`blank`: the
    first of the empty lines just before it); without `header` the first record is the header.
    One row per line: a blank line is allowed only among the last, and a quoted cell must not
    run on to the next line. With `last`, the records that begin on lines up to `last` (a part
    of the file, parts.py): `lines` goes on beyond it, read only by a quote still open there."""
    rows: list[list[Cell]] = []
    texts: dict[str, str] = {}  # one string object per distinct text cell (labels repeat)
    blank_line: int | None = blank
    previous_line = first - 1
    record: list[str] = []
    reader = csv.reader(lines)
    try:
        while last is None or previous_line < last:
            if (got := next(reader, None)) is None:
                break
            record = got
            line = first - 1 + reader.line_num
            if line != previous_line + 1:
                raise DataError(
                    f"{name}, lines {previous_line + 1}-{line}: a quoted cell spans several lines; "
                    "treegrad reads one row per line, so remove the line breaks inside quotes"
                )
            previous_line = line
            if _is_blank(record):
                if header is None:
                    raise DataError(f"{name}, line 1 is empty: the first line must be the header with column names")
                if blank_line is None:
                    blank_line = line
                continue
            if blank_line is not None:
                raise DataError(f"{name}, line {blank_line} is empty but more rows follow; delete the empty line")
            if header is None:
                header = _check_header(record, name)
                continue
            if len(record) != len(header):
                raise DataError(
                    f"{name}, line {line} has {len(record)} cells but the header has {len(header)} columns "
                    f"({', '.join(header)}); fix that line"
                )
            row: list[Cell] = []
            for cell in record:
                text = cell.strip()
                value = number(text)
                # "1e999" reads as infinity, which is no data: keep it as text so that
                # `select` reports it where it is.
                if value is None or not math.isfinite(value):
                    row.append(texts.setdefault(text, text))
                else:
                    row.append(value)
            rows.append(row)
    except csv.Error as e:
        raise DataError(f"{name}, line {first - 1 + reader.line_num}: {e}; fix that line") from e
    if any("\n" in cell or "\r" in cell for cell in record):
        # The last record's quote was still open where the lines ended.
        raise DataError(
            f"{name}, line {previous_line}: a quoted cell is not closed on its line; treegrad reads one "
            "row per line, so close the quote or remove the line breaks inside it"
        )
    return _Records(header, rows, blank_line)


class _Hashing(io.RawIOBase):
    """A binary stream that passes reads through and hashes every byte it passes (SHA-256),
    so that the bytes the CSV reader reads are hashed as they are read, not read twice."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        # A buffered stream (standard input) returns what it has rather than wait for more.
        self._readinto = getattr(raw, "readinto1", raw.readinto)
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._readinto(buffer)
        if n:
            self.sha256.update(memoryview(buffer)[:n])
        return int(n or 0)


def _regular_file(path: Path, name: str) -> IO[bytes]:
    """The file at `path` opened for reading bytes, unbuffered.

    Only a regular file is opened: a device (/dev/zero) or a FIFO would be read forever or
    wait forever for a writer.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"no such file: {name} (looked for {path.resolve()}); check the path") from None
    except OSError as e:
        raise DataError(f"cannot open {name}: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"{name} is a directory, not a CSV file; give the path of a .csv file")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(
            f"{name} is not a regular file (a device, pipe or socket), so not a CSV file; give the path "
            "of a .csv file, or `-` to read the CSV from standard input"
        )
    try:
        f = open(path, "rb", buffering=0)
    except OSError as e:
        raise DataError(f"cannot open {name}: {e.strerror}") from e
    note_read(f.fileno())
    return f


_TEXT: dict[str, Any] = {"encoding": "utf-8-sig", "errors": "surrogateescape", "newline": ""}


@contextlib.contextmanager
def _open_csv(path: Path, name: str) -> Iterator[tuple[IO[str], _Hashing]]:
    """The CSV file at `path` opened as text, or standard input for `-` (left open after),
    with the hash of the bytes read so far. Standard input is what `-` asks for."""
    # utf-8-sig drops a byte order mark if there is one; newline="" lets the csv module
    # handle CRLF, LF and CR line endings alike. Bytes that are not UTF-8 are kept as escapes,
    # which `_check_line` reports on their line (the stream decodes blocks ahead of the lines).
    if str(path) == "-":
        hashing = _Hashing(sys.stdin.buffer)
        wrapper = io.TextIOWrapper(io.BufferedReader(hashing), **_TEXT)
        try:
            yield wrapper, hashing
        finally:
            wrapper.detach()  # closing the wrapper would close standard input
        return
    with _regular_file(path, name) as f:
        hashing = _Hashing(f)
        yield io.TextIOWrapper(io.BufferedReader(hashing), **_TEXT), hashing


def read_csv(path: Path, source: str | None = None, part: Part = WHOLE) -> Table:
    """Read a CSV file with a header row (`-`: standard input); `source` is the name used in
    messages (default: path). With `part` of several processes, only this process's lines
    (`_read_part`)."""
    path = Path(path)
    name = source if source is not None else str(path)
    if not part.alone:
        return _read_part(path, name, part)
    with _open_csv(path, name) as (f, hashing):
        got = _records(_checked_lines(f, name), name)
    header = _whole(name, got.header, len(got.rows))
    return Table(name, header, got.rows, Origin(rows=len(got.rows), sha256=hashing.sha256.hexdigest()))


def _whole(name: str, header: list[str] | None, rows: int) -> list[str]:
    """The header of a whole file of `rows` rows, which must have both."""
    if header is None:
        raise DataError(f"{name} is empty; a CSV file needs a header line with column names and rows of data")
    if not rows:
        raise DataError(f"{name} has a header ({', '.join(header)}) but no rows of data")
    return header


# A line ends at \r\n, \n or \r, as the csv module and Python's text files read it.
_LINE_END = re.compile(rb"\r\n|\n|\r")


def _line_start(f: IO[bytes], at: int, size: int) -> int:
    """The byte where the first line that starts at or after byte `at` starts (`size` if none)."""
    if at >= size:
        return size
    f.seek(at - 1)
    # A line of MAX_LINE characters is at most 4 bytes each in UTF-8; a longer one is reported
    # by the process that reads it whole.
    block = f.read(4 * MAX_LINE + 2)
    end = _LINE_END.search(block)
    if end is None:
        return size
    start = at - 1 + end.end()
    if end.group() == b"\r" and end.end() == len(block):  # a \n may follow, beyond the block
        f.seek(start)
        start += f.read(1) == b"\n"
    return start


def _read_part(path: Path, name: str, part: Part) -> Table:
    """This process's part of a CSV file: the header and the lines that start in its share of
    the bytes after the header (equal shares, moved to line starts, so that every line is read
    by exactly one process). Line numbers, the blank-line rule and the empty-file checks are
    those of reading the whole file; rank 0 also hashes the whole file (streaming, for
    provenance), so the record says what one process reading it would say."""
    if str(path) == "-":  # every process's mistake: rank 0 alone reports it
        part.fail(
            DataError(
                "under torchrun each process reads its part of the data from a file, so standard input (`-`) "
                "cannot be shared; save it to a CSV file and pass that"
            )
        )

    def lines() -> tuple[list[str] | None, list[bytes], int]:
        with _regular_file(path, name) as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(4 * MAX_LINE + 2)
            end = _LINE_END.search(head)
            body = size if end is None else end.end()
            header_text = head[:body].decode("utf-8-sig", "surrogateescape")
            _check_line(header_text[: MAX_LINE + 1], name, 1)  # as one process reads it (_checked_lines)
            after = _lines_after(path, name, body, 2)  # where a quote the header leaves open goes on
            first = _records(itertools.chain([header_text], after), name, last=1) if size else _Records(None, [], None)
            share = size - body
            begin = _line_start(f, body + share * part.rank // part.world, size)
            stop = _line_start(f, body + share * (part.rank + 1) // part.world, size)
            f.seek(begin)
            return first.header, f.read(stop - begin).splitlines(keepends=True), stop

    header, raw, stop = part.agree(lines)
    trailing = 0  # the empty lines this part ends with
    while trailing < len(raw) and _blank_line(raw[-1 - trailing]):
        trailing += 1
    shares: list[tuple[int, int]] = part.gather((len(raw), trailing))
    first_line = 2 + sum(n for n, _ in shares[: part.rank])
    blank = None  # where the empty lines just before this part begin, in earlier parts
    for q in range(part.rank - 1, -1, -1):
        n, t = shares[q]
        if t:
            blank = 2 + sum(m for m, _ in shares[:q]) + n - t
        if t < n:
            break

    def texts() -> Iterator[str]:  # decoded as the rows are made, not all first
        for k, b in enumerate(raw):
            text = b.decode("utf-8", "surrogateescape")
            _check_line(text[: MAX_LINE + 1], name, first_line + k)
            yield text
        yield from _lines_after(path, name, stop, first_line + len(raw))  # a quote left open reads on

    def parse() -> _Records:
        if header is None:
            return _Records(None, [], None)
        return _records(texts(), name, header, first_line, blank, last=first_line + len(raw) - 1)

    got = part.agree(parse)
    raw.clear()  # the bytes, now parsed
    counts: list[tuple[int, int | None]] = part.gather((len(got.rows), got.blank))
    for r, (_, empty) in enumerate(counts):
        if empty is not None and any(n for n, _ in counts[r + 1 :]):
            part.fail(DataError(f"{name}, line {empty} is empty but more rows follow; delete the empty line"))
    total = sum(n for n, _ in counts)
    header = part.agree(lambda: _whole(name, header, total))
    sha256 = part.gather(sha256_of(path) if part.rank == 0 else None)[0]
    start = sum(n for n, _ in counts[: part.rank])
    origin = Origin(rows=total, sha256=sha256, parts=tuple(n for n, _ in counts))
    return Table(name, header, got.rows, origin, index=range(start, start + len(got.rows)))


def _lines_after(path: Path, name: str, at: int, number: int) -> Iterator[str]:
    """The lines of the file from byte `at` on, the first being line `number`, read only as they
    are asked for: a part reads them where a quoted cell is still open at its end, so that the
    cell's lines are those one process reading the whole file names."""
    with _regular_file(path, name) as f:
        f.seek(at)
        text = io.TextIOWrapper(io.BufferedReader(cast(io.RawIOBase, f)), **{**_TEXT, "encoding": "utf-8"})
        yield from _checked_lines(text, name, number)


def _blank_line(line: bytes) -> bool:
    """Whether a line is an empty record; one the csv module refuses (a cell beyond its field
    limit) is not, and the parse of the part reports it."""
    try:
        return _is_blank(next(csv.reader([line.decode("utf-8", "replace")]), []))
    except csv.Error:
        return False


# --- from a table to inputs and targets ----------------------------------------------


def row_place(source: str, i: int, index: Sequence[int] | None = None) -> str:
    """Where row i (0-based) of a table is, in words a user can find in the file; `index`: each
    row's index among the rows as read, where that is not its position (Table.index)."""
    if index is not None:
        i = index[i]
    if _generated_name(source) is not None:
        return f"{source}, row {i + 1}"
    return f"{source}, line {i + 2}"


def _column_index(table: Table, column: str, role: str) -> int:
    if column in table.columns:
        return table.columns.index(column)
    raise DataError(
        f"{role} column '{column}' is not in {table.source}{did_you_mean(column, table.columns)} "
        f"Its columns are: {listed(table.columns)}."
    )


def _bad_number(cell: Cell) -> str:
    if cell == "":
        return "is empty"
    if isinstance(cell, str) and _is_number(cell):
        return f"is '{_clip(cell)}', not a finite number"
    return f"is '{_clip(str(cell))}', not a number"


def select(table: Table, inputs: list[str], target: str | None) -> tuple[list[list[float]], list[Cell], str]:
    """(input rows in the order of `inputs`, raw target cells, target column name).

    With `target` None the target is the one column that is not an input.
    """
    idx = [_column_index(table, c, "input") for c in inputs]
    if target is None:
        rest = [c for c in table.columns if c not in inputs]
        if not rest:
            raise DataError(
                f"every column of {table.source} is an input ({', '.join(table.columns)}), "
                "so there is no target; add the target column, or drop one input from `inputs:`"
            )
        if len(rest) > 1:
            raise DataError(
                f"{table.source} has several columns that are not inputs ({', '.join(rest)}); "
                "say which one is the target with --target NAME (or `target:` in the spec)"
            )
        target = rest[0]
    elif target in inputs:
        raise DataError(f"column '{target}' of {table.source} is both an input and the target; remove it from one")
    t = _column_index(table, target, "target")
    return _numbers(table, idx), [row[t] for row in table.rows], target


# A text cell beginning with one of these is a formula to a spreadsheet (CSV injection): it
# is written with a leading apostrophe, as OWASP recommends, which spreadsheets show as text.
# Number cells are floats and never escaped, so -3.5 stays a number.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """A text cell as written to a CSV file: `'` before a leading = + - @ tab or carriage return."""
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(table: Table) -> str:
    """A table as CSV text; numbers as the shortest text that reads back to the same float, text
    cells and column names made spreadsheet-safe (see `spreadsheet_safe`)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([spreadsheet_safe(c) for c in table.columns])
    for row in table.rows:
        w.writerow([repr(c) if isinstance(c, float) else spreadsheet_safe(c) for c in row])
    return buf.getvalue()


def input_rows(table: Table, inputs: list[str]) -> list[list[float]]:
    """The input columns only, in the order of `inputs` (for predicting; no target needed)."""
    return _numbers(table, [_column_index(table, c, "input") for c in inputs])


def _numbers(table: Table, idx: list[int]) -> list[list[float]]:
    """Columns `idx` of every row as floats, or a DataError naming the first bad cell."""
    X: list[list[float]] = []
    for i, row in enumerate(table.rows):
        x: list[float] = []
        for j in idx:
            v = row[j]
            if isinstance(v, str) or not math.isfinite(v):
                raise DataError(
                    f"{table.place(i)}, column '{table.columns[j]}': the input {_bad_number(v)}; fix or remove that row"
                )
            x.append(float(v))
        X.append(x)
    return X


def label_text(v: Cell) -> str:
    """The canonical text of a class label: 1.0 -> "1", 2.5 -> "2.5", text unchanged."""
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if math.isfinite(v) and v.is_integer():
        return str(int(v))
    return repr(v)


def _label_order(text: str) -> tuple[int, float, str]:
    # Numeric labels in numeric order ("2" before "10"), then text labels alphabetically.
    value = number(text)
    return (0, value, text) if value is not None and math.isfinite(value) else (1, 0.0, text)


def label_texts(raw: list[Cell], place: Callable[[int], str]) -> list[str]:
    """Each target cell's label text (`label_text`); an empty or unprintable one is refused
    where it is (`place(i)`), before any class is counted or looked up."""
    out: list[str] = []
    for i, v in enumerate(raw):
        text = label_text(v)
        if text == "":
            raise DataError(f"{place(i)}: the target is empty; give every row a label")
        bad = unprintable(text)
        if bad is not None:
            raise DataError(
                f"{place(i)}: the label {escaped(_clip(text))!r} holds {describe_char(bad)}; "
                "labels are printed, so remove it"
            )
        out.append(text)
    return out


def encode_targets(
    raw: list[Cell],
    kind: str,
    classes: list[str] | None = None,
    source: str = "",
    training: bool = True,
    place: Callable[[int], str] | None = None,
) -> tuple[list[float] | list[int], list[str] | None]:
    """Targets as a model needs them, and the class names (None for regression).

    With `training` (the default) a constant regression target is refused: there is
    nothing to learn. Evaluating a trained model on such data is fine.

    kind "regression": the numbers; "binary": 0.0/1.0 for the first/second of two classes;
    "classes": indices into `classes` (default: the distinct labels, sorted).
    """
    where = source or "the data"
    at = place or (lambda i: row_place(where, i))  # where raw[i] is, for messages
    if not raw:
        raise DataError(f"{where} has no rows, so there are no targets")
    if kind == "regression":
        values: list[float] = []
        for i, v in enumerate(raw):
            if isinstance(v, str) or not math.isfinite(v):
                hint = (
                    "fill in or remove that row"
                    if v == ""
                    else "a regression target must be a number (for labels, use a sigmoid or softmax output)"
                )
                raise DataError(f"{at(i)}: the target {_bad_number(v)}; {hint}")
            values.append(float(v))
        if training:
            check_varies(values, where)
        return values, None
    if kind not in ("binary", "classes"):
        raise DataError(f"unknown kind of target '{kind}'; use regression, binary or classes")
    labels = label_texts(raw, at)
    if classes is None:
        classes = class_order(labels)
    else:
        classes = list(classes)
        known = set(classes)
        for i, text in enumerate(labels):
            if text not in known:
                raise DataError(
                    f"{at(i)}: the label '{_clip(text)}' is not one of the known classes "
                    f"({', '.join(classes)}); fix the label or the list of classes"
                )
    if kind == "binary":
        if len(classes) < 2:
            raise DataError(
                f"the target in {where} has a single class ({', '.join(classes)}): nothing to learn; "
                "a binary target needs two labels"
            )
        if len(classes) > 2:
            shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
            raise DataError(
                f"the target in {where} has {len(classes)} classes ({shown}) but a binary output "
                "tells two apart; use a softmax output for several classes"
            )
        second = classes[1]
        return [1.0 if text == second else 0.0 for text in labels], classes
    if len(classes) < 2:
        raise DataError(
            f"the target in {where} has fewer than two classes ({', '.join(classes)}): nothing to learn; "
            "a classifier needs at least two labels"
        )
    index = {c: k for k, c in enumerate(classes)}
    return [index[text] for text in labels], classes


def check_varies(values: Sequence[float], where: str) -> None:
    """Refuse a regression target that is the same number in every row: nothing to learn."""
    if all(v == values[0] for v in values):
        raise DataError(
            f"the target in {where} is {label_text(values[0])} in every row: nothing to learn; check the target column"
        )


def class_order(labels: Iterable[str]) -> list[str]:
    """The distinct class labels in their order: numbers by value ("2" before "10"), then text."""
    return sorted(set(labels), key=_label_order)


def split_indices(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(training rows, validation rows) of n rows: a seeded shuffle with its last `fraction` held out.

    With fraction > 0 and two rows or more, each side gets at least one row.
    """
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"the validation fraction is {fraction}; it must be at least 0 and below 1, e.g. 0.2")
    order = list(range(n))
    stream(seed, "split").shuffle(order)
    n_val = round(n * fraction)
    if fraction > 0.0:
        n_val = max(n_val, 1)
    n_val = min(n_val, max(n - 1, 0))
    return order[: n - n_val], order[n - n_val :]


def split(
    X: list[list[float]], y: list[Any], fraction: float, seed: int
) -> tuple[list[list[float]], list[Any], list[list[float]], list[Any]]:
    """(X_train, y_train, X_val, y_val): a seeded shuffle with its last `fraction` held out.

    With fraction > 0 and two rows or more, each side gets at least one row.
    """
    assert len(X) == len(y), "inputs and targets must have the same number of rows"
    train, val = split_indices(len(X), fraction, seed)
    return [X[i] for i in train], [y[i] for i in train], [X[i] for i in val], [y[i] for i in val]


def standardize_stats(X: list[list[float]], names: list[str], part: Part = WHOLE) -> dict[str, tuple[float, float]]:
    """Per input: (mean, population standard deviation); 1.0 for a constant column. With `part`,
    of the rows of every part together (each part's exact sums, summed exactly).

    The sums are taken of values scaled by the column's largest magnitude, so that columns
    of numbers near 1e308 do not overflow on the way to a finite mean and deviation.
    """
    n = sum(part.gather(len(X)))
    if not n:  # of every part: each process finds it (parts.py)
        part.fail(DataError("there are no rows to compute the input means and standard deviations from"))
    columns = [[row[j] for row in X] for j in range(len(names))]
    ends = part.gather([(min(c), max(c), max(abs(v) for v in c)) if c else None for c in columns])
    ranges = [[e[j] for e in ends if e[j] is not None] for j in range(len(names))]  # of the parts with rows
    low = [min(lo for lo, _, _ in r) for r in ranges]
    high = [max(hi for _, hi, _ in r) for r in ranges]
    scale = [max(m for _, _, m in r) for r in ranges]
    varies = [lo != hi for lo, hi in zip(low, high)]
    sums = part.gather([math.fsum(v / s for v in c) if ok else 0.0 for c, s, ok in zip(columns, scale, varies)])
    means = [math.fsum(p[j] for p in sums) / n for j in range(len(names))]
    squares = part.gather(
        [math.fsum((v / s - m) ** 2 for v in c) if ok else 0.0 for c, s, m, ok in zip(columns, scale, means, varies)]
    )
    stats: dict[str, tuple[float, float]] = {}
    for j, name in enumerate(names):
        if not varies[j]:
            # Dividing by 1 leaves a constant column as it is instead of dividing by zero.
            stats[name] = (low[j], 1.0)
            continue
        std = math.sqrt(math.fsum(p[j] for p in squares) / n) * scale[j]
        mean = means[j] * scale[j]
        if not (math.isfinite(mean) and math.isfinite(std)) or std == 0.0:
            part.fail(
                DataError(
                    f"input column '{name}' cannot be standardised: its values (from {low[j]:.6g} to "
                    f"{high[j]:.6g}) give no finite, nonzero standard deviation; rescale that column, "
                    "or train without --normalize"
                )
            )
        stats[name] = (mean, std)
    return stats
