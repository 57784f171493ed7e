"""What a new user of `init`, `train` and `predict` met on a table of their own (penguins-like:
a column name with spaces, a text column, whole numbers, NA cells): predictions written beside
their cells as they wrote them, warnings that name their columns, `init --help` that names its
argument, and a value left empty on the command line filled as the model fills a missing cell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

runner = CliRunner()

ROWS = [
    ("Biscoe", 39.1, 181, 3750, "male"),
    ("Dream", 39.5, 186, 3800, "female"),
    ("Biscoe", 40.3, 195, 3250, "female"),
    ("Torgersen", 36.7, 193, 3450, "NA"),
    ("Dream", 39.3, 190, 3650, "male"),
    ("Biscoe", 38.9, 181, 3625, "female"),
    ("Torgersen", 39.2, 195, 4675, "male"),
    ("Dream", 41.1, 182, 3200, "female"),
]
HEADER = "island,bill length (mm),flipper_length_mm,body_mass_g,sex"


def run(*args: str) -> Any:
    from treegrad.cli import app

    return runner.invoke(app, list(args))


def flat(text: str) -> str:
    """A message as one line, whatever box or width it was printed in."""
    return " ".join(text.replace("│", " ").split())


@pytest.fixture()
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A regression of body_mass_g on the other columns, trained as init writes it (3 epochs)."""
    monkeypatch.chdir(tmp_path)
    lines = [HEADER.replace(",body_mass_g", "") + ",body_mass_g"]
    lines += [f"{i},{b},{f},{s},{m}" for i, b, f, m, s in ROWS]
    (tmp_path / "birds.csv").write_text("\n".join(lines) + "\n")
    assert run("init", "birds.csv", "--target", "body_mass_g", "-o", "birds.yaml").exit_code == 0
    r = run("train", "birds.yaml", "--epochs", "3", "-q")
    assert r.exit_code == 0, r.output
    return tmp_path / "birds.model.json"


def test_predict_writes_whole_numbers_of_the_csv_as_written(model: Path) -> None:
    new = model.parent / "new.csv"
    new.write_text("island,bill length (mm),flipper_length_mm,sex,body_mass_g\nDream,39.5,186,female,3800\n")
    r = run("predict", str(model), "--data", "new.csv", "--out", "out.csv")
    assert r.exit_code == 0, r.output
    header, row = (model.parent / "out.csv").read_text().splitlines()
    assert row.startswith("Dream,39.5,186,female,3800,"), row  # not 186.0 and 3800.0
    printed = run("predict", str(model), "--data", "new.csv").stdout.splitlines()
    assert printed == [header, row]  # the same text on stdout


def test_range_warnings_name_the_csv_column_not_the_renamed_input(model: Path) -> None:
    r = run("predict", str(model), "island=Dream", "bill length (mm)=400", "flipper_length_mm=186", "sex=male")
    assert r.exit_code == 0, r.output
    assert "input 'bill length (mm)' is 400, far outside its training range" in r.stderr, r.stderr
    assert "bill_length_mm" not in r.stderr
    new = model.parent / "new.csv"
    new.write_text("island,bill length (mm),flipper_length_mm,sex,body_mass_g\n" + "Dream,400,186,female,3800\n" * 2)
    for command in ("predict", "eval"):
        r = run(command, str(model), "--data", "new.csv")
        assert r.exit_code == 0, r.output
        assert "input 'bill length (mm)': 2 of 2 rows far outside" in r.stderr, r.stderr


def test_init_help_names_its_argument() -> None:
    r = run("init", "--help")
    assert r.exit_code == 0
    assert "{data}" not in r.output and "DATA" in r.output, r.output


@pytest.mark.parametrize("empty", ["sex=", "sex=NA", "sex= "])
def test_an_empty_value_is_filled_as_the_model_fills_a_missing_cell(model: Path, empty: str) -> None:
    import json

    fill = json.loads(model.read_text())["fill"]
    typed = ["island=Dream", "bill length (mm)=39.5", "flipper_length_mm=186"]
    r = run("predict", str(model), *typed, empty)
    assert r.exit_code == 0, r.output
    same = run("predict", str(model), *typed, f"sex={fill['sex']}")
    assert r.stdout == same.stdout
    assert f"'sex' is missing: filled with '{fill['sex']}'" in flat(r.stderr), r.stderr
    r = run("predict", str(model), "island=Dream", "bill length (mm)=", "flipper_length_mm=186", "sex=male")
    assert r.exit_code == 0, r.output
    assert f"filled with {fill['bill length (mm)']:.6g}" in flat(r.stderr), r.stderr


def test_an_empty_value_without_a_fill_policy_says_what_to_give(model: Path) -> None:
    spec = model.parent / "birds.yaml"
    spec.write_text(spec.read_text().replace("missing: fill", "missing: drop"))
    assert run("train", "birds.yaml", "--epochs", "1", "-q", "-o", "drop.model.json").exit_code == 0
    r = run("predict", "drop.model.json", "island=Dream", "bill length (mm)=39.5", "flipper_length_mm=186", "sex=")
    assert r.exit_code == 1 and "Traceback" not in r.output
    message = flat(r.output)
    assert "the value for 'sex' is missing" in message and "training.missing: drop" in message, message


def test_values_in_column_order_for_a_model_with_text_columns(model: Path) -> None:
    named = run("predict", str(model), "island=Dream", "bill length (mm)=39.5", "flipper_length_mm=186", "sex=male")
    r = run("predict", str(model), "Dream", "39.5", "186", "male")
    assert r.exit_code == 0, r.output
    assert r.stdout == named.stdout


def test_init_leaving_out_an_id_column_writes_inputs_that_train(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An Auto MPG-like table (UCI): a car's name in every row is left out, and the list of the
    other columns held 'model year', which train refused as no usable input name."""
    monkeypatch.chdir(tmp_path)
    rows = [f"{20 + i % 7},{4 + 2 * (i % 3)},{2000 + 37 * i},{70 + i % 13},{1 + i % 3},car {i}" for i in range(40)]
    (tmp_path / "auto.csv").write_text("mpg,cylinders,weight,model year,origin,car name\n" + "\n".join(rows) + "\n")
    r = run("init", "auto.csv", "--target", "mpg")
    assert r.exit_code == 0, r.output
    assert "car name" in flat(r.stderr)  # said to be left out
    r = run("train", "auto.yaml", "--epochs", "2", "-q")
    assert r.exit_code == 0, r.output
    import json

    assert json.loads((tmp_path / "auto.model.json").read_text())["inputs"] == [
        "cylinders",
        "weight",
        "model_year",
        "origin",
    ]
    # A left-out column between inputs splits them; the target and the id are not read.
    (tmp_path / "mid.csv").write_text(
        "a b,car name,mpg,c\n" + "".join(f"{i},car {i},{i % 5},{i * 2}\n" for i in range(40))
    )
    assert run("init", "mid.csv", "--target", "mpg").exit_code == 0
    r = run("train", "mid.yaml", "--epochs", "2", "-q")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "mid.model.json").read_text())["inputs"] == ["a_b", "c"]


@pytest.mark.parametrize(("command", "typo", "meant"), [("predict", "--dta", "--data"), ("explain", "--jsn", "--json")])
def test_a_mistyped_option_after_the_model_is_a_usage_error(model: Path, command: str, typo: str, meant: str) -> None:
    """Unknown options pass through as values (so that -40 is a number): `--dta new.csv` was two
    values, and the message counted them against the model's inputs."""
    r = run(command, str(model), typo, "new.csv")
    assert r.exit_code == 2 and "Traceback" not in r.output
    message = flat(r.output)
    assert f"{typo} is not an option of {command}; did you mean {meant}?" in message, message
    negative = run(command, str(model), "island=Dream", "bill length (mm)=-4", "flipper_length_mm=186", "sex=male")
    assert negative.exit_code == 0, negative.output


def test_asking_for_values_names_the_columns_of_the_data(model: Path) -> None:
    """A model with text and renamed columns asked for values by its inputs (island_Biscoe, ...,
    bill_length_mm, sex_female), which a user of the CSV does not have."""
    columns = "island, bill length (mm), flipper_length_mm, sex"
    for command in ("predict", "explain"):
        r = run(command, str(model))
        assert r.exit_code == 2
        assert f"give one value per input ({columns})" in flat(r.output), r.output
    r = run("predict", str(model), "island=Dream", "flipper_length_mm=186")
    assert r.exit_code == 1
    assert f"missing value(s) for bill length (mm), sex; the model's inputs are {columns}" in flat(r.output), r.output


def test_init_counts_one_row_without_a_target_in_the_singular(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lines = [f"{i % 4},{'NA' if i == 3 else i * 0.5},{'NA' if i == 5 else i % 3}" for i in range(30)]
    (tmp_path / "t.csv").write_text("a,b,label\n" + "\n".join(lines) + "\n")
    r = run("init", "t.csv")
    assert r.exit_code == 0, r.output
    spec = (tmp_path / "t.yaml").read_text()
    assert "missing: fill   # and the row without a target is left out" in spec, spec  # was 'the 1 rows ... are'
    r = run("train", "t.yaml", "--epochs", "1", "-q")
    assert r.exit_code == 0, r.output


def test_the_most_frequent_value_of_a_text_column_counts_categories_that_look_like_numbers() -> None:
    """missing: fill counted only the cells that were not numbers, so a grade '10' given five
    times lost to 'a', given once: the missing grade was filled with 'a'."""
    from treegrad.data.missing import fill_values
    from treegrad.data.table import Table

    grades: list[Any] = [10.0] * 5 + list("abcdefghij") + [""]
    table = Table("g.csv", ["x", "grade"], rows=[[float(i), g] for i, g in enumerate(grades)])
    assert fill_values(table, ["grade"], {"grade"}, range(len(grades))) == {"grade": "10"}


def test_the_exported_module_fills_a_missing_cell_as_predict_does(model: Path) -> None:
    """The Python module raised on the rows predict fills ("could not convert string to float:
    'NA'", "'' is not one of the values"): it now reads a missing cell as the model file says."""
    import csv
    import importlib.util

    rows = list(csv.DictReader((model.parent / "birds.csv").open()))
    rows[1]["bill length (mm)"] = ""  # a number column's missing cell beside the text column's NA
    with (model.parent / "gaps.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    r = run("predict", str(model), "--data", "gaps.csv", "--out", "out.csv")
    assert r.exit_code == 0, r.output
    written = list(csv.DictReader((model.parent / "out.csv").open()))  # body_mass_g: init made it classes
    assert run("export", str(model), "--format", "python", "-o", "birds_model.py").exit_code == 0
    spec = importlib.util.spec_from_file_location("birds_model", model.parent / "birds_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    probabilities = [module.predict_row(row) for row in rows]
    assert [max(p) for p in probabilities] == pytest.approx([float(w["probability"]) for w in written], rel=1e-9)
    best = [module.CLASSES[p.index(max(p))] for p in probabilities]
    assert best == [w["prediction"] for w in written]
    assert {"sex", "bill length (mm)"} <= set(module.FILL) and "NA" in module.MISSING
