"""Counts a user gives are bounded (issue 17): a huge --epochs, trace --steps, NAME:N or bench
--depths fails at once with a message naming the limit, no traceback, nothing written."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from treegrad.cli.commands import app
from treegrad.limits import MAX_BENCH_DEPTH, MAX_EPOCHS, MAX_GENERATED, MAX_TRACE_STEPS

F2C = "inputs: [f]\noutput: {add: [{mul: [param, f]}, param]}\ntarget: c\n"
HUGE = "1" + "0" * 30


@contextmanager
def refused_at_once(seconds: float = 60) -> Iterator[None]:
    """Fail a command that starts the work it should refuse, instead of running on with it."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"the command ran for {seconds} s: the limit did not stop it at once")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str, process: bool = False) -> tuple[int, str]:
    """`treegrad ARGS` in tmp_path: its exit code and output. In this process, or with `process`
    in a real one, as a user runs it (one command of each kind here; test_cli has train's)."""
    if process:
        proc = subprocess.run(
            [sys.executable, "-m", "treegrad", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,  # a guard against a hang, not a measurement
            env={"COLUMNS": "300", "PATH": "/usr/bin:/bin"},
        )
        return proc.returncode, proc.stdout + proc.stderr
    monkeypatch.chdir(tmp_path)
    with refused_at_once():
        result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "code", "limit", "process"),
    [
        (["train", "m.yaml", "--data", "f2c", "--epochs", HUGE], 1, f"{MAX_EPOCHS}", False),
        (["train", "big.yaml", "--data", "f2c"], 1, f"{MAX_EPOCHS}", False),
        (["trace", "m.yaml", "--data", "f2c", "--steps", "1000000000"], 2, f"{MAX_TRACE_STEPS}", True),
        (["train", "m.yaml", "--data", "f2c:10000000", "--epochs", "1"], 1, f"{MAX_GENERATED:,}", False),
        (["train", "m.yaml", "--data", f"f2c:{HUGE}", "--epochs", "1"], 1, f"{MAX_GENERATED:,}", False),
        (["bench", "--depths", "100000000"], 2, f"{MAX_BENCH_DEPTH:,}", True),
        (["bench", "--depths", f"2,{HUGE}"], 2, f"{MAX_BENCH_DEPTH:,}", False),
    ],
)
def test_a_huge_count_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], code: int, limit: str, process: bool
) -> None:
    (tmp_path / "m.yaml").write_text(F2C)
    (tmp_path / "big.yaml").write_text(F2C + "training: {epochs: 10000000000}\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    exit_code, output = _run(tmp_path, monkeypatch, *args, process=process)
    assert exit_code == code, output
    assert limit in output and "Traceback" not in output
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_the_limits_themselves_are_accepted() -> None:
    from treegrad.bench.measuring import parse_depths
    from treegrad.data.readers import load_data

    assert parse_depths(f"2,{MAX_BENCH_DEPTH}") == [2, MAX_BENCH_DEPTH]
    assert len(load_data(f"f2c:{MAX_GENERATED}").rows) == MAX_GENERATED


def test_a_product_too_wide_for_its_derivative_code_is_refused_with_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 9 KB spec of `mul` over 3,000 arguments took 231 s and 4.8 GB (n derivatives of n - 1
    factors each); it is refused before anything is built, and the widest allowed product works."""
    from treegrad import Input, Multiply
    from treegrad.core.ops import MAX_PRODUCT_ARGS
    from treegrad.errors import ModelError

    (tmp_path / "wide.yaml").write_text("inputs: [x]\noutput: {mul: [" + ", ".join(["x"] * 3000) + "]}\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    for command in ("train", "check"):
        exit_code, output = _run(tmp_path, monkeypatch, command, "wide.yaml", "--data", "f2c")
        assert exit_code == 1, output
        assert f"at most {MAX_PRODUCT_ARGS} arguments, got 3000" in output and "nest it" in output
        assert "wide.yaml:2:" in output and "Traceback" not in output
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    with pytest.raises(ModelError, match="at most"):
        Multiply([Input("x")] * (MAX_PRODUCT_ARGS + 1))
    x = Input("x")
    widest = Multiply([x] * MAX_PRODUCT_ARGS).compile()
    assert widest.predict([1.0]) == 1.0
    widest.backward()
    assert x.grad == MAX_PRODUCT_ARGS
