"""A new user's walkthrough, checked: the README's simplify and explain walkthroughs run as
written, the terminal loss curve fits 80 columns (or says why it is left out), simplify says
what its tolerance means, sweep's CSV has no duplicate column, and a missing dataset or spec
file gets a hint when the file the user meant is right there."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from treegrad.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def readme_commands(heading: str) -> list[tuple[list[str], str]]:
    """The treegrad commands of the first sh block under `heading` in README.md, with their comments."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        command, _, comment = line.partition("  #")
        assert command.startswith(".venv/bin/treegrad "), line
        commands.append((shlex.split(command)[1:], comment.strip()))
    return commands


@pytest.fixture()
def fresh_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder like the repository's root (models/ and datasets/) and nothing trained yet."""
    for folder in ("models", "datasets"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("heading", ["A shorter formula: `simplify`", "Why a prediction: `explain`"])
def test_the_readme_walkthrough_runs_as_written(fresh_checkout: Path, heading: str) -> None:
    """Every command of the walkthrough succeeds in order in a fresh checkout: each model file it
    uses is made by a command before it (it used law.model.json and lin.model.json, which no
    README command made: "no such model file")."""
    commands = readme_commands(heading)
    assert any(args[0] == "train" for args, _ in commands)
    for args, comment in commands:
        if "--plot" in args and importlib.util.find_spec("matplotlib") is None:
            continue  # the plot extra is not installed here
        result = runner.invoke(app, args)
        assert result.exit_code == 0, f"{shlex.join(args)}\n{result.output}"
        formula = re.fullmatch(r"(\d.*)", comment)  # a comment that is the printed formula
        if formula:
            assert formula.group(1) in result.output
        if comment.startswith("contributions"):
            numbers = re.findall(r"-?\d+", comment)  # "contributions 3 and -2"
            assert args[:2] == ["explain", "lin.model.json"]
            explained = runner.invoke(app, [*args, "--json"])
            got = json.loads(explained.output)["contributions"]
            assert got == pytest.approx([float(n) for n in numbers], abs=1e-3)
