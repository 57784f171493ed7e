"""Issue 26's reading half: missing values as users write them (NA, ?, empty, ...) in number and
text columns, the spec's `missing_values:` that changes the list, and a Parquet file trained on,
evaluated and predicted from as a CSV is."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from treegrad.cli import app
from treegrad.data.csvfile import cell_column
from treegrad.data.table import MISSING_VALUES, number

ROWS = [f"{i / 4},{'red' if i % 3 else 'blue'},{int(i % 4 < 2)}" for i in range(40)]


def run(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def table(tmp_path: Path) -> Path:
    rows = list(ROWS)
    rows[5] = "NA,red,1"  # line 7
    rows[8] = "2.0,?,0"  # line 10: a text cell marked missing is no '?' category
    (tmp_path / "t.csv").write_text("x,colour,y\n" + "\n".join(rows) + "\n")
    return tmp_path / "t.csv"


SPEC = """inputs: [x, colour]
target: y
data: t.csv
layers: [{linear: 1, activation: sigmoid}]
loss: bce
training: {epochs: 2, missing: drop, text_inputs: one_hot}
"""


def test_markers_are_missing_cells_dropped_in_number_and_text_columns(tmp_path: Path) -> None:
    table(tmp_path)
    (tmp_path / "s.yaml").write_text(SPEC)
    r = run("train", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "m.json"), "-q")
    assert r.exit_code == 0, r.output
    record = json.loads((tmp_path / "m.json").read_text())
    assert record["encodings"] == {"colour": {"blue": "colour_blue", "red": "colour_red"}}
    assert record["data"]["rows"] == 38  # lines 7 and 10 left out


def test_missing_values_in_the_spec_replaces_the_list(tmp_path: Path) -> None:
    table(tmp_path)
    (tmp_path / "s.yaml").write_text("missing_values: ['?']\n" + SPEC)
    r = run("train", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "m.json"), "-q")
    assert r.exit_code == 1
    assert "t.csv, line 7, column 'x': the input is 'NA', not a number" in " ".join(r.output.split())
    (tmp_path / "s.yaml").write_text("missing_values: [NA]\n" + SPEC)
    r = run("train", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "m.json"), "-q")
    assert r.exit_code == 0, r.output
    record = json.loads((tmp_path / "m.json").read_text())
    assert set(record["encodings"]["colour"]) == {"?", "blue", "red"}  # '?' is a value now, not missing
    assert record["data"]["rows"] == 39  # line 7 alone left out


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow is not installed (.[parquet])")
def test_a_parquet_file_trains_evaluates_and_predicts_as_a_csv(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = [i / 4 for i in range(40)]
    colour = ["red" if i % 3 else "blue" for i in range(40)]
    colour[8] = "NA"
    x[5] = float("nan")  # a NaN in a number column is a missing cell
    y = [int(i % 4 < 2) for i in range(40)]
    pq.write_table(pa.table({"x": x, "colour": colour, "y": y}), tmp_path / "t.parquet")
    (tmp_path / "s.yaml").write_text(SPEC.replace("t.csv", "t.parquet"))
    r = run("train", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "m.json"), "-q")
    assert r.exit_code == 0, r.output
    record = json.loads((tmp_path / "m.json").read_text())
    assert record["data"]["rows"] == 38
    assert (
        record["provenance"]["data"]["sha256"]
        == __import__("hashlib").sha256((tmp_path / "t.parquet").read_bytes()).hexdigest()
    )
    r = run("eval", str(tmp_path / "m.json"), "--data", str(tmp_path / "t.parquet"))
    assert r.exit_code == 0, r.output
    r = run("predict", str(tmp_path / "m.json"), "--data", str(tmp_path / "t.parquet"), "--json")
    assert r.exit_code == 0, r.output  # the model's policy (drop) leaves out the rows with a missing input
    assert "left out 2 of 40 rows of " in r.stderr and len(json.loads(r.stdout)) == 38


@given(st.lists(st.text(alphabet="0123456789eE.+- ", max_size=7), min_size=1, max_size=12))
@settings(max_examples=300, deadline=None)
def test_a_column_read_whole_is_the_column_read_cell_by_cell(cells: list[str]) -> None:
    """The whole-column fast path (NumPy parses a column of plain numbers at once) reads every
    column exactly as the cell-by-cell reading of treegrad's number grammar does."""
    expected: list[object] = []
    for cell in cells:
        text = cell.strip()
        value = number(text)
        expected.append(value if value is not None and math.isfinite(value) else ("" if text in ("", "-") else text))
    assert cell_column(cells, MISSING_VALUES).cells() == expected
