"""Sizes a reader can hold in their head (issue 22): no module of the package over 600 lines, no
function over 80. A file or function that grows past them is split where its ideas part, not
squeezed."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "treegrad"
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80  # from the `def` line to the last line of its body


def test_no_file_is_over_600_lines() -> None:
    sizes = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in SRC.rglob("*.py")}
    over = [f"{p.relative_to(SRC)}: {n}" for p, n in sorted(sizes.items()) if n > MAX_FILE_LINES]
    assert over == [], f"files over {MAX_FILE_LINES} lines: {over}"


def test_no_function_is_over_80_lines() -> None:
    over = []
    for p in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    over.append(f"{p.relative_to(SRC)}:{node.lineno} {node.name}: {n}")
    assert over == [], f"functions over {MAX_FUNCTION_LINES} lines: {over}"
