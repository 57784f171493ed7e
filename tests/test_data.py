"""The data layer: CSV reading and its error messages, generated datasets, target encoding,
splitting and standardization, and the shipped datasets."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from treegrad.data.csvfile import read_csv
from treegrad.data.generated import GENERATORS
from treegrad.data.readers import load_data
from treegrad.data.split import split, standardize_stats
from treegrad.data.table import MISSING_VALUES, Table
from treegrad.data.targets import encode_targets, input_rows, label_text, select
from treegrad.errors import DataError
from treegrad.seeds import stream

DATASETS = Path(__file__).resolve().parent.parent / "datasets"
PLAIN = "x, y ,label\n1,2,a\n3.5,-4,b\n"


def write(tmp_path: Path, content: str | bytes, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_bytes(content.encode("utf-8"))
    else:
        path.write_bytes(content)
    return path


def csv_error(tmp_path: Path, content: str | bytes) -> str:
    path = write(tmp_path, content)
    with pytest.raises(DataError) as e:
        read_csv(path)
    message = str(e.value)
    assert "bad.csv" in message
    return message


# --- generated datasets -------------------------------------------------------------


@pytest.mark.parametrize("name", list(GENERATORS))
def test_generator_size_columns_and_determinism(name: str) -> None:
    gen = GENERATORS[name]
    table = load_data(name)
    assert gen.default_n == 1000 and len(table.rows) == 1000
    assert table.columns == list(gen.columns) and gen.target == gen.columns[-1]
    assert table.source == name
    assert all(len(row) == len(gen.columns) for row in table.rows)
    assert all(isinstance(v, float) and math.isfinite(v) for row in table.rows for v in row[:-1])
    assert load_data(name).rows == table.rows
    assert load_data(name, seed=1).rows != table.rows
    assert gen.make(1000, 0).rows == table.rows
    small = load_data(f"{name}:37")
    assert small.source == f"{name}:37" and len(small.rows) == 37


@pytest.mark.parametrize("name", list(GENERATORS))
def test_generator_targets_fit_their_kind(name: str) -> None:
    gen = GENERATORS[name]
    table = load_data(name)
    X, raw, target = select(table, list(gen.columns[:-1]), None)
    assert target == gen.target and len(X) == 1000
    y, classes = encode_targets(raw, gen.kind, source=name)
    if gen.kind == "binary":
        assert classes == ["0", "1"]
        assert 300 < sum(y) < 700  # neither class is rare
    elif gen.kind == "classes":
        assert classes == ["a", "b", "c"]
        assert sorted(set(y)) == [0, 1, 2]
    else:
        assert classes is None


def test_f2c_is_the_exact_conversion_of_f_in_minus_one_to_one() -> None:
    for f, c in load_data("f2c").rows:
        assert isinstance(f, float) and isinstance(c, float)
        assert -1.0 <= f <= 1.0
        assert c == (f - 32) * 5 / 9
    first = random.Random(0).uniform(-1, 1)
    assert load_data("f2c").rows[0][0] == first


def test_generated_labels_follow_their_rule() -> None:
    for x, y, label in load_data("line").rows:
        assert label == (1.0 if y > x else 0.0)
    for x, y, label in load_data("xor").rows:
        assert label == (1.0 if x * y > 0 else 0.0)
    for x, y, label in load_data("circles").rows:
        r = math.hypot(x, y)
        assert abs(r - (0.5 if label == 1.0 else 1.0)) < 0.35
    for x, y in load_data("sine").rows:
        assert -3.0 <= x <= 3.0
        assert abs(y - math.sin(x)) < 0.3
    spiral = load_data("spiral")
    assert all(math.hypot(x, y) <= 1.0 for x, y, _ in spiral.rows)
    assert [row[2] for row in spiral.rows].count("a") == 334


@pytest.mark.parametrize("source", ["f2c:0", "f2c:-5", "f2c:x", "f2c:", "f2c:1.5", "f2c:10000001"])
def test_bad_sample_counts(source: str) -> None:
    with pytest.raises(DataError, match="sample count"):
        load_data(source)


def test_unknown_dataset_name_suggests_and_lists(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        load_data("moon:200", base_dir=tmp_path)
    message = str(e.value)
    assert "'moon:200'" in message and " — did you mean 'moons'?" in message
    assert all(name in message for name in GENERATORS)


def test_load_data_reads_relative_paths_from_base_dir(tmp_path: Path) -> None:
    write(tmp_path, PLAIN, "plain.csv")
    table = load_data("plain.csv", base_dir=tmp_path)
    assert table.source == "plain.csv" and table.columns == ["x", "y", "label"]
    with pytest.raises(DataError, match="no such file: other.csv"):
        load_data("other.csv", base_dir=tmp_path)


# --- reading CSV files ---------------------------------------------------------------


def test_plain_csv_cells_are_stripped_and_numbers_are_floats(tmp_path: Path) -> None:
    table = read_csv(write(tmp_path, PLAIN, "plain.csv"))
    assert table.columns == ["x", "y", "label"]
    assert table.rows == [[1.0, 2.0, "a"], [3.5, -4.0, "b"]]
    assert table.source == str(tmp_path / "plain.csv")
    assert read_csv(tmp_path / "plain.csv", source="given").source == "given"


@pytest.mark.parametrize(
    "content",
    [
        b"\xef\xbb\xbf" + PLAIN.encode(),  # UTF-8 with a byte order mark (Excel's "CSV UTF-8")
        PLAIN.replace("\n", "\r\n").encode(),  # Windows line endings
        b"\xef\xbb\xbf" + PLAIN.replace("\n", "\r\n").encode(),
        PLAIN.replace("\n", "\r").encode(),  # old Mac line endings
        (PLAIN + "\n\n  \n").encode(),  # blank trailing lines
        PLAIN.rstrip("\n").encode(),  # no final newline
    ],
)
def test_encodings_and_line_endings_load_like_the_plain_file(tmp_path: Path, content: bytes) -> None:
    plain = read_csv(write(tmp_path, PLAIN, "plain.csv"))
    other = read_csv(write(tmp_path, content, "other.csv"))
    assert (other.columns, other.rows) == (plain.columns, plain.rows)


def test_no_header_row(tmp_path: Path) -> None:
    message = csv_error(tmp_path, "1,2,3\n4,5,6\n")
    assert "no header row" in message and "line 1" in message


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    message = csv_error(tmp_path, content)
    assert "empty" in message


def test_header_only(tmp_path: Path) -> None:
    message = csv_error(tmp_path, "x,y\n")
    assert "no rows" in message


def test_ragged_row_names_line_and_counts(tmp_path: Path) -> None:
    message = csv_error(tmp_path, "x,y,label\n1,2,a\n3,4\n5,6,b\n")
    assert "line 3" in message and "2 cells" in message and "3 columns" in message


def test_duplicate_column_names(tmp_path: Path) -> None:
    message = csv_error(tmp_path, "x,y,x\n1,2,3\n")
    assert "'x' appears twice" in message and "columns 1 and 3" in message


def test_header_cell_without_a_name(tmp_path: Path) -> None:
    message = csv_error(tmp_path, "x,,label\n1,2,a\n")
    assert "column 2" in message and "no name" in message


def test_blank_line_before_more_rows(tmp_path: Path) -> None:
    message = csv_error(tmp_path, "x,y\n1,2\n\n3,4\n")
    assert "line 3 is empty" in message


def test_blank_first_line(tmp_path: Path) -> None:
    message = csv_error(tmp_path, "\nx,y\n1,2\n")
    assert "line 1 is empty" in message


def test_quoted_cell_over_several_lines(tmp_path: Path) -> None:
    message = csv_error(tmp_path, 'x,name\n1,"two\nlines"\n')
    assert "lines 2-3" in message


def test_semicolon_separated_file_gets_a_hint(tmp_path: Path) -> None:
    message = csv_error(tmp_path, "x;y\n1;2\n")
    assert "';'" in message and "comma" in message


def test_nul_bytes_mean_not_a_text_file(tmp_path: Path) -> None:
    message = csv_error(tmp_path, b"x,y\n1,2\n\x00\x01\x02\n")
    assert "not a text" in message and "line 3" in message


def test_utf16_file_is_refused(tmp_path: Path) -> None:
    message = csv_error(tmp_path, PLAIN.encode("utf-16"))
    assert "UTF-8" in message or "UTF-16" in message


def test_undecodable_bytes_name_the_line(tmp_path: Path) -> None:
    message = csv_error(tmp_path, b"x,city\n1,Paris\n2,Z\xfcrich\n")
    assert "not a UTF-8 text file" in message and "line 3" in message


def test_directory_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError, match="folder is a directory"):
        read_csv(tmp_path / "folder")
    with pytest.raises(DataError, match="no such file: .*missing.csv"):
        read_csv(tmp_path / "missing.csv")


# --- selecting columns -----------------------------------------------------------------


def table_of(content: str, tmp_path: Path, missing: tuple[str, ...] = MISSING_VALUES) -> Table:
    return read_csv(write(tmp_path, content), source="bad.csv", missing=missing)


@pytest.mark.parametrize(
    ("cell", "words", "missing"),
    [
        ("abc", "'abc', not a number", MISSING_VALUES),
        ("", "is empty", MISSING_VALUES),
        ("", "is empty", ()),
        # nan and NA mark a missing cell unless missing_values says otherwise (issue 26)
        ("nan", "is empty (or a marker of a missing value", MISSING_VALUES),
        ("NA", "is empty (or a marker of a missing value", MISSING_VALUES),
        ("nan", "'nan', not a finite number", ()),
        ("NA", "'NA', not a number", ("?",)),
        ("inf", "'inf'", MISSING_VALUES),
    ],
)
def test_bad_input_cell_names_file_line_and_column(
    tmp_path: Path, cell: str, words: str, missing: tuple[str, ...]
) -> None:
    table = table_of(f"a,b,t\n1,2,3\n4,5,6\n7,{cell},9\n", tmp_path, missing)
    with pytest.raises(DataError) as e:
        select(table, ["a", "b"], "t")
    message = str(e.value)
    assert "bad.csv, line 4, column 'b'" in message and words in message


def test_select_orders_inputs_and_finds_the_target(tmp_path: Path) -> None:
    table = table_of("a,b,t\n1,2,x\n3,4,y\n", tmp_path)
    X, raw, target = select(table, ["b", "a"], None)
    assert X == [[2.0, 1.0], [4.0, 3.0]] and raw == ["x", "y"] and target == "t"
    assert input_rows(table, ["a"]) == [[1.0], [3.0]]


def test_select_target_errors(tmp_path: Path) -> None:
    table = table_of("a,b,t\n1,2,3\n", tmp_path)
    with pytest.raises(DataError, match="several columns that are not inputs \\(b, t\\)"):
        select(table, ["a"], None)
    with pytest.raises(DataError, match="every column of bad.csv is an input"):
        select(table, ["a", "b", "t"], None)
    with pytest.raises(DataError, match="both an input and the target"):
        select(table, ["a", "b"], "a")


def test_select_missing_columns_suggest_and_list(tmp_path: Path) -> None:
    table = table_of("alpha,beta,target\n1,2,3\n", tmp_path)
    with pytest.raises(DataError) as e:
        select(table, ["alpah", "beta"], "target")
    message = str(e.value)
    assert "'alpah' is not in bad.csv — did you mean 'alpha'?" in message
    assert "alpha, beta, target" in message
    with pytest.raises(DataError, match="target column 'targte' is not in bad.csv — did you mean 'target'"):
        select(table, ["alpha", "beta"], "targte")
    # One did_you_mean for spec and data messages (data.py had its own, which ignored case).
    with pytest.raises(DataError, match="'ALPHA' is not in bad.csv — did you mean 'alpha'"):
        select(table, ["ALPHA"], "target")
    with pytest.raises(DataError, match=r"'zzz' is not in bad.csv\. Its columns are"):
        select(table, ["zzz"], "target")


def test_bad_cell_in_a_generated_table_names_the_row() -> None:
    with pytest.raises(DataError, match="spiral, row 1, column 'class'"):
        select(load_data("spiral"), ["x", "class"], "y")


# --- encoding targets ----------------------------------------------------------------


def test_label_text() -> None:
    assert [label_text(v) for v in [1.0, 2.5, -0.0, "cat", 10.0]] == ["1", "2.5", "0", "cat", "10"]


def test_regression_targets() -> None:
    assert encode_targets([1.0, 2.5, -3.0], "regression") == ([1.0, 2.5, -3.0], None)
    with pytest.raises(DataError, match="bad.csv, line 3: the target is 'x', not a number"):
        encode_targets([1.0, "x"], "regression", source="bad.csv")
    with pytest.raises(DataError, match="bad.csv, line 2: the target is 'nan', not a finite number"):
        encode_targets(["nan", 1.0], "regression", source="bad.csv")
    with pytest.raises(DataError, match="nothing to learn"):
        encode_targets([4.0, 4.0, 4.0], "regression", source="bad.csv")


def test_binary_targets() -> None:
    assert encode_targets([0.0, 1.0, 1.0], "binary") == ([0.0, 1.0, 1.0], ["0", "1"])
    assert encode_targets(["yes", "no", "yes"], "binary") == ([1.0, 0.0, 1.0], ["no", "yes"])
    # given classes keep their order, and a data set may hold only one of them
    assert encode_targets(["yes", "yes"], "binary", ["yes", "no"]) == ([0.0, 0.0], ["yes", "no"])
    with pytest.raises(DataError, match="single class \\(1\\)"):
        encode_targets([1.0, 1.0], "binary", source="bad.csv")
    with pytest.raises(DataError, match="3 classes \\(a, b, c\\).*softmax"):
        encode_targets(["a", "b", "c"], "binary", source="bad.csv")
    with pytest.raises(DataError, match="bad.csv, line 3: the label 'maybe' is not one of the known classes"):
        encode_targets(["yes", "maybe"], "binary", ["no", "yes"], source="bad.csv")


def test_class_targets() -> None:
    assert encode_targets(["b", "a", "c", "a"], "classes") == ([1, 0, 2, 0], ["a", "b", "c"])
    # numeric labels: canonical text, numeric order ("2" before "10")
    assert encode_targets([10.0, 2.0, 2.5], "classes") == ([2, 0, 1], ["2", "2.5", "10"])
    y, classes = encode_targets([1.0, "1", 2.0], "classes")
    assert y == [0, 0, 1] and classes == ["1", "2"] and all(type(v) is int for v in y)
    assert encode_targets(["b"], "classes", ["a", "b", "c"]) == ([1], ["a", "b", "c"])
    with pytest.raises(DataError, match="line 2: the label 'd' is not one of the known classes \\(a, b\\)"):
        encode_targets(["d"], "classes", ["a", "b"], source="bad.csv")
    with pytest.raises(DataError, match="fewer than two classes"):
        encode_targets(["a", "a"], "classes")
    with pytest.raises(DataError, match="line 3: the target is empty"):
        encode_targets(["a", ""], "classes", source="bad.csv")


# --- splitting and standardizing -----------------------------------------------------------


def test_split_holds_out_the_end_of_a_seeded_shuffle() -> None:
    X = [[float(i)] for i in range(10)]
    y = [i * 10 for i in range(10)]
    order = list(range(10))
    stream(3, "split").shuffle(order)
    X_train, y_train, X_val, y_val = split(X, y, 0.2, seed=3)
    assert X_val == [[float(i)] for i in order[8:]] and y_val == [i * 10 for i in order[8:]]
    assert X_train == [[float(i)] for i in order[:8]] and y_train == [i * 10 for i in order[:8]]
    assert split(X, y, 0.2, seed=3) == (X_train, y_train, X_val, y_val)
    assert split(X, y, 0.2, seed=4) != (X_train, y_train, X_val, y_val)


def test_split_sizes() -> None:
    X = [[float(i)] for i in range(5)]
    y = list(range(5))
    X_train, y_train, X_val, y_val = split(X, y, 0.0, seed=0)
    assert X_val == [] and y_val == [] and sorted(y_train) == y
    assert len(split(X, y, 0.01, seed=0)[2]) == 1  # a positive fraction holds out at least one row
    assert len(split(X, y, 0.99, seed=0)[0]) == 1  # and keeps at least one for training


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5, float("nan")])
def test_split_fraction_out_of_range(fraction: float) -> None:
    with pytest.raises(DataError, match="validation fraction"):
        split([[1.0], [2.0]], [1, 2], fraction, seed=0)


def test_standardize_stats_by_hand() -> None:
    stats = standardize_stats([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]], ["a", "b"])
    assert stats["a"] == pytest.approx((3.0, math.sqrt(8.0 / 3.0)))  # population std
    assert stats["b"] == (5.0, 1.0)  # a constant column is left as it is
    assert standardize_stats([[0.1], [0.1], [0.1]], ["c"]) == {"c": pytest.approx((0.1, 1.0))}
    with pytest.raises(DataError):
        standardize_stats([], ["a"])


# --- shipped datasets ----------------------------------------------------------------


def test_iris_has_150_rows_and_three_classes_of_50() -> None:
    table = read_csv(DATASETS / "iris.csv")
    assert table.columns == ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    X, raw, target = select(table, table.columns[:4], None)
    assert target == "species" and len(X) == 150
    y, classes = encode_targets(raw, "classes")
    assert classes == ["setosa", "versicolor", "virginica"]
    assert [y.count(k) for k in range(3)] == [50, 50, 50]
    assert X[0] == [5.1, 3.5, 1.4, 0.2]


def test_diabetes_is_a_numeric_regression_table() -> None:
    table = load_data("diabetes.csv", base_dir=DATASETS)
    assert table.columns[-1] == "progression" and len(table.columns) == 11
    X, raw, target = select(table, table.columns[:-1], None)
    assert len(X) == 442 and target == "progression"
    y, _ = encode_targets(raw, "regression")
    assert min(y) == 25.0 and max(y) == 346.0


def test_labels_and_column_names_with_control_characters_are_refused(tmp_path: Path) -> None:
    """They would be printed: an ESC in a label could recolour or hide the terminal's text."""
    with pytest.raises(DataError, match=r"line 3: the label .* holds the control character U\+001B"):
        encode_targets(["a", "\x1b[31mb"], "binary", source="t.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("x,\x1b[2Jy\n1,2\n")
    with pytest.raises(DataError, match=r"bad.csv, line 1: the name of column 2 holds the control character"):
        read_csv(bad)


def test_a_bad_target_after_dropped_rows_is_named_by_its_own_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """eval under `missing: drop` named a bad target by its place among the rows kept ('line 2'
    for the cell on line 3, after an empty cell dropped line 2); a generated set's rows stay rows."""
    from typer.testing import CliRunner

    from treegrad.cli.commands import app

    monkeypatch.chdir(tmp_path)
    write(
        tmp_path, "inputs: [x]\noutput: {linear: [x]}\ndata: sine:50\ntraining: {missing: drop, epochs: 1}\n", "s.yaml"
    )
    write(tmp_path, "x,y\n,1\n0.5,abc\n0.7,0.1\n", "gaps.csv")
    runner = CliRunner()
    assert runner.invoke(app, ["train", "s.yaml", "-o", "s.model.json", "-q"]).exit_code == 0
    r = runner.invoke(app, ["eval", "s.model.json", "--data", "gaps.csv"])
    assert r.exit_code == 1 and "gaps.csv, line 3: the target is 'abc', not a number" in r.output, r.output
    r = runner.invoke(app, ["eval", "s.model.json", "--data", "spiral:6", "--target", "class"])
    assert r.exit_code == 1 and "spiral:6, row 1: the target is 'a', not a number" in r.output, r.output
