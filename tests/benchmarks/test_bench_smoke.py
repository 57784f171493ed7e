"""The benchmark command runs, and its correctness check holds: treegrad and the hand-written
Python do the same float operations in the same order on W1 and W3, so their losses are equal."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from treegrad.bench import measuring, peers, report, startup, workloads
from treegrad.cli import app


def test_quick_run_losses_equal_hand_written_python() -> None:
    results, notes = measuring.run(["W1", "W3"], ["treegrad", "python"], quick=True, depths=[2, 5])
    assert notes == []
    by = {(r.workload, r.peer, r.depth): r for r in results}
    assert set(by) == {("W1", p, None) for p in ("treegrad", "python")} | {
        ("W3", p, d) for p in ("treegrad", "python") for d in (2, 5)
    }
    for (w, peer, d), r in by.items():
        if peer == "treegrad":
            assert r.final_loss == by[w, "python", d].final_loss
        assert 0.0 < r.final_loss < 1.0 and len(r.seconds) == 1 and r.seconds[0] > 0.0
    assert by["W1", "treegrad", None].steps == 1000  # one epoch of 1000 samples


def test_quick_mlp_peers_agree_on_the_loss() -> None:
    """W2b: treegrad's mean-gradient batches on NumPy arrays, the Python and NumPy peers by hand."""
    results, _ = measuring.run(["W2b"], ["treegrad", "python", "numpy"], quick=True)
    losses = {r.peer: r.final_loss for r in results}
    assert losses["treegrad"] == pytest.approx(losses["python"], rel=1e-12)
    assert losses["numpy"] == pytest.approx(losses["python"], rel=1e-12)
    assert {r.steps for r in results} == {32}  # 31 batches of 32 and one of 8


def test_the_command_prints_a_table() -> None:
    result = CliRunner().invoke(
        app, ["bench", "--quick", "--only", "W1,W3", "--peers", "treegrad,python", "--depths", "2,4"]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "W1  binary classifier, per sample, 1 epoch\n" in out
    assert "treegrad is" in out and "treegrad vs python" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("python"))
    assert row.split()[-1].endswith("x")  # the ratio column


@pytest.mark.parametrize(
    "args, message",
    [
        (["--only", "W9"], "unknown workload W9"),
        (["--peers", "tensorflow"], "unknown peer tensorflow"),
        (["--depths", "0"], "depths must be 1 or more"),
        (["--reps", "0"], "--reps"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["bench", *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_one_argument_parser() -> None:
    """The command line is `treegrad bench` alone: the library's modules parse no arguments."""
    for module in (measuring, peers, report, startup, workloads):
        assert not hasattr(module, "main") and not hasattr(module, "parser")
    for path in Path(workloads.__file__).parent.glob("*.py"):
        assert "argparse" not in path.read_text(encoding="utf-8"), path.name


def test_slope_of_a_power_law() -> None:
    assert report.slope([(16, 3.0 * 16**0.5), (256, 3.0 * 256**0.5), (4096, 3.0 * 4096**0.5)]) == pytest.approx(0.5)
    assert report.slope([(16, 1.0)]) is None


def test_recipe_is_the_shared_one() -> None:
    """The first draws of the recipe, so that a change to it is noticed."""
    params, data = workloads.binary_setup()
    assert len(params) == 5 and len(data) == workloads.N_SAMPLES
    assert all(t == (1 if y > x else 0) for (x, y), t in data)
    layers = workloads.mlp_init()
    assert [len(W) for W, _ in layers] == [16, 16, 1] and all(b == [0.0] * len(W) for W, b in layers)
    assert len(workloads.chain_init(7)) == 7
    assert math.isfinite(sum(params))


def test_quick_wide_mlps_agree_with_numpy_by_hand() -> None:
    """W4s (per sample), W4a (Adam), W5 (mse) and the width sweep W6: treegrad's losses are NumPy's."""
    results, _ = measuring.run(["W4s", "W4a", "W5", "W6"], ["treegrad", "numpy"], quick=True)
    by = {(r.workload, r.peer, r.depth): r for r in results}
    assert {(w, d) for w, _, d in by} == {("W4s", None), ("W4a", None), ("W5", None), ("W6", 8), ("W6", 16)}
    for (w, peer, d), r in by.items():
        if peer == "treegrad":
            assert r.final_loss == pytest.approx(by[w, "numpy", d].final_loss, rel=1e-10), w
    assert by["W4s", "treegrad", None].steps == 1797 and by["W4a", "treegrad", None].steps == 57
    text = report.table(results)
    assert "slope 8-256" in text and "BLAS: " in text


def test_quick_cli_row_is_a_fresh_process_beside_python() -> None:
    """CLI: `treegrad train` in a new process beside the same training by hand in a new `python`;
    the same rows in the same order, so the same loss; the table gives the ratio and the imports' share."""
    results, notes = measuring.run(["CLI"], ["treegrad", "python", "numpy"], quick=True)
    by = {r.peer: r for r in results}
    assert set(by) == {"treegrad", "python"} and notes == []  # numpy has no CLI row
    assert by["treegrad"].final_loss == pytest.approx(by["python"].final_loss, rel=1e-12)
    for r in by.values():
        assert r.steps == workloads.CLI_ROWS and len(r.imports) == len(r.seconds) == 1
        assert 0.0 < r.imports[0] < r.seconds[0]
    text = report.table(results)
    assert "CLI `treegrad train`" in text and "1 epoch," in text
    row = next(line for line in text.splitlines() if line.strip().startswith("python "))
    assert row.split()[-1].endswith("x")
    assert "treegrad: " in text and "of it in imports (" in text


def test_import_seconds_sums_the_top_level_modules() -> None:
    text = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        100 |   _io\n"
        "import time:       300 |       1200 | site\n"
        "import time:        50 |         50 |     nested\n"
        "import time:       400 |      30000 | treegrad.cli.commands\n"
        "some other line on stderr\n"
    )
    assert startup.import_seconds(text) == pytest.approx(0.0312)


def test_torch_one_thread_is_scoped_and_restored() -> None:
    class FakeTorch:
        threads = 4
        seen: list[int] = []

        def get_num_threads(self) -> int:
            return self.threads

        def set_num_threads(self, n: int) -> None:
            self.threads = n

    torch = FakeTorch()

    def train() -> float:
        torch.seen.append(torch.threads)
        raise ValueError("boom")

    with pytest.raises(ValueError):
        peers._one_thread(torch, train)()
    assert torch.seen == [1] and torch.threads == 4


def test_a_missing_peer_is_a_note_saying_why_and_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "torch" else real(name))
    results, notes = measuring.run(["W1"], ["treegrad", "torch", "torch1"], quick=True)
    assert {r.peer for r in results} == {"treegrad"}
    assert notes == ["torch is not installed (pip install torch==2.13.0): no torch, torch1 rows"]
    assert "note: torch is not installed" in report.table(results, notes)


def test_quick_torch_at_one_thread_beside_default_threads() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    results, notes = measuring.run(["W2b"], ["treegrad", "torch", "torch1"], quick=True)
    assert torch.get_num_threads() == before
    losses = {r.peer: r.final_loss for r in results}
    assert set(losses) == {"treegrad", "torch", "torch1"} and losses["torch1"] == pytest.approx(losses["torch"])
    text = report.table(results)
    assert "torch 1 thread" in text and f"default {before} threads" in text


def test_quick_wide_mlps_in_float32_agree_with_float64() -> None:
    """The treegrad32 peer trains the wide workloads with training.dtype float32: its losses are
    float64's to float32's rounding, and the table has its row."""
    results, _ = measuring.run(["W4s", "W4a", "W5"], ["treegrad", "treegrad32"], quick=True)
    by = {(r.workload, r.peer): r for r in results}
    assert set(by) == {(w, p) for w in ("W4s", "W4a", "W5") for p in ("treegrad", "treegrad32")}
    for w in ("W4s", "W4a", "W5"):
        single, double = by[w, "treegrad32"].final_loss, by[w, "treegrad"].final_loss
        assert single == pytest.approx(double, rel=1e-5) and single != double, w
    assert "treegrad32" in report.table(results)
    assert measuring.run(["W1"], ["treegrad32"], quick=True)[0] == []  # scalar workloads: float64 only
