"""The README's lists of choices are the tables': optimizers, losses, ops, activations, schedules,
engines and output formats. A new entry in a table fails here until the README names it too, so
the reader's reference never lags the code (the help text and the spec's choices are derived from
the tables and need no such check)."""

from __future__ import annotations

import re
from pathlib import Path

from treegrad.core.ops import OPS
from treegrad.engine.losses import LOSSES
from treegrad.engine.optim import OPTIMIZERS
from treegrad.engine.schedules import SCHEDULES
from treegrad.outputs.formats import offered
from treegrad.run.options import ENGINES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def choices(pattern: str) -> list[str]:
    """The `a|b|c` (or `a \\| b`, `a | b`) list the one README match of `pattern` captures."""
    found = re.findall(pattern, README)
    assert len(found) == 1, f"{pattern!r} found {len(found)} times in README.md"
    return [c.strip() for c in re.split(r"\\?\|", found[0]) if c.strip()]


def test_the_optimizers() -> None:
    assert choices(r"optimizer: sgd +# (.+)") == list(OPTIMIZERS)
    assert choices(r"--optimizer ([\w\\|]+)\]") == list(OPTIMIZERS)


def test_the_losses() -> None:
    assert choices(r"\nloss: \w+ +# ([\w |]+) \(default") == list(LOSSES)


def test_the_ops_of_one_argument() -> None:
    unary = [name for name, op in OPS.items() if op.arity == 1]
    assert choices(r"`\{(neg\|[\w|]+): expr\}`") == unary


def test_the_activations() -> None:
    activations = [name for name, op in OPS.items() if op.activation]
    assert choices(r"activation: ((?:\w+\|)+none)\}\}") == [*activations, "none"]


def test_the_schedules() -> None:
    comment = README[README.index("lr_schedule: null") : README.index("class_weight: null")]
    assert re.findall(r"\{type: (\w+)", comment) == list(SCHEDULES)


def test_the_engines() -> None:
    assert choices(r"--engine ([\w\\|]+)\]") == list(ENGINES)


def test_the_output_formats() -> None:
    assert choices(r"SPEC \[--format ([\w\\|]+)\]") == [f.name for f in offered("show")]
    assert choices(r"export MODEL\.json --format ([\w\\|]+) -o") == [f.name for f in offered("export")]


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    """`.ci/run` is the README's second set-up command, word for word, so CI checks what a new
    contributor runs (an extra added to one and not the other made CI skip what the README ran)."""
    commands = re.findall(r"```sh\n(python3 -m venv .venv && .+)\n```", README)
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert len(commands) == 2 and "pytest" in commands[1], commands
    assert ci[-1] == commands[1]
