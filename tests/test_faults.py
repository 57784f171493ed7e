"""Faults during training and writing: divergence, Ctrl-C, a process killed mid-write, a
full disk. Whatever happens, an existing model file is either the old one or a complete
new one, and nothing half-written is ever read.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import treegrad.run.train
from treegrad.cli import app
from treegrad.engine.fit import fit
from treegrad.errors import FileError, TrainingError
from treegrad.files import write_atomic
from treegrad.spec.build import build_model
from treegrad.spec.models import parse_spec

fit_module = sys.modules["treegrad.engine.fit"]  # the module; `treegrad.fit` is also the function

runner = CliRunner()

F2C = """\
name: f2c
inputs: [f]
output: {add: [{mul: [param, f]}, param]}
data: f2c
target: c
training: {epochs: 5, learning_rate: 0.01, shuffle: false}
"""

MLP = """\
name: mlp
inputs: [x]
layers: [{linear: 16, activation: relu}, {linear: 1}]
data: sine
target: y
training: {epochs: 5, learning_rate: 0.05, batch_size: 64, optimizer: adam}
"""


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below `folder`, hidden ones (temporary files) included, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


@pytest.fixture()
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder, holding the two specs and a model trained from f2c."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f2c.yaml").write_text(F2C)
    (tmp_path / "mlp.yaml").write_text(MLP)
    result = invoke("train", "f2c.yaml", "--out", "old.model.json", "--quiet")
    assert result.exit_code == 0, result.stderr
    return tmp_path


# ----------------------------------------------------------------- divergence


@pytest.mark.parametrize(
    ("spec", "options"),
    [
        ("f2c.yaml", ["--learning-rate", "100"]),  # per-sample compiled code
        ("f2c.yaml", ["--learning-rate", "100", "--batch-size", "8"]),  # scalar mini-batches
        # --force: old.model.json holds the f2c model; the mlp run must fail by diverging, not by that check
        ("mlp.yaml", ["--learning-rate", "100", "--optimizer", "sgd", "--data", "sine:400", "--force"]),  # NumPy
    ],
)
def test_divergence_stops_at_once_and_keeps_the_old_model(work: Path, spec: str, options: list[str]) -> None:
    before = snapshot(work)
    result = invoke("train", spec, "--out", "old.model.json", "--quiet", "--epochs", "50", *options)
    assert result.exit_code == 1, result.stdout + result.stderr
    message = result.stderr
    assert message.startswith("error: training diverged in epoch ")
    assert "NaN or infinite" in message and "smaller learning rate" in message and "normalize" in message
    assert "Traceback" not in message and result.stdout == ""
    assert snapshot(work) == before, "the existing model changed, or a file was left behind"


def test_the_mlp_divergence_case_runs_on_numpy_arrays(work: Path) -> None:
    """The third case above is meant for the vectorized trainer; make sure it is the one used."""
    from treegrad.engine.losses import LOSSES
    from treegrad.engine.optim import OPTIMIZERS
    from treegrad.engine.vectorized import vectorized_epoch_fn
    from treegrad.spec.models import load_spec

    graph = build_model(load_spec(work / "mlp.yaml")).compiled_graph
    assert vectorized_epoch_fn(graph, LOSSES["mse"], OPTIMIZERS["sgd"], 64) is not None


def test_divergence_names_the_epoch_where_it_happened() -> None:
    """The loss grows by a factor each epoch until it overflows: training stops in that very
    epoch, and the callback saw every epoch before it and none after."""
    spec = parse_spec("inputs: [x]\noutput: {mul: [{param: 1.0}, x]}\n")
    root = build_model(spec)
    seen: list[int] = []
    with pytest.raises(TrainingError) as info:
        fit(
            root,
            [[10.0]] * 4,
            [0.0] * 4,
            epochs=10_000,
            learning_rate=0.021,
            batch_size=4,
            callback=lambda epoch, *rest: seen.append(epoch),
        )
    message = str(info.value)
    epoch = int(message.split("in epoch ")[1].split(":")[0])
    assert seen == list(range(1, epoch)), "no epoch ran after the one that diverged"
    assert 50 < epoch < 10_000
    assert "smaller learning rate" in message


# ----------------------------------------------------------------- Ctrl-C


def test_ctrl_c_in_fit_keeps_the_last_complete_epoch() -> None:
    """Ctrl-C in the callback (where a progress bar runs) after epoch 3: the parameters are
    those after epoch 3, exactly as a run of 3 epochs leaves them."""
    spec = parse_spec("inputs: [x]\noutput: {add: [{mul: [param, x]}, param]}\n")
    X = [[i / 10] for i in range(-10, 11)]
    y = [3 * r[0] - 1 for r in X]
    for engine in ("compiled", "reference"):
        three = build_model(spec, seed=1)
        fit(three, X, y, epochs=3, learning_rate=0.1, engine=engine)

        def stop(epoch: int, *rest: Any) -> None:
            if epoch == 3:
                raise KeyboardInterrupt

        stopped = build_model(spec, seed=1)
        hist = fit(stopped, X, y, epochs=100, learning_rate=0.1, callback=stop, engine=engine)
        assert hist.interrupted and len(hist) == 3
        assert stopped.compiled_graph.param_values() == three.compiled_graph.param_values()


def test_ctrl_c_inside_an_epoch_of_the_reference_engine_keeps_the_previous_epoch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C in the middle of epoch 3 of the node-by-node engine, which steps after every
    sample: the half-done epoch is dropped, as the compiled engine drops it."""
    from treegrad.core.nodes import Graph

    spec = parse_spec("inputs: [x]\noutput: {add: [{mul: [param, x]}, param]}\n")
    X = [[i / 10] for i in range(-10, 11)]
    y = [3 * r[0] - 1 for r in X]
    two = build_model(spec, seed=1)
    fit(two, X, y, epochs=2, learning_rate=0.1, engine="reference")
    real = Graph.predict
    calls = [0]

    def predict(self: Graph, row: Any) -> Any:
        calls[0] += 1
        if calls[0] == 2 * len(X) + len(X) // 2:
            raise KeyboardInterrupt
        return real(self, row)

    monkeypatch.setattr(Graph, "predict", predict)
    stopped = build_model(spec, seed=1)
    hist = fit(stopped, X, y, epochs=10, learning_rate=0.1, engine="reference")
    assert hist.interrupted and len(hist) == 2
    assert stopped.compiled_graph.param_values() == two.compiled_graph.param_values()


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, epochs_done: int) -> None:
    """Make training through the CLI see Ctrl-C after `epochs_done` complete epochs."""
    real = treegrad.run.train.fit

    def fit_then_ctrl_c(*args: Any, callback: Any = None, **kwargs: Any) -> Any:
        def cb(epoch: int, *rest: Any) -> Any:
            if epoch == epochs_done:
                raise KeyboardInterrupt
            return callback(epoch, *rest) if callback else None

        if epochs_done == 0:
            kwargs["epochs"] = 0
            hist = real(*args, callback=callback, **kwargs)
            hist.interrupted = True
            return hist
        return real(*args, callback=cb, **kwargs)

    monkeypatch.setattr(treegrad.run.train, "fit", fit_then_ctrl_c)


@pytest.mark.parametrize("quiet", [True, False])
def test_ctrl_c_writes_nothing(work: Path, monkeypatch: pytest.MonkeyPatch, quiet: bool) -> None:
    _interrupt_after(monkeypatch, 2)
    before = snapshot(work)
    result = invoke("train", "f2c.yaml", "--out", "old.model.json", *(["--quiet"] if quiet else []))
    assert result.exit_code == 130
    assert "interrupted: nothing was written" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(work) == before


@pytest.mark.parametrize("quiet", [True, False])
def test_ctrl_c_with_checkpoint_saves_the_last_complete_epoch(
    work: Path, monkeypatch: pytest.MonkeyPatch, quiet: bool
) -> None:
    _interrupt_after(monkeypatch, 3)
    result = invoke(
        "train",
        "f2c.yaml",
        "--out",
        "new.model.json",
        "--epochs",
        "50",
        "--checkpoint",
        *(["--quiet"] if quiet else []),
    )
    assert result.exit_code == 130, result.stderr
    assert "interrupted: saved the model after epoch 3, the last complete one, to new.model.json" in result.stderr
    record = json.loads((work / "new.model.json").read_text())
    assert len(record["history"]["train"]) == 3 and record["training"]["epochs"] == 50
    assert invoke("predict", "new.model.json", "0.5").exit_code == 0
    assert temp_files(work) == []


def test_ctrl_c_before_the_first_epoch_ends_writes_nothing_even_with_checkpoint(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No complete epoch means no trained model: a checkpoint of the initial guess would be
    a model file that looks trained and is not."""
    _interrupt_after(monkeypatch, 0)
    before = snapshot(work)
    result = invoke("train", "f2c.yaml", "--out", "old.model.json", "--checkpoint", "--quiet")
    assert result.exit_code == 130
    assert "nothing was written" in result.stderr
    assert snapshot(work) == before


LONG = F2C.replace("epochs: 5", "epochs: 1000000")


def _start_training(work: Path, *options: str) -> subprocess.Popen[str]:
    """`python -m treegrad train` on a run of ten million epochs, returned once it is training."""
    (work / "long.yaml").write_text(LONG)
    proc = subprocess.Popen(
        [sys.executable, "-m", "treegrad", "train", "long.yaml", *options],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Under way means past the imports and the data: wait for 1.5 s of the child's own CPU time
    # (its clock, not ours, so a busy machine does not make the wait too short).
    stat = Path(f"/proc/{proc.pid}/stat")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if not stat.exists():
            time.sleep(3.0)
            break
        fields = stat.read_text().rsplit(")", 1)[1].split()
        if (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") > 1.5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    return proc


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_sigint_to_a_real_training_process_writes_nothing(work: Path) -> None:
    before = snapshot(work)
    proc = _start_training(work, "--out", "old.model.json", "--quiet")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip() == "interrupted: nothing was written (train with --checkpoint to keep the last epoch)."
    assert out == ""
    (work / "long.yaml").unlink()
    assert snapshot(work) == before, "the old model changed, or a (temporary) file was left"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_sigint_with_checkpoint_saves_a_model_that_predict_accepts(work: Path) -> None:
    proc = _start_training(work, "--out", "long.model.json", "--checkpoint")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted: saved the model after epoch" in err
    record = json.loads((work / "long.model.json").read_text())
    epochs = int(err.split("after epoch ")[1].split(",")[0])
    assert epochs >= 1 and len(record["history"]["train"]) == epochs
    assert "trained f2c" in out  # the summary of what was saved
    result = invoke("predict", "long.model.json", "f=212")
    assert result.exit_code == 0, result.stderr
    assert temp_files(work) == []


# ----------------------------------------------------------------- interrupted or failed writes

KILL_WRITER = """\
import os, sys, time
from pathlib import Path
from treegrad import files

def slow_fsync(fd):
    print("written, not yet renamed", flush=True)
    time.sleep(60)

files.os.fsync = slow_fsync
files.write_atomic(Path(sys.argv[1]), "x" * 50_000_000)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_writer_killed_mid_write_leaves_the_old_file_whole(work: Path) -> None:
    """SIGKILL between writing the temporary file and renaming it: the old model is intact
    and still loads. The temporary file survives (nothing can clean up after SIGKILL), but it
    is hidden, named .NAME.*.tmp, and nothing reads it; the next write succeeds beside it."""
    old = (work / "old.model.json").read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_WRITER, str(work / "old.model.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "written, not yet renamed", proc.stderr.read() if proc.stderr else ""
    proc.kill()
    proc.wait(timeout=30)
    assert (work / "old.model.json").read_bytes() == old
    leftovers = temp_files(work)
    assert len(leftovers) == 1 and leftovers[0].startswith(".old.model.json.")
    assert invoke("predict", "old.model.json", "1").exit_code == 0
    assert invoke("train", "f2c.yaml", "--out", "old.model.json", "--quiet", "--epochs", "2").exit_code == 0
    assert json.loads((work / "old.model.json").read_text())["training"]["epochs"] == 2


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("fsync", OSError(errno.ENOSPC, "No space left on device")),
        ("replace", OSError(errno.EROFS, "Read-only file system")),
        ("fsync", KeyboardInterrupt()),
    ],
)
def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    work: Path, monkeypatch: pytest.MonkeyPatch, target: str, error: BaseException
) -> None:
    from treegrad import files

    def fail(*args: Any) -> None:
        raise error

    monkeypatch.setattr(files.os, target, fail)
    old = (work / "old.model.json").read_bytes()
    with pytest.raises(FileError if isinstance(error, OSError) else KeyboardInterrupt) as info:
        write_atomic(work / "old.model.json", "new text")
    if isinstance(error, OSError):
        assert "cannot write" in str(info.value) and error.strerror in str(info.value)
        assert "unchanged" in str(info.value)
    assert (work / "old.model.json").read_bytes() == old
    assert temp_files(work) == []


def test_a_full_disk_during_train_is_a_message_not_a_bug(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from treegrad import files

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    before = snapshot(work)
    result = invoke("train", "f2c.yaml", "--out", "old.model.json", "--quiet")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot write old.model.json: No space left on device")
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert snapshot(work) == before


def test_a_bad_out_path_fails_before_training(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in --out is reported before the first epoch, not after the last."""

    def must_not_train(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("training started although the model could not be saved")

    monkeypatch.setattr(treegrad.run.train, "fit", must_not_train)
    for out, words in (("nowhere/m.json", "does not exist"), (".", "is a directory")):
        result = invoke("train", "f2c.yaml", "--out", out, "--quiet")
        assert result.exit_code == 1 and words in result.stderr, result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_written_files_get_ordinary_permissions(work: Path) -> None:
    """mkstemp makes private 0600 files; a model file is an ordinary file (umask applies),
    and a replaced file keeps the permissions it had."""
    umask = os.umask(0o022)
    try:
        write_atomic(work / "fresh.json", "{}")
        assert (work / "fresh.json").stat().st_mode & 0o777 == 0o644
        (work / "old.model.json").chmod(0o640)
        write_atomic(work / "old.model.json", "{}")
        assert (work / "old.model.json").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(umask)
