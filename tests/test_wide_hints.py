"""Hints stay readable with 64 inputs (issue 11, item 2): `init` -> `train` -> `show`/`predict`
on a digits-shaped CSV name a few inputs, say how many, and say where to see all of them."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from treegrad.errors import MAX_LISTED, listed

runner = CliRunner()
COLUMNS = [f"pixel_{i}" for i in range(64)]


def run(*args: str) -> Any:
    from treegrad.cli import app

    return runner.invoke(app, list(args))


def flat(text: str) -> str:
    """A message as one line, whatever box or width it was printed in."""
    return " ".join(text.replace("│", " ").split())


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained (2 epochs) from `init`'s spec of a 64-input, 3-class CSV."""
    folder = tmp_path_factory.mktemp("wide")
    rng = random.Random(0)
    lines = [",".join([*COLUMNS, "digit"])]
    for r in range(90):
        k = r % 3
        lines.append(",".join([*(str(round(rng.gauss(k * (i % 4), 1), 3)) for i in range(64)), "abc"[k]]))
    (folder / "digits.csv").write_text("\n".join(lines) + "\n")
    spec = folder / "d.yaml"
    assert run("init", str(folder / "digits.csv"), "-o", str(spec), "--target", "digit").exit_code == 0
    model = folder / "d.model.json"
    r = run("train", str(spec), "--epochs", "2", "-q", "-o", str(model))
    assert r.exit_code == 0, r.output
    return model


def test_listed_shows_the_ends_and_the_count() -> None:
    assert listed(["a", "b"]) == "a, b"
    assert listed(COLUMNS[:MAX_LISTED]) == ", ".join(COLUMNS[:MAX_LISTED])
    assert listed(COLUMNS) == (
        "pixel_0, pixel_1, pixel_2, pixel_3, pixel_4, pixel_5, pixel_6, pixel_7, ..., pixel_62, pixel_63 (64 in all)"
    )


def test_show_prints_the_start_of_a_long_formula_and_how_to_see_all(wide: Path) -> None:
    r = run("show", str(wide))
    assert r.exit_code == 0, r.output
    assert len(r.stdout) < 4200 and "--full prints all of it" in flat(r.stderr)
    assert len(run("show", str(wide), "--full").stdout) > 20_000


@pytest.mark.parametrize(
    ("values", "code", "words"),
    [
        ([], 2, "give one value per input (pixel_0, pixel_1,"),
        (["1", "2", "3"], 1, "the model takes 64 value(s), for pixel_0,"),
        (["pixel_0=1"], 1, "missing value(s) for pixel_1, pixel_2,"),
        (["pixel_0=1", "pixl_1=2"], 1, "unknown input 'pixl_1' — did you mean 'pixel_1'?"),
    ],
)
def test_predict_hints_name_a_few_inputs_and_where_all_are(
    wide: Path, values: list[str], code: int, words: str
) -> None:
    r = run("predict", str(wide), *values)
    assert r.exit_code == code, r.output
    text = flat(r.output)
    assert words in text and "(64 in all)" in text and 'the model file lists all the inputs under "inputs"' in text
    assert "pixel_30" not in text  # not all 64 names: a hint, not a dump
    assert len(text) < 600


def test_a_csv_without_an_input_column_lists_a_few_of_its_columns(wide: Path) -> None:
    lines = (wide.parent / "digits.csv").read_text().splitlines()
    (wide.parent / "less.csv").write_text("\n".join(line.split(",", 1)[1] for line in lines) + "\n")
    r = run("predict", str(wide), "--data", str(wide.parent / "less.csv"))
    assert r.exit_code == 1
    text = flat(r.output)
    assert "input column 'pixel_0' is not in" in text and "(64 in all)" in text and "pixel_30" not in text
