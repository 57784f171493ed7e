"""The model size budget: a few bytes of spec (or of a model file's embedded spec) that ask
for millions of nodes are refused, by arithmetic on the spec, before anything is built.

The CLI cases run in a subprocess under a 1 GB address-space limit and a timeout, so a
regression shows as a failure, not as a machine out of memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from treegrad.errors import ModelError
from treegrad.spec.analysis import Budget, check_budget
from treegrad.spec.build import build_model
from treegrad.spec.models import load_spec, parse_spec

MODELS = Path(__file__).resolve().parent.parent / "models"

# Runs the CLI with at most 1 GB of address space (the interpreter and numpy fit well inside).
LIMITED = """\
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from treegrad.cli import main
sys.argv = ["treegrad", *sys.argv[1:]]
main()
"""


def limited_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`treegrad ARGS` under the memory limit; a hang fails the test after 60 s."""
    return subprocess.run(
        [sys.executable, "-c", LIMITED, *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=env
    )


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def assert_refused(proc: subprocess.CompletedProcess[str], nodes: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    text = " ".join(proc.stderr.split())
    assert "too large to build" in text and nodes in text, text
    assert "TREEGRAD_MAX_NODES" in text and "nothing was built" in text


TOO_BIG = {
    # the 59-byte spec of the report, with a last layer that a target column can train
    "wide-layer": (
        "inputs: [f]\nlayers: [{linear: 10000000}, {linear: 1}]\ndata: f2c\ntarget: c\n",
        "60,000,005 nodes",
    ),
    "units-1e6": (
        "inputs: [f]\noutput: {linear: [{linear: {inputs: [f], units: 1000000}}]}\ndata: f2c\ntarget: c\n",
        "6,000,005 nodes",
    ),
    "units-1e9": (
        "inputs: [f]\noutput: {linear: [{linear: {inputs: [f], units: 1000000000}}]}\ndata: f2c\ntarget: c\n",
        "6,000,000,005 nodes",
    ),
    "stack-3000x3000": (
        "inputs: [f]\nlayers: [" + ", ".join(["{linear: 3000}"] * 3000) + ", {linear: 1}]\ndata: f2c\ntarget: c\n",
        "54,000,015,004 nodes",
    ),
}


@pytest.mark.parametrize(
    ("case", "command"),
    [(case, "train") for case in sorted(TOO_BIG)] + [("wide-layer", "check"), ("wide-layer", "show")],
)
def test_a_small_spec_of_a_huge_model_is_refused_before_building(tmp_path: Path, case: str, command: str) -> None:
    text, nodes = TOO_BIG[case]
    (tmp_path / "big.yaml").write_text(text)
    before = files(tmp_path)
    proc = limited_cli(command, "big.yaml", cwd=tmp_path)
    assert_refused(proc, nodes)
    assert files(tmp_path) == before  # nothing written


def test_the_message_locates_the_biggest_part() -> None:
    spec = parse_spec("inputs: [f]\nlayers:\n  - {linear: 4}\n  - {linear: 10000000}\n", "big.yaml")
    with pytest.raises(ModelError) as e:
        build_model(spec)
    text = str(e.value)
    assert text.startswith("big.yaml:4:5: the model is too large to build: 100,000,019 nodes")
    assert "layers[1] alone adds 100,000,001 nodes" in text
    assert "over the limit of 5,000,000 nodes and 1,000,000 parameters" in text


def test_a_wide_layer_under_the_node_limit_is_refused_for_its_parameters() -> None:
    spec = parse_spec("inputs: [a, b, c]\nlayers: [{linear: 1000}, {linear: 1001}]\n", "p.yaml")
    assert spec.analysis.size.params == 1000 * 4 + 1001 * 1001
    with pytest.raises(ModelError, match="1,006,001 parameters, over the limit"):
        check_budget(spec)


def test_a_model_file_whose_embedded_spec_is_huge_is_refused_before_its_graph_is_built(tmp_path: Path) -> None:
    (tmp_path / "small.yaml").write_text(
        "name: small\ninputs: [f]\nlayers: [{linear: 1}]\ndata: f2c\ntarget: c\ntraining: {epochs: 1}\n"
    )
    proc = limited_cli("train", "small.yaml", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    model = tmp_path / "small.model.json"
    record = json.loads(model.read_text())
    record["spec_text"] = record["spec_text"].replace("{linear: 1}", "{linear: 10000000}")
    model.write_text(json.dumps(record))
    assert len(model.read_bytes()) < 3000
    before = files(tmp_path)
    for command in (["predict", "small.model.json", "f=1"], ["show", "small.model.json"]):
        assert_refused(limited_cli(*command, cwd=tmp_path), "40,000,002 nodes")
    assert files(tmp_path) == before


def test_the_limit_is_raised_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = parse_spec("inputs: [f]\nlayers: [{linear: 300}, {linear: 300}]\n", "m.yaml")
    assert spec.analysis.size.params == 300 * 2 + 300 * 301
    monkeypatch.setenv("TREEGRAD_MAX_PARAMS", "50_000")
    with pytest.raises(ModelError, match="limit of 5,000,000 nodes and 50,000 parameters"):
        build_model(spec)
    monkeypatch.setenv("TREEGRAD_MAX_PARAMS", "100000")
    assert build_model(spec).compiled_graph is not None
    assert check_budget(spec, Budget(max_nodes=200_000, max_params=100_000)).params == 90_900
    with pytest.raises(ModelError, match="limit of 1,000 nodes"):
        check_budget(spec, Budget(max_nodes=1000))
    monkeypatch.setenv("TREEGRAD_MAX_NODES", "lots")
    with pytest.raises(ModelError, match="TREEGRAD_MAX_NODES='lots' is not a positive whole number"):
        build_model(spec)


def test_the_cli_takes_a_raised_limit_from_the_environment(tmp_path: Path) -> None:
    import os

    (tmp_path / "m.yaml").write_text("inputs: [f]\nlayers: [{linear: 100}, {linear: 1}]\n")
    env = {**os.environ, "TREEGRAD_MAX_PARAMS": "100"}
    assert_refused(limited_cli("show", "m.yaml", cwd=tmp_path, env=env), "605 nodes")
    env["TREEGRAD_MAX_PARAMS"] = "1000"
    proc = limited_cli("show", "m.yaml", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.yaml")), ids=lambda p: p.stem)
def test_the_counted_size_agrees_with_the_built_graph(path: Path) -> None:
    """The count is made from the spec alone; the built graph has as many parameters and at
    most a few fewer nodes (a layer's own node is replaced by its neurons)."""
    spec = load_spec(path)
    graph = build_model(spec).compiled_graph
    size = spec.analysis.size
    assert size.params == len(graph.param_names)
    assert len(graph.order) <= size.nodes <= len(graph.order) + 4


def test_a_dag_that_uses_each_node_twice_counts_each_node_once(tmp_path: Path) -> None:
    """2,000 named nodes, each the sum of the previous one with itself: 2,000 nodes, not 2^2000."""
    lines = ["inputs: [f]", "nodes:", "  n0: {add: [f, f]}"]
    lines += [f"  n{i}: {{add: [n{i - 1}, n{i - 1}]}}" for i in range(1, 2000)]
    lines += ["output: {mul: [param, n1999]}", "data: f2c", "target: c"]
    (tmp_path / "dag.yaml").write_text("\n".join(lines) + "\n")
    spec = load_spec(tmp_path / "dag.yaml")
    assert spec.analysis.size.nodes == 1 + 2000 + 2
    proc = limited_cli("show", "dag.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
