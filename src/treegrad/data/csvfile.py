"""CSV files: the reader (a file, standard input, or under torchrun one process's part of a
file) and the writer.

The reader takes one row per line, so that row i is line i + 2 of the file and every message
names the line to fix: it refuses blank lines among the rows, quoted cells over several lines,
bytes that are not UTF-8, NUL bytes and lines too long for a table. It hashes the bytes as it
reads them (the model file records the SHA-256), so standard input is read once.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import math
import os
import re
import sys
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from ..errors import DataError, describe_char, unprintable
from .parts import WHOLE, Part
from .table import MISSING_VALUES, Cell, Column, Origin, Table, is_number, number, regular_file, same_file, whole

MAX_LINE = 1_000_000  # characters in one CSV line: more is no table of numbers, and would fill memory

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
    if all(is_number(c) for c in header):
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
    """What `_records` read: the header (if it read line 1), the columns of the rows, their
    number, and the first of the empty lines that end the file (None if it does not end with any)."""

    header: list[str] | None
    data: list[Column]
    count: int
    blank: int | None


def _is_blank(record: list[str]) -> bool:
    return not record or (len(record) == 1 and not record[0].strip())


CHUNK = 8192  # rows parsed into arrays at a time: a few MB of cells as text, whatever the file's size

# The characters of a column of plain numbers, one per line (`1.5`, `-2e-3`): a column of these
# alone is parsed by NumPy whole, which reads exactly treegrad's grammar over them (table.number)
# and refuses the rest (`1-2`, `.`, `-`), which the cell-by-cell reading then reads.
_NUMBER_CHARS = re.compile(r"[0-9eE.+\-\n]*")


def _columns(records: list[list[str]], width: int, missing: frozenset[str]) -> list[Column]:
    """The columns of `records` (each of `width` cells), each read by `cell_column`."""
    return [cell_column(cells, missing) for cells in (zip(*records) if records else [()] * width)]


def cell_column(cells: Sequence[str], missing: Collection[str]) -> Column:
    """The column of these texts: a cell that is a finite number in treegrad's grammar as a
    float, one of `missing` (or empty) as "" (a missing cell), any other cell as its text,
    stripped of the spaces around it. Whole arrays where the cells are all plain numbers, the common case."""
    import numpy as np

    if cells and _NUMBER_CHARS.fullmatch("\n".join(cells)):
        try:
            numbers = np.array(cells, dtype=np.float64)
        except ValueError:  # `-`, `1-2`: not all numbers
            pass
        else:
            if np.isfinite(numbers).all():  # 1e999 overflows: it stays text, reported where it is
                return Column(numbers)
    stripped = list(map(str.strip, cells))
    return _cells(stripped, missing if isinstance(missing, frozenset) else frozenset(missing))


def _cells(stripped: list[str], missing: frozenset[str]) -> Column:
    """A column cell by cell, as `_columns` reads it, where not all are finite numbers."""
    import numpy as np

    n = len(stripped)
    numbers, texts = np.full(n, np.nan), np.full(n, None, dtype=object)
    read: dict[str, Cell] = {}  # each distinct text read once (labels repeat), one string object each
    for i, text in enumerate(stripped):
        cell = read.get(text)
        if cell is None:
            value = None if not text or text in missing else number(text)
            # "1e999" reads as infinity, which is no data: it stays text, so that `select` reports it where it is.
            if value is None or not math.isfinite(value):
                cell = "" if not text or text in missing else text
            else:
                cell = value
            read[text] = cell
        if isinstance(cell, str):
            texts[i] = cell
        else:
            numbers[i] = cell
    return Column(numbers, texts if Column._any_text(texts) else None)


def _records(
    lines: Iterator[str],
    name: str,
    header: list[str] | None = None,
    first: int = 1,
    blank: int | None = None,
    last: int | None = None,
    missing: Collection[str] = MISSING_VALUES,
    progress: Callable[[int], None] | None = None,
) -> _Records:
    """The rows of CSV `lines`, the first of which is line `first` of the file (`blank`: the
    first of the empty lines just before it); without `header` the first record is the header.
    One row per line: a blank line is allowed only among the last, and a quoted cell must not
    run on to the next line. With `last`, the records that begin on lines up to `last` (a part
    of the file, parts.py): `lines` goes on beyond it, read only by a quote still open there.
    Cells are parsed into columns CHUNK rows at a time (`_columns`; `missing`: the texts that
    mark a missing cell, besides an empty one); `progress(rows)` hears of each chunk read."""
    markers = frozenset(missing)
    pieces: list[list[Column]] = []
    chunk: list[list[str]] = []
    count = 0
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
            chunk.append(record)
            if len(chunk) == CHUNK:
                pieces.append(_columns(chunk, len(header), markers))
                count, chunk = count + len(chunk), []
                if progress is not None:
                    progress(count)
    except csv.Error as e:
        raise DataError(f"{name}, line {first - 1 + reader.line_num}: {e}; fix that line") from e
    if any("\n" in cell or "\r" in cell for cell in record):
        # The last record's quote was still open where the lines ended.
        raise DataError(
            f"{name}, line {previous_line}: a quoted cell is not closed on its line; treegrad reads one "
            "row per line, so close the quote or remove the line breaks inside it"
        )
    width = len(header) if header is not None else 0
    if chunk or not pieces:
        pieces.append(_columns(chunk, width, markers))
        count += len(chunk)
    return _Records(header, [Column.joined([p[j] for p in pieces]) for j in range(width)], count, blank_line)


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
    with regular_file(path, name) as f:
        hashing = _Hashing(f)
        yield io.TextIOWrapper(io.BufferedReader(hashing), **_TEXT), hashing


def read_csv(
    path: Path,
    source: str | None = None,
    part: Part = WHOLE,
    missing: Collection[str] = MISSING_VALUES,
    progress: Callable[[int], None] | None = None,
) -> Table:
    """Read a CSV file with a header row (`-`: standard input); `source` is the name used in
    messages (default: path). With `part` of several processes, only this process's lines
    (`_read_part`). A cell holding one of `missing` (or nothing) is a missing cell. `progress(rows)`
    hears how many rows are read so far, every few thousand."""
    path = Path(path)
    name = source if source is not None else str(path)
    if not part.alone:
        return _read_part(path, name, part, missing)
    with _open_csv(path, name) as (f, hashing):
        got = _records(_checked_lines(f, name), name, missing=missing, progress=progress)
    header = whole(name, got.header, got.count)
    return Table(name, header, origin=Origin(rows=got.count, sha256=hashing.sha256.hexdigest()), data=got.data)


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


def _read_part(path: Path, name: str, part: Part, missing: Collection[str]) -> Table:
    """This process's part of a CSV file: the header and the lines that start in its share of
    the bytes after the header (equal shares, moved to line starts, so that every line is read
    by exactly one process). Line numbers, the blank-line rule and the empty-file checks are
    those of reading the whole file. Every process first hashes the whole file (streaming), and the
    processes check it is the same file (table.same_file); the record names it by that SHA-256,
    as one process reading it would."""
    if str(path) == "-":  # every process's mistake: rank 0 alone reports it
        part.fail(
            DataError(
                "under torchrun each process reads its part of the data from a file, so standard input (`-`) "
                "cannot be shared; save it to a CSV file and pass that"
            )
        )

    sha256 = same_file(path, name, part)  # before any exchange about its rows

    def lines() -> tuple[list[str] | None, list[bytes], int]:
        with regular_file(path, name) as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(4 * MAX_LINE + 2)
            end = _LINE_END.search(head)
            body = size if end is None else end.end()
            header_text = head[:body].decode("utf-8-sig", "surrogateescape")
            _check_line(header_text[: MAX_LINE + 1], name, 1)  # as one process reads it (_checked_lines)
            after = _lines_after(path, name, body, 2)  # where a quote the header leaves open goes on
            first = (
                _records(itertools.chain([header_text], after), name, last=1) if size else _Records(None, [], 0, None)
            )
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
            return _Records(None, [], 0, None)
        return _records(texts(), name, header, first_line, blank, last=first_line + len(raw) - 1, missing=missing)

    got = part.agree(parse)
    raw.clear()  # the bytes, now parsed
    counts: list[tuple[int, int | None]] = part.gather((got.count, got.blank))
    for r, (_, empty) in enumerate(counts):
        if empty is not None and any(n for n, _ in counts[r + 1 :]):
            part.fail(DataError(f"{name}, line {empty} is empty but more rows follow; delete the empty line"))
    total = sum(n for n, _ in counts)
    header = part.agree(lambda: whole(name, header, total))
    start = sum(n for n, _ in counts[: part.rank])
    origin = Origin(rows=total, sha256=sha256, parts=tuple(n for n, _ in counts))
    return Table(name, header, origin=origin, index=range(start, start + got.count), data=got.data)


def _lines_after(path: Path, name: str, at: int, number: int) -> Iterator[str]:
    """The lines of the file from byte `at` on, the first being line `number`, read only as they
    are asked for: a part reads them where a quoted cell is still open at its end, so that the
    cell's lines are those one process reading the whole file names."""
    with regular_file(path, name) as f:
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


# --- writing ----------------------------------------------------------------------


# A text cell beginning with one of these is a formula to a spreadsheet (CSV injection): it
# is written with a leading apostrophe, as OWASP recommends, which spreadsheets show as text.
# Number cells are floats and never escaped, so -3.5 stays a number.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """A text cell as written to a CSV file: `'` before a leading = + - @ tab or carriage return."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _whole(v: float) -> bool:
    """Whether `v` is a whole number a CSV writes without a point (below 2**53: exact as an int)."""
    return v.is_integer() and abs(v) < 2**53


def to_csv(table: Table) -> str:
    """A table as CSV text; numbers as the shortest text that reads back to the same float, and in
    a column whose numbers are all whole, without a point (a table keeps numbers as floats: the
    user wrote 3800, not 3800.0); text cells and column names made spreadsheet-safe
    (see `spreadsheet_safe`)."""
    rows = table.rows
    whole = [all(_whole(c) for c in col if isinstance(c, float)) for col in zip(*rows)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([spreadsheet_safe(c) for c in table.columns])
    for row in rows:
        w.writerow(
            [
                (str(int(c)) if whole[j] else repr(c)) if isinstance(c, float) else spreadsheet_safe(c)
                for j, c in enumerate(row)
            ]
        )
    return buf.getvalue()
