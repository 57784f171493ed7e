"""Data-parallel reading (parts.py): each process reads its part of a CSV, and together the parts
give what one process reading the whole file gives — the rows, the line numbers in messages,
the classes, the split, the statistics and the metrics.

The processes here are threads exchanging through a barrier, so that this runs without torch
(test_torch.py runs the same under torchrun). A thread that raised where the others went on
would leave them waiting: the barrier's timeout turns that into a failure, so these tests
also check that every error is met by every process.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treegrad.data.csvfile import read_csv
from treegrad.data.parts import WHOLE, Part, echoed
from treegrad.data.readers import load_data
from treegrad.errors import DataError, ProcessError, TrainingError, TreegradError
from treegrad.run.prepare import prepare
from treegrad.run.tasks import evaluate_rows
from treegrad.run.train import run as run_prepared

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
IRIS = ROOT / "datasets" / "iris.csv"


def in_parts(world: int, work: Callable[[Part], Any], timeout: float = 20.0) -> list[tuple[Any, BaseException | None]]:
    """(result, error) of `work(part)` in each of `world` threads, one Part each, in rank order."""
    barrier = threading.Barrier(world, timeout=timeout)
    slots: list[Any] = [None] * world

    def exchange_of(rank: int) -> Callable[[Any], list[Any]]:
        def exchange(obj: Any) -> list[Any]:
            slots[rank] = obj
            barrier.wait()
            out = list(slots)
            barrier.wait()  # nobody writes the next round's slot before all have read this one
            return out

        return exchange

    out: list[tuple[Any, BaseException | None]] = [(None, None)] * world

    def run(rank: int) -> None:
        try:
            out[rank] = (work(Part(rank, world, exchange_of(rank))), None)
        except BaseException as e:  # noqa: BLE001 - reported to the test
            out[rank] = (None, e)

    threads = [threading.Thread(target=run, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    assert not any(t.is_alive() for t in threads), "a part was left waiting"
    for _, e in out:
        assert not isinstance(e, threading.BrokenBarrierError), "a part stopped where the others went on"
    return out


def results(outcomes: list[tuple[Any, BaseException | None]]) -> list[Any]:
    errors = [e for _, e in outcomes if e is not None]
    if errors:
        raise errors[0]
    return [r for r, _ in outcomes]


def write(tmp_path: Path, text: str | bytes, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def whole_error(path: Path) -> str:
    with pytest.raises(DataError) as e:
        read_csv(path)
    return str(e.value)


def parts_error(path: Path, world: int) -> str:
    outcomes = in_parts(world, lambda part: read_csv(path, part=part))
    errors = [e for _, e in outcomes]
    assert all(isinstance(e, DataError) for e in errors), errors
    assert len({str(e) for e in errors}) == 1, "every part raises the same error"
    assert [echoed(e) for e in errors if e is not None] == [False] + [True] * (world - 1), "rank 0 alone reports it"
    return str(errors[0])


# ----------------------------------------------------------------- reading a CSV in parts


def _check_parts_equal_whole(path: Path, world: int) -> list[int]:
    whole = read_csv(path)
    tables = results(in_parts(world, lambda part: read_csv(path, part=part)))
    assert [row for t in tables for row in t.rows] == whole.rows
    assert all(t.columns == whole.columns for t in tables)
    assert [t.place(i) for t in tables for i in range(len(t.rows))] == [whole.place(i) for i in range(len(whole.rows))]
    parts = [len(t.rows) for t in tables]
    for t in tables:
        assert t.origin is not None and whole.origin is not None
        assert (t.origin.rows, t.origin.sha256) == (whole.origin.rows, whole.origin.sha256)
        assert t.origin.parts == (tuple(parts) if world > 1 else None)  # one process reads no parts
    return parts


ROW = st.lists(
    st.one_of(st.integers(-999, 999).map(str), st.sampled_from(["a", "b c", '"q,1"', "", "2.5e3", " 7 "])),
    min_size=3,
    max_size=3,
)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(ROW, min_size=1, max_size=40),
    end=st.sampled_from(["\n", "\r\n", "\r"]),
    trailing=st.integers(0, 2),
    bom=st.booleans(),
    world=st.integers(1, 5),
)
def test_the_parts_of_a_csv_are_its_rows_in_order(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]], end: str, trailing: int, bom: bool, world: int
) -> None:
    """Any line ending, a byte order mark, blank lines at the end, quoted commas, more parts than
    rows: the parts hold every row once, in order, placed on the line it is on."""
    text = ("\ufeff" if bom else "") + end.join(["x,y,label", *(",".join(r) for r in rows)]) + end * (1 + trailing)
    path = write(tmp_path_factory.mktemp("csv"), text)
    _check_parts_equal_whole(path, world)


def test_iris_read_by_two_processes_is_read_half_each(tmp_path: Path) -> None:
    parts = _check_parts_equal_whole(IRIS, 2)
    assert sum(parts) == 150 and max(parts) < 150 * 0.6


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize(
    "text",
    [
        "x,y\n1,2\n3,4\n5,6\n7\n9,10\n11,12\n",  # a short line in the middle
        "x,y\n1,2\n3,4\n\n5,6\n7,8\n9,10\n",  # an empty line with rows after it
        "x,y\n1,2\n3,4\n5,6\n7,8\n9,10\n\n\n\n\n\n\n\n11,12\n",  # rows after many empty lines
        "x,y\n1,2\n3,4\n5,6\n7,8\n9,\x0010\n",  # NUL
        b"x,y\n1,2\n3,4\n5,6\n7,8\n9,\xff10\n",  # not UTF-8
        "x,y\n",  # a header and no rows
        "",  # empty
        "\n1,2\n",  # an empty first line
        pytest.param("x,y\n1,2\n3,4\n5,6\n7," + "9" * 200_000 + "\n", id="a cell beyond the csv field limit"),
    ],
)
def test_a_bad_file_read_in_parts_gives_the_whole_files_error(tmp_path: Path, text: str | bytes, world: int) -> None:
    path = write(tmp_path, text)
    assert parts_error(path, world) == whole_error(path)


@pytest.mark.parametrize("world", [2, 3, 4])
def test_a_quoted_cell_over_a_line_break_is_refused_wherever_the_parts_meet(tmp_path: Path, world: int) -> None:
    rows = [f"{i},{i}" for i in range(30)]
    rows[14] = '14,"fourteen\nand more"'
    path = write(tmp_path, "\n".join(["x,y", *rows]) + "\n")
    assert "quoted cell" in whole_error(path)
    assert "quoted cell" in parts_error(path, world)


@pytest.mark.parametrize("world", [2, 3, 4])
@pytest.mark.parametrize("closed", [None, 17, 24], ids=["never closed", "closed on the next line", "closed later"])
def test_a_quote_left_open_where_a_part_ends_is_reported_with_the_whole_files_lines(
    tmp_path: Path, world: int, closed: int | None
) -> None:
    """One process reads on to where the quote closes (or the file ends) and names those lines;
    so does the part whose lines end inside the quote."""
    rows = [f"{i},{i}" for i in range(30)]
    rows[14] = '14,"fourteen'
    if closed is not None:
        rows[closed - 2] = f'{closed - 2}",{closed - 2}'
    path = write(tmp_path, "\n".join(["x,y", *rows]) + "\n")
    assert parts_error(path, world) == whole_error(path)


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_a_header_whose_quote_runs_on_is_reported_with_the_whole_files_lines(
    tmp_path: Path, world: int, end: str
) -> None:
    path = write(tmp_path, end.join(['"a', 'b",c', "1,2", "3,4", "5,6"]) + end)
    assert "lines 1-2" in whole_error(path)
    assert parts_error(path, world) == whole_error(path)


def test_standard_input_cannot_be_read_in_parts() -> None:
    outcomes = in_parts(2, lambda part: read_csv(Path("-"), "standard input", part=part))
    assert all(isinstance(e, DataError) and "standard input" in str(e) for _, e in outcomes)
    assert [echoed(e) for _, e in outcomes if e is not None] == [False, True], "rank 0 alone reports it"


def test_a_generated_dataset_is_cut_in_equal_parts() -> None:
    whole = load_data("line:101")
    tables = results(in_parts(3, lambda part: load_data("line:101", part=part)))
    assert [row for t in tables for row in t.rows] == whole.rows
    assert [len(t.rows) for t in tables] == [33, 34, 34]
    assert tables[2].place(0) == "line:101, row 68"


# ----------------------------------------------------------------- a spec prepared in parts


def _prepared_in_parts(world: int, spec: Path, **kwargs: Any) -> tuple[Any, list[Any]]:
    whole = prepare(spec, **kwargs)
    preps = results(in_parts(world, lambda part: prepare(spec, part=part, **kwargs)))
    return whole, preps


def rows(split: tuple[Any, list[Any]]) -> tuple[list[list[float]], list[Any]]:
    """A split's (inputs, targets) with its inputs (an array of rows) as lists, to compare."""
    return split[0].tolist(), split[1]


def _training_order(preps: list[Any]) -> list[tuple[list[float], Any]]:
    """The training samples of all parts, in the order of one process's training list."""
    by_position = {}
    for p in preps:
        for pos, x, y in zip(p.data.positions, *rows(p.data.train), strict=True):
            assert pos not in by_position, "a training sample is in two parts"
            by_position[pos] = (x, y)
    return [by_position[k] for k in range(len(by_position))]


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-13, abs_tol=1e-15)


@pytest.mark.parametrize("world", [2, 3])
def test_iris_prepared_in_parts_is_the_run_one_process_prepares(world: int) -> None:
    sets = [(("training", "validation_split"), 0.2), (("training", "class_weight"), "balanced")]
    whole, preps = _prepared_in_parts(world, MODELS / "iris.yaml", sets=sets)
    assert _training_order(preps) == list(zip(*rows(whole.data.train)))
    assert sorted(map(tuple, (x for p in preps for x in p.data.validation[0].tolist()))) == sorted(
        map(tuple, whole.data.validation[0].tolist())
    )
    for p in preps:
        assert (p.data.train_count, p.data.validation_count, p.data.rows) == (120, 30, 150)
        assert p.data.classes == whole.data.classes
        assert p.data.stats is not None and whole.data.stats is not None
        assert all(close(a, b) for k in whole.data.stats for a, b in zip(p.data.stats[k], whole.data.stats[k]))
        assert sorted(p.root.compiled_graph.param_values()) == sorted(whole.root.compiled_graph.param_values())
    weights = {}
    for p in preps:
        weights.update(zip(p.data.positions, p.data.train_weights))
    assert [weights[k] for k in range(120)] == whole.data.train_weights
    # Each part holds its part of the rows, not all of them.
    assert all(len(p.data.train[0]) + len(p.data.validation[0]) < 150 for p in preps)


TABLE = """\
size,colour,weight,price
1.0,red,1,10.5
2.0,blue,2,21.0
,red,1,9.0
3.5,green,0.5,33.0
4.0,blue,1,41.5
5.0,red,3,50.0
6.5,green,1,66.0
7.0,,1,70.5
8.0,blue,2,79.0
9.0,red,1,91.0
10.0,green,1,99.5
"""

SPEC = """\
name: shop
inputs: all
layers: [{linear: 3, activation: tanh}, {linear: 1}]
target: price
data: shop.csv
training:
  epochs: 2
  normalize: true
  missing: drop
  text_inputs: one_hot
  weight_column: weight
  validation_split: 0.25
"""


@pytest.mark.parametrize("world", [2, 3, 4])
def test_text_columns_dropped_rows_and_weights_prepared_in_parts(tmp_path: Path, world: int) -> None:
    """One-hot categories found across parts, rows with empty cells dropped in each, the weight
    column taken per row, and the target standardised over all parts."""
    write(tmp_path, TABLE, "shop.csv")
    spec = write(tmp_path, SPEC, "shop.yaml")
    whole, preps = _prepared_in_parts(world, spec)
    assert _training_order(preps) == list(zip(*rows(whole.data.train)))
    for p in preps:
        assert p.data.recoding == whole.data.recoding and list(p.spec.inputs) == list(whole.spec.inputs)
        assert (p.data.rows, p.data.train_count, p.data.validation_count) == (9, 7, 2)
        assert p.data.target_stats is not None and whole.data.target_stats is not None
        assert all(close(a, b) for a, b in zip(p.data.target_stats, whole.data.target_stats))


@pytest.mark.parametrize("world", [2, 3])
def test_missing_cells_filled_in_parts_with_the_training_rows_values(tmp_path: Path, world: int) -> None:
    """missing: fill takes each column's mean or most frequent value over the training rows of
    every part together, as one process does, and fills each part's cells with them."""
    write(tmp_path, TABLE, "shop.csv")
    spec = write(tmp_path, SPEC.replace("missing: drop", "missing: fill"), "shop.yaml")
    whole, preps = _prepared_in_parts(world, spec)
    assert _training_order(preps) == list(zip(*rows(whole.data.train)))
    assert set(whole.data.recoding.fill) == {"size", "colour"} and whole.data.recoding.filled == 2
    for p in preps:
        assert (p.data.rows, p.data.train_count, p.data.validation_count) == (11, 8, 3)
        assert p.data.recoding.fill["colour"] == whole.data.recoding.fill["colour"]
        assert close(float(p.data.recoding.fill["size"]), float(whole.data.recoding.fill["size"]))
        assert (p.data.recoding.filled, p.data.recoding.inputs) == (2, whole.data.recoding.inputs)


@pytest.mark.parametrize("world", [2, 3])
def test_a_bad_cell_in_any_part_stops_every_part_with_its_line(tmp_path: Path, world: int) -> None:
    write(tmp_path, TABLE.replace("99.5", "n/a"), "shop.csv")
    spec = write(tmp_path, SPEC, "shop.yaml")
    with pytest.raises(DataError) as one:
        prepare(spec)
    outcomes = in_parts(world, lambda part: prepare(spec, part=part))
    assert all(isinstance(e, DataError) and str(e) == str(one.value) for _, e in outcomes)
    assert "shop.csv, line 12" in str(one.value)


def test_after_dropped_rows_messages_name_the_line_a_row_is_on(tmp_path: Path) -> None:
    """Rows dropped for an empty cell do not shift the line numbers of later messages."""
    spec = write(tmp_path, SPEC, "shop.yaml")
    write(tmp_path, TABLE.replace("10.0,green,1,99.5", "10.0,green,heavy,99.5"), "shop.csv")
    with pytest.raises(TreegradError) as e:
        prepare(spec)
    assert "shop.csv, line 12, column 'weight'" in str(e.value)


def test_metrics_of_parts_are_the_metrics_of_all_rows() -> None:
    prep = prepare(MODELS / "iris.yaml")
    X, y = prep.data.train
    labels = prep.data.classes
    whole = evaluate_rows(prep.root, prep.data.kind, prep.loss, X, y, labels=labels)
    cut = [0, 37, 90, len(X)]

    def score(part: Part) -> dict[str, Any]:
        a, b = cut[part.rank], cut[part.rank + 1]
        return evaluate_rows(prep.root, prep.data.kind, prep.loss, X[a:b], y[a:b], labels=labels, part=part)

    assert all(m == whole for m in results(in_parts(3, score)))


def test_one_process_exchanges_nothing() -> None:
    assert WHOLE.gather(5) == [5] and WHOLE.offset(7) == (0, 7) and WHOLE.concat([1, 2]) == [1, 2]
    shuffled = list(range(100))
    random.Random(1).shuffle(shuffled)
    assert WHOLE.counts(x % 3 for x in shuffled) == {0: 34, 1: 33, 2: 33}


def test_an_output_rank_0_may_not_write_stops_every_part_before_training(tmp_path: Path) -> None:
    """Only rank 0 writes the model file; its refusal to replace a file must stop the others
    as well, before they start training (they would wait for rank 0 for ever)."""
    out = write(tmp_path, "keep me\n", "notes.txt")

    def train(part: Part) -> Any:
        prep = prepare(MODELS / "iris.yaml", part=part)
        return run_prepared(prep, out=out if part.rank == 0 else None, trainer=_no_training)

    outcomes = in_parts(2, train)
    assert all(isinstance(e, TreegradError) and "refusing to overwrite" in str(e) for _, e in outcomes)
    assert out.read_text() == "keep me\n"


def _no_training(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("training started although the output was refused")


def test_a_spec_mistake_is_reported_by_rank_0_alone(tmp_path: Path) -> None:
    spec = write(tmp_path, (MODELS / "iris.yaml").read_text().replace("target:", "targt:"), "iris.yaml")
    outcomes = in_parts(2, lambda part: prepare(spec, part=part))
    assert all("did you mean 'target'" in str(e) for _, e in outcomes)
    assert [echoed(e) for _, e in outcomes if e is not None] == [False, True]


def test_the_card_of_a_data_parallel_run_says_so_and_reruns_it_under_torchrun(tmp_path: Path) -> None:
    """A model trained under torchrun records the rows each process read; its card shows them,
    and its command runs as many processes again."""
    import json

    from typer.testing import CliRunner

    from treegrad.cli import app

    model = tmp_path / "f2c.json"
    runner = CliRunner()
    r = runner.invoke(app, ["train", str(MODELS / "f2c.yaml"), "--epochs", "1", "-o", str(model), "-q"])
    assert r.exit_code == 0, r.output
    rec = json.loads(model.read_text())
    rec["provenance"]["command"] = ["treegrad", "train", "f2c.yaml", "--engine", "torch"]
    rec["provenance"]["data"]["parts"] = [500, 500]
    model.write_text(json.dumps(rec))
    r = runner.invoke(app, ["card", str(model)])
    assert r.exit_code == 0, r.output
    assert "| read in parts | by 2 processes under torchrun, 500 + 500 rows |" in r.output
    assert "torchrun --nproc_per_node 2 -m treegrad train f2c.yaml --engine torch" in r.output


# ----------------------------------------------------------------- parts that hold few or no rows

LINEAR = """\
name: few
inputs: [a]
target: y
layers: [{linear: 1%s}]
data: few.csv
training: {epochs: 1%s}
"""


@pytest.mark.parametrize("world", [3, 4])
@pytest.mark.parametrize("activation", ["", ", activation: sigmoid"])
def test_more_processes_than_rows_prepare_what_one_process_does(tmp_path: Path, world: int, activation: str) -> None:
    """A part with no rows at all is no error: the file has rows, the other parts hold them."""
    write(tmp_path, "a,y\n1,0\n2,1\n", "few.csv")
    spec = write(tmp_path, LINEAR % (activation, ""), "few.yaml")
    whole, preps = _prepared_in_parts(world, spec)
    assert _training_order(preps) == list(zip(*rows(whole.data.train)))
    assert [len(p.data.train[0]) for p in preps].count(0) >= world - 2


def test_a_generated_dataset_of_fewer_rows_than_processes_gives_one_process_error(tmp_path: Path) -> None:
    spec = write(tmp_path, LINEAR.replace("[a]", "[x, y]").replace("target: y", "target: label") % ("", ""), "xor.yaml")
    with pytest.raises(DataError) as one:
        prepare(spec, data="xor:2")
    outcomes = in_parts(3, lambda part: prepare(spec, data="xor:2", part=part))
    assert [str(e) for _, e in outcomes] == [str(one.value)] * 3


@pytest.mark.parametrize("world", [2, 3])
def test_a_part_left_empty_by_missing_drop_prepares_what_one_process_does(tmp_path: Path, world: int) -> None:
    write(tmp_path, "a,y\n1,2\n2,3\n3,5\n,5\n,6\n,7\n", "few.csv")
    spec = write(tmp_path, LINEAR % ("", ", missing: drop"), "few.yaml")
    whole, preps = _prepared_in_parts(world, spec)
    assert _training_order(preps) == list(zip(*rows(whole.data.train)))
    assert all(p.data.train_count == 3 for p in preps)


@pytest.mark.parametrize("world", [2, 3])
def test_standardising_with_a_part_that_holds_no_training_rows(tmp_path: Path, world: int) -> None:
    """Here the second half of the file is all validation rows: the statistics are those of the
    training rows, wherever they are."""
    write(tmp_path, "a,y\n1,2\n2,3\n3,5\n4,6\n", "few.csv")
    spec = write(tmp_path, LINEAR % ("", ", normalize: true, validation_split: 0.5"), "few.yaml")
    whole, preps = _prepared_in_parts(world, spec)
    assert any(not len(p.data.train[0]) for p in preps)
    assert _training_order(preps) == list(zip(*rows(whole.data.train)))
    for p in preps:
        assert p.data.stats is not None and whole.data.stats is not None and p.data.target_stats is not None
        assert all(close(a, b) for a, b in zip(p.data.stats["a"], whole.data.stats["a"]))
        assert all(close(a, b) for a, b in zip(p.data.target_stats, whole.data.target_stats or ()))


@pytest.mark.parametrize("world", [2, 3])
def test_weights_that_are_all_zero_stop_every_part_as_they_stop_one_process(tmp_path: Path, world: int) -> None:
    """Each part holds some of the weights, all 0 here: the check that fit makes of its samples
    is of all parts together, before any training."""
    write(tmp_path, "a,w,y\n1,0,2\n2,0,3\n3,0,5\n4,0,6\n5,0,8\n6,0,9\n", "few.csv")
    spec = write(tmp_path, LINEAR % ("", ", weight_column: w"), "few.yaml")
    with pytest.raises(TreegradError) as one:
        run_prepared(prepare(spec))

    def train(part: Part) -> Any:
        return run_prepared(prepare(spec, part=part), trainer=_no_training)

    outcomes = in_parts(world, train)
    assert [str(e) for _, e in outcomes] == [str(one.value)] * world
    assert "every sample weight is 0" in str(one.value)
    assert [echoed(e) for _, e in outcomes if e is not None] == [False] + [True] * (world - 1)


@pytest.mark.parametrize("world", [2, 3])
def test_weights_that_are_zero_in_one_part_train(tmp_path: Path, world: int) -> None:
    write(tmp_path, "a,w,y\n1,0,2\n2,0,3\n3,0,5\n4,1,6\n5,1,8\n6,1,9\n", "few.csv")
    spec = write(tmp_path, LINEAR % ("", ", weight_column: w"), "few.yaml")
    trained = results(in_parts(world, lambda part: run_prepared(prepare(spec, part=part), trainer=_zero)))
    assert all(t.record.metrics["train"]["weighted_loss"] >= 0 for t in trained)


def _zero(*args: Any, **kwargs: Any) -> Any:
    from treegrad.engine.fit import History

    return History()


# ----------------------------------------------------------------- mistakes found once the data is read

SHOP = "size,colour,price\n1,red,10\n2,blue,21\n3,red,29\n4,green,41\n5,blue,50\n6,red,62\n"
ALL_BUT_PRICE = LINEAR.replace("[a]", "all").replace("target: y", "target: price")
SOFTMAX = """\
name: few
inputs: [a]
nodes:
  logits: {linear: {inputs: [a], units: 2}}
output: {softmax: logits}
target: y
data: few.csv
training: {epochs: 1%s}
"""


@pytest.mark.parametrize(
    ("spec_text", "csv", "expected"),
    [
        (LINEAR % ("", ", class_weight: {a: 2}"), "a,y\n1,2\n2,3\n3,5\n", "class_weight is for classifiers"),
        (SOFTMAX % ", class_weight: {z: 1}", "a,y\n1,p\n2,q\n3,p\n4,q\n", "'z' is not a class"),
        (LINEAR.replace("[a]", "all") % ("", ""), SHOP, "target column 'y' is not in"),
        (LINEAR.replace("target: y", "target: price") % ("", ""), SHOP, "input column 'a' is not in"),
        (
            ALL_BUT_PRICE % ("", ", text_inputs: one_hot"),
            "size,colour,price\n" + "".join(f"{i},c{i},{i}\n" for i in range(101)),
            "101 distinct text values",
        ),
        (SOFTMAX % "", "a,y\n1,p\n2,q\n3,r\n4,p\n", "softmax has 2 outputs"),
        (LINEAR % ("", ", normalize: true"), "a,y\n0,1\n5e-324,2\n0,3\n5e-324,4\n", "cannot be standardised"),
    ],
)
@pytest.mark.parametrize("world", [2, 3])
def test_a_mistake_found_in_the_data_read_in_parts_is_reported_by_rank_0_alone(
    tmp_path: Path, spec_text: str, csv: str, expected: str, world: int
) -> None:
    """Each process meets it the same way, from what the parts agreed on; one message, as one
    process gives it, printed once (torchrun: the others end quietly)."""
    write(tmp_path, csv, "few.csv")
    spec = write(tmp_path, spec_text, "few.yaml")
    with pytest.raises(TreegradError) as one:
        prepare(spec)
    assert expected in str(one.value)
    outcomes = in_parts(world, lambda part: prepare(spec, part=part))
    assert [(type(e), str(e)) for _, e in outcomes] == [(type(one.value), str(one.value))] * world
    assert [echoed(e) for _, e in outcomes if e is not None] == [False] + [True] * (world - 1)


@pytest.mark.parametrize("world", [2, 3])
def test_training_that_diverges_in_every_part_is_reported_by_rank_0_alone(world: int) -> None:
    """The torch trainer's losses and parameters are all-reduced, so each process finds the
    divergence in the same epoch; rank 0 says it once, with run/train.py's advice."""
    from treegrad.engine.failures import DIVERGED_ADVICE

    def diverging(*args: Any, **kwargs: Any) -> Any:
        raise TrainingError(f"training diverged in epoch 3: the loss became NaN or infinite. {DIVERGED_ADVICE}")

    def train(part: Part) -> Any:
        return run_prepared(prepare(MODELS / "iris.yaml", part=part), trainer=diverging)

    with pytest.raises(TrainingError) as one:
        run_prepared(prepare(MODELS / "iris.yaml"), trainer=diverging)
    outcomes = in_parts(world, train)
    assert [(type(e), str(e)) for _, e in outcomes] == [(TrainingError, str(one.value))] * world
    assert [echoed(e) for _, e in outcomes if e is not None] == [False] + [True] * (world - 1)


@pytest.mark.parametrize("data", ["xorr", "xor:0", "xor:many", " "])
def test_a_data_source_that_names_nothing_is_reported_by_rank_0_alone(data: str) -> None:
    with pytest.raises(DataError) as one:
        prepare(MODELS / "xor.yaml", data=data)
    outcomes = in_parts(2, lambda part: prepare(MODELS / "xor.yaml", data=data, part=part))
    assert [str(e) for _, e in outcomes] == [str(one.value)] * 2
    assert [echoed(e) for _, e in outcomes if e is not None] == [False, True]


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_bytes_that_are_not_utf8_are_reported_on_their_line_after_earlier_mistakes(
    tmp_path: Path, world: int, end: str
) -> None:
    """A line is decoded as it is read, in parts as in one process: the first mistake in the file
    is the one reported (here a short line before the bad bytes), on the line it is on, whatever
    ends the lines. One process decoded blocks of the file ahead of the rows it had read, and
    counted lines by '\\n' alone."""
    rows = [f"{i},{i}" for i in range(30)]
    rows[20] = "20,caf\xe9"
    path = write(tmp_path, end.join(["x,y", *rows]).encode("latin-1") + end.encode())
    message = "not a UTF-8 text file: line 22 has bytes"
    assert message in (whole_error(path) if world == 1 else parts_error(path, world))
    rows[3] = "3"
    path = write(tmp_path, end.join(["x,y", *rows]).encode("latin-1") + end.encode())
    message = "line 5 has 1 cells but the header has 2 columns"
    assert message in (whole_error(path) if world == 1 else parts_error(path, world))


BINARY = LINEAR.replace("layers:", "loss: bce\nlayers:") % (", activation: sigmoid", "")


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize(
    ("spec_text", "labels"),
    [
        (BINARY, ["0", "1"] * 6),  # the empty label is no third class
        (BINARY, ["0", "1", "2"] * 4),  # too many classes, but the empty label comes first
        (SOFTMAX % "", ["p", "q"] * 6),
        (SOFTMAX.replace("target: y", "target: y\nclasses: [p, q]") % "", ["p", "q", "z", "q"] * 3),  # z: unknown
    ],
)
def test_an_empty_label_late_in_the_file_is_reported_as_one_process_reports_it(
    tmp_path: Path, world: int, spec_text: str, labels: list[str]
) -> None:
    """One process checks every row's label before it counts the classes or looks them up."""
    labels[-2] = ""
    write(tmp_path, "a,y\n" + "".join(f"{i},{t}\n" for i, t in enumerate(labels)), "few.csv")
    spec = write(tmp_path, spec_text, "few.yaml")
    with pytest.raises(DataError) as one:
        prepare(spec)
    assert "line 12: the target is empty" in str(one.value)
    outcomes = in_parts(world, lambda part: prepare(spec, part=part))
    assert [str(e) for _, e in outcomes] == [str(one.value)] * world


@pytest.mark.parametrize("world", [2, 3])
def test_a_weight_that_is_no_number_late_in_the_file_is_reported_as_one_process_reports_it(
    tmp_path: Path, world: int
) -> None:
    """One process reads every weight as a number before it checks that each is >= 0."""
    write(tmp_path, "a,w,y\n1,1,2\n2,-1,3\n3,1,5\n4,1,6\n5,1,8\n6,1,9\n7,,9\n8,1,9\n", "few.csv")
    spec = write(tmp_path, LINEAR % ("", ", weight_column: w"), "few.yaml")
    with pytest.raises(DataError) as one:
        prepare(spec)
    assert "line 8, column 'w': the input is empty" in str(one.value)
    outcomes = in_parts(world, lambda part: prepare(spec, part=part))
    assert [str(e) for _, e in outcomes] == [str(one.value)] * world


def test_a_spec_that_names_no_data_is_reported_by_rank_0_alone(tmp_path: Path) -> None:
    spec = write(tmp_path, "inputs: [x]\noutput: {linear: [x]}\ntarget: y\n", "nodata.yaml")
    outcomes = in_parts(2, lambda part: prepare(spec, part=part))
    assert all(isinstance(e, DataError) and "names no data" in str(e) for _, e in outcomes)
    assert [echoed(e) for _, e in outcomes if e is not None] == [False, True]


def test_under_torchrun_the_treegrad_engine_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each process would train the whole run with treegrad's own engine and write the same file."""
    from typer.testing import CliRunner

    from treegrad.cli import app

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["train", str(MODELS / "f2c.yaml"), "-o", "m.json"])
    assert r.exit_code == 2 and "torchrun started 2 processes" in r.output and "--engine torch" in r.output
    assert not (tmp_path / "m.json").exists()


def test_under_torchrun_a_usage_error_is_said_by_rank_0_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from treegrad.cli import app

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.chdir(tmp_path)
    said = {}
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        r = CliRunner().invoke(app, ["train", str(MODELS / "f2c.yaml"), "-o", "m.json"])
        said[rank] = (r.exit_code, r.output)
    assert said["0"][0] == 2 and "--engine torch" in said["0"][1]
    assert said["1"] == (0, "")  # torchrun waits for rank 0, which fails with the message
    monkeypatch.setenv("RANK", "0")
    r = CliRunner().invoke(app, ["train", "--resume", "m.json"])
    assert r.exit_code == 2 and "run it without torchrun" in r.output


# ----------------------------------------------------------------- processes given different runs

IRIS_LINES = IRIS.read_text().splitlines(keepends=True)


@pytest.mark.parametrize(
    ("second", "words"),
    [
        (
            "".join(IRIS_LINES[:1] + IRIS_LINES[-18:]),
            f"it has {IRIS.stat().st_size:,} bytes for process 0, 526 for process 1",
        ),  # other rows
        (IRIS_LINES[0].replace("sepal_length", "sepal_LENGTH") + "".join(IRIS_LINES[1:]), "its first line is"),
        ("".join(IRIS_LINES[:1] + IRIS_LINES[1:][::-1]), "its bytes differ (SHA-256"),  # same size
    ],
)
def test_processes_given_different_data_files_stop_before_they_train(tmp_path: Path, second: str, words: str) -> None:
    """Issue 24, 5: processes given different files (78 + 18 rows of two) trained anyway, exit 0,
    and one whose header differed ended in an internal error. Each hashes its own copy whole: a
    difference stops every process with one message, said by rank 0, before any row is exchanged."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "iris.csv").write_text("".join(IRIS_LINES))
    (tmp_path / "b" / "iris.csv").write_text(second)
    outcomes = in_parts(
        2, lambda part: prepare(MODELS / "iris.yaml", data=str(tmp_path / "ab"[part.rank] / "iris.csv"), part=part)
    )
    errors = [e for _, e in outcomes]
    assert all(isinstance(e, ProcessError) for e in errors), errors
    assert not echoed(errors[0]) and echoed(errors[1])
    message = str(errors[0])
    assert "under torchrun every process must read the same data" in message and words in message, message
    assert "Give every process the same file" in message


def test_the_same_file_in_every_process_is_recorded_by_its_sha256(tmp_path: Path) -> None:
    """Every process hashes the file now; the record's SHA-256 is still the file's."""
    from treegrad.files import sha256_of

    tables = results(in_parts(2, lambda part: read_csv(IRIS, "iris.csv", part)))
    assert {t.origin.sha256 for t in tables} == {sha256_of(IRIS)}


def test_processes_given_different_specs_or_settings_stop_before_they_train(tmp_path: Path) -> None:
    """A model 8 units wide in one process and 9 in the other ended in 'internal error (DDP expects
    same model across all ranks)'; other settings trained two different runs as one."""
    wide = tmp_path / "iris9.yaml"
    wide.write_text((MODELS / "iris.yaml").read_text().replace("units: 8", "units: 9"))
    assert "units: 9" in wide.read_text()
    specs = [MODELS / "iris.yaml", wide]
    outcomes = in_parts(2, lambda part: prepare(specs[part.rank], part=part))
    message = str(outcomes[0][1])
    assert isinstance(outcomes[0][1], ProcessError) and echoed(outcomes[1][1])
    assert "every process must train the same model" in message and "the spec's text differs" in message
    outcomes = in_parts(2, lambda part: prepare(MODELS / "iris.yaml", overrides={"epochs": 2 + part.rank}, part=part))
    assert "training.epochs (the number 2 for process 0, the number 3 for process 1)" in str(outcomes[0][1])
    assert echoed(outcomes[1][1])
    outcomes = in_parts(
        2, lambda part: prepare(MODELS / "iris.yaml", data="xor:10" if part.rank else "xor:12", part=part)
    )
    assert "process 0 was given xor:12 and process 1 xor:10" in str(outcomes[0][1])
