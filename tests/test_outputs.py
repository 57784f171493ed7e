"""No command writes over a file the user had: an existing output file is replaced only when it
is the command's own earlier output (files.check_replace), else the command refuses, exit 1,
and writes nothing, unless --force.

For each command that writes: (a) it refuses over a user's CSV or YAML file, which stays as
it was; (b) running it again with the same output works; (c) --force replaces the file.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from treegrad import files
from treegrad.cli import app
from treegrad.outputs.formats import offered

runner = CliRunner()

F2C = """\
name: f2c
inputs: [f]
output: {add: [{mul: [param, f]}, param]}
data: f2c:20
target: c
training: {epochs: 2, learning_rate: 0.01, shuffle: false}
"""
USER_CSV = "name,price\nwidget,3\n"
USER_YAML = "# my notes\nowner: me\n"
USER_PNG = b"\x89PNG\r\n\x1a\n my own picture"


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` (hidden temporary files too) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder, with a spec, a trained model m.json, a CSV d.csv and the user's files."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f2c.yaml").write_text(F2C)
    (tmp_path / "d.csv").write_text("f,c\n1,-17.2\n2,-16.7\n")
    (tmp_path / "keep.csv").write_text(USER_CSV)
    (tmp_path / "notes.yaml").write_text(USER_YAML)
    (tmp_path / "photo.png").write_bytes(USER_PNG)
    result = invoke("train", "f2c.yaml", "--out", "m.json", "--quiet")
    assert result.exit_code == 0, result.output
    return tmp_path


@dataclass(frozen=True)
class Case:
    """A command that writes one file, given as {out}; `own` is a fresh name for it."""

    args: tuple[str, ...]
    own: str
    kind: files.Kind | None  # None: a model file, replaced only by a model of its name
    needs: str | None = None

    def run(self, out: str, *extra: str) -> Result:
        if self.needs is not None:
            pytest.importorskip(self.needs)
        return invoke(*(a.replace("{out}", out) for a in self.args), *extra)


CASES = {
    "card": Case(("card", "m.json", "-o", "{out}"), "card.md", files.CARD),
    **{  # every export format of the table, each with the kind its rows says it writes
        f"export-{f.name}": Case(
            ("export", "m.json", "-f", f.name, "-o", "{out}"), f"m_{f.name}{f.suffix}", f.kind, f.needs
        )
        for f in offered("export")
    },
    "predict": Case(("predict", "m.json", "--data", "d.csv", "--out", "{out}"), "p.csv", files.PREDICTIONS),
    "report": Case(("report", "m.json", "-o", "{out}", "--steps", "1"), "r.html", files.PAGE),
    "trace-html": Case(("trace", "m.json", "--html", "{out}"), "t.html", files.PAGE),
    "simplify": Case(("simplify", "m.json", "-o", "{out}", "--epochs", "1"), "small.json", None),
    "sweep-csv": Case(("sweep", "f2c.yaml", "--grid", "training.epochs=1", "--csv", "{out}"), "s.csv", files.SWEEP),
    "sweep-best-out": Case(
        ("sweep", "f2c.yaml", "--grid", "training.epochs=1", "--csv", "s.csv", "--best-out", "{out}"),
        "best.json",
        None,
    ),
    "plot": Case(("plot", "m.json", "-o", "{out}"), "curve.png", files.IMAGE, "matplotlib"),
    "plot-svg": Case(("plot", "m.json", "-o", "{out}"), "curve.svg", files.IMAGE, "matplotlib"),
    "plot-pdf": Case(("plot", "m.json", "-o", "{out}"), "curve.pdf", files.IMAGE, "matplotlib"),
    "explain-plot": Case(
        ("explain", "m.json", "--data", "d.csv", "--plot", "{out}"), "chart.png", files.IMAGE, "matplotlib"
    ),
}
IMAGES = {"plot", "plot-svg", "plot-pdf", "explain-plot"}  # these need an image's name: the user's is photo.png
VICTIMS = [
    (name, victim) for name in CASES for victim in (("photo.png",) if name in IMAGES else ("keep.csv", "notes.yaml"))
]


@pytest.mark.parametrize(("name", "victim"), VICTIMS, ids=[f"{n}-{v}" for n, v in VICTIMS])
def test_a_command_refuses_to_replace_the_users_file(work: Path, name: str, victim: str) -> None:
    before = snapshot(work)
    result = CASES[name].run(victim)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    words = " ".join(result.output.split())
    assert victim in words and "refusing to" in words and "--force" in words, result.output
    assert "did not write" in words or "not a treegrad model file" in words, result.output
    assert snapshot(work) == before  # nothing written, not even a temporary file


@pytest.mark.parametrize("name", list(CASES))
def test_running_a_command_again_replaces_its_own_output(work: Path, name: str) -> None:
    case = CASES[name]
    first = case.run(case.own)
    assert first.exit_code == 0, first.output
    again = case.run(case.own)
    assert again.exit_code == 0, again.output
    if case.kind is not None:  # what treegrad writes is what it recognises, as that kind alone
        ends = (work / case.own).read_bytes()
        assert [k for k in files.KINDS if files.is_kind(ends, k)] == [case.kind]


@pytest.mark.parametrize("name", list(CASES))
def test_force_replaces_the_users_file(work: Path, name: str) -> None:
    victim = "photo.png" if name in IMAGES else "keep.csv"
    result = CASES[name].run(victim, "--force")
    assert result.exit_code == 0, result.output
    assert (work / victim).read_bytes() not in (USER_CSV.encode(), USER_PNG)


def test_simplify_refuses_to_replace_the_model_of_another_spec(work: Path) -> None:
    (work / "other.yaml").write_text(F2C.replace("name: f2c", "name: other"))
    assert invoke("train", "other.yaml", "--out", "victim.model.json", "--quiet").exit_code == 0
    before = snapshot(work)
    result = invoke("simplify", "m.json", "-o", "victim.model.json", "--epochs", "1")
    assert result.exit_code == 1, result.output
    words = " ".join(result.output.split())
    assert "holds the model 'other', not 'f2c'" in words and "--force" in words, result.output
    assert snapshot(work) == before


def test_sweep_best_out_refuses_another_model_and_names_its_option(work: Path) -> None:
    (work / "other.yaml").write_text(F2C.replace("name: f2c", "name: other"))
    assert invoke("train", "other.yaml", "--out", "victim.json", "--quiet").exit_code == 0
    before = snapshot(work)
    result = invoke("sweep", "f2c.yaml", "--grid", "training.epochs=1", "--best-out", "victim.json")
    assert result.exit_code == 1, result.output
    words = " ".join(result.output.split())
    assert "holds the model 'other'" in words and "Choose another --best-out" in words, result.output
    assert snapshot(work) == before  # refused before training, so no sweep CSV either


def test_simplify_front_rewrites_its_own_models_and_refuses_others(work: Path) -> None:
    (work / "front").mkdir()
    args = ("simplify", "m.json", "-o", "small.json", "--epochs", "1", "--front", "front")
    assert invoke(*args).exit_code == 0
    assert invoke(*args).exit_code == 0
    (work / "front" / "small.0.model.json").write_text(USER_CSV)
    result = invoke(*args)
    assert result.exit_code == 1 and "small.0.model.json" in result.output, result.output
    assert (work / "front" / "small.0.model.json").read_text() == USER_CSV


def test_one_kind_of_output_does_not_replace_another(work: Path) -> None:
    assert invoke("report", "m.json", "-o", "page.html", "--steps", "1").exit_code == 0
    before = snapshot(work)
    result = invoke("card", "m.json", "-o", "page.html")
    assert result.exit_code == 1, result.output
    words = " ".join(result.output.split())
    assert "page.html exists and is an HTML page treegrad wrote, not a model card treegrad wrote" in words
    assert snapshot(work) == before


def test_predictions_over_a_sweep_csv_are_refused(work: Path) -> None:
    assert invoke("sweep", "f2c.yaml", "--grid", "training.epochs=1", "--csv", "runs.csv").exit_code == 0
    result = invoke("predict", "m.json", "--data", "d.csv", "--out", "runs.csv")
    assert result.exit_code == 1 and "is a CSV of sweep runs" in " ".join(result.output.split()), result.output


def test_an_empty_file_is_replaced_without_force(work: Path) -> None:
    (work / "empty.md").write_text("")
    result = invoke("card", "m.json", "-o", "empty.md")
    assert result.exit_code == 0, result.output
    assert (work / "empty.md").read_text().startswith("# f2c\n")


def test_init_never_replaces_a_file_without_force(work: Path) -> None:
    # A spec is the user's to edit, so init refuses even its own earlier spec; --force replaces.
    for victim in ("notes.yaml", "spec.yaml"):
        (work / "spec.yaml").write_text(USER_YAML)
        before = snapshot(work)
        result = invoke("init", "d.csv", "-o", victim)
        assert result.exit_code == 1 and "--force" in result.output, result.output
        assert snapshot(work) == before
    assert invoke("init", "d.csv", "-o", "notes.yaml", "--force", "--target", "c").exit_code == 0
    assert (work / "notes.yaml").read_text() != USER_YAML


def test_import_params_refuses_the_users_file_and_rewrites_its_own(work: Path) -> None:
    torch = pytest.importorskip("torch")
    assert invoke("export", "m.json", "-f", "torch", "-o", "mod.py").exit_code == 0
    spec = importlib.util.spec_from_file_location("mod", work / "mod.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.save(mod.Model().state_dict(), work / "state.pt")
    args = ("import-params", "m.json", "--from", "state.pt", "-o")
    before = snapshot(work)
    result = invoke(*args, "keep.csv")
    assert result.exit_code == 1 and "--force" in result.output, result.output
    assert snapshot(work) == before
    assert invoke(*args, "new.json").exit_code == 0
    assert invoke(*args, "new.json").exit_code == 0
    assert invoke(*args, "keep.csv", "--force").exit_code == 0


# ----------------------------------------------------------------- the rule itself


def test_marks_are_looked_for_only_near_the_ends_of_a_file(tmp_path: Path) -> None:
    mark = files.IMAGE_MARK.encode()
    middle = tmp_path / "middle.png"
    middle.write_bytes(b"x" * 10_000 + mark + b"x" * 10_000)
    with pytest.raises(files.FileError, match="refusing to replace it"):
        files.check_replace(middle, files.IMAGE)
    tail = tmp_path / "tail.pdf"
    tail.write_bytes(b"%PDF" + b"x" * 100_000 + mark + b"%%EOF\n")  # a PDF's Creator sits at its end
    files.check_replace(tail, files.IMAGE)


def test_a_predictions_csv_is_told_by_its_last_columns(tmp_path: Path) -> None:
    for header, own in (
        ("f,c,prediction", True),
        ("x,y,label,prediction,probability", True),
        ("prediction", False),  # no data columns: not a table treegrad added a column to
        ("f,prediction,c", False),
        ("f,c", False),
    ):
        p = tmp_path / "p.csv"
        p.write_text(header + "\n1,2,3\n")
        assert files.is_kind(p.read_bytes(), files.PREDICTIONS) is own, header


def test_force_replaces_a_link_itself_not_its_target(work: Path) -> None:
    os.symlink("keep.csv", work / "link.md")
    result = invoke("card", "m.json", "-o", "link.md")
    assert result.exit_code == 1 and "symbolic link" in result.output, result.output
    assert invoke("card", "m.json", "-o", "link.md", "--force").exit_code == 0
    assert not (work / "link.md").is_symlink() and (work / "keep.csv").read_text() == USER_CSV
