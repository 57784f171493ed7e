"""A new op is one entry of the op table (core/ops.py), and nothing else: added there alone, it
is a node class, a public name of the package, a spec key and, where the entry says so, an
activation of layers, and it passes every form of the per-op test (tests/test_ops.py: every
engine, printer and exporter, sympy, ONNX and torch). The entry is added in a fresh interpreter
before anything reads the table, as if it had been written there."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from test_ops import FORMS

ROOT = Path(__file__).resolve().parent.parent

# The square root, which the table lacks: its names exist in every engine's namespace and ONNX
# has its operator, so it needs nothing beside its entry.
ENTRY = r"""
from treegrad.core.ops import OPS, Op, call, latex_call

OPS["sqrt"] = Op(
    name="sqrt",
    cls="Sqrt",
    arity=1,
    value=lambda a: f"sqrt({a[0]})",
    deriv=lambda a, o, i: f"(0.5 / {o})",
    doc="square root (x > 0)",
    text=call("sqrt"),
    latex=latex_call(r"\sqrt"),
    python=call("sqrt"),
    sympy=lambda sp, a: sp.sqrt(a[0]),
    onnx="Sqrt",
    kink=False,
    activation=True,
)
"""

CHECKS = r"""
import json, math, sys
import treegrad
from treegrad.core.nodes import ACTIVATIONS, OPERATIONS
from treegrad.spec.build import build_model
from treegrad.spec.models import parse_spec, spec_schema

# a public name of the package, listed and resolved like the others
assert treegrad.Sqrt is OPERATIONS["sqrt"], treegrad.Sqrt
assert "Sqrt" in treegrad.__all__ and "Sqrt" in dir(treegrad)
names = {}
exec("from treegrad import *", names)
assert names["Sqrt"] is treegrad.Sqrt

# a spec key
root = build_model(parse_spec("inputs: [x]\noutput: {sqrt: {add: [x, 1.0]}}\n", "m.yaml"))
assert math.isclose(root.predict([3.0]), 2.0), root.predict([3.0])

# an activation of layers, in the spec's schema too
assert ACTIVATIONS["sqrt"] is treegrad.Sqrt
spec = parse_spec("inputs: [x]\nlayers: [{linear: 2, activation: sqrt}, {linear: 1}]\n", "m.yaml")
graph = build_model(spec).compile().compiled_graph
assert sum(n.op is treegrad.Sqrt.op for n in graph.order) == 2
assert '"sqrt"' in json.dumps(spec_schema())

# every form of the per-op test, and the tests over the whole table
import pytest

sys.exit(pytest.main(["tests/test_ops.py", "-n0", "-p", "no:cacheprovider", "-rA", "-k", "sqrt or table"]))
"""


def test_a_new_op_entry_is_everywhere() -> None:
    proc = subprocess.run([sys.executable, "-c", ENTRY + CHECKS], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = re.findall(r"^(PASSED|SKIPPED).*test_op_end_to_end\[sqrt-(\w+)\]", proc.stdout, re.MULTILINE)
    assert {form for _, form in ran} <= set(FORMS) and "failed" not in proc.stdout, proc.stdout
    passed = [form for outcome, form in ran if outcome == "PASSED"]
    assert {"engines", "printers", "exporters"} <= set(passed), proc.stdout
    left_out = sorted(set(FORMS) - set(passed))
    if left_out:  # a form whose package is missing here skipped in the fresh interpreter too
        pytest.skip(f"the new op's forms {', '.join(left_out)} did not run: their packages are not installed")
