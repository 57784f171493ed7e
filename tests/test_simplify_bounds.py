"""show --simplify is bounded (issue 17): a formula sympy would multiply out for minutes, or
recurse through past Python's limit, is refused at once with a message saying what to do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from treegrad.outputs.export import SIMPLIFY_MAX_DEPTH, SIMPLIFY_MAX_TERMS


def _chain(n: int) -> str:
    """n tanh, each applied to the one before, as named nodes (inline nesting has its own limit)."""
    nodes = "\n".join(f"  t{i}: {{tanh: {'x' if i == 0 else f't{i - 1}'}}}" for i in range(n))
    return f"inputs: [x]\nnodes:\n{nodes}\noutput: t{n - 1}\n"


def _doublings(n: int) -> str:
    """d_i = d_(i-1) + d_(i-1): a small file whose formula has 2^n terms."""
    prev = [("x" if i == 0 else f"d{i - 1}") for i in range(n)]
    nodes = "\n".join(f"  d{i}: {{add: [{p}, {p}]}}" for i, p in enumerate(prev))
    return f"inputs: [x]\nnodes:\n{nodes}\noutput: {{mul: [param, d{n - 1}]}}\n"


@pytest.mark.parametrize(
    ("spec", "limit"),
    [
        (_chain(300), f"nested more than {SIMPLIFY_MAX_DEPTH} deep"),
        (_doublings(40), f"more than {SIMPLIFY_MAX_TERMS:,} terms"),
        ("inputs: [x, y]\noutput: {pow: [{add: [x, y, 1]}, 256]}\n", f"more than {SIMPLIFY_MAX_TERMS:,} terms"),
    ],
)
def test_a_formula_too_large_for_sympy_is_refused(tmp_path: Path, spec: str, limit: str) -> None:
    (tmp_path / "m.yaml").write_text(spec)
    result = subprocess.run(
        [sys.executable, "-m", "treegrad", "show", "m.yaml", "--simplify"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,  # a guard against a hang, not a measurement
        env={"COLUMNS": "300", "PATH": "/usr/bin:/bin"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert limit in output and "without --simplify" in output and "Traceback" not in output


def test_a_small_power_and_a_short_chain_still_simplify(tmp_path: Path) -> None:
    pytest.importorskip("sympy")
    from treegrad import Constant, Input, Parameter, Power, Tanh
    from treegrad.outputs.export import simplified

    x = Input("x")
    model = Tanh([Tanh([x])]) + Power([x + 1.0, Constant(3.0)]) * Parameter(2.0)
    model.compile()
    text = simplified(model)
    assert "tanh(tanh(x))" in text and "x**3" in text
