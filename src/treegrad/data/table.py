"""A table: column names and rows of cells, what it was read from, and how messages name its rows;
and what every reader of a file shares (the number grammar, opening a file, the empty-table checks).

A table keeps numeric cells as floats and everything else as text, so a CSV of a million
rows costs floats, not strings. Nothing is checked against a model here until `targets.select`
and `targets.encode_targets` are asked for columns; they report bad cells by file, line and column.
In a CSV table, row i (0-based) is line i + 2 of the file: the header is line 1, and
`read_csv` refuses the blank or multi-line records that would break that correspondence.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import DataError, clip
from ..files import note_read, sha256_of
from .parts import Part

Cell = float | str

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


def is_number(text: str) -> bool:
    """Whether `text` spells a number in treegrad's grammar (`number`), finite or not."""
    return _NUMBER.fullmatch(text) is not None


@dataclass(frozen=True)
class Origin:
    """What a table was read from, to record with a model: a file's rows and the SHA-256 of
    its bytes as read, or a generated dataset's name, rows and seed."""

    rows: int
    sha256: str | None = None  # hex, of every byte read (a file or standard input)
    generator: str | None = None
    seed: int | None = None
    parts: tuple[int, ...] | None = None  # data-parallel: the rows each process read (parts.py)


@dataclass(frozen=True)
class Numbering:
    """How messages name a table's rows: by the line of the file (`line 7`) or by number (`row 6`)."""

    word: str  # "line" | "row"
    first: int  # what row 0 is called

    def name(self, i: int) -> str:
        """The name of row i (0-based): 'line 2', 'row 1'."""
        return f"{self.word} {i + self.first}"


LINES = Numbering("line", 2)  # a CSV file: line 1 is the header
ROWS = Numbering("row", 1)  # a generated dataset, or a file without lines to point at


# What a cell holding one of these texts means in a table: no value. An empty cell always does;
# a spec's `missing_values:` replaces the others (pandas, R and spreadsheets read these as missing).
MISSING_VALUES: tuple[str, ...] = ("NA", "N/A", "NaN", "nan", "null", "NULL", "None", "#N/A", "-", "?")


class Column:
    """One column of a table, whole: its cells as numbers (a float64 array, NaN at a text cell)
    and its text cells (an object array holding each text cell's str and None at a number;
    None itself when the column has no text). A missing cell is the text "" (readers map every
    marker of a missing value to it), so `missing` is where that text is."""

    __slots__ = ("numbers", "texts")

    def __init__(self, numbers: Any, texts: Any = None) -> None:
        self.numbers = numbers
        self.texts = texts

    @staticmethod
    def of_cells(cells: Sequence[Cell]) -> Column:
        """The column of these cells (floats and str)."""
        import numpy as np

        n = len(cells)
        numbers = np.full(n, np.nan)
        texts = None
        for i, c in enumerate(cells):
            if isinstance(c, str):
                if texts is None:
                    texts = np.full(n, None, dtype=object)
                texts[i] = c
            else:
                numbers[i] = c
        return Column(numbers, texts)

    def __len__(self) -> int:
        return len(self.numbers)

    def cell(self, i: int) -> Cell:
        """Cell i: its text, else its number."""
        if self.texts is not None and (text := self.texts[i]) is not None:
            return str(text)
        return float(self.numbers[i])

    def cells(self) -> list[Cell]:
        """Every cell, a float or a str, in row order."""
        out: list[Cell] = self.numbers.tolist()
        if self.texts is not None:
            for i in self.text_rows().tolist():
                out[i] = self.texts[i]
        return out

    def take(self, rows: Any) -> Column:
        """The column of `rows` (indices, a boolean mask or a slice)."""
        texts = None if self.texts is None else self.texts[rows]
        if texts is not None and not self._any_text(texts):
            texts = None
        return Column(self.numbers[rows], texts)

    @staticmethod
    def _any_text(texts: Any) -> bool:
        return bool((texts != None).any())  # noqa: E711 - elementwise over an object array

    def text_mask(self) -> Any:
        """A boolean array: True at each text cell (a missing one too)."""
        import numpy as np

        return np.zeros(len(self), bool) if self.texts is None else self.texts != None  # noqa: E711

    def text_rows(self) -> Any:
        """The indices of the text cells (a missing one too)."""
        import numpy as np

        return np.flatnonzero(self.text_mask())

    def missing(self) -> Any:
        """A boolean array: True at each missing cell (the text "")."""
        import numpy as np

        return np.zeros(len(self), bool) if self.texts is None else self.texts == ""

    def kinds(self) -> tuple[int, int]:
        """(number cells, filled text cells)."""
        texts = int(self.text_mask().sum())
        return len(self) - texts, texts - int(self.missing().sum())

    @staticmethod
    def joined(pieces: Sequence[Column]) -> Column:
        """The column of these pieces, one after another."""
        import numpy as np

        if len(pieces) == 1:
            return pieces[0]
        numbers = np.concatenate([p.numbers for p in pieces]) if pieces else np.empty(0)
        if all(p.texts is None for p in pieces):
            return Column(numbers)
        texts = np.concatenate([p.texts if p.texts is not None else np.full(len(p), None, object) for p in pieces])
        return Column(numbers, texts)


class Table:
    """A dataset: column names and rows; numeric cells as float, other cells as str.

    A reader gives it as columns (`Column`, whole arrays: `column(j)`); `rows` gives it as rows
    of cells, made once when first asked, for the code that goes row by row on small tables.
    """

    def __init__(
        self,
        source: str,
        columns: list[str],
        rows: list[list[Cell]] | None = None,
        origin: Origin | None = None,
        index: Sequence[int] | None = None,
        numbering: Numbering = LINES,
        *,
        data: list[Column] | None = None,
    ) -> None:
        assert (rows is None) != (data is None), "a table is given as rows or as columns"
        self.source = source  # "f2c", "f2c:500", or the file's path as given
        self.columns = columns
        self.origin = origin  # as read or generated; a table derived from it has none
        # Each row's index among the rows as read (row i is line i + 2 of a CSV), where it is not
        # simply its position: a part of the file (parts.py), or rows left after some were dropped.
        self.index = index
        self.numbering = numbering  # set by what made the table (its reader, or the generator)
        self._rows = rows
        self._data = data

    @property
    def rows(self) -> list[list[Cell]]:
        """The rows of cells (made from the columns on first use)."""
        if self._rows is None:
            assert self._data is not None
            self._rows = [list(r) for r in zip(*(c.cells() for c in self._data))] if self._data else []
        return self._rows

    @rows.setter
    def rows(self, rows: list[list[Cell]]) -> None:
        self._rows, self._data = rows, None

    @property
    def data(self) -> list[Column]:
        """The columns, whole (made from the rows on first use)."""
        if self._data is None:
            assert self._rows is not None
            rows = self._rows
            self._data = [Column.of_cells([r[j] for r in rows]) for j in range(len(self.columns))]
        return self._data

    def column(self, j: int) -> Column:
        """Column j, whole."""
        return self.data[j]

    @property
    def size(self) -> int:
        """The number of rows."""
        if self._rows is not None:
            return len(self._rows)
        return len(self._data[0]) if self._data else 0

    def place(self, i: int) -> str:
        """Where row i of this table is, in words a user can find in the file."""
        return row_place(self.source, i, self.index, self.numbering)

    def derived(
        self,
        columns: list[str],
        rows: list[list[Cell]] | None = None,
        index: Sequence[int] | None = None,
        *,
        data: list[Column] | None = None,
    ) -> Table:
        """A table of these rows or columns (or of some of the rows, each at its `index` among the
        rows as read) with other cells (recoded, a column taken out), placed as these."""
        return Table(
            self.source,
            columns,
            rows,
            index=self.index if index is None else index,
            numbering=self.numbering,
            data=data,
        )

    def taken(self, rows: Any) -> Table:
        """The table of some of its rows (indices in order), each placed where it was read."""
        import numpy as np

        keep = np.asarray(rows, dtype=np.intp)
        index = [self.index[i] for i in keep.tolist()] if self.index is not None else keep.tolist()
        return self.derived(self.columns, index=index, data=[c.take(keep) for c in self.data])


def row_place(source: str, i: int, index: Sequence[int] | None = None, numbering: Numbering = LINES) -> str:
    """Where row i (0-based) of a table is, in words a user can find in the file; `index`: each
    row's index among the rows as read, where that is not its position (Table.index)."""
    return f"{source}, {numbering.name(i if index is None else index[i])}"


def share(table: Table, part: Part) -> Table:
    """This process's equal share of a table that every process has whole (a generated dataset,
    a file read whole), each row placed as in the whole; its origin records every part's rows."""
    if part.alone:
        return table
    n = table.size
    first, stop = n * part.rank // part.world, n * (part.rank + 1) // part.world
    if table._rows is not None:
        table.rows = table.rows[first:stop]
    else:
        table._data = [c.take(slice(first, stop)) for c in table.data]
    table.index = range(first, stop)
    counts = tuple(part.gather(stop - first))
    if table.origin is not None:
        table.origin = dataclasses.replace(table.origin, parts=counts)
    return table


# --- what every reader of a file shares ----------------------------------------------


def regular_file(path: Path, name: str, kind: str = "CSV", suffix: str = ".csv") -> IO[bytes]:
    """The file at `path` opened for reading bytes, unbuffered; `name` is the path as the user
    gave it, `kind` and `suffix` what the file should be ("CSV", ".csv"), for messages.

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
        raise DataError(f"{name} is a directory, not a {kind} file; give the path of a {suffix} file")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(
            f"{name} is not a regular file (a device, pipe or socket), so not a {kind} file; give the path "
            f"of a {suffix} file, or `-` to read the CSV from standard input"
        )
    try:
        f = open(path, "rb", buffering=0)
    except OSError as e:
        raise DataError(f"cannot open {name}: {e.strerror}") from e
    note_read(f.fileno())
    return f


def same_file(path: Path, name: str, part: Part) -> str | None:
    """The SHA-256 of the file at `path`, checked to be the same file in every process of a
    data-parallel run (each hashes its own copy, whole, before reading its part): processes given
    different files would train anyway on rows that do not belong together, or meet in exchanges
    that do not fit. A difference is a ProcessError naming it (first line, size or bytes) that rank
    0 says; a file this process cannot open is left to the reader to report (None)."""
    try:
        with regular_file(path, name) as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(_HEAD).split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
    except DataError:
        part.same(None, _files_differ(name))
        return None
    digest = sha256_of(path)
    part.same((head, size, digest), _files_differ(name))
    return digest


_HEAD = 4096  # the bytes read for a file's first line, which a difference of headers names


def _files_differ(name: str) -> Callable[[Any, Any, int], str]:
    def differ(first: Any, other: Any, rank: int) -> str:
        (head0, size0, sha0), (head, size, sha) = first, other
        if head0 != head:
            what = f"its first line is '{clip(head0)}' for process 0, '{clip(head)}' for process {rank}"
        elif size0 != size:
            what = f"it has {size0:,} bytes for process 0, {size:,} for process {rank}"
        else:
            what = f"its bytes differ (SHA-256 {sha0[:12]}... for process 0, {sha[:12]}... for process {rank})"
        return (
            f"under torchrun every process must read the same data, but {name} is not the same file in "
            f"every process: {what}. Give every process the same file (copy it to each machine), or "
            "train in one process"
        )

    return differ


def whole(
    name: str,
    header: list[str] | None,
    rows: int,
    empty: str = "a CSV file needs a header line with column names and rows of data",
) -> list[str]:
    """The header of a whole file of `rows` rows, which must have both; `empty` says what a file needs."""
    if header is None:
        raise DataError(f"{name} is empty; {empty}")
    if not rows:
        raise DataError(f"{name} has a header ({', '.join(header)}) but no rows of data")
    return header
