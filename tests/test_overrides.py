"""`--set KEY=VALUE` for any spec key by its dotted path, and `sweep --grid` over the same keys
(issue 11, item 5): checked by the spec's own models, errors placed at the option, exit 2 and
nothing written for a bad one."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from treegrad.errors import SettingError
from treegrad.spec.reading import Source
from treegrad.spec.settings import apply, load, parse_assignment, parse_key

MODELS = Path(__file__).resolve().parent.parent / "models"
runner = CliRunner()


def run(*args: str) -> Any:
    from treegrad.cli import app

    return runner.invoke(app, list(args))


@pytest.fixture
def xor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "xor.yaml"
    shutil.copy(MODELS / "xor.yaml", spec)
    return spec


def test_keys_resolve_from_the_top_level_or_under_training() -> None:
    assert parse_key("layers.0.linear", "--set") == ("layers", "0", "linear")
    assert parse_key("inputs", "--set") == ("inputs",)
    assert parse_key("training.early_stopping.patience", "--set") == ("training", "early_stopping", "patience")
    # A bare training setting keeps working as before: it is read under training:.
    assert parse_key("learning_rate", "--set") == ("training", "learning_rate")
    with pytest.raises(SettingError, match="unknown key 'inptus' — did you mean 'inputs'"):
        parse_key("inptus", "--set")
    with pytest.raises(SettingError, match="is not a key"):
        parse_key("layers..linear", "--set")


def test_values_are_read_as_a_spec_file_reads_them() -> None:
    # YAML 1.2, as in spec files: 1e-3 is a number (PyYAML's 1.1 made it the text '1e-3'), `no` is text.
    assert parse_assignment("learning_rate=1e-3", "--set") == (("training", "learning_rate"), [0.001])
    assert parse_assignment("target=no", "--set") == (("target",), ["no"])
    assert parse_assignment("inputs=[a, b]", "--set") == (("inputs",), [["a", "b"]])
    with pytest.raises(SettingError, match="inputs: cannot read the value '&a \\[x\\]'"):
        parse_assignment("inputs=&a [x]", "--set")  # anchors are refused, as in a spec file


def test_apply_copies_and_records_where_each_value_came_from() -> None:
    data: dict[str, Any] = {"layers": [{"linear": 8}, {"linear": 1}]}
    source = Source("m.yaml")
    out = apply(
        data, [(("layers", "0", "linear"), 3), (("training", "early_stopping", "patience"), 5)], source, "--set"
    )
    assert out == {"layers": [{"linear": 3}, {"linear": 1}], "training": {"early_stopping": {"patience": 5}}}
    assert data == {"layers": [{"linear": 8}, {"linear": 1}]}  # the original is untouched
    # The list index is an index; a key the change created is given by it, from there down.
    assert source.given == {("layers", 0, "linear"): "--set", ("training",): "--set"}
    assert source.where(("training", "early_stopping", "patience")) == "--set"


def test_set_changes_the_model_and_the_model_file_describes_it(xor: Path) -> None:
    r = run("train", str(xor), "--set", "layers.0.linear=3", "--set", "epochs=4", "-q", "-o", "a.model.json")
    assert r.exit_code == 0, r.output
    doc = json.loads(Path("a.model.json").read_text())
    assert doc["training"]["epochs"] == 4 and len(doc["history"]["train"]) == 4
    assert len(doc["parameters"]) == 2 * 3 + 3 + 3 + 1  # 2 inputs -> 3 units -> 1
    embedded = yaml.safe_load(doc["spec_text"])
    assert embedded["layers"][0] == {"linear": 3, "activation": "tanh"}
    assert doc["spec_text"].startswith("# xor.yaml with --set layers.0.linear=3 --set training.epochs=4\n")
    assert "linear: 8" in xor.read_text()  # the spec file itself is not changed
    shown = run("show", "a.model.json")  # the model file opens: its spec is the model trained
    assert shown.exit_code == 0, shown.output


def test_a_training_only_change_is_in_the_embedded_spec(xor: Path) -> None:
    """Issue 26: a training-only --set kept the file's own text, whose old value then read as the
    run's (the model file's spec said learning_rate 0.01 of a run at 0.05)."""
    spec, text = load(xor, [(("training", "epochs"), 3)])
    assert spec.training.epochs == 3 and text.startswith("# xor.yaml with --set training.epochs=3\n")
    assert yaml.safe_load(text)["training"]["epochs"] == 3
    r = run("train", str(xor), "--set", "learning_rate=0.05", "--epochs", "2", "-q", "-o", "b.model.json")
    assert r.exit_code == 0, r.output
    doc = json.loads(Path("b.model.json").read_text())
    assert yaml.safe_load(doc["spec_text"])["training"]["learning_rate"] == doc["training"]["learning_rate"] == 0.05


def test_print_config_shows_target_inputs_and_data_as_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rows = [f"{i},{i % 3},{2 * i},{'ab'[i % 2]},{i % 5}" for i in range(20)]
    (tmp_path / "other.csv").write_text("p,q,r,kind,quality\n" + "\n".join(rows) + "\n")
    spec = tmp_path / "m.yaml"
    spec.write_text("inputs: [x]\nlayers: [{linear: 1}]\ndata: f2c\ntarget: c\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    r = run(
        "train", str(spec), "--set", "data=other.csv", "--set", "target=quality", "--set", "inputs=[p, r]",
        "--set", "training.early_stopping.patience=10", "--set", "validation_split=0.25", "--print-config",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    shown = yaml.safe_load(r.stdout)
    assert shown["data"] == str((tmp_path / "other.csv").resolve())  # relative to the spec, as in the file
    assert shown["target"] == "quality" and shown["inputs"] == ["p", "r"]
    assert shown["training"]["early_stopping"] == {"patience": 10}
    assert shown["training"]["validation_split"] == 0.25 and shown["training"]["epochs"] == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    r = run("train", str(spec), "--set", "data=other.csv", "--set", "target=quality", "--set", "inputs=all")
    assert r.exit_code == 1 and "kind" in r.output  # inputs: all takes the text column too, as in a file


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("inptus=all", "unknown key 'inptus' — did you mean 'inputs'?"),
        ("training.early_stopping.patiense=3", "training.early_stopping.patiense: unknown key 'patiense'"),
        ("layers.5.linear=3", "layers has items 0 to 1; there is no item 5"),
        ("layers.first.linear=3", "layers is a list: pick an item by its index, e.g. layers.0.linear"),
        ("training.epochs.x=1", "training.epochs is a single value (the number 100), not a group of keys"),
        ("layers.0.activation=tahn", "layers[0].activation: the text 'tahn' is not allowed — did you mean 'tanh'?"),
        ("layers.0.linear=0", "layers[0].linear: must be greater than or equal to 1"),
        ("epochs=[1", "training.epochs: cannot read the value '[1'"),
        ("layers=3", "layers: expected a list, found the number 3"),
        ("name=../x", "name: the name '../x' cannot be used"),
    ],
)
def test_a_bad_set_exits_2_naming_the_key_and_writes_nothing(xor: Path, setting: str, message: str) -> None:
    before = sorted(p.name for p in xor.parent.iterdir())
    r = run("train", str(xor), "--set", setting, "-q")
    assert r.exit_code == 2, r.output
    text = " ".join(r.output.replace("│", " ").split())  # the usage box wraps long messages
    assert message in text and "Traceback" not in r.output
    assert "xor.yaml:" not in text  # placed at the option, not at a line of the file
    assert sorted(p.name for p in xor.parent.iterdir()) == before


def test_a_setting_given_by_its_option_and_by_set_is_refused(xor: Path) -> None:
    r = run("train", str(xor), "--epochs", "3", "--set", "epochs=4", "--print-config")
    assert r.exit_code == 2 and "training.epochs is also given by --epochs" in r.output


def test_a_problem_the_set_causes_elsewhere_is_still_the_specs(xor: Path) -> None:
    """A value that is fine where it is set, but leaves the spec inconsistent, is a spec error (exit 1)."""
    r = run("train", str(xor), "--set", "layers=[{linear: 3}]", "--print-config")
    assert r.exit_code == 1 and "3 values" in r.output and "Traceback" not in r.output
    line = xor.parent / "line.yaml"
    line.write_text("inputs: [x, y]\noutput: {add: [{mul: [param, x]}, {mul: [param, y]}, param]}\ndata: xor\n")
    r = run("train", str(line), "--set", "inputs=[x]", "--set", "target=label", "--print-config")
    text = " ".join(r.output.split())
    assert r.exit_code == 1 and "line.yaml:2:" in text and "unknown name 'y'" in text  # located in the file
    assert '(in the spec as changed by --set inputs=["x"] --set target=label)' in text


def test_sweep_grids_any_spec_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "w.yaml"
    spec.write_text(
        "inputs: [x, y]\nlayers: [{linear: 2, activation: tanh}, {linear: 1, activation: sigmoid}]\n"
        "loss: bce\ndata: xor:40\ntarget: label\ntraining: {epochs: 2, learning_rate: 0.1}\n"
    )
    r = run("sweep", str(spec), "--grid", "layers.0.linear=2,5", "--grid", "learning_rate=0.1", "--csv", "r.csv")
    assert r.exit_code == 0, r.output
    with open("r.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["layers.0.linear"] for row in rows] == ["2", "5"]
    assert [row["training.learning_rate"] for row in rows] == ["0.1", "0.1"]
    assert all(not row["error"] for row in rows)
    assert int(rows[0]["formula_length"]) < int(rows[1]["formula_length"])  # 5 units print longer than 2
    bad = run("sweep", str(spec), "--grid", "layers.0.linear=2,0", "--csv", "s.csv")
    bad_text = " ".join(bad.output.replace("│", " ").split())  # the usage box wraps long messages
    assert bad.exit_code == 2 and "'--grid': layers[0].linear: must be greater than or equal to 1" in bad_text
    assert not Path("s.csv").exists()
