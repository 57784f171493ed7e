"""The benchmark command runs, and its correctness check holds: treegrad and the hand-written
Python do the same float operations in the same order on W1 and W3, so their losses are equal."""

from __future__ import annotations

import math

import pytest

from treegrad import bench


def test_quick_run_losses_equal_hand_written_python() -> None:
    results, notes = bench.run(["W1", "W3"], ["treegrad", "python"], quick=True, depths=[2, 5])
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
    results, _ = bench.run(["W2b"], ["treegrad", "python", "numpy"], quick=True)
    losses = {r.peer: r.final_loss for r in results}
    assert losses["treegrad"] == pytest.approx(losses["python"], rel=1e-12)
    assert losses["numpy"] == pytest.approx(losses["python"], rel=1e-12)
    assert {r.steps for r in results} == {32}  # 31 batches of 32 and one of 8


def test_main_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--quick", "--only", "W1,W3", "--peers", "treegrad,python", "--depths", "2,4"]) == 0
    out = capsys.readouterr().out
    assert "W1  binary classifier, per sample, 1 epoch\n" in out
    assert "treegrad is" in out and "treegrad vs python" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("python"))
    assert row.split()[-1].endswith("x")  # the ratio column


def test_unknown_workload_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        bench.main(["--only", "W9"])
    assert e.value.code == 2
    assert "unknown workload W9" in capsys.readouterr().err


def test_slope_of_a_power_law() -> None:
    assert bench.slope([(16, 3.0 * 16**0.5), (256, 3.0 * 256**0.5), (4096, 3.0 * 4096**0.5)]) == pytest.approx(0.5)
    assert bench.slope([(16, 1.0)]) is None


def test_recipe_is_the_shared_one() -> None:
    """The first draws of the recipe, so that a change to it is noticed."""
    params, data = bench.binary_setup()
    assert len(params) == 5 and len(data) == bench.N_SAMPLES
    assert all(t == (1 if y > x else 0) for (x, y), t in data)
    layers = bench.mlp_init()
    assert [len(W) for W, _ in layers] == [16, 16, 1] and all(b == [0.0] * len(W) for W, b in layers)
    assert len(bench.chain_init(7)) == 7
    assert math.isfinite(sum(params))
