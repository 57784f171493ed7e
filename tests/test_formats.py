"""The table of output formats (outputs/formats.py) is what `show` and `export` offer: every row
goes through its commands for an example model, what `export -o` writes carries the mark of its
row's kind (and no other), the commands' help and messages list the table, and every maker is a
function of an outputs/ module listed before the table. A row whose optional package is missing
is skipped, saying which package."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from test_layout import layout
from treegrad import files
from treegrad.cli import app
from treegrad.core.printers import funcify
from treegrad.outputs.formats import FORMATS, Format, offered, render
from treegrad.run.modelfile import open_model

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

F2C = """\
name: f2c
inputs: [f]
output: {add: [{mul: [param, f]}, param]}
data: f2c:20
target: c
training: {epochs: 2, learning_rate: 0.01, shuffle: false}
"""
IRIS = ROOT / "models" / "iris.yaml"  # a softmax over layers: a list of outputs, classes


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A trained model file (one output) and a spec of a softmax classifier."""
    folder = tmp_path_factory.mktemp("formats")
    (folder / "f2c.yaml").write_text(F2C)
    trained = folder / "f2c.model.json"
    result = invoke("train", str(folder / "f2c.yaml"), "--out", str(trained), "--quiet")
    assert result.exit_code == 0, result.output
    return [trained, IRIS]


def needs(fmt: Format) -> None:
    """Skip, naming the package, when the format's optional package is missing."""
    if fmt.needs is not None:
        pytest.importorskip(fmt.needs, reason=f"--format {fmt.name} needs {fmt.needs}, which is not installed")


def words(text: str) -> str:
    """The text's words, one space apart, outside the frame rich draws around a usage error."""
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("fmt", offered("show"), ids=lambda f: f.name)
def test_show_prints_every_format_it_offers(models: list[Path], fmt: Format) -> None:
    needs(fmt)
    for model in models:
        result = invoke("show", str(model), "--format", fmt.name, "--full")
        assert result.exit_code == 0, result.output
        opened = open_model(model)
        if fmt.show == "file":  # the text export writes, as it is
            assert result.stdout == render(opened, fmt.name)
        elif fmt.show == "formula":
            assert words(result.stdout) == words(funcify(opened.root, format=fmt.name))
        else:  # the node graph, every parameter by its name
            graph = opened.root.compiled_graph
            assert all(p.name in result.stdout for p in graph.params) and len(result.stdout.splitlines()) > 2


@pytest.mark.parametrize("fmt", offered("export"), ids=lambda f: f.name)
def test_export_writes_every_format_it_offers_as_its_kind(models: list[Path], tmp_path: Path, fmt: Format) -> None:
    needs(fmt)
    for model in models:
        out = tmp_path / f"{model.stem}{fmt.suffix}"
        result = invoke("export", str(model), "--format", fmt.name, "-o", str(out))
        assert result.exit_code == 0, result.output
        written = out.read_bytes()
        assert [k for k in files.KINDS if files.is_kind(written, k)] == [fmt.kind]  # so -o may write it again
        assert invoke("export", str(model), "--format", fmt.name, "-o", str(out)).exit_code == 0
        printed = invoke("export", str(model), "--format", fmt.name)
        if fmt.binary:
            assert printed.exit_code == 2 and f"-o model{fmt.suffix}" in words(printed.output), printed.output
        else:
            assert printed.exit_code == 0 and printed.stdout.encode() == written


def test_the_commands_offer_the_table_and_say_so() -> None:
    for command in ("show", "export"):
        names = [f.name for f in offered(command)]  # type: ignore[arg-type]
        helped = words(invoke(command, "--help").output)
        assert all(name in helped for name in names), (command, helped)
        refused = invoke(command, str(IRIS), "--format", "html")
        assert refused.exit_code == 2 and f"use one of {', '.join(names)}" in words(refused.output), refused.output


def test_every_row_is_offered_and_complete() -> None:
    assert set(FORMATS) == {f.name for f in offered("show")} | {f.name for f in offered("export")}
    for fmt in FORMATS.values():
        if fmt.kind is not None:  # an export: a maker, a suffix, and a kind files.py knows by its mark
            assert fmt.make and fmt.suffix.startswith(".") and fmt.kind in files.KINDS and fmt.kind.marks, fmt
        if fmt.show == "file":
            assert fmt.kind is not None and not fmt.binary, fmt
        if not fmt.make:  # drawn by the command line or printed as a formula, never exported
            assert fmt.kind is None and fmt.show in ("formula", "tree"), fmt


def test_every_maker_is_a_function_of_an_outputs_module_before_the_table() -> None:
    """Makers are named as text (so that --help imports none of them); they keep the layers all the
    same: a module of outputs/ listed before formats.py in the README's Layout."""
    order = layout()
    for fmt in FORMATS.values():
        if not fmt.make:
            continue
        module, _, function = fmt.make.partition(":")
        assert order.index(f"outputs.{module}") < order.index("outputs.formats"), fmt.make
        maker = getattr(importlib.import_module(f"treegrad.outputs.{module}"), function)
        assert inspect.isfunction(maker) and inspect.getdoc(maker), fmt.make
        assert len(inspect.signature(maker).parameters) >= (2 if fmt.rounds else 1), fmt.make


def test_reading_the_table_imports_no_maker() -> None:
    """show's and export's --help read the table on every command: it must load none of the makers
    (nor the model file's pydantic models they need)."""
    code = "import json, sys, treegrad.outputs.formats; print(json.dumps([m for m in sys.modules if 'treegrad.' in m]))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    assert set(loaded) <= {"treegrad.errors", "treegrad.files", "treegrad.outputs", "treegrad.outputs.formats"}, loaded
