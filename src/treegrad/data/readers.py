"""What a data source names, one rule for every command: a built-in dataset ("NAME", "NAME:N"),
`-` (a CSV table on standard input), or a file, read by the reader of its kind.

READERS has one entry per kind of file: its suffixes, how messages name its rows, and its
function. A file whose suffix no reader claims is read as CSV (data.txt, a file without a
suffix). Adding a kind (Parquet was the second) is its module and one entry here;
tests/test_readers.py takes every entry through the same checks.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import DataError, escaped
from ..errors import clip as _clip
from .csvfile import read_csv
from .generated import bare_word, generate, generated_name, unknown
from .parquetfile import read_parquet
from .parts import WHOLE, Part
from .table import LINES, MISSING_VALUES, ROWS, Numbering, Table


class ReadFn(Protocol):
    """A reader's function: the table of the file at `path`, named `source` in messages."""

    def __call__(
        self,
        path: Path,
        source: str | None = ...,
        part: Part = ...,
        missing: Collection[str] = ...,
        progress: Callable[[int], None] | None = ...,
    ) -> Table: ...


@dataclass(frozen=True)
class Reader:
    """A kind of data file: the suffixes that name it, how messages name its rows, and its reader.

    `read(path, name, part, missing)` gives the table of the file at `path` (`name`: the path as
    the user gave it, for messages): with `part` of several processes, this process's part of the
    rows (`table.share` cuts a table read whole), placed among all of them. A cell that is empty or
    holds one of the texts `missing` (a spec's `missing_values:`, by default table.MISSING_VALUES)
    is the missing cell, the text "", in number and text columns alike. `progress(rows)`, if given,
    hears how many rows it has read so far, as often as it can say (the command shows it). Its rows are named by
    `numbering`; its origin has the rows of the whole file and the SHA-256 of the file's bytes
    (`files.sha256_of`), which a model file records. A missing file, a file with a header and no
    rows, and a bad cell get the same messages in every kind (`table.regular_file`, `table.whole`,
    `targets.select`).
    """

    kind: str  # as messages name it: "CSV"
    suffixes: tuple[str, ...]  # lower case, with the dot
    read: ReadFn
    numbering: Numbering


READERS: tuple[Reader, ...] = (
    Reader("CSV", (".csv",), read_csv, LINES),
    Reader("Parquet", (".parquet",), read_parquet, ROWS),
)

BY_SUFFIX: dict[str, Reader] = {suffix: r for r in READERS for suffix in r.suffixes}

# Text tables by their usual names, which the CSV reader is asked to read (and says why not).
_TEXT_TABLES = (".tsv", ".txt")


def _told(progress: Callable[[str, int], None] | None, source: str) -> Callable[[int], None] | None:
    """A reader's `progress(rows)` that tells `progress` the source's name too."""
    return None if progress is None else lambda rows: progress(source, rows)


def reader_for(path: Path) -> Reader:
    """The reader of the file at `path`, by its suffix; CSV for a suffix no reader claims."""
    return BY_SUFFIX.get(path.suffix.lower(), READERS[0])


def is_data_file_name(path: Path) -> bool:
    """Whether the name of `path` says it holds a data table (a reader's suffix, .tsv, .txt)."""
    suffix = path.suffix.lower()
    return suffix in BY_SUFFIX or suffix in _TEXT_TABLES


def load_data(
    source: str,
    base_dir: Path | None = None,
    seed: int = 0,
    *,
    named_in: str | None = None,
    part: Part = WHOLE,
    missing: Collection[str] = MISSING_VALUES,
    progress: Callable[[str, int], None] | None = None,
) -> Table:
    """A generated dataset ("NAME" or "NAME:N", seeded), the data file at `source`, or `-` (stdin).
    With `part` of several processes, this process's part of its rows (a generated dataset is
    made whole, MAX_GENERATED rows at most, and cut in equal parts).

    A relative path is taken from `base_dir` (default: the current directory). `named_in`
    is the model file that names `source` when the user did not: such a source is read only
    if its suffix is a reader's, and no line of it is ever quoted in a message (an untrusted
    model file could name /etc/passwd).
    """
    source = source.strip()
    # A source that names nothing is every process's mistake: rank 0 alone reports it (parts.py).
    if not source:
        part.fail(DataError("the data source is empty; give a CSV file, `-` for standard input, or a built-in dataset"))
    if source == "-" and named_in is None:
        return read_csv(Path("-"), "standard input", part, missing, _told(progress, "standard input"))
    if generated_name(source) is not None:
        part.same(source, lambda first, other, rank: _generated_differ(first, other, rank))
        return generate(source, seed, part)
    path = Path(source)
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    if bare_word(source) is not None and not path.exists():
        # A bare word that is not a file either: most likely a misspelt built-in name.
        part.fail(unknown(source, path.parent))
    reader = reader_for(path)
    if named_in is None:
        return reader.read(path, source, part, missing, _told(progress, source))
    if path.suffix.lower() not in BY_SUFFIX:
        raise DataError(
            f"{named_in} says it was trained on '{_clip(escaped(source))}', which is not a "
            f"{' or '.join(BY_SUFFIX)} file, so treegrad does not read it; pass the data with --data FILE.csv"
        )
    try:
        return reader.read(path, source, WHOLE, missing)
    except DataError:
        raise DataError(
            f"{source}, the training data named in {named_in}, cannot be read as a {reader.kind} table; "
            "pass the data with --data FILE.csv"
        ) from None


def _generated_differ(first: str, other: str, rank: int) -> str:
    return (
        f"under torchrun every process must read the same data, but process 0 was given {first} and process "
        f"{rank} {other}: give every process the same --data"
    )
