"""Real tables as practitioners have them (issue 26): init never guesses the target, names the model
after the spec, and sets a missing-value policy that trains; predict and eval follow the model's
policy, say what it did, and name the CSV's own columns."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from treegrad.cli import app, program

runner = CliRunner()
README = Path(__file__).resolve().parent.parent / "README.md"


def run(*args: str) -> object:
    return runner.invoke(app, list(args))


def flat(text: str) -> str:
    """Output with rich's wrapping and box borders folded away, for phrase checks."""
    return " ".join(text.replace("│", " ").split())


# Penguin-like rows: a text label first, a text category, numbers; some cells missing.
HEADER = "species,island,bill,mass,sex"
ROWS = [
    ("Adelie", "Torgersen", 39.1, 3750, "male"),
    ("Adelie", "Dream", 38.2, 3400, "female"),
    ("Gentoo", "Biscoe", 47.5, 5200, "male"),
    ("Gentoo", "Biscoe", 45.1, 4900, "female"),
    ("Chinstrap", "Dream", 50.2, 3800, "male"),
    ("Chinstrap", "Dream", 46.9, 3500, "female"),
]


def penguins(path: Path, n: int = 60, gaps: bool = True) -> Path:
    lines = [HEADER]
    for i in range(n):
        s, island, bill, mass, sex = ROWS[i % len(ROWS)]
        cells = [s, island, f"{bill + (i % 5) * 0.1:.1f}", str(mass + (i % 7) * 10), sex]
        if gaps and i == 7:
            cells[4] = ""  # a missing text cell
        if gaps and i == 11:
            cells[2] = ""  # a missing number
        if gaps and i == 13:
            cells[0] = ""  # a missing target
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


# ----------------------------------------------------------------- no silent target


def test_init_without_target_asks_for_it_and_lists_the_columns(tmp_path: Path) -> None:
    """The target was the last column, silently (penguins -> `year`): now init asks, exit 2."""
    data = penguins(tmp_path / "p.csv")
    r = run("init", str(data), "-o", str(tmp_path / "p.yaml"))
    assert r.exit_code == 2, r.output
    out = flat(r.output)
    assert "no column named like a target" in out and "--target COLUMN" in out
    assert "species (text: 3 values, 1 missing)" in out and "mass (numbers)" in out
    assert "sex (text: 2 values, 1 missing)" in out
    assert not (tmp_path / "p.yaml").exists()


def test_init_takes_a_column_named_like_a_target_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("Label,a,b\n" + "".join(f"{i % 2},{i},{i * 2 % 5}\n" for i in range(20)))
    r = run("init", str(tmp_path / "t.csv"), "-o", str(tmp_path / "t.yaml"))
    assert r.exit_code == 0, r.output
    assert "of 'Label' (named like a target; --target COLUMN for another)" in flat(r.output)
    assert 'target: "Label"' in (tmp_path / "t.yaml").read_text()


def test_init_with_two_columns_named_like_a_target_asks(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,label,y\n" + "".join(f"{i},{i % 2},{i % 3}\n" for i in range(20)))
    r = run("init", str(tmp_path / "t.csv"), "-o", str(tmp_path / "t.yaml"))
    assert r.exit_code == 2 and "several columns named like a target (label, y)" in flat(r.output)


# ----------------------------------------------------------------- the model is named after the spec


def recipe(after: str) -> list[list[str]]:
    """The treegrad commands of the README's first `sh` block after the text `after`, as argument lists."""
    text = README.read_text(encoding="utf-8")
    block = text[text.index(after) :].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        for part in line.split(" && "):
            words = shlex.split(part, comments=True)
            if words and words[0] == ".venv/bin/treegrad":
                commands.append(words[1:])
    return commands


def test_the_readmes_own_csv_recipe_runs_as_written_on_penguins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its third line failed (eval my_model.model.json, but train had named the model after the CSV),
    and penguins as released did not train ('NA' is no number): now the recipe runs unedited, and the
    held-out accuracy is the README's."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "datasets").mkdir()
    shutil.copy(README.parent / "datasets" / "penguins.csv", tmp_path / "datasets")
    commands = recipe("A CSV of your own, from nothing")
    assert [c[0] for c in commands] == ["init", "train", "eval"]
    for args in commands:
        r = run(*args)
        assert r.exit_code == 0, (args, r.output)
    record = json.loads((tmp_path / "my_model.model.json").read_text())
    validation = record["metrics"]["validation"]
    assert (validation["rows"], round(validation["accuracy"], 3)) == (69, 0.986)  # the README's 98.6 %
    assert record["training"]["missing"] == "fill" and record["data"]["rows"] == 344
    assert "accuracy" in r.output


def test_the_model_is_named_after_the_spec_init_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README: `init my_table.csv -o my_model.yaml`, `train my_model.yaml`, `eval my_model.model.json`
    (the model was named after the CSV, so eval found no file); without -o the spec is my_table.yaml."""
    monkeypatch.chdir(tmp_path)
    penguins(tmp_path / "my_table.csv")
    r = run("init", "my_table.csv", "-o", "my_model.yaml", "--target", "species")
    assert r.exit_code == 0, r.output
    assert "it writes my_model.model.json" in flat(r.output)
    assert run("train", "my_model.yaml", "--epochs", "3", "-q").exit_code == 0
    assert run("eval", "my_model.model.json", "--json").exit_code == 0
    r = run("init", "my_table.csv", "--target", "species")
    assert r.exit_code == 0 and (tmp_path / "my_table.yaml").is_file()
    assert "treegrad train my_table.yaml   (it writes my_table.model.json" in (tmp_path / "my_table.yaml").read_text()


# ----------------------------------------------------------------- missing values: the policy


@pytest.fixture
def filled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model trained from init's spec of a table with missing cells (policy: fill)."""
    monkeypatch.chdir(tmp_path)
    penguins(tmp_path / "p.csv")
    r = run("init", "p.csv", "--target", "species")
    assert r.exit_code == 0, r.output
    assert "missing: fill" in (tmp_path / "p.yaml").read_text()
    r = run("train", "p.yaml", "--epochs", "40")
    assert r.exit_code == 0, r.output
    out = flat(r.output)
    assert "left out 1 of 60 rows of p.csv" in out and "filled 2 missing input cells" in out
    return tmp_path / "p.model.json"


def test_fill_is_recorded_and_predict_fills_as_training_did(filled: Path) -> None:
    rec = json.loads(filled.read_text())
    assert set(rec["fill"]) == {"island", "bill", "mass", "sex"} and rec["fill"]["sex"] in ("male", "female")
    bills = [
        float(line.split(",")[2]) for line in (filled.parent / "p.csv").read_text().splitlines()[1:] if ",," not in line
    ]
    assert min(bills) < rec["fill"]["bill"] < max(bills)
    new = filled.parent / "new.csv"
    new.write_text(f"{HEADER}\n,Dream,,3800,\nGentoo,Biscoe,47.0,5100,male\n")
    r = run("predict", str(filled), "--data", str(new))
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    cells = lines[1].split(",")
    assert len(lines) == 3 and cells[:3] == ["", "Dream", ""] and cells[4] == ""  # the user's cells, as they were
    assert "filled 2 missing input cells of" in flat(r.stderr)
    r = run("eval", str(filled), "--data", str(new), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rows"] == 1
    assert "left out 1 of 2 rows" in flat(r.stderr)


def test_predict_names_the_csvs_column_not_an_encoded_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """policy error: one empty cell in a text column named `sex_female`, a column not in the CSV."""
    monkeypatch.chdir(tmp_path)
    penguins(tmp_path / "p.csv", gaps=False)
    spec = tmp_path / "p.yaml"
    spec.write_text(
        "data: p.csv\ntarget: species\ninputs: all\nlayers: [{linear: 3}, {softmax: true}]\n"
        "training: {epochs: 2, text_inputs: one_hot, normalize: true}\n"
    )
    assert run("train", "p.yaml", "-q").exit_code == 0
    (tmp_path / "new.csv").write_text(f"{HEADER}\nAdelie,Dream,39.0,3700,\n")
    r = run("predict", "p.model.json", "--data", "new.csv")
    assert r.exit_code == 1
    out = flat(r.output)
    assert "new.csv, line 2, column 'sex': the input is missing" in out and "sex_" not in out


def test_eval_under_drop_says_how_many_rows_it_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    penguins(tmp_path / "p.csv")
    (tmp_path / "p.yaml").write_text(
        "data: p.csv\ntarget: species\ninputs: all\nlayers: [{linear: 3}, {softmax: true}]\n"
        "training: {epochs: 2, text_inputs: one_hot, normalize: true, missing: drop}\n"
    )
    r = run("train", "p.yaml")
    assert r.exit_code == 0, r.output
    assert "left out 3 of 60 rows of p.csv with a missing cell (training.missing is drop)" in flat(r.output)
    r = run("eval", "p.model.json")
    assert r.exit_code == 0, r.output
    assert "left out 3 of 60 rows of p.csv" in flat(r.stderr)
    r = run("predict", "p.model.json", "--data", "p.csv")
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 1 + 58  # the row without a target is predicted
    assert "left out 2 of 60 rows" in flat(r.stderr)


def test_the_hint_after_training_names_the_csvs_columns(filled: Path) -> None:
    r = run("train", "p.yaml", "--epochs", "1", "-o", "again.model.json", "--force")
    assert r.exit_code == 0, r.output
    assert "treegrad predict again.model.json island=... bill=... mass=... sex=..." in flat(r.output)


# ----------------------------------------------------------------- the smaller items


def test_log_dir_makes_its_parent_folders_and_the_card_trains_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--log-dir runs/a/b failed for want of runs/a; the card's reproduce command, run as given after a
    --log-dir run, was refused (the folder holds a run)."""
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "f.yaml"
    spec.write_text("inputs: [f]\noutput: {add: [{mul: [param, f]}, param]}\ndata: f2c\ntarget: c\n")
    argv = ["train", "f.yaml", "--epochs", "3", "--log-dir", "runs/a/b", "-q"]
    monkeypatch.setattr(program, "command_line", ["treegrad", *argv])  # as main() records it
    r = run(*argv)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "runs/a/b/metrics.csv").is_file()
    monkeypatch.setattr(program, "command_line", None)
    card = run("card", "f.model.json").stdout
    command = card.split("## Reproduce", 1)[1].split("```sh\n", 1)[1].split("\n", 1)[0]
    assert "--log-dir" not in command and command.startswith(f"cd {tmp_path} && treegrad train f.yaml")
    again = run(*shlex.split(command.split(" && ", 1)[1])[1:])
    assert again.exit_code == 0, again.output
    (tmp_path / "afile").write_text("")
    r = run("train", "f.yaml", "--epochs", "3", "--log-dir", "afile/x", "-q")
    assert r.exit_code == 1 and "afile is a file, not a folder" in r.output


def test_a_second_sweep_of_another_grid_keeps_the_firsts_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.yaml").write_text(
        "inputs: [f]\noutput: {add: [{mul: [param, f]}, param]}\ndata: f2c:20\ntarget: c\ntraining: {epochs: 2}\n"
    )
    assert run("sweep", "f.yaml", "--grid", "learning_rate=0.1,0.01").exit_code == 0
    again = run("sweep", "f.yaml", "--grid", "learning_rate=0.1,0.01")  # the same sweep again: its own CSV
    assert again.exit_code == 0, again.output
    first = (tmp_path / "f.sweep.csv").read_text()
    for grid in ("learning_rate=0.3", "batch_size=1,2"):
        r = run("sweep", "f.yaml", "--grid", grid)
        assert r.exit_code == 1 and "holds the 2 runs of an earlier sweep" in flat(r.output), r.output
        assert (tmp_path / "f.sweep.csv").read_text() == first
    assert run("sweep", "f.yaml", "--grid", "learning_rate=0.3", "--force").exit_code == 0
    assert "0.3" in (tmp_path / "f.sweep.csv").read_text()


def test_the_dead_relu_advice_does_not_ask_to_normalise_normalised_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = "inputs: [f]\noutput: {relu: {add: [{mul: [param, f]}, {param: -100}]}}\ndata: f2c:20\ntarget: c\n"
    (tmp_path / "f.yaml").write_text(text + "training: {epochs: 2, normalize: true}\n")
    r = run("train", "f.yaml", "-q")
    assert r.exit_code == 0 and "(dead)" in r.output
    assert "Try another seed or a smaller learning rate" in flat(r.output) and "normalize" not in r.output
    (tmp_path / "f.yaml").write_text(text + "training: {epochs: 2}\n")
    assert "or normalize the inputs" in flat(run("train", "f.yaml", "-q", "--force").output)
