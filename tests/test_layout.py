"""The architecture can be read off the file list: every module is named in the README's
Layout section, and imports only modules above it there (the orchestrator, `workflow`, sits
above what it orchestrates; only `cli` renders)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "treegrad"

# Lazy imports that point upward on purpose: the seed's methods on a node (`Node.compile`,
# `Node.funcify`) and a spec's `analysis` property call the modules that implement them.
UPWARD_ON_PURPOSE = {("nodes", "graph"), ("nodes", "printers"), ("spec", "analysis")}


def layout() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Layout") :]
    return re.findall(r"^- `(\w+)\.py`", section, re.MULTILINE)


def imports(module: str) -> list[tuple[str, int]]:
    """(name, line) of every import in a module, at the top or inside a function."""
    tree = ast.parse((SRC / f"{module}.py").read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [a.name for a in node.names]
            found += [(n.split(".")[0], node.lineno) for n in names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module.split(".")[0], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name.split(".")[0], node.lineno) for a in node.names]
    return found


def test_every_module_has_its_line_in_the_readme() -> None:
    modules = sorted(p.stem for p in SRC.glob("*.py") if not p.stem.startswith("__"))
    assert sorted(layout()) == modules, "add a line for each new module to the README's Layout section"


def test_imports_point_inward() -> None:
    order = layout()
    rank = {m: i for i, m in enumerate(order)}
    upward = [
        f"{m}.py line {line} imports {name}"
        for m in order
        for name, line in imports(m)
        if name in rank and rank[name] > rank[m] and (m, name) not in UPWARD_ON_PURPOSE
    ]
    assert upward == [], "a module imports one listed below it in the README's Layout: " + "; ".join(upward)


def test_only_the_cli_renders_and_only_what_sits_above_the_orchestrator_imports_it() -> None:
    order = layout()
    above_workflow = set(order[order.index("workflow") + 1 :])  # sweep runs workflow; cli renders it
    for m in order:
        names = {name for name, _ in imports(m)}
        if m != "cli":
            assert not names & {"typer", "rich", "click"}, f"{m}.py imports a rendering library"
            assert "cli" not in names, f"{m}.py imports the cli"
        if "workflow" in names and m != "workflow":
            assert m in above_workflow, f"{m}.py imports the orchestrator but is listed below it"
