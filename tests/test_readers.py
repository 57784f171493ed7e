"""Every data reader in the registry (readers.READERS), taken through the same checks: a source
with its suffix goes to it, it reads the table as written with its origin (rows, the file's
SHA-256), a missing file, a file with no rows and a bad cell get the shared messages with the
place of the cell, and read in parts under torchrun its rows are those of the whole file.

A new reader adds its writer to WRITERS below; the first test fails until it does.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from test_parts import in_parts, results
from treegrad.data.parts import WHOLE
from treegrad.data.readers import BY_SUFFIX, READERS, Reader, load_data, reader_for
from treegrad.data.table import Cell
from treegrad.data.targets import select
from treegrad.errors import DataError
from treegrad.files import sha256_of


def write_csv(path: Path, columns: list[str], rows: list[list[Cell]]) -> None:
    lines = [",".join(columns), *(",".join(repr(c) if isinstance(c, float) else c for c in row) for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_parquet(path: Path, columns: list[str], rows: list[list[Cell]]) -> None:
    """A Parquet file of these rows: a column of numbers as float64, one with any text as text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cells = [[row[j] for row in rows] for j in range(len(columns))]
    arrays = [
        pa.array([str(c) for c in col], pa.string())
        if any(isinstance(c, str) for c in col)
        else pa.array(col, pa.float64())
        for col in cells
    ]
    pq.write_table(pa.table(arrays, names=columns), path)


# How the tests write a table in each kind of file, by the reader's kind.
WRITERS: dict[str, Callable[[Path, list[str], list[list[Cell]]], None]] = {"CSV": write_csv, "Parquet": write_parquet}
NEEDS = {"Parquet": "pyarrow"}  # the package a kind's reader needs, which the tests of that kind skip without

COLUMNS = ["x", "y", "label"]
ROWS: list[list[Cell]] = [[float(i), -0.5 * i, "ab"[i % 2]] for i in range(7)]


def test_every_reader_has_a_writer_here_and_its_own_suffixes() -> None:
    assert {r.kind for r in READERS} <= set(WRITERS), "add the new reader's writer to WRITERS"
    suffixes = [s for r in READERS for s in r.suffixes]
    assert len(suffixes) == len(set(suffixes)) == len(BY_SUFFIX), "a suffix names one kind"
    assert all(s.startswith(".") and s == s.lower() for s in suffixes)


def test_a_file_no_reader_claims_is_read_as_csv() -> None:
    assert reader_for(Path("data.txt")).kind == reader_for(Path("data")).kind == "CSV"


@pytest.fixture(params=[(r, s) for r in READERS for s in r.suffixes], ids=lambda rs: rs[1])
def kind(request: pytest.FixtureRequest) -> tuple[Reader, str]:
    """Each reader with each of its suffixes (skipping, saying why, where its package is missing)."""
    reader, _ = request.param
    package = NEEDS.get(reader.kind)
    if package is not None and importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed, which the {reader.kind} reader needs (pip install -e '.[parquet]')")
    return request.param  # type: ignore[no-any-return]


def test_reads_the_table_with_its_origin(kind: tuple[Reader, str], tmp_path: Path) -> None:
    reader, suffix = kind
    path = tmp_path / f"table{suffix.upper()}"  # the suffix in any case
    WRITERS[reader.kind](path, COLUMNS, ROWS)
    assert reader_for(path) is reader
    table = load_data(path.name, base_dir=tmp_path)
    assert (table.source, table.columns, table.rows) == (path.name, COLUMNS, ROWS)
    assert table.origin is not None and (table.origin.rows, table.origin.sha256) == (len(ROWS), sha256_of(path))
    assert table.numbering == reader.numbering
    assert table.place(3) == f"{path.name}, {reader.numbering.name(3)}"


def test_a_missing_file(kind: tuple[Reader, str], tmp_path: Path) -> None:
    name = f"nothere{kind[1]}"
    with pytest.raises(DataError, match=rf"^no such file: {name} \(looked for .*{name}\); check the path$"):
        load_data(name, base_dir=tmp_path)


def test_a_table_without_rows(kind: tuple[Reader, str], tmp_path: Path) -> None:
    reader, suffix = kind
    WRITERS[reader.kind](tmp_path / f"empty{suffix}", COLUMNS, [])
    with pytest.raises(DataError) as e:
        load_data(f"empty{suffix}", base_dir=tmp_path)
    assert str(e.value) == f"empty{suffix} has a header (x, y, label) but no rows of data"


def test_a_bad_cell_is_named_by_its_place_and_column(kind: tuple[Reader, str], tmp_path: Path) -> None:
    reader, suffix = kind
    rows = [list(r) for r in ROWS]
    rows[4][1] = "abc"
    WRITERS[reader.kind](tmp_path / f"bad{suffix}", COLUMNS, rows)
    table = load_data(f"bad{suffix}", base_dir=tmp_path)
    with pytest.raises(DataError) as e:
        select(table, ["x", "y"], "label")
    place = reader.numbering.name(4)
    assert str(e.value) == f"bad{suffix}, {place}, column 'y': the input is 'abc', not a number; fix or remove that row"


def test_a_model_file_names_data_of_every_kind(kind: tuple[Reader, str], tmp_path: Path) -> None:
    reader, suffix = kind
    WRITERS[reader.kind](tmp_path / f"t{suffix}", COLUMNS, ROWS)
    assert load_data(f"t{suffix}", base_dir=tmp_path, named_in="m.model.json").rows == ROWS
    with pytest.raises(DataError, match="which is not a .csv"):
        load_data("t.data", base_dir=tmp_path, named_in="m.model.json")


@pytest.mark.parametrize("world", [2, 3])
def test_read_in_parts_the_rows_are_the_whole_files(kind: tuple[Reader, str], tmp_path: Path, world: int) -> None:
    reader, suffix = kind
    path = tmp_path / f"t{suffix}"
    WRITERS[reader.kind](path, COLUMNS, ROWS)
    whole = reader.read(path, path.name, WHOLE)
    tables = results(in_parts(world, lambda part: reader.read(path, path.name, part)))
    assert [row for t in tables for row in t.rows] == whole.rows
    assert [t.place(i) for t in tables for i in range(len(t.rows))] == [whole.place(i) for i in range(len(ROWS))]
    for t in tables:
        assert t.origin is not None and whole.origin is not None
        assert (t.origin.rows, t.origin.sha256) == (whole.origin.rows, whole.origin.sha256)
        assert t.origin.parts == tuple(len(p.rows) for p in tables)


def test_missing_values_are_the_missing_cell_in_number_and_text_columns(
    kind: tuple[Reader, str], tmp_path: Path
) -> None:
    """NA, N/A, NaN, nan, null, NULL, None, #N/A, -, ? and empty read as missing by default, in
    number and text columns alike (a text column gets no 'NA' value); `missing` replaces the list."""
    reader, suffix = kind
    markers = ["NA", "N/A", "NaN", "nan", "null", "NULL", "None", "#N/A", "-", "?", ""]
    rows: list[list[Cell]] = [[m, m, "c"] for m in markers] + [[1.5, 2.0, "ab"], [3.0, 4.0, "a"]]
    path = tmp_path / f"m{suffix}"
    WRITERS[reader.kind](path, ["x", "y", "label"], rows)
    table = load_data(path.name, base_dir=tmp_path)
    n = len(markers)
    assert [r[:2] for r in table.rows] == [["", ""]] * n + [[1.5, 2.0], [3.0, 4.0]]
    assert [r[2] for r in table.rows] == ["c"] * n + ["ab", "a"]
    assert list(table.column(0).missing()) == [True] * n + [False, False]
    text_column = [["x", "NA"], ["y", "?"], ["z", "ok"]]
    WRITERS[reader.kind](tmp_path / f"t{suffix}", ["a", "b"], text_column)  # type: ignore[arg-type]
    assert [r[1] for r in load_data(f"t{suffix}", base_dir=tmp_path).rows] == ["", "", "ok"]
    own = load_data(path.name, base_dir=tmp_path, missing=["?"])
    assert own.rows[0][:2] == ["NA", "NA"] and own.rows[9][:2] == ["", ""] and own.rows[10][:2] == ["", ""]


def test_pyarrow_reads_a_parquet_file_in_one_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With its thread pool, pyarrow ended about one process in four with SIGABRT at exit (exit 134,
    'terminate called without an active exception') after treegrad had said its message, even for
    an empty file: the file is read in the calling thread."""
    pq = pytest.importorskip("pyarrow.parquet", reason="the Parquet reader needs pyarrow (pip install -e '.[parquet]')")
    from treegrad.data.parquetfile import read_parquet

    write_parquet(tmp_path / "t.parquet", ["x", "y"], [[1.0, 2.0], [3.0, 4.0]])
    asked: list[dict[str, Any]] = []
    real = pq.read_table

    def read_table(source: Any, **kwargs: Any) -> Any:
        asked.append(kwargs)
        return real(source, **kwargs)

    monkeypatch.setattr(pq, "read_table", read_table)
    table = read_parquet(tmp_path / "t.parquet")
    assert table.size == 2 and asked == [{"use_threads": False}]
