"""Scale: a model of 100,000 parameters, a chain of 100,000 nodes, and memory that does not
grow with the number of epochs.

The heavy runs happen in child processes, so that the memory Python's compiler takes for
a generated function of 100,000 lines is given back when the child ends, and so that the
peak resident size of a run can be read on its own. Measured by hand on the development
machine (see the report in the commit): a CSV of 1,000,000 rows trains in about 486 MB
whether for 1, 3 or 10 epochs.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from treegrad import Input, Multiply, Negate, Parameter, Tanh
from treegrad.spec import MAX_BYTES

resource = pytest.importorskip("resource")  # ru_maxrss: POSIX only


def run_python(code: str, cwd: Path, timeout: float = 120) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def run_cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "treegrad", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


# ----------------------------------------------------------------- 100,000 parameters


def test_a_model_of_100000_parameters_compiles_trains_and_saves(tmp_path: Path) -> None:
    (tmp_path / "wide.yaml").write_text(
        "name: wide\ninputs: [x, y]\n"
        "layers: [{linear: 316, activation: relu}, {linear: 316, activation: relu}, {linear: 1}]\n"
        "target: label\ntraining: {epochs: 1, learning_rate: 0.001, batch_size: 32, optimizer: adam}\n")
    run_cli("train", "wide.yaml", "--data", "xor:64", "--out", "wide.model.json", "--quiet", cwd=tmp_path)
    record = json.loads((tmp_path / "wide.model.json").read_text())
    assert len(record["parameters"]) == 2 * 316 + 316 + 316 * 316 + 316 + 316 + 1 == 101_437
    assert len(record["history"]["train"]) == 1
    value = float(run_cli("predict", "wide.model.json", "0.1", "0.2", cwd=tmp_path).stdout)
    assert abs(value) < 1e3


def test_loading_a_model_does_not_search_its_parameter_list_per_parameter(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """load_graph looked each saved name up in the list of the graph's names: quadratic,
    40 s for the model above. It must not scan that list at all."""
    import treegrad.build
    from treegrad import workflow

    (tmp_path / "m.yaml").write_text("inputs: [x, y]\nlayers: [{linear: 30, activation: tanh}, {linear: 1}]\n"
                                     "target: label\ntraining: {epochs: 1}\n")
    monkeypatch.chdir(tmp_path)
    workflow.train(Path("m.yaml"), data="xor:20", out=Path("m.json"))
    scans = [0]

    class Names(list[str]):
        def __contains__(self, item: object) -> bool:
            scans[0] += 1
            return super().__contains__(item)

    real = treegrad.build.build_model

    def counting(*args: Any, **kwargs: Any) -> Any:
        root = real(*args, **kwargs)
        root.compiled_graph.param_names = Names(root.compiled_graph.param_names)
        return root

    monkeypatch.setattr(treegrad.build, "build_model", counting)
    loaded = workflow.load(Path("m.json"))
    assert len(loaded.root.compiled_graph.param_names) == 2 * 30 + 30 + 31
    assert scans[0] == 0

