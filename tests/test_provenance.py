"""Provenance: what a model file records of its making, predict's warning about inputs far
outside the training ranges, and `treegrad card`'s Markdown model card."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from treegrad import __version__, cli
from treegrad.cli import app
from treegrad.data.split import split_indices
from treegrad.limits import MAX_SHOWN_FORMULA
from treegrad.outputs.card import code, md
from treegrad.run.modelfile import load
from treegrad.run.provenance import far_outside, quoted, range_warnings
from treegrad.run.train import train

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def run(*args: str, input: str | bytes | None = None) -> Result:
    return runner.invoke(app, list(args), input=input)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def wide_rows(n: int, width: int, seed: int = 1) -> list[list[float]]:
    rng = random.Random(seed)
    return [[round(rng.uniform(0, 16)) for _ in range(width)] for _ in range(n)]


@pytest.fixture()
def line_model(tmp_path: Path) -> Path:
    """A classifier trained on the built-in `line` data: both inputs in [-1, 1]."""
    spec = write(
        tmp_path / "line.yaml", "inputs: [x, y]\noutput: {sigmoid: {linear: [x, y]}}\nloss: bce\ndata: line:200\n"
    )
    out = tmp_path / "line.model.json"
    r = run("train", str(spec), "--out", str(out), "--epochs", "5", "--quiet")
    assert r.exit_code == 0, r.output
    return out


# ----------------------------------------------------------------- what is recorded


def test_a_csv_is_recorded_by_the_sha256_of_its_bytes_and_its_rows(tmp_path: Path) -> None:
    # A byte order mark and CRLF line ends: the hash is of the bytes, not of the text decoded.
    rows = [[x / 4, 3 * x / 4 + 100 * (x % 3)] for x in range(-20, 21)]
    body = "\ufeffa,b,y\r\n" + "".join(f"{a},{a * a},{y}\r\n" for a, y in rows)
    csv = tmp_path / "d.csv"
    csv.write_bytes(body.encode("utf-8"))
    spec = write(
        tmp_path / "s.yaml",
        "inputs: [a, b]\ntarget: y\ndata: d.csv\noutput: {linear: [a, b]}\n"
        "training: {epochs: 3, normalize: true, validation_split: 0.25, seed: 3}\n",
    )
    t = train(spec, out=tmp_path / "m.json")
    p = load(tmp_path / "m.json").record.provenance
    assert p is not None and p.data is not None
    assert p.data.sha256 == hashlib.sha256(csv.read_bytes()).hexdigest()
    assert p.data.rows == len(rows) and p.data.generator is None
    assert t.record.treegrad_version == __version__
    assert p.python == platform.python_version() and p.platform == platform.platform()
    assert p.command is None and p.cwd is None  # trained from Python, not from a command line
    # The ranges are those of the training rows (the split's), in raw units despite normalize.
    train_rows, _ = split_indices(len(rows), 0.25, 3)
    a = [rows[i][0] for i in train_rows]
    ranges = load(tmp_path / "m.json").record.input_ranges
    assert ranges == {"a": (min(a), max(a)), "b": (min(v * v for v in a), max(v * v for v in a))}
    assert ranges["b"][1] > 10  # not standardised


def test_a_generated_dataset_is_recorded_by_name_rows_and_seed(line_model: Path) -> None:
    rec = load(line_model).record
    assert rec.provenance is not None and rec.provenance.data is not None
    d = rec.provenance.data
    assert (d.generator, d.rows, d.seed, d.sha256) == ("line", 200, 0, None)
    assert rec.input_ranges is not None
    lo, hi = rec.input_ranges["x"]
    assert -1 <= lo < -0.9 and 0.9 < hi <= 1


def test_standard_input_is_hashed_as_read(tmp_path: Path) -> None:
    text = "x,y\n" + "".join(f"{x},{2 * x + 1}\n" for x in range(30))
    spec = write(tmp_path / "s.yaml", "inputs: [x]\ntarget: y\noutput: {linear: [x]}\ntraining: {epochs: 2}\n")
    out = tmp_path / "m.json"
    r = run("train", str(spec), "--data", "-", "--out", str(out), "--quiet", input=text)
    assert r.exit_code == 0, r.output
    p = load(out).record.provenance
    d = p.data if p is not None else None
    assert d is not None and d.sha256 == hashlib.sha256(text.encode()).hexdigest() and d.rows == 30


def test_the_command_line_is_recorded_as_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "s.yaml", "inputs: [x, y]\noutput: {sigmoid: {linear: [x, y]}}\nloss: bce\n")
    monkeypatch.chdir(tmp_path)
    argv = ["/some/venv/bin/treegrad", "train", "s.yaml", "--data", "line:50", "--epochs", "2", "-q", "-o", "m b.json"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code in (0, None)
    p = load(tmp_path / "m b.json").record.provenance
    assert p is not None
    assert p.command == ["treegrad", *argv[1:]] and p.cwd == str(tmp_path)


def test_quoting_gives_back_the_arguments_and_hides_nothing() -> None:
    argv = ["treegrad", "train", "my spec.yaml", "--set", "training.lr_schedule={type: cosine}", "it's", ""]
    assert shlex.split(quoted(argv)) == argv
    # Control characters (a newline, an escape) never reach the terminal: bash's $'...' escapes.
    shown = quoted(["treegrad", "train", "a\nb\x1b[31m'.yaml"])
    assert shown == "treegrad train $'a\\nb\\x1b[31m\\'.yaml'"
    assert "\n" not in shown and "\x1b" not in shown
    # A byte that was not UTF-8 (kept by Python as a lone surrogate) is written as that byte.
    assert quoted([os.fsdecode(b"d\xff.csv")]) == "$'d\\xff.csv'"
    # And bash reads every one back as it was.
    if shutil.which("bash") is None:
        pytest.skip("no bash to read the quoted command back")
    args = [*argv, "a\nb\x1b[31m'.yaml", "tab\there", "\u202eevil", os.fsdecode(b"d\xff.csv")]
    env = {**os.environ, "LC_ALL": "C.UTF-8"}  # bash writes \u202e as UTF-8 in a UTF-8 locale
    proc = subprocess.run(["bash", "-c", "printf '%s\\0' " + quoted(args)], capture_output=True, env=env, timeout=30)
    assert proc.stdout.split(b"\0")[:-1] == [os.fsencode(a) for a in args]


# ----------------------------------------------------------------- old files


def _without_provenance(model: Path, out: Path) -> Path:
    doc = json.loads(model.read_text())
    del doc["provenance"], doc["input_ranges"]
    out.write_text(json.dumps(doc))
    return out


def test_a_file_without_the_new_fields_loads_predicts_without_warning_and_gets_a_card(
    line_model: Path, tmp_path: Path
) -> None:
    old = _without_provenance(line_model, tmp_path / "old.json")
    rec = load(old).record
    assert rec.provenance is None and rec.input_ranges is None
    r = run("predict", str(old), "50", "0")
    assert r.exit_code == 0, r.output
    assert "warning" not in r.output
    r = run("card", str(old))
    assert r.exit_code == 0, r.output
    assert "not recorded" in r.output and "No command line was recorded" in r.output


def test_ranges_that_do_not_fit_the_model_are_damage(line_model: Path, tmp_path: Path) -> None:
    doc = json.loads(line_model.read_text())
    for bad in ({"x": [0.0, 1.0]}, {"x": [0.0, 1.0], "y": [2.0, 1.0]}, {"x": [0, 1], "y": [0, 1], "z": [0, 1]}):
        doc["input_ranges"] = bad
        path = write(tmp_path / "bad.json", json.dumps(doc))
        r = run("predict", str(path), "0", "0")
        assert r.exit_code == 1 and "input_ranges do not fit" in r.output and "Traceback" not in r.output
    doc["input_ranges"] = {"x": [0.0, "1"], "y": [0.0, 1.0]}
    r = run("predict", str(write(tmp_path / "bad.json", json.dumps(doc))), "0", "0")
    assert r.exit_code == 1 and "damaged" in r.output and "input_ranges" in r.output


# ----------------------------------------------------------------- predict's warning


def test_far_is_beyond_the_range_by_more_than_half_its_width() -> None:
    """Issue 26: a tenth of the width flagged every ordinary held-out set (breast cancer's and wine's
    rows went beyond their training ranges by up to 36 % of the width); half flags none of them."""
    assert not far_outside(2.0, -1.0, 1.0) and far_outside(2.0001, -1.0, 1.0)
    assert not far_outside(-2.0, -1.0, 1.0) and far_outside(-2.01, -1.0, 1.0)
    assert not far_outside(1.72, -1.0, 1.0)  # 36 % of the width beyond: an ordinary long tail
    assert not far_outside(3.0, 3.0, 3.0) and far_outside(3.0001, 3.0, 3.0)  # width 0: any other value


def test_predict_warns_on_stderr_for_a_value_far_outside_and_answers(line_model: Path) -> None:
    lo, hi = load(line_model).record.input_ranges["y"]
    r = run("predict", str(line_model), "0", "5")
    assert r.exit_code == 0, r.output
    assert r.stderr.count("warning:") == 1
    assert f"input 'y' is 5, far outside its training range [{lo:.6g}, {hi:.6g}]" in r.stderr
    assert "warning" not in r.stdout
    float(r.stdout.split("probability")[1].strip(" ()\n"))
    for inside in ("0.5", str(hi + 0.05 * (hi - lo))):  # in range, and beyond it by less than 10 %
        r = run("predict", str(line_model), "0", inside)
        assert r.exit_code == 0 and "warning" not in r.output, r.output
    r = run("predict", str(line_model), "x=-7", "y=0", "--json")
    assert r.exit_code == 0 and "input 'x' is -7" in r.stderr
    json.loads(r.stdout)


def test_predict_data_summarises_however_many_rows(line_model: Path, tmp_path: Path) -> None:
    rows = [(0.1 * (i % 10) - 0.5, 0.0) for i in range(500)] + [(3.0 + i, 0.0) for i in range(12)]
    csv = write(tmp_path / "new.csv", "x,y\n" + "".join(f"{x},{y}\n" for x, y in rows))
    r = run("predict", str(line_model), "--data", str(csv), "--out", str(tmp_path / "p.csv"))
    assert r.exit_code == 0, r.output
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert "input 'x': 12 of 512 rows far outside" in warnings[0] and "the farthest 14" in warnings[0]
    assert "line 513" in warnings[0]  # the farthest row, as the user finds it in the file


def test_at_most_a_few_lines_for_many_inputs() -> None:
    names = [f"x{i}" for i in range(64)]
    ranges = {n: (0.0, 1.0) for n in names}
    lines = range_warnings(ranges, names, [[5.0] * 64, [0.5] * 64])
    assert len(lines) == 4
    assert lines[0].startswith("input 'x0': 1 of 2 rows far outside its training range [0, 1]")
    assert lines[-1] == "and 61 more inputs far outside their training ranges (x3, x4, x5, x6, x7, ...)"
    assert range_warnings(None, names, [[5.0] * 64]) == []


def test_a_constant_training_column_warns_for_any_other_value(tmp_path: Path) -> None:
    csv = write(tmp_path / "d.csv", "a,c,y\n" + "".join(f"{a},7,{2 * a}\n" for a in range(20)))
    spec = write(tmp_path / "s.yaml", "inputs: [a, c]\ntarget: y\ndata: d.csv\noutput: {linear: [a, c]}\n")
    assert csv.exists()
    r = run("train", str(spec), "--epochs", "2", "--lr", "0.001", "-o", str(tmp_path / "m.json"), "-q")
    assert r.exit_code == 0, r.output
    r = run("predict", str(tmp_path / "m.json"), "a=3", "c=7")
    assert r.exit_code == 0 and "warning" not in r.output
    r = run("predict", str(tmp_path / "m.json"), "a=3", "c=7.5")
    assert r.exit_code == 0 and "input 'c' is 7.5, far outside its training range [7, 7]" in r.stderr


# ----------------------------------------------------------------- the card


def test_card_of_a_small_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [[x, -x / 2, 3 * x - x / 2 + 1] for x in range(-10, 11)]
    csv = write(tmp_path / "d.csv", "a,b,y\n" + "".join(f"{a},{b},{y}\n" for a, b, y in rows))
    write(
        tmp_path / "lin.yaml",
        "description: a line through three points\ninputs: [a, b]\ntarget: y\ndata: d.csv\n"
        "output: {linear: [a, b]}\n"
        "training: {epochs: 20, optimizer: adam, learning_rate: 0.1, validation_split: 0.2}\n",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["treegrad", "train", "lin.yaml", "-q"])
    with pytest.raises(SystemExit):
        cli.main()
    r = run("card", "lin.model.json")
    assert r.exit_code == 0, r.output
    card = r.stdout
    rec = load(tmp_path / "lin.model.json").record
    show = run("show", "lin.model.json").stdout.strip()
    latex = run("show", "lin.model.json", "--format", "latex").stdout.strip()
    assert card.startswith("# lin\n\na line through three points\n")
    for section in ("Inputs", "Formula", "Data", "Metrics", "Training", "History", "Provenance", "Reproduce"):
        assert f"\n## {section}\n" in card
    assert f"```text\n{show}\n```" in card and f"```math\n{latex}\n```" in card
    assert "| task | regression, trained with loss `mse` |" in card
    lo, hi = rec.input_ranges["a"]
    assert f"| `a` | {lo:.6g} | {hi:.6g} |" in card
    assert f"| SHA-256 | `{hashlib.sha256(csv.read_bytes()).hexdigest()}` |" in card
    assert "| split | 17 training, 4 validation (validation_split 0.2, seed 0) |" in card
    assert f"| loss (mse) | {rec.metrics['train']['loss']:.6g} | {rec.metrics['validation']['loss']:.6g} |" in card
    assert '| `optimizer` | `"adam"` |' in card
    assert "20 epochs. Training loss" in card
    assert f"| Python | `{platform.python_version()}` |" in card
    assert f"```sh\ncd {shlex.quote(str(tmp_path))} && treegrad train lin.yaml -q\n```" in card


def test_card_of_a_64_input_model_stays_short(tmp_path: Path) -> None:
    names = [f"pixel_{i}" for i in range(64)]
    rows = wide_rows(120, 64)
    labels = [("a", "b", "c")[sum(r[:8]) % 3] for r in rows]
    write(
        tmp_path / "digits.csv",
        ",".join([*names, "digit"]) + "\n" + "".join(",".join(map(str, r)) + f",{c}\n" for r, c in zip(rows, labels)),
    )
    write(
        tmp_path / "digits.yaml",
        "inputs: all\ntarget: digit\ndata: digits.csv\n"
        "layers: [{linear: 16, activation: relu}, {linear: 3}, {softmax: true}]\n"
        "training: {epochs: 2, batch_size: 32, optimizer: adam, normalize: true}\n",
    )
    model = tmp_path / "digits.model.json"
    r = run("train", str(tmp_path / "digits.yaml"), "-o", str(model), "-q")
    assert r.exit_code == 0, r.output
    r = run("card", str(model))
    assert r.exit_code == 0, r.output
    card = r.stdout
    assert "| inputs | 64 |" in card and "64 inputs, in the order" in card
    assert "| `pixel_15` |" in card and "| `pixel_16` |" not in card
    assert "... and 48 more (64 in all" in card
    assert "too long for this card" in card and f"`treegrad show {model} --full` prints it" in card
    assert f"`treegrad show {model} --format latex --full` as LaTeX" in card
    assert "```text" not in card
    assert len(card) < 2 * MAX_SHOWN_FORMULA  # the full formula is far longer
    assert "classification of 3 classes (`a`, `b`, `c`)" in card


def test_card_escapes_markdown_and_html_from_the_file() -> None:
    assert md("<script>|a_b*") == "&lt;script&gt;\\|a\\_b\\*"
    assert code("a`b|c") == "``a`b\\|c``" and code("x|y", cell=False) == "`x|y`"
    assert code("\x1b[31m") == "`\\x1b[31m`"


def test_card_writes_atomically_and_never_over_its_model(line_model: Path, tmp_path: Path) -> None:
    before = line_model.read_bytes()
    r = run("card", str(line_model), "-o", str(line_model))
    assert r.exit_code == 1 and "this command reads" in r.output and "Traceback" not in r.output
    assert line_model.read_bytes() == before
    link = tmp_path / "link.json"
    link.hardlink_to(line_model)
    r = run("card", str(line_model), "-o", str(link))
    assert r.exit_code == 1 and "this command reads" in r.output
    out = tmp_path / "CARD.md"
    r = run("card", str(line_model), "-o", str(out))
    assert r.exit_code == 0, r.output
    assert out.read_text().startswith("# line\n") and "wrote the model card" in r.output
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "args, code_, message",
    [
        (["card", "nothere.json"], 1, "no such model file"),
        (["card", "{spec}"], 1, "is a spec, not a trained model"),
        (["card", "{data}"], 1, "is a data file, not a trained model"),
        (["card", "{model}", "-o", "out/"], 2, "names a folder, not a file"),
        (["card", "{model}", "-o", "missing/card.md"], 1, "does not exist"),
        (["card"], 2, "Missing argument"),
    ],
)
def test_card_bad_inputs(line_model: Path, tmp_path: Path, args: list[str], code_: int, message: str) -> None:
    spec = write(tmp_path / "s.yaml", "inputs: [x]\noutput: {linear: [x]}\n")
    data = write(tmp_path / "d.csv", "x,y\n1,2\n")
    filled = [a.format(spec=spec, data=data, model=line_model) for a in args]
    r = run(*[str(tmp_path / a) if a.startswith(("nothere", "missing")) else a for a in filled])
    assert r.exit_code == code_, r.output
    assert message in r.output and "Traceback" not in r.output


# ----------------------------------------------------------------- a real run


def test_real_run_records_the_command_and_the_card_reproduces_it(tmp_path: Path) -> None:
    rows = [[x / 5, (x * 7) % 5 - 2.0] for x in range(-15, 16)]
    write(tmp_path / "d.csv", "u,v,t\n" + "".join(f"{u},{v},{2 * u - v + 0.5}\n" for u, v in rows))
    write(tmp_path / "m.yaml", "inputs: [u, v]\ntarget: t\ndata: d.csv\noutput: {linear: [u, v]}\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

    def treegrad(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "treegrad", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    proc = treegrad("train", "m.yaml", "--epochs", "30", "--seed", "4", "--quiet")
    assert proc.returncode == 0, proc.stderr
    first = json.loads((tmp_path / "m.model.json").read_text())
    assert first["provenance"]["command"] == ["treegrad", "train", "m.yaml", "--epochs", "30", "--seed", "4", "--quiet"]
    proc = treegrad("predict", "m.model.json", "u=100", "v=0")
    assert proc.returncode == 0 and "warning: input 'u' is 100, far outside" in proc.stderr
    assert proc.stdout.strip() and "warning" not in proc.stdout
    proc = treegrad("card", "m.model.json")
    assert proc.returncode == 0, proc.stderr
    command = proc.stdout.split("```sh\n")[1].split("\n```")[0]
    (tmp_path / "m.model.json").unlink()
    subprocess.run(command, shell=True, check=True, env=env, capture_output=True, timeout=120)
    again = json.loads((tmp_path / "m.model.json").read_text())
    assert again["parameters"] == first["parameters"]  # bit for bit


def test_a_simplified_model_says_it_was_changed_after_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [[a / 4, (a * 5) % 7 - 3.0] for a in range(-20, 21)]
    write(tmp_path / "d.csv", "a,b,y\n" + "".join(f"{a},{b},{3 * a - 2 * b + 1}\n" for a, b in rows))
    write(
        tmp_path / "law.yaml",
        "inputs: [a, b]\ntarget: y\ndata: d.csv\nlayers: [{linear: 3, activation: tanh}, {linear: 1}]\n"
        "training: {epochs: 30, optimizer: adam, learning_rate: 0.05}\n",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["treegrad", "train", "law.yaml", "-q"])
    with pytest.raises(SystemExit):
        cli.main()
    r = run("simplify", "law.model.json", "-o", "small.json", "--epochs", "2")
    assert r.exit_code == 0, r.output
    trained, small = load(tmp_path / "law.model.json").record, load(tmp_path / "small.json").record
    assert trained.provenance is not None and small.provenance is not None
    assert trained.provenance.derived_by == [] and small.provenance.derived_by == ["treegrad simplify"]
    assert small.provenance.command == trained.provenance.command and small.input_ranges == trained.input_ranges
    card = run("card", "small.json").stdout
    assert "| then changed by | `treegrad simplify` |" in card
    assert "This model was made by `treegrad simplify` from a trained model, which this command trained" in card
    assert "The command that trained the model." not in card
