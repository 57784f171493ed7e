"""Files the user cannot lose and output the user can trust (issue 17): no command writes over
what it reads or through a link or onto a device, every write is atomic, data files are read
with bounds, numbers mean what a CSV user means, and signals and errors say what happened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from treegrad.cli import app

runner = CliRunner()

F2C = """\
name: f2c
inputs: [f]
output: {add: [{mul: [param, f]}, param]}
data: f2c:50
target: c
training: {epochs: 3, learning_rate: 0.01, shuffle: false}
"""


def invoke(*args: str, input: str | None = None) -> Result:
    return runner.invoke(app, list(args), input=input)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` (hidden temporary files too) with its bytes; links by their target."""
    found: dict[str, bytes] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            found[str(p.relative_to(folder))] = b"-> " + os.readlink(p).encode()
        elif p.is_file():
            found[str(p.relative_to(folder))] = p.read_bytes()
    return found


def refused(result: Result, *words: str, code: int = 1) -> None:
    """The command failed with `code`, a message holding `words`, and no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    for w in words:
        assert w in result.output, result.output


@pytest.fixture()
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder, with a spec, a trained model m.json and a CSV d.csv."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f2c.yaml").write_text(F2C)
    (tmp_path / "d.csv").write_text("f,c\n1,-17.2\n2,-16.7\n")
    result = invoke("train", "f2c.yaml", "--out", "m.json", "--quiet")
    assert result.exit_code == 0, result.output
    return tmp_path


# ----------------------------------------------------------------- no command writes what it reads


@pytest.mark.parametrize(
    "args",
    [
        ("predict", "m.json", "--data", "d.csv", "--out", "m.json"),
        ("predict", "m.json", "--data", "d.csv", "--out", "d.csv"),
        ("predict", "m.json", "--data", "d.csv", "--out", "./sub/../d.csv"),
        ("export", "m.json", "-f", "python", "-o", "m.json"),
        ("export", "f2c.yaml", "-f", "latex", "-o", "f2c.yaml"),
        ("train", "f2c.yaml", "--data", "d.csv", "--out", "d.csv", "--force"),
        ("train", "f2c.yaml", "--out", "f2c.yaml", "--force"),
        ("plot", "m.json", "--data", "d.csv", "-o", "hard.png"),
    ],
)
def test_no_command_writes_over_its_own_input(work: Path, args: tuple[str, ...]) -> None:
    if args[0] == "plot":
        pytest.importorskip("matplotlib")
    (work / "sub").mkdir()
    os.link(work / "d.csv", work / "hard.png")  # a hard link: another name, the same file
    before = snapshot(work)
    refused(invoke(*args), "a file this command reads", "choose another output file")
    assert snapshot(work) == before


def test_a_symbolic_link_is_refused_and_force_replaces_only_the_link(work: Path) -> None:
    (work / "link.json").symlink_to("m.json")
    before = snapshot(work)
    # A link to a model of the same name used to be replaced without --force.
    refused(invoke("train", "f2c.yaml", "--out", "link.json", "--quiet"), "symbolic link", "m.json")
    refused(invoke("predict", "m.json", "--data", "d.csv", "--out", "link.json"), "symbolic link")
    assert snapshot(work) == before
    result = invoke("train", "f2c.yaml", "--out", "link.json", "--quiet", "--force")
    assert result.exit_code == 0, result.output
    assert (work / "m.json").read_bytes() == before["m.json"], "--force wrote through the link"
    assert not (work / "link.json").is_symlink()
    assert json.loads((work / "link.json").read_text())["name"] == "f2c"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
@pytest.mark.parametrize("target", ["/dev/null", "fifo"])
def test_writing_onto_a_device_or_fifo_is_refused(work: Path, target: str) -> None:
    os.mkfifo(work / "fifo")
    for args in (
        ("predict", "m.json", "--data", "d.csv", "--out", target),
        ("export", "m.json", "-f", "python", "-o", target),
        ("train", "f2c.yaml", "--out", target, "--force", "--quiet"),
    ):
        refused(invoke(*args), "treegrad writes only regular files")


def test_an_out_path_ending_in_a_slash_is_a_usage_error(work: Path) -> None:
    result = invoke("predict", "m.json", "--data", "d.csv", "--out", "new.json/")
    refused(result, "names a folder", code=2)
    assert not (work / "new.json").exists()


def test_a_250_character_file_name_can_be_written(work: Path) -> None:
    name = "n" * 245 + ".json"
    result = invoke("export", "m.json", "-f", "json", "-o", name)
    assert result.exit_code == 0, result.output
    assert (work / name).stat().st_size > 0
    assert not [p for p in os.listdir(work) if p.endswith(".tmp")]


def test_predict_out_is_written_atomically_and_escapes_nothing_numeric(work: Path) -> None:
    result = invoke("predict", "m.json", "--data", "d.csv", "--out", "p.csv")
    assert result.exit_code == 0, result.output
    lines = (work / "p.csv").read_text().splitlines()
    assert lines[0] == "f,c,prediction"
    assert lines[1].startswith("1,-17.2,-")  # negative numbers stay numbers, a whole one as written


def test_empty_data_is_named_as_empty_not_as_a_directory(work: Path) -> None:
    for args in (("predict", "m.json", "--data", ""), ("train", "f2c.yaml", "--data", "", "-q")):
        result = invoke(*args)
        refused(result, "the data source is empty")
        assert "directory" not in result.output


# ----------------------------------------------------------------- streams and sizes


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
@pytest.mark.parametrize("source", ["/dev/zero", "fifo"])
def test_data_that_is_not_a_regular_file_is_refused_at_once(work: Path, source: str) -> None:
    os.mkfifo(work / "fifo")  # no writer: opening it would wait for ever
    refused(invoke("predict", "m.json", "--data", source), "not a regular file", "`-`")


def test_dash_reads_the_csv_from_standard_input(work: Path) -> None:
    result = invoke("predict", "m.json", "--data", "-", input="f,c\n1,2\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "f,c,prediction"


def test_a_huge_line_is_refused_with_bounded_memory(work: Path) -> None:
    """Line 2 of 200 MB: refused after reading about a megabyte of it, in a process whose
    address space is limited to far less than the line."""
    with open(work / "big.csv", "w") as f:
        f.write("f,c\n1,")
        chunk = "9" * 1_000_000
        for _ in range(200):
            f.write(chunk)
        f.write("\n")
    code = textwrap.dedent(
        """
        import resource, sys
        from treegrad.cli import main
        resource.setrlimit(resource.RLIMIT_AS, (600 * 2**20, 600 * 2**20))
        sys.argv = ["treegrad", "predict", "m.json", "--data", "big.csv"]
        main()
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "line 2 is longer than 1,000,000 characters" in proc.stderr and "Traceback" not in proc.stderr


# ----------------------------------------------------------------- numbers


@pytest.mark.parametrize("cell", ["٣", "３２", "1_000", "0x10", "١٠"])
def test_only_ascii_numbers_are_numbers(work: Path, cell: str) -> None:
    (work / "odd.csv").write_text(f"f,c\n{cell},1\n", encoding="utf-8")
    refused(invoke("predict", "m.json", "--data", "odd.csv"), "odd.csv, line 2, column 'f'", "not a number")
    refused(invoke("predict", "m.json", f"f={cell}"), "not a number")


@pytest.mark.parametrize("cell", ["-3.5", "+2", ".5", "1e-3", "7.", "-1E+2"])
def test_ordinary_numbers_are_numbers(work: Path, cell: str) -> None:
    (work / "ok.csv").write_text(f"f,c\n{cell},1\n")
    assert invoke("predict", "m.json", "--data", "ok.csv").exit_code == 0
    assert invoke("predict", "m.json", f"f={cell}").exit_code == 0


@pytest.mark.parametrize("big", ["1e200", "1e308"])
def test_normalizing_huge_inputs_is_not_an_internal_error(work: Path, big: str) -> None:
    (work / "huge.csv").write_text(f"f,c\n{big},1\n-{big},2\n0,3\n")
    result = invoke("train", "f2c.yaml", "--data", "huge.csv", "--normalize", "--out", "h.json", "-q")
    assert result.exit_code in (0, 1), result.output
    assert "internal error" not in result.output and "Traceback" not in result.output


def test_standardize_stats_of_huge_columns_are_finite() -> None:
    from treegrad.data.split import standardize_stats

    stats = standardize_stats([[1e308], [-1e308], [1.7e308]], ["x"])
    mean, std = stats["x"]
    assert abs(mean - 1.7e308 / 3) < 1e293 and 1e307 < std < 1.8e308


def test_plot_draws_a_history_of_huge_losses(work: Path) -> None:
    pytest.importorskip("matplotlib")
    doc = json.loads((work / "m.json").read_text())
    doc["history"]["train"] = [1e308, -1e308, 1.0]
    (work / "edited.json").write_text(json.dumps(doc))
    result = invoke("plot", "edited.json", "-o", "p.png")
    assert result.exit_code == 0, result.output
    assert "too large to draw" in result.output and (work / "p.png").stat().st_size > 0


# ----------------------------------------------------------------- the error path and signals


def test_the_error_handler_survives_memory_errors(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import treegrad.run.predict as predicting
    from treegrad.cli import render

    def out_of_memory(path: Path) -> None:
        def no_memory(*args: object, **kwargs: object) -> None:
            raise MemoryError

        monkeypatch.setattr(os.environ, "get", no_memory)  # the lookup that used to fail in the handler
        monkeypatch.setattr(render.err, "print", no_memory)
        raise MemoryError

    monkeypatch.setattr(predicting, "load", out_of_memory)  # how predict reads the model file
    result = invoke("predict", "m.json", "1")
    assert result.exit_code == 1
    assert "internal error" in result.output and "Traceback" not in result.output


SIGINT_AFTER_RENAME = """
import os, signal, sys
from treegrad import files
from treegrad.cli import main

real_replace = os.replace

def replace_then_interrupt(src, dst):
    real_replace(src, dst)
    os.kill(os.getpid(), signal.SIGINT)  # arrives the instant after the rename

files.os.replace = replace_then_interrupt
sys.argv = ["treegrad", "train", "f2c.yaml", "--out", "m.json", "--quiet", "--epochs", "1"]
main()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="signals")
def test_an_interrupt_just_after_the_rename_says_the_file_was_written(work: Path) -> None:
    before = (work / "m.json").read_bytes()
    proc = subprocess.run(
        [sys.executable, "-c", SIGINT_AFTER_RENAME], cwd=work, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 130, proc.stderr
    assert (work / "m.json").read_bytes() != before, "the model was not replaced"
    assert json.loads((work / "m.json").read_text())["training"]["epochs"] == 1
    assert proc.stderr.strip() == "interrupted: m.json had already been written in full.", proc.stderr


SIGTERM_MID_WRITE = """
import sys, time
from pathlib import Path
from treegrad import files

def slow_fsync(fd):
    print("written, not yet renamed", flush=True)
    time.sleep(60)

files.os.fsync = slow_fsync
with files.command():
    try:
        files.write_atomic(Path("m.json"), "x" * 20_000_000)
    except files.Terminated:
        print("terminated", flush=True)
        sys.exit(143)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="signals")
def test_sigterm_mid_write_cleans_up_like_ctrl_c(work: Path) -> None:
    before = snapshot(work)
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_MID_WRITE], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "written, not yet renamed"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and out.strip() == "terminated", err
    assert snapshot(work) == before, "the old model changed, or the temporary file was left"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals, /proc")
@pytest.mark.parametrize("checkpoint", [False, True])
def test_sigterm_to_training_is_handled_like_sigint(work: Path, checkpoint: bool) -> None:
    (work / "long.yaml").write_text(F2C.replace("epochs: 3", "epochs: 1000000").replace("f2c:50", "f2c:2000"))
    before = snapshot(work)
    proc = subprocess.Popen(
        [sys.executable, "-m", "treegrad", "train", "long.yaml", "--out", "m.json", "--quiet"]
        + (["--checkpoint"] if checkpoint else []),
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Under way means past the imports and the data (and so past installing the handler):
        # wait for 1.5 s of the child's own CPU time, so that a busy machine does not cut it short.
        stat = Path(f"/proc/{proc.pid}/stat")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and stat.exists():
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") > 1.5:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    if checkpoint:
        assert "interrupted: saved the model after epoch" in err and "Traceback" not in err
        assert json.loads((work / "m.json").read_text())["training"]["epochs"] == 1000000
        assert not [p for p in os.listdir(work) if p.endswith(".tmp")]
    else:
        assert err.strip() == "interrupted: nothing was written (train with --checkpoint to keep the last epoch)."
        assert snapshot(work) == before


# ----------------------------------------------------------------- output the user can trust


def huge_model(work: Path) -> None:
    """huge.json: m.json with parameters so large that every output overflows."""
    record = json.loads((work / "m.json").read_text())
    record["parameters"] = {k: 1e308 for k in record["parameters"]}
    (work / "huge.json").write_text(json.dumps(record))


def test_predict_refuses_to_print_an_answer_that_is_not_finite(work: Path) -> None:
    huge_model(work)
    refused(invoke("predict", "huge.json", "1e308"), "these inputs", "cannot give a finite answer")
    (work / "big.csv").write_text("f,c\n-1,0\n1e308,0\n")
    before = snapshot(work)
    refused(invoke("predict", "huge.json", "--data", "big.csv", "--out", "p.csv"), "big.csv, line 3", "finite")
    refused(invoke("predict", "huge.json", "--data", "big.csv"), "big.csv, line 3")
    assert snapshot(work) == before


def test_eval_refuses_a_loss_that_is_not_finite(work: Path) -> None:
    huge_model(work)
    (work / "big.csv").write_text("f,c\n1e308,0\n-1,3\n")
    refused(invoke("eval", "huge.json", "--data", "big.csv"), "cannot give a finite answer on big.csv", "loss")


def test_an_undefined_r2_is_said_in_words(work: Path) -> None:
    (work / "flat.csv").write_text("f,c\n1,2\n2,2\n")
    result = invoke("eval", "m.json", "--data", "flat.csv")
    assert result.exit_code == 0, result.output
    assert "undefined (the target is constant)" in result.stdout and "nan" not in result.stdout


def test_csv_output_escapes_formulas_in_text_cells_only(work: Path) -> None:
    (work / "cls.yaml").write_text(
        "name: cls\ninputs: [x]\noutput: {sigmoid: {add: [{mul: [param, x]}, param]}}\n"
        "loss: bce\ntarget: label\ntraining: {epochs: 2}\n"
    )
    (work / "cls.csv").write_text("x,note,label\n-3.5,=HYPERLINK(1),@a\n2,+b,-c\n-1,plain,@a\n")
    assert invoke("train", "cls.yaml", "--data", "cls.csv", "--out", "cls.json", "-q").exit_code == 0
    result = invoke("predict", "cls.json", "--data", "cls.csv", "--out", "p.csv")
    assert result.exit_code == 0, result.output
    import csv

    rows = list(csv.reader((work / "p.csv").open()))
    assert rows[0] == ["x", "note", "label", "prediction", "probability"]
    assert rows[1][:3] == ["-3.5", "'=HYPERLINK(1)", "'@a"]
    assert rows[2][:3] == ["2.0", "'+b", "'-c"]
    assert rows[3][1] == "plain" and rows[1][3] in ("'@a", "'-c")
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row)
    assert float(rows[1][4]) > 0  # numbers stay numbers


def test_labels_are_shown_as_written_not_as_emoji(work: Path) -> None:
    (work / "cls.yaml").write_text(
        "name: cls\ninputs: [x]\noutput: {sigmoid: {add: [{mul: [param, x]}, param]}}\n"
        "loss: bce\ntarget: label\ntraining: {epochs: 2}\n"
    )
    (work / "e.csv").write_text("x,label\n-1,:x:\n1,:smile:\n")
    assert invoke("train", "cls.yaml", "--data", "e.csv", "--out", "e.json", "-q").exit_code == 0
    result = invoke("eval", "e.json", "--data", "e.csv")
    assert result.exit_code == 0, result.output
    assert ":x:" in result.stdout and ":smile:" in result.stdout
    assert "\u274c" not in result.stdout and "\U0001f604" not in result.stdout
    predicted = invoke("predict", "e.json", "1").stdout
    assert predicted.startswith((":x:", ":smile:")), predicted


@pytest.mark.parametrize("source", ["/etc/passwd", "secret.txt", "../d.csv.bak"])
def test_a_data_source_named_by_a_model_file_is_not_quoted(work: Path, source: str) -> None:
    (work / "secret.txt").write_text("TOP SECRET LINE,x\n1,2\n")
    record = json.loads((work / "m.json").read_text())
    record["data"]["source"] = source
    (work / "evil.json").write_text(json.dumps(record))
    for args in (("eval", "evil.json"), ("predict", "evil.json", "--data", "d.csv", "--json")):
        result = invoke(*args)
        if args[0] == "eval":
            refused(result, "not a .csv or .parquet file", "--data FILE.csv")  # every reader's suffix
        assert "root:" not in result.output and "TOP SECRET" not in result.output


def test_a_csv_named_by_a_model_file_is_never_quoted(work: Path) -> None:
    (work / "secret.csv").write_text("TOP SECRET LINE\n1\n")
    record = json.loads((work / "m.json").read_text())
    record["data"]["source"] = "secret.csv"
    (work / "evil.json").write_text(json.dumps(record))
    result = invoke("eval", "evil.json")
    refused(result, "secret.csv, the training data named in the model file", "--data FILE.csv")
    assert "TOP SECRET" not in result.output


def test_narrow_terminals_get_plain_lines(work: Path) -> None:
    env = {**os.environ, "COLUMNS": "24", "TERM": "dumb"}
    proc = subprocess.run(
        [sys.executable, "-m", "treegrad", "train", "f2c.yaml", "--out", "n.json", "--epochs", "50"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    loss = json.loads((work / "n.json").read_text())["metrics"]["train"]["loss"]
    assert f"training loss of the final model: {loss:.6g}" in proc.stdout.splitlines()
    assert "*" not in proc.stdout and "…" not in proc.stdout  # no wrapped chart, no cut numbers
    assert "…" not in proc.stderr  # no progress bar cut to a sliver
    proc = subprocess.run(
        [sys.executable, "-m", "treegrad", "eval", "n.json"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "rows: 50" in proc.stdout.splitlines() and "…" not in proc.stdout
    for args, line in ((["check", "f2c.yaml"], "parameters: 2"), (["datasets"], "f2c  f, c  regression  1000")):
        proc = subprocess.run(
            [sys.executable, "-m", "treegrad", *args], cwd=work, capture_output=True, text=True, timeout=120, env=env
        )
        assert proc.returncode == 0, proc.stderr
        assert line in proc.stdout and "…" not in proc.stdout, proc.stdout
