"""The command line derives its training options, its rules and its help from the library's tables
(run/options.py OVERRIDES and ENGINES, the settings record, the optimizers), so that a new entry
changes the command line with no edit there; and the cli package stays thin."""

from __future__ import annotations

import ast
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from treegrad.cli import app
from treegrad.engine.optim import OPTIMIZERS
from treegrad.engine.settings import Training
from treegrad.errors import OptionError
from treegrad.run import options
from treegrad.run.options import ENGINES, OVERRIDES, Asked, Engine, check_train, setting_docs

runner = CliRunner()
CLI = Path(__file__).resolve().parents[1] / "src" / "treegrad" / "cli"


def flat(output: str) -> str:
    """Output as one line: help and usage errors are drawn in boxes, wrapped at the terminal's width."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", output).split())


def help_of(command: str) -> str:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return flat(result.output)


def kind_of(annotation: Any) -> type:
    """What a setting holds, read from its annotation: int, float, str or bool (None and bounds left out)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return kind_of(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = {kind_of(a) for a in typing.get_args(annotation) if a is not type(None)}
        assert len(kinds) == 1, annotation
        return kinds.pop()
    if typing.get_origin(annotation) is typing.Literal:
        return type(typing.get_args(annotation)[0])
    assert isinstance(annotation, type), annotation
    return annotation


@pytest.mark.parametrize("override", OVERRIDES, ids=lambda o: o.field)
def test_each_override_is_a_training_setting_and_reads_its_kind(override: options.Override) -> None:
    assert override.field in Training.model_fields
    assert override.kind is kind_of(Training.model_fields[override.field].annotation)


def test_the_descriptions_read_from_the_source_are_the_settings_docstrings() -> None:
    from treegrad.spec.models import spec_schema

    described = spec_schema()["$defs"]["Training"]["properties"]
    assert setting_docs() == {name: field["description"] for name, field in described.items()}


def test_train_help_gives_each_override_its_settings_description_and_the_optimizers() -> None:
    text = help_of("train")
    for o in OVERRIDES:
        assert o.declarations[0].split("/")[0] in text
        assert flat(setting_docs()[o.field]).rstrip(".") in text, o.field
        assert f"Overrides training.{o.field}." in text
    assert "|".join(OPTIMIZERS) in text


def test_a_new_optimizer_shows_in_the_help_with_no_cli_edit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OPTIMIZERS, "rmsprop", OPTIMIZERS["sgd"])
    assert "sgd|momentum|adam|rmsprop" in help_of("train")


def test_engine_and_device_help_come_from_the_engines() -> None:
    text = help_of("train")
    for e in ENGINES.values():
        assert f"{e.name} ({e.doc})" in text
    assert "With --engine torch: cpu or cuda." in text
    more = {**ENGINES, "jax": Engine("jax", "JAX", ("cpu", "tpu"), data_parallel=True)}
    with pytest.MonkeyPatch.context() as m:
        m.setattr(options, "ENGINES", more)
        assert "jax (JAX)" in options.engine_help() and "With --engine jax: cpu or tpu." in options.device_help()


def asked(**given: Any) -> Asked:
    fields: dict[str, Any] = {
        "spec": Path("m.yaml"),
        "target": None,
        "overrides": options.override_values({}),
        "sets": [],
        "resume": None,
        "init_from": None,
        "engine": "treegrad",
        "device": "cpu",
    }
    return Asked(**(fields | given))


OPTION_VALUES = {int: "3", float: "0.5", str: "adam"}


@pytest.mark.parametrize("override", [o for o in OVERRIDES if not o.resumed], ids=lambda o: o.field)
def test_resume_refuses_every_override_that_makes_another_run(override: options.Override) -> None:
    given = [override.flag] if override.kind is bool else [override.flag, OPTION_VALUES[override.kind]]
    # The check comes before the model file is read: it need not exist.
    result = runner.invoke(app, ["train", "--resume", "gone.json", *given])
    assert result.exit_code == 2, result.output
    assert f"{override.flag} would make it another run" in flat(result.output)


def test_what_a_resumed_run_takes_is_named_by_the_table() -> None:
    resumed = asked(spec=None, resume=Path("m.json"), overrides=options.override_values({"epochs": 5}))
    check_train(resumed, 1)  # --epochs: how many more
    with pytest.raises(OptionError, match=r"--batch-size would make it another run.*\(--epochs, -o and --data"):
        check_train(asked(spec=None, resume=Path("m.json"), overrides={"batch_size": 4}), 1)


@pytest.mark.parametrize(
    ("given", "processes", "option", "message"),
    [
        ({"spec": None}, 1, "SPEC", "give the SPEC to train"),
        ({"engine": "jax"}, 1, "--engine", "unknown engine 'jax'; use treegrad or torch"),
        ({"device": "cuda"}, 1, "--device", "--device needs --engine torch"),
        ({"engine": "torch", "device": "tpu"}, 1, "--device", "unknown device 'tpu'; use cpu or cuda"),
        ({}, 2, "--engine", "torchrun started 2 processes, but treegrad (its own engine) trains in one"),
        ({"spec": None, "resume": Path("m.json")}, 2, "--resume", "run it without torchrun"),
    ],
)
def test_options_that_cannot_go_together(given: dict[str, Any], processes: int, option: str, message: str) -> None:
    with pytest.raises(OptionError, match=re.escape(message)) as e:
        check_train(asked(**given), processes)
    assert e.value.option == option


def test_under_torchrun_each_data_parallel_engine_is_allowed() -> None:
    for e in ENGINES.values():
        if e.data_parallel:
            check_train(asked(engine=e.name), 4)
        else:
            with pytest.raises(OptionError, match="Add --engine torch to train data-parallel"):
                check_train(asked(engine=e.name), 4)


# ----------------------------------------------------------------- the cli stays thin

# The library modules a cli module may import when it is imported (every command pays for them):
# the ground's light ones, torchrun's two variables, the table the train options are built from,
# and the table of output formats that show's and export's --format help is built from.
LIGHT = {"errors", "limits", "data.parts", "run.options", "outputs.formats"}
MAX_COMMAND_LINES = 80  # a command: its options, its docstring, one library call and the rendering
# The library modules one command reaches (itself or through its module's helpers): its one
# call, and at most one more (bench measures, then lays out the table). The exceptions, with why:
MAX_LIBRARY_MODULES = 2
REACHING_FURTHER = {
    # The torch layer sits above run: the cli joins torchrun's group and makes the torch trainer,
    # run prepares and trains; --print-config and --log-dir are runlog's, the next: hint values';
    # --live serves the report page as it trains (outputs.live, a layer above run).
    "train": 6,
}


def cli_modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(CLI.glob("*.py"))]


def library_imports(node: ast.AST) -> set[str]:
    """The parts of treegrad outside the cli that `node` imports from (`from ..run import options`: run)."""
    return {n.module or "" for n in ast.walk(node) if isinstance(n, ast.ImportFrom) and n.level == 2}


def is_command(f: ast.FunctionDef) -> bool:
    return any("app.command" in ast.unparse(d) for d in f.decorator_list)


def reached(tree: ast.Module, command: ast.FunctionDef) -> set[str]:
    """The library modules a command imports, itself or through the helpers of its module it uses."""
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef) and not is_command(f)}
    found: set[str] = set()
    seen: set[str] = set()
    todo = [command]
    while todo:
        f = todo.pop()
        if f.name not in seen:
            seen.add(f.name)
            found |= library_imports(f)
            todo += [functions[n.id] for n in ast.walk(f) if isinstance(n, ast.Name) and n.id in functions]
    return found


def test_the_cli_imports_only_light_library_modules_when_imported() -> None:
    for path, tree in cli_modules():
        top = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.level == 2]
        heavy = {n.module for n in top} - LIGHT
        assert not heavy, f"{path.name} imports {heavy} on every command: import it in the command that needs it"


def test_commands_are_thin() -> None:
    commands = 0
    for path, tree in cli_modules():
        for f in tree.body:
            if isinstance(f, ast.FunctionDef):
                assert f.end_lineno is not None and f.end_lineno - f.lineno < 80, f"{path.name}: {f.name} is long"
            if isinstance(f, ast.FunctionDef) and is_command(f):
                commands += 1
                assert f.end_lineno is not None and f.end_lineno - f.lineno < MAX_COMMAND_LINES, f.name
                modules = reached(tree, f)
                most = REACHING_FURTHER.get(f.name, MAX_LIBRARY_MODULES)
                assert len(modules) <= most, f"{f.name} reaches into {sorted(modules)}: move the work into the library"
        assert len(path.read_text(encoding="utf-8").splitlines()) <= 600, path.name
    assert commands == len(app.registered_commands)


def test_the_commands_allowed_to_reach_further_still_do() -> None:
    """An exception that is no longer needed is dropped (or lowered), so that the list stays true."""
    reach = {
        f.name: len(reached(tree, f)) for _, tree in cli_modules() for f in tree.body if isinstance(f, ast.FunctionDef)
    }
    for name, most in REACHING_FURTHER.items():
        assert reach[name] == most > MAX_LIBRARY_MODULES, (name, reach[name])
