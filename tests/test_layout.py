"""The architecture can be read off the file list: the README's Layout section names every
module, in layers (ground modules, then one folder per layer), and a module imports only what
is listed before it there: the ground, the earlier layers, and the earlier modules of its own
folder. Imports inside functions count as well; the few deliberate exceptions are named here,
each with its reason."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "treegrad"

# In-function imports that point up on purpose, each with its reason. None is needed now: the node
# classes call the graph walks and printers, which ask a node its kind rather than its class, and
# a spec's `analysis` property runs checks that read the spec through a protocol of their own.
UPWARD_ON_PURPOSE: set[tuple[str, str]] = set()


@functools.cache
def _layout() -> tuple[str, ...]:
    """The modules in the README's Layout, in order, dotted below `treegrad` ('errors', 'core.ops')."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Layout") :]
    section = section[: section.index("\n## ")] if "\n## " in section else section
    order, folder = [], ""
    for line in section.splitlines():
        if m := re.match(r"^- (?:`(\w+)/`|ground)", line):
            folder = m.group(1) or ""
        elif m := re.match(r"^  - `(\w+)\.py`", line):
            order.append(f"{folder}.{m.group(1)}" if folder else m.group(1))
    return tuple(order)


def layout() -> list[str]:
    """The modules in the README's Layout, in order (read once: every test walks it)."""
    return list(_layout())


def layers() -> list[str]:
    """The folders in the Layout's order, the ground ('') first."""
    return list(dict.fromkeys(m.rpartition(".")[0] for m in layout()))


def source_modules() -> list[str]:
    """Every module file under src/treegrad, dotted ('core.ops'), leaving out the packages' own files."""
    return sorted(
        ".".join(p.relative_to(SRC).with_suffix("").parts) for p in SRC.rglob("*.py") if not p.name.startswith("__")
    )


def path_of(module: str) -> Path:
    return SRC.joinpath(*module.split(".")).with_suffix(".py")


def imports(path: Path, package: str) -> list[tuple[str, int, bool]]:
    """(name, line, run later) of every import in a file of `package`; see `_imports`."""
    return list(_imports(path, package))


@functools.cache  # the tests ask for each file's imports many times (400 parses in one of them)
def _imports(path: Path, package: str) -> tuple[tuple[str, int, bool], ...]:
    """(name, line, run later) of every import in a file of `package` ('' for the top, 'core', ...):
    treegrad's own (relative) imports as '.' and their place below treegrad ('.core.ops'), others as written."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_function = {  # run later than the module's import: in a function, or for type checkers alone
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        or (isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"))
        for child in ast.walk(node)
    }
    found = []
    for node in ast.walk(tree):
        inner = id(node) in in_function
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".") if package else []
            base = base[: len(base) - (node.level - 1)]
            module = ".".join([*base, *([node.module] if node.module else [])])
            for a in node.names:  # `from ..core import graph` imports the module core.graph
                name = f"{module}.{a.name}".lstrip(".")
                found.append(("." + (name if path_of(name).exists() else module), node.lineno, inner))
        elif isinstance(node, ast.ImportFrom) and node.module:  # ours are relative; `torch` is PyTorch
            found.append((node.module, node.lineno, inner))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno, inner) for a in node.names]
    return tuple(found)


def module_imports(module: str) -> list[tuple[str, int, bool]]:
    """The treegrad modules a module imports (a package import counts as its package)."""
    package = module.rpartition(".")[0]
    return [(name[1:], line, inner) for name, line, inner in imports(path_of(module), package) if name[0] == "."]


def test_every_module_has_its_line_in_the_readme() -> None:
    assert sorted(layout()) == source_modules(), "add a line for each new module to the README's Layout section"


def test_the_layers_are_the_folders() -> None:
    folders = sorted(p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert sorted(layers()) == ["", *folders]


def test_imports_point_inward() -> None:
    order, folders = layout(), layers()
    rank = {m: i for i, m in enumerate(order)}
    upward = []
    for m in order:
        own = m.rpartition(".")[0]
        for name, line, inner in module_imports(m):
            folder = name if name in folders else name.rpartition(".")[0]
            if folder != own:
                ok = folders.index(folder) < folders.index(own)
            else:
                ok = name in rank and rank[name] < rank[m]
            if not ok and not (inner and (m, name) in UPWARD_ON_PURPOSE):
                upward.append(f"{m} line {line} imports {name}")
    assert upward == [], "an import points up the README's Layout: " + "; ".join(upward)


def test_the_exceptions_are_still_needed() -> None:
    """An exception whose import is gone is dropped from the list, so the list stays true."""
    for m, name in UPWARD_ON_PURPOSE:
        assert any(n == name and inner for n, _, inner in module_imports(m)), (m, name)


def test_package_files_import_nothing_so_commands_load_only_what_they_use() -> None:
    for init in SRC.rglob("__init__.py"):
        package = ".".join(init.parent.relative_to(SRC).parts)
        if package in ("", "cli"):  # the top's public names are lazy (PEP 562); cli is the entry point
            continue
        found = imports(init, package)
        assert found == [], f"{init.relative_to(ROOT)} imports {found}"


def test_only_the_cli_renders_and_nothing_imports_it_or_the_benchmark() -> None:
    for m in layout():
        names = {name.split(".")[0] for name, _, _ in imports(path_of(m), m.rpartition(".")[0])}
        ours = {name.split(".")[0] for name, _, _ in module_imports(m)}
        if not m.startswith("cli."):
            assert not names & {"typer", "rich", "click"}, f"{m} imports a rendering library"
            assert "cli" not in ours, f"{m} imports the cli"
            assert "bench" not in ours or m.startswith("bench."), f"{m} imports the benchmark"


# The library functions the commands call: preparing a run, training it, using a saved model,
# the setups of trace and check.
ORCHESTRATOR = ("run.prepare", "run.train", "run.predict", "run.setups")


def test_only_what_sits_above_the_orchestrator_imports_it() -> None:
    order = layout()
    for module in ORCHESTRATOR:
        above = set(order[order.index(module) + 1 :])
        for m in order:
            if m != module and any(name == module for name, _, _ in module_imports(m)):
                assert m in above, f"{m} imports the orchestrator ({module}) but is listed below it"
