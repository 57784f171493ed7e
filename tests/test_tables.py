"""From a CSV to a model with no typing: init, `inputs: all` and patterns, target scaling,
dropped rows with empty cells, and one-hot text inputs (issue 11, items 1-4)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from treegrad.cli import app
from treegrad.data.columns import Recoding, input_name, plan, recode, resolve
from treegrad.data.csvfile import read_csv
from treegrad.data.table import Table
from treegrad.errors import DataError
from treegrad.run.modelfile import load
from treegrad.run.predict import predict
from treegrad.run.train import train

runner = CliRunner()
DATASETS = Path(__file__).resolve().parent.parent / "datasets"


def run(*args: str) -> object:
    return runner.invoke(app, list(args))


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.write_text("\n".join([",".join(header)] + [",".join(str(c) for c in r) for r in rows]) + "\n")
    return path


def blobs(n: int = 120, seed: int = 0) -> tuple[list[str], list[list[object]]]:
    """Three well-separated classes in 4 numeric columns, with labels as text."""
    rng = random.Random(seed)
    rows: list[list[object]] = []
    for i in range(n):
        k = i % 3
        rows.append([round(rng.gauss(3 * k, 0.5), 4) for _ in range(4)] + ["abc"[k]])
    return ["a 1", "a 2", "b 1", "b 2", "kind"], rows


# ----------------------------------------------------------------- selecting inputs


def test_resolve_all_match_and_range() -> None:
    cols = ["id", "px_0", "px_1", "px_2", "y"]
    assert resolve("all", cols, "y", "t") == ["id", "px_0", "px_1", "px_2"]
    assert resolve([{"match": "px_*"}], cols, "y", "t") == ["px_0", "px_1", "px_2"]
    assert resolve(["id", {"range": ["px_1", "px_2"]}], cols, "y", "t") == ["id", "px_1", "px_2"]


@pytest.mark.parametrize(
    ("selection", "target", "words"),
    [
        ("all", None, "target must be named"),
        ([{"match": "zz*"}], "y", "no column"),
        (["px_0", {"match": "px_*"}], "y", "selected twice"),
        ([{"range": ["px_2", "px_0"]}], "y", "backwards"),
        ([{"match": "*"}], "y", "is the target"),
    ],
)
def test_resolve_refuses_ambiguous_selections(selection: object, target: str | None, words: str) -> None:
    with pytest.raises(DataError, match=words):
        resolve(selection, ["px_0", "px_1", "px_2", "y"], target, "t")


def test_input_names_are_made_usable() -> None:
    assert input_name("mean radius") == "mean_radius"
    assert input_name("od280/od315") == "od280_od315"
    assert input_name("0") == "_0"
    assert input_name("param") == "_param"


def test_bad_selection_in_a_spec_is_a_located_error(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("inputs: [{glob: 'x*'}]\nlayers: [{linear: 1}]\ntarget: y\n")
    r = run("train", str(spec), "--data", "f2c")
    assert r.exit_code == 1, r.output
    assert "s.yaml:1" in r.output and "{match: 'glob*'}" in r.output
    assert not list(tmp_path.glob("*.model.json"))


def test_inputs_all_trains_and_records_the_resolved_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    header, rows = blobs()
    write_csv(tmp_path / "blobs.csv", header, rows)
    spec = tmp_path / "blobs.yaml"
    spec.write_text(
        "inputs: all\ntarget: kind\ndata: blobs.csv\nlayers: [{linear: 3}, {softmax: true}]\n"
        "training: {epochs: 30, optimizer: adam, learning_rate: 0.05, normalize: true}\n"
    )
    r = run("train", str(spec), "-o", "m.model.json")
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "m.model.json").read_text())
    assert rec["inputs"] == ["a_1", "a_2", "b_1", "b_2"]
    assert rec["renamed"] == {"a 1": "a_1", "a 2": "a_2", "b 1": "b_1", "b 2": "b_2"}
    # predict and eval read the raw CSV: the model file knows how its columns were renamed.
    (tmp_path / "blobs.csv").rename(tmp_path / "other.csv")
    r = run("eval", "m.model.json", "--data", "other.csv")
    assert r.exit_code == 0, r.output
    r = run("predict", "m.model.json", "--data", "other.csv")
    assert r.exit_code == 0, r.output
    r = run("show", "m.model.json")  # no CSV needed
    assert r.exit_code == 0, r.output


def test_inputs_all_without_data_says_it_needs_the_header(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("inputs: all\ntarget: y\nlayers: [{linear: 1}]\n")
    r = run("show", str(spec))
    assert r.exit_code == 1, r.output
    assert "needs the data" in r.output


# ----------------------------------------------------------------- init


def test_init_writes_a_classifier_spec_that_trains_unedited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    header, rows = blobs()
    write_csv(tmp_path / "blobs.csv", header, rows)
    r = run("init", "blobs.csv", "-o", "spec.yaml", "--target", "kind")
    assert r.exit_code == 0, r.output
    text = (tmp_path / "spec.yaml").read_text()
    assert "inputs: all" in text and 'classes: ["a", "b", "c"]' in text and "softmax" in text
    r = run("train", "spec.yaml", "--epochs", "40", "-o", "m.model.json")
    assert r.exit_code == 0, r.output
    r = run("eval", "m.model.json", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["accuracy"] > 0.95


def test_init_reads_few_whole_numbers_as_classes_and_two_as_binary(tmp_path: Path) -> None:
    rows = [[i / 10, i % 2] for i in range(40)]
    write_csv(tmp_path / "b.csv", ["x", "y"], rows)
    r = run("init", str(tmp_path / "b.csv"), "-o", str(tmp_path / "b.yaml"))
    assert r.exit_code == 0, r.output
    text = (tmp_path / "b.yaml").read_text()
    assert "sigmoid" in text and "loss: bce" in text and 'classes: ["0", "1"]' in text


def test_init_regression_with_linear_model(tmp_path: Path) -> None:
    r = run(
        "init",
        str(DATASETS / "diabetes.csv"),
        "--model",
        "linear",
        "-o",
        str(tmp_path / "d.yaml"),
        "--target",
        "progression",
    )
    assert r.exit_code == 0, r.output
    text = (tmp_path / "d.yaml").read_text()
    assert "loss: mse" in text and "relu" not in text and 'target: "progression"' in text


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--target", "nope"], "no column 'nope'"),
        (["--model", "deep"], "unknown model 'deep'"),
    ],
)
def test_init_bad_options_write_nothing(tmp_path: Path, args: list[str], words: str) -> None:
    out = tmp_path / "s.yaml"
    r = run("init", str(DATASETS / "iris.csv"), "-o", str(out), *args)
    assert r.exit_code == 1, r.output
    assert words in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "d.csv", ["x", "y"], [[1, 2], [2, 3]])
    out = tmp_path / "s.yaml"
    out.write_text("keep")
    r = run("init", str(data), "-o", str(out))
    assert r.exit_code == 1 and "refusing to overwrite" in r.output
    assert out.read_text() == "keep"
    same = tmp_path / "t.yaml"
    same.write_text("x,y\n1,2\n2,3\n")
    r = run("init", str(same), "-o", str(same), "--force")
    assert r.exit_code == 1 and "data file itself" in r.output
    assert same.read_text() == "x,y\n1,2\n2,3\n"
    r = run("init", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "n.yaml"))
    assert r.exit_code == 1 and "no such CSV file" in r.output


# ----------------------------------------------------------------- target scaling


def test_diabetes_trains_at_plain_settings_and_answers_in_raw_units(tmp_path: Path) -> None:
    t = train(Path(__file__).resolve().parent.parent / "models" / "diabetes.yaml", out=tmp_path / "d.model.json")
    rec = t.record
    assert rec.target_normalization is not None
    mean, std = rec.target_normalization
    assert 140 < mean < 165 and 70 < std < 85
    # The summary's training loss is in the target's units: it agrees with eval on the training rows.
    assert rec.metrics["train"]["r2"] > 0.4
    loaded = load(tmp_path / "d.model.json")
    table = read_csv(DATASETS / "diabetes.csv")
    preds = predict(loaded, [row[:-1] for row in table.rows[:20]])  # type: ignore[misc]
    assert 50 < sum(p["prediction"] for p in preds) / 20 < 300


def test_target_scaling_reports_losses_in_raw_units(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    rows = [[x / 10, 1000 + 300 * x / 10] for x in range(50)]
    write_csv(tmp_path / "d.csv", ["x", "y"], rows)
    spec.write_text(
        "inputs: [x]\ntarget: y\ndata: d.csv\noutput: {linear: [x]}\n"
        "training: {epochs: 200, optimizer: adam, learning_rate: 0.05, normalize: true, shuffle: false}\n"
    )
    t = train(spec, out=tmp_path / "m.model.json")
    assert t.record.target_normalization is not None
    # The history is in the target's units, as the metrics are (not in standardised units).
    assert math.isclose(t.history[-1], t.record.metrics["train"]["loss"], rel_tol=0.5, abs_tol=1.0)
    assert t.history[0] > 100  # the first epoch's error, in raw units, is large
    r = run("show", str(tmp_path / "m.model.json"))
    assert r.exit_code == 0, r.output
    # The target's scaling is folded into the formula like the input's: one line a * x + b.
    slope, const = r.output.strip().split(" * x + ")
    assert abs(float(slope) - 300) < 3 and abs(float(const) - 1000) < 5
    r = run("predict", str(tmp_path / "m.model.json"), "x=2")
    assert r.exit_code == 0, r.output
    assert abs(float(r.output.split()[-1]) - 1600) < 20


def test_show_cuts_a_long_formula_and_says_how_to_see_it(tmp_path: Path) -> None:
    spec = tmp_path / "wide.yaml"
    names = [f"x{i}" for i in range(64)]
    spec.write_text(f"inputs: [{', '.join(names)}]\nlayers: [{{linear: 16, activation: relu}}, {{linear: 1}}]\n")
    r = run("show", str(spec))
    assert r.exit_code == 0, r.output
    assert "--full prints all of it" in r.output and len(r.output) < 5000
    r = run("show", str(spec), "--full")
    assert r.exit_code == 0 and len(r.output) > 5000 and "--full prints" not in r.output


def test_divergence_message_says_what_is_scaled(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    write_csv(tmp_path / "d.csv", ["x", "y"], [[x, 1e6 * x] for x in range(30)])
    spec.write_text(
        "inputs: [x]\ntarget: y\ndata: d.csv\noutput: {linear: [x]}\ntraining: {epochs: 50, learning_rate: 10.0}\n"
    )
    r = run("train", str(spec), "-o", str(tmp_path / "m.model.json"))
    assert r.exit_code == 1, r.output
    assert "diverged" in r.output and "standardises the target too" in r.output
    assert not (tmp_path / "m.model.json").exists()


# ----------------------------------------------------------------- missing and text cells


def test_one_hot_recodes_text_and_unknown_values_are_named() -> None:
    t = Table("t.csv", ["size", "color", "y"], [[1.0, "red", 0.0], [2.0, "blue", 1.0], [3.0, "red", 0.0]])
    rec = plan(t, ["size", "color"], one_hot=True)
    assert rec.inputs == ["size", "color_blue", "color_red"]
    out = recode(t, rec)
    assert out.columns == ["size", "color_blue", "color_red", "y"]
    assert out.rows[1] == [2.0, 1.0, 0.0, 1.0]
    with pytest.raises(DataError, match="'green' is not one of the values"):
        recode(Table("u.csv", ["size", "color", "y"], [[1.0, "green", 0.0]]), rec)
    assert not Recoding()


def _text_table(tmp_path: Path, empty: bool) -> Path:
    rng = random.Random(1)
    rows: list[list[object]] = []
    for i in range(90):
        color = ["red", "green", "blue"][i % 3]
        x = round(rng.uniform(-1, 1), 3)
        rows.append([x if not (empty and i == 5) else "", color, int(color == "red")])
    return write_csv(tmp_path / "c.csv", ["x", "color", "label"], rows)


def test_text_inputs_one_hot_and_missing_drop_train_and_predict_raw_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _text_table(tmp_path, empty=True)
    spec = tmp_path / "c.yaml"
    base = "inputs: [x, color]\ntarget: label\ndata: c.csv\nlayers: [{linear: 1, activation: sigmoid}]\nloss: bce\n"
    spec.write_text(base + "training: {epochs: 60, optimizer: adam, learning_rate: 0.1}\n")
    r = run("train", "c.yaml", "-o", "m.model.json")
    assert r.exit_code == 1 and "c.csv, line 2, column 'color': the input is 'red', not a number" in r.output
    spec.write_text(base + "training: {epochs: 60, optimizer: adam, learning_rate: 0.1, text_inputs: one_hot}\n")
    r = run("train", "c.yaml", "-o", "m.model.json")
    assert r.exit_code == 1 and "c.csv, line 7, column 'x': the input is empty" in r.output
    spec.write_text(
        base + "training: {epochs: 60, optimizer: adam, learning_rate: 0.1, missing: drop, text_inputs: one_hot}\n"
    )
    r = run("train", "c.yaml", "-o", "m.model.json")
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "m.model.json").read_text())
    assert rec["inputs"] == ["x", "color_blue", "color_green", "color_red"]
    assert rec["data"]["rows"] == 89
    write_csv(tmp_path / "new.csv", ["x", "color"], [[0.1, "red"], [0.2, "blue"]])
    r = run("predict", "m.model.json", "--data", "new.csv")
    assert r.exit_code == 0, r.output
    r = run("eval", "m.model.json", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["accuracy"] == 1.0
    # eval says what the policy did: the row with an empty cell was left out, as in training.
    assert "left out 1 of 90 rows of c.csv with a missing cell" in r.stderr


def test_text_input_without_one_hot_keeps_todays_error(tmp_path: Path) -> None:
    _text_table(tmp_path, empty=False)
    spec = tmp_path / "c.yaml"
    spec.write_text("inputs: [x, color]\ntarget: label\ndata: c.csv\nlayers: [{linear: 1, activation: sigmoid}]\n")
    r = run("train", str(spec), "-o", str(tmp_path / "m.model.json"))
    assert r.exit_code == 1
    assert "column 'color': the input is 'red', not a number" in r.output
    assert not (tmp_path / "m.model.json").exists()


def test_a_text_column_without_one_hot_names_the_setting_that_takes_it(tmp_path: Path) -> None:
    _text_table(tmp_path, empty=False)
    spec = tmp_path / "c.yaml"
    spec.write_text("inputs: all\ntarget: label\ndata: c.csv\nlayers: [{linear: 1, activation: sigmoid}]\n")
    r = run("train", str(spec), "-o", str(tmp_path / "m.model.json"))
    assert r.exit_code == 1
    assert "c.csv, line 2, column 'color': the input is 'red', not a number" in r.output
    assert "training.text_inputs: one_hot" in " ".join(r.output.split()), r.output
    assert not (tmp_path / "m.model.json").exists()


def test_bad_values_of_the_new_keys_are_pointed_errors(tmp_path: Path) -> None:
    spec = tmp_path / "c.yaml"
    spec.write_text("inputs: [x]\noutput: {linear: [x]}\ntraining: {missing: skip}\n")
    r = run("train", str(spec), "--data", "f2c")
    assert r.exit_code == 1 and "training.missing" in r.output and "Allowed: error, drop" in r.output


def test_a_model_file_with_a_bad_target_scaling_is_refused(tmp_path: Path) -> None:
    train(Path(__file__).resolve().parent.parent / "models" / "diabetes.yaml", out=tmp_path / "d.model.json")
    doc = json.loads((tmp_path / "d.model.json").read_text())
    doc["target_normalization"] = [150.0, -1.0]
    (tmp_path / "e.model.json").write_text(json.dumps(doc))
    r = run("predict", str(tmp_path / "e.model.json"), *["1"] * 10)
    assert r.exit_code == 1, r.output
    assert "target_normalization does not fit" in r.output and "Traceback" not in r.output


def test_check_and_trace_resolve_inputs_all_from_the_specs_data(tmp_path: Path) -> None:
    header, rows = blobs(30)
    write_csv(tmp_path / "b.csv", header, rows)
    spec = tmp_path / "b.yaml"
    spec.write_text(
        "inputs: [{range: ['a 1', 'b 1']}]\ntarget: kind\ndata: b.csv\nlayers: [{linear: 3}, {softmax: true}]\n"
    )
    r = run("check", str(spec))
    assert r.exit_code == 0, r.output
    r = run("trace", str(spec), "--steps", "1")
    assert r.exit_code == 0, r.output
    assert "a_1" in r.output and "b_2" not in r.output


def test_init_reads_missing_value_markers_as_missing_and_warns_of_typos_in_number_columns(tmp_path: Path) -> None:
    """`NA` in number columns (R writes them) is a missing cell (issue 26: it was text that stopped
    training), and one typo does not make the column text to one-hot: init says where it is and
    training stops there, naming it (line 6's missing cells are filled)."""
    rows = [f"{i},{i * 1.5},{'red' if i % 2 else 'blue'},{i % 3}" for i in range(20)]
    rows[4] = "NA,NA,red,1"
    rows[9] = "9,1O.5,blue,2"
    (tmp_path / "t.csv").write_text("a,b,colour,y\n" + "\n".join(rows) + "\n")
    r = run("init", str(tmp_path / "t.csv"), "-o", str(tmp_path / "t.yaml"))
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "column 'a'" not in out and "'NA'" not in out
    assert "column 'b' holds numbers, but '1O.5' (" in out and "t.csv, line 11) is text:" in out
    spec = (tmp_path / "t.yaml").read_text()
    assert "text_inputs: one_hot   # text columns: colour\n" in spec and "missing: fill" in spec
    r = run("train", str(tmp_path / "t.yaml"), "-o", str(tmp_path / "m.json"))
    assert r.exit_code == 1 and "t.csv, line 11, column 'b': the input is '1O.5', not a number" in r.output


def test_init_leaves_out_a_column_of_names(tmp_path: Path) -> None:
    rows = [f"car {i},{50 + 7 * i},{10 + (i * 37) % 20}" for i in range(30)]
    (tmp_path / "cars.csv").write_text("model,hp,mpg\n" + "\n".join(rows) + "\n")
    r = run("init", str(tmp_path / "cars.csv"), "-o", str(tmp_path / "cars.yaml"), "--target", "mpg")
    assert r.exit_code == 0 and "left out of the inputs: model" in " ".join(r.output.split())
    assert 'inputs: ["hp"]' in (tmp_path / "cars.yaml").read_text()
    r = run("train", str(tmp_path / "cars.yaml"), "--epochs", "2", "-o", str(tmp_path / "m.json"), "-q")
    assert r.exit_code == 0, r.output


def test_one_hot_takes_text_columns_not_number_columns_with_a_typo(tmp_path: Path) -> None:
    """With text_inputs: one_hot a column of numbers with one text cell is no category: training
    names the cell (before, the typo made every price a category of its own)."""
    rows = [f"{i * 1.25},{'red' if i % 2 else 'blue'},{i}" for i in range(20)]
    rows[7] = "8.75x,red,7"
    (tmp_path / "p.csv").write_text("price,colour,y\n" + "\n".join(rows) + "\n")
    spec = "inputs: all\ntarget: y\ndata: p.csv\nlayers: [{linear: 1}]\ntraining: {epochs: 1, text_inputs: one_hot}\n"
    (tmp_path / "p.yaml").write_text(spec)
    r = run("train", str(tmp_path / "p.yaml"), "-o", str(tmp_path / "m.json"))
    assert r.exit_code == 1 and "p.csv, line 9, column 'price': the input is '8.75x', not a number" in r.output


def _colour_model(tmp_path: Path) -> str:
    """A model trained on c.csv (size, a text column colour, y) with colour one-hot; its path."""
    rows = [f"{i * 0.5},{['red', 'blue', 'green'][i % 3]},{i * 0.5 + (i % 3)}" for i in range(30)]
    (tmp_path / "c.csv").write_text("size,colour,y\n" + "\n".join(rows) + "\n")
    spec = "inputs: all\ntarget: y\ndata: c.csv\nlayers: [{linear: 1}]\ntraining: {epochs: 2, text_inputs: one_hot}\n"
    (tmp_path / "c.yaml").write_text(spec)
    model = str(tmp_path / "c.json")
    assert run("train", str(tmp_path / "c.yaml"), "-o", model, "-q").exit_code == 0
    return model


def test_predict_takes_a_text_columns_value_by_its_name(tmp_path: Path) -> None:
    """A one-hot column is typed as in the CSV (`colour=red`), as the card says predict takes it."""
    model = _colour_model(tmp_path)
    by_text = run("predict", model, "size=1.5", "colour=green")
    by_codes = run("predict", model, "size=1.5", "colour_blue=0", "colour_green=1", "colour_red=0")
    assert by_text.exit_code == 0 and by_text.stdout == by_codes.stdout, by_text.output
    r = run("predict", model, "size=1.5", "colour=pink")
    assert r.exit_code == 1 and "the value for 'colour' is 'pink', not one the model was trained on" in r.output
    assert "blue, green, red" in r.output


def test_predict_takes_a_column_whose_name_holds_an_equals_sign(tmp_path: Path) -> None:
    """`a=b=2` is the column `a=b` set to 2 when the model reads such a column (found by
    tests/test_agreement.py's drawn tables: it was 'unknown input a')."""
    write_csv(tmp_path / "eq.csv", ["a=b", "c", "y"], [[k / 4, (k * 3) % 5, k / 2 + (k * 3) % 5] for k in range(12)])
    (tmp_path / "eq.yaml").write_text("inputs: all\ntarget: y\ndata: eq.csv\nlayers: [{linear: 1}]\n")
    model = str(tmp_path / "eq.model.json")
    assert run("train", str(tmp_path / "eq.yaml"), "-o", model, "-q").exit_code == 0
    by_column = run("predict", model, "a=b=2", "c=1")
    by_input = run("predict", model, "a_b=2", "c=1")
    assert by_column.exit_code == 0 and by_column.stdout == by_input.stdout, by_column.output


def test_predict_data_writes_the_predictions_beside_the_columns_as_read(tmp_path: Path) -> None:
    """With one-hot inputs the CSV written keeps the user's text columns (not the 0/1 columns)."""
    model = _colour_model(tmp_path)
    r = run("predict", model, "--data", str(tmp_path / "c.csv"))
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "size,colour,y,prediction" and lines[1].startswith("0.0,red,0.0,") and len(lines) == 31
