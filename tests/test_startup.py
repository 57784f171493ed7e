"""Start-up cost: what a command imports before it does anything.

Each check runs in a fresh interpreter and looks at `sys.modules`, not at the clock: the
command line must not pull in the spec machinery (pydantic, PyYAML, the spec models) or
NumPy until a command needs them, and the spec models are built on first use, not at import.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pydantic", "yaml", "numpy", "treegrad.spec", "treegrad.specfile", "treegrad.modelfile", "treegrad.workflow")


def imported_after(code: str) -> list[str]:
    """Which of HEAVY a fresh interpreter has imported after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_importing_the_cli_imports_no_spec_machinery() -> None:
    assert imported_after("import treegrad.cli") == []


def test_help_imports_no_spec_machinery() -> None:
    code = "from treegrad.cli import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass"
    assert imported_after(code) == []


def test_the_spec_models_are_built_on_first_use() -> None:
    code = (
        "import sys\nfrom treegrad import spec\n"
        "assert not spec.Spec.__pydantic_complete__, 'built at import'\n"
        "spec.parse_spec('inputs: [f]\\noutput: {mul: [param, f]}\\n')\n"
        "assert spec.Spec.__pydantic_complete__"
    )
    assert "treegrad.spec" in imported_after(code)
