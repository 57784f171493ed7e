"""Start-up cost: what a command imports before it does anything.

Each check runs in a fresh interpreter and looks at `sys.modules`, not at the clock: the
command line must not pull in the spec machinery (pydantic, PyYAML, the spec models) or
NumPy until a command needs them, and the spec models are built on first use, not at import.
`import treegrad` imports none of the package's modules until a public name is used, and
`predict` on a saved model imports neither NumPy nor the help and table renderers.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "pydantic",
    "yaml",
    "numpy",
    "treegrad.spec.models",
    "treegrad.spec.reading",
    "treegrad.run.modelfile",
    "treegrad.run.prepare",
    "treegrad.run.train",
)


def imported_after(code: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    """Which of `heavy` a fresh interpreter has imported after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout.strip().splitlines()[-1]))


def run_cli(args: list[str]) -> str:
    """The code that runs the command line with `args` in a fresh interpreter (as `treegrad ARGS`)."""
    call = f"from treegrad.cli import app\ntry:\n    app({args!r})\n"
    return call + "except SystemExit as e:\n    assert not e.code, e.code\n"


def test_importing_the_package_imports_none_of_its_modules() -> None:
    code = "import treegrad\nours = [m for m in sys.modules if m.startswith('treegrad.')]\nassert not ours, ours"
    assert imported_after(f"import sys\n{code}") == []


def test_every_public_name_resolves_and_fit_stays_the_function() -> None:
    # `fit` is both a submodule and the function it defines: importing the submodule, directly
    # or through a module that uses it, must not turn `treegrad.fit` into the module.
    code = (
        "import types, treegrad\n"
        "from treegrad import *\n"
        "import treegrad.engine.fit\n"
        "from treegrad.run import prepare, train\n"
        "assert callable(treegrad.fit) and not isinstance(treegrad.fit, types.ModuleType), treegrad.fit\n"
        "assert treegrad.fit is sys.modules['treegrad.engine.fit'].fit is fit\n"
        "assert treegrad.Add is sys.modules['treegrad.core.nodes'].Add\n"
        "assert all(hasattr(treegrad, n) for n in treegrad.__all__)\n"
        "assert set(treegrad.__all__) <= set(dir(treegrad))\n"
    )
    imported_after(f"import sys\n{code}")


def test_an_unknown_name_is_an_attribute_error() -> None:
    import treegrad

    with pytest.raises(AttributeError, match="no attribute 'fitt'"):
        treegrad.fitt  # noqa: B018 - the lookup is the test


# The library's engine: what `import treegrad` used to import, and --help does not need.
ENGINE = tuple(
    f"treegrad.{m}"
    for m in ("core.ops", "core.nodes", "core.graph", "engine.compiled", "engine.fit", "engine.vectorized")
)


def test_help_imports_no_engine() -> None:
    assert all(importlib.util.find_spec(m) for m in (*ENGINE, *HEAVY[3:])), "the modules named here exist as named"
    assert (
        imported_after(
            run_cli(["--help"]), ENGINE + ("treegrad.data.table", "treegrad.data.readers", "treegrad.core.printers")
        )
        == []
    )
    # (a command's --help imports pydantic all the same: Typer 0.29 coerces values through it)
    ours = tuple(m for m in HEAVY if m != "pydantic")
    assert imported_after(run_cli(["train", "--help"]), ENGINE + ours) == []


def test_predict_on_a_saved_model_imports_no_numpy_and_no_renderers(tmp_path: Path) -> None:
    model = tmp_path / "f2c.json"
    spec = Path(__file__).parent.parent / "models" / "f2c.yaml"
    train = run_cli(["train", str(spec), "--epochs", "2", "--out", str(model)])
    subprocess.run([sys.executable, "-c", train], capture_output=True, text=True, timeout=120, check=True)
    unneeded = (
        "numpy",
        "rich.table",
        "rich.markdown",
        "rich.progress",
        "typer.rich_utils",
        "treegrad.outputs.plotting",
    )
    assert imported_after(run_cli(["predict", str(model), "32"]), unneeded) == []
    # and the path is real: predict did load the model through the spec machinery
    assert imported_after(run_cli(["predict", str(model), "32"]), ("treegrad.run.modelfile",)) == [
        "treegrad.run.modelfile"
    ]


def test_commands_annotations_are_not_strings() -> None:
    # Typer evaluates string annotations (from `from __future__ import annotations`) on every
    # run, about 0.1 s of every command's start-up; the cli keeps them as objects.
    from treegrad.cli import app

    callbacks = [c.callback for c in app.registered_commands] + [app.registered_callback.callback]
    assert len(callbacks) > 10
    for callback in callbacks:
        assert callback is not None
        strings = [k for k, v in inspect.get_annotations(callback).items() if isinstance(v, str)]
        assert not strings, f"{callback.__name__}: {strings}"


def test_importing_the_cli_imports_no_spec_machinery() -> None:
    assert imported_after("import treegrad.cli") == []


def test_help_imports_no_spec_machinery() -> None:
    code = "from treegrad.cli import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass"
    assert imported_after(code) == []


def test_the_spec_models_are_built_on_first_use() -> None:
    code = (
        "import sys\nfrom treegrad.spec import models as spec\n"
        "assert not spec.Spec.__pydantic_complete__, 'built at import'\n"
        "spec.parse_spec('inputs: [f]\\noutput: {mul: [param, f]}\\n')\n"
        "assert spec.Spec.__pydantic_complete__"
    )
    assert "treegrad.spec.models" in imported_after(code)


def test_looking_up_a_submodule_does_not_read_the_op_table() -> None:
    # `from . import errors` inside the package asks treegrad's __getattr__ first; only a
    # capitalised name can be a node class, whose answer needs the op table
    assert imported_after("import treegrad\nfrom treegrad import errors, limits", ("treegrad.core.ops",)) == []
    assert imported_after("import treegrad\ntreegrad.Add", ("treegrad.core.ops",)) == ["treegrad.core.ops"]
