"""The options of `train` that decide which run it is, as tables, and the rules derived from them.

`OVERRIDES` names the training settings that have an option of their own (`--epochs` sets
`training.epochs` for one run): the option's name, what it reads and its help come from the
settings record (engine/settings.py `Training`), so a new entry is one line here. `ENGINES` holds
what each `--engine` is, the devices it runs on and whether it trains data-parallel. From both,
`check_train` refuses what cannot go together: a resumed run given what would make it another run,
a device the engine does not run on, an engine torchrun cannot start.

This module is read when the command line is built, on every command: it imports nothing heavy
(its records are named tuples, which cost a tenth of a dataclass to define), and reads the
settings' descriptions from their source only when `train --help` shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import OptionError


def _optimizers() -> Iterable[str]:
    from ..engine.optim import OPTIMIZERS

    return OPTIMIZERS


class Override(NamedTuple):
    """A training setting that `train` takes as an option of its own, for one run."""

    field: str  # its name in the settings record (Training)
    kind: type  # what the option reads: int, float, str or bool (a --x/--no-x flag)
    alias: str | None = None  # a second, short name
    resumed: bool = False  # a resumed run takes it (--epochs: how many more); every other one makes another run
    choices: Callable[[], Iterable[str]] | None = None  # the table its values come from

    @property
    def flag(self) -> str:
        """The option's name: the setting's, with dashes (`--learning-rate`), as `--set` clashes name it."""
        return "--" + self.field.replace("_", "-")

    @property
    def declarations(self) -> tuple[str, ...]:
        """The option's names as declared: a bool is a `--x/--no-x` flag."""
        if self.kind is bool:
            return (f"{self.flag}/--no-{self.flag[2:]}",)
        return (self.flag, self.alias) if self.alias else (self.flag,)

    def help(self) -> str:
        """The setting's own description (its docstring in engine/settings.py), its choices, and its key."""
        text = setting_docs()[self.field].rstrip(".")
        if self.choices is not None:
            text += ": " + "|".join(self.choices())
        return f"{text}. Overrides training.{self.field}."


OVERRIDES = (
    Override("epochs", int, resumed=True),
    Override("learning_rate", float, alias="--lr"),
    Override("batch_size", int),
    Override("optimizer", str, choices=_optimizers),
    Override("seed", int),
    Override("validation_split", float),
    Override("normalize", bool),
    Override("l1", float),
    Override("l2", float),
    Override("clip_norm", float),
)


@cache  # one reading of the source for every option's help
def setting_docs() -> dict[str, str]:
    """Each training setting's description: the docstring under its field in engine/settings.py,
    read from the source (importing the module would import pydantic and the engine, which
    `train --help` must not)."""
    import ast
    import importlib.util
    import inspect

    found = importlib.util.find_spec("..engine.settings", __package__)
    assert found is not None and found.origin is not None
    tree = ast.parse(Path(found.origin).read_text(encoding="utf-8"))
    body = next(node.body for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Training")
    return {
        field.target.id: inspect.cleandoc(doc.value.value)
        for field, doc in zip(body, body[1:])
        if isinstance(field, ast.AnnAssign)
        and isinstance(field.target, ast.Name)
        and isinstance(doc, ast.Expr)
        and isinstance(doc.value, ast.Constant)
        and isinstance(doc.value.value, str)
    }


class Engine(NamedTuple):
    """What trains a run: `--engine NAME`."""

    name: str
    doc: str
    devices: tuple[str, ...]  # what --device may name, the first the default
    data_parallel: bool  # under torchrun, each process trains on its part of the data


ENGINES = {
    e.name: e
    for e in (
        Engine("treegrad", "its own engine", ("cpu",), data_parallel=False),
        Engine("torch", "PyTorch; data-parallel under torchrun", ("cpu", "cuda"), data_parallel=True),
    )
}
DEFAULT_ENGINE = "treegrad"
DEFAULT_DEVICE = "cpu"


def engine_help() -> str:
    """--engine's help, from the table."""
    return " or ".join(f"{e.name} ({e.doc})" for e in ENGINES.values()) + "."


def device_help() -> str:
    """--device's help, from the table."""
    return "; ".join(
        f"With --engine {e.name}: {' or '.join(e.devices)}." for e in ENGINES.values() if len(e.devices) > 1
    )


class Asked(NamedTuple):
    """What `train` was given that decides which run it is (None or empty: not given)."""

    spec: Path | None
    target: str | None
    overrides: Mapping[str, Any]  # a value or None for each OVERRIDES field
    sets: Sequence[str]
    resume: Path | None
    init_from: Path | None
    engine: str
    device: str

    def out(self, name: str) -> Path:
        """Where the model goes without -o: NAME.model.json, or for a resumed run MODEL.resumed.json
        (a resumed run never replaces the file it continues)."""
        return self.resume.with_suffix(".resumed.json") if self.resume else Path(f"{name}.model.json")

    def changes(self) -> list[str]:
        """The options that make a run other than a recorded one: its spec and target, its settings
        (every override but those a resumed run takes), its starting parameters, its engine."""
        given: list[tuple[str, object]] = [("SPEC", self.spec), ("--target", self.target)]
        given += [(o.flag, self.overrides.get(o.field)) for o in OVERRIDES if not o.resumed]
        given += [("--set", self.sets or None), ("--init-from", self.init_from)]
        given += [("--engine", None if self.engine == DEFAULT_ENGINE else self.engine)]
        given += [("--device", None if self.device == DEFAULT_DEVICE else self.device)]
        return [flag for flag, value in given if value is not None]


def check_train(asked: Asked, processes: int) -> None:
    """Refuse, as an OptionError, options of `train` that cannot go together: a resumed run given
    what would make it another run, no spec, an unknown engine, a device the engine does not run on,
    and under torchrun (`processes` > 1) a resumed run or an engine that trains in one process."""
    if asked.resume is not None:
        changing = asked.changes()
        if changing:
            resumable = ", ".join(o.flag for o in OVERRIDES if o.resumed)
            raise OptionError(
                f"--resume continues the run recorded in the model file with its own spec, data and settings; "
                f"{', '.join(changing)} would make it another run. Drop {'it' if len(changing) == 1 else 'them'} "
                f"({resumable}, -o and --data with the same rows are allowed), or start a new run from its "
                "parameters: treegrad train SPEC --init-from MODEL.json",
                "--resume",
            )
    elif asked.spec is None:
        raise OptionError("give the SPEC to train, or --resume MODEL.json to continue a saved run", "SPEC")
    engine = ENGINES.get(asked.engine)
    if engine is None:
        raise OptionError(f"unknown engine '{asked.engine}'; use {' or '.join(ENGINES)}", "--engine")
    if asked.device not in engine.devices:
        able = [e.name for e in ENGINES.values() if asked.device in e.devices]
        if not able:
            devices = dict.fromkeys(d for e in ENGINES.values() for d in e.devices)
            raise OptionError(f"unknown device '{asked.device}'; use {' or '.join(devices)}", "--device")
        raise OptionError(
            f"--device needs --engine {' or '.join(able)}; {engine.name} ({engine.doc}) runs on "
            f"the {' or '.join(d.upper() for d in engine.devices)}",
            "--device",
        )
    if processes > 1 and asked.resume is not None:
        raise OptionError(
            f"torchrun started {processes} processes, but --resume continues a run in one process: "
            "run it without torchrun",
            "--resume",
        )
    if processes > 1 and not engine.data_parallel:
        parallel = " or ".join(f"--engine {e.name}" for e in ENGINES.values() if e.data_parallel)
        raise OptionError(
            f"torchrun started {processes} processes, but {engine.name} ({engine.doc}) trains in one: each would "
            f"train the whole run and write the same file. Add {parallel} to train data-parallel, or run treegrad "
            "without torchrun",
            "--engine",
        )


def override_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides of a command line: each OVERRIDES setting's value, None where not given."""
    return {o.field: values.get(o.field) for o in OVERRIDES}
