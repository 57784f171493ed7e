"""Parquet files (`.parquet`), read with pyarrow (the optional extra `parquet`).

A Parquet file is a table with typed columns: a number column becomes numbers, a null or NaN in
it a missing cell; a text column is read as a CSV's cells are (spaces around a cell stripped, a
number in treegrad's grammar as a number, a marker of a missing value or an empty text as a
missing cell); other types (dates, times) as their text. Rows are named by number (`row 1` is the
first), as a Parquet file has no lines to point at. The model file records the SHA-256 of the
file's bytes, which are hashed as they are read.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from ..errors import DataError, describe_char, unprintable
from .csvfile import cell_column
from .parts import WHOLE, Part
from .table import MISSING_VALUES, ROWS, Column, Origin, Table, regular_file, share, whole

INSTALL = "pip install 'treegrad[parquet]' (pyarrow)"


def _pyarrow(name: str) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{name} is a Parquet file, and reading one needs pyarrow: {INSTALL}") from None
    return pq


def read_parquet(
    path: Path,
    source: str | None = None,
    part: Part = WHOLE,
    missing: Collection[str] = MISSING_VALUES,
    progress: Callable[[int], None] | None = None,
) -> Table:
    """Read a Parquet file whole (`source`: its name in messages); with `part` of several
    processes, this process's equal share of its rows (`table.share`). A null, a NaN, an empty
    text or one of `missing` is a missing cell. `progress(rows)` hears of the rows once read."""
    name = source if source is not None else str(path)
    pq = part.agree(lambda: _pyarrow(name))
    with regular_file(path, name, "Parquet", ".parquet") as f:
        data = f.read()  # unbuffered: read(-1) reads to the end
    digest = hashlib.sha256(data).hexdigest()
    try:
        # One thread: with its pool, pyarrow ended some processes with SIGABRT at exit ("terminate
        # called without an active exception", exit 134) after treegrad had said its message.
        arrow = pq.read_table(io.BytesIO(data), use_threads=False)
    except Exception as e:  # pyarrow's errors (ArrowInvalid, OSError, ...) share no narrower base
        raise DataError(
            f"{name} is not a Parquet file pyarrow can read ({e}); check that it is the file you meant"
        ) from None
    del data
    header = whole(name, _header(arrow.column_names, name), arrow.num_rows, "a Parquet file needs columns and rows")
    columns = [_column(arrow.column(j), frozenset(missing)) for j in range(arrow.num_columns)]
    table = Table(name, header, origin=Origin(rows=arrow.num_rows, sha256=digest), numbering=ROWS, data=columns)
    if progress is not None:
        progress(arrow.num_rows)
    return share(table, part)


def _header(names: list[str], name: str) -> list[str]:
    """The column names, checked as a CSV header's are: each named, printable, once."""
    seen: dict[str, int] = {}
    for k, col in enumerate(names, start=1):
        if not col.strip():
            raise DataError(f"{name}: column {k} has no name; give every column a name")
        bad = unprintable(col)
        if bad is not None:
            raise DataError(f"{name}: the name of column {k} holds {describe_char(bad)}; column names are printed")
        if col in seen:
            raise DataError(f"{name}: the column name '{col}' appears twice (columns {seen[col]} and {k}); rename one")
        seen[col] = k
    return [c.strip() for c in names]


def _column(chunked: Any, missing: frozenset[str]) -> Column:
    """One Parquet column as a table's: numbers (null and NaN missing), else cells as text."""
    import numpy as np
    import pyarrow as pa

    kind = chunked.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        numbers = chunked.to_numpy(zero_copy_only=False).astype(np.float64)  # a null is NaN
        if np.isfinite(numbers).all():
            return Column(numbers)
        texts = np.full(len(numbers), None, dtype=object)
        texts[np.isnan(numbers)] = ""  # null or NaN: missing
        for i in np.flatnonzero(np.isinf(numbers)).tolist():  # no data, reported where it is, as a CSV's 1e999
            texts[i] = repr(float(numbers[i]))
        numbers[~np.isfinite(numbers)] = np.nan
        return Column(numbers, texts)
    cells = ["" if v is None else str(v) for v in chunked.to_pylist()]
    return cell_column(cells, missing)
