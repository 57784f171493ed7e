"""`sweep --search optuna --storage URL` (issue 24, 13): every fault of the study database is one
message (a usage error where the URL is wrong, exit 1 where the database or its disk fails), the
runs that finished before a failure are kept, and a password in the URL is never printed or stored.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from treegrad.cli import app

pytest.importorskip("optuna", reason="--search optuna needs the optuna extra")

runner = CliRunner()
SECRET = "s3cr%40t"  # as written in the URL; 's3cr@t' once decoded

F2C = """\
name: f2c
inputs: [f]
output: {add: [{mul: [param, f]}, param]}
data: f2c:30
target: c
training: {epochs: 2, learning_rate: 0.01}
"""


def search(storage: str, *more: str) -> Result:
    args = ["sweep", "f2c.yaml", "--grid", "training.epochs=1,2", "--search", "optuna", "--trials", "2"]
    return runner.invoke(app, [*args, "--storage", storage, *more])


def told(result: Result, code: int, *words: str) -> None:
    """Exit `code`, the words in one message, no internal error, no traceback, no password."""
    output = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "internal error" not in output and "Traceback" not in output, output
    assert "s3cr" not in output, output
    for w in words:
        assert w in output, output


@pytest.fixture()
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f2c.yaml").write_text(F2C)
    (tmp_path / "notes.txt").write_text("not a database\n")
    return tmp_path


def _driver_missing(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return True
    return False


@pytest.mark.parametrize(
    ("url", "words"),
    [
        (f"postgresql+psycopg2://user:{SECRET}@localhost/db", ["the Python module 'psycopg2', is not installed"]),
        (f"nosuchdb://user:{SECRET}@host/db", ["'nosuchdb' is not a kind of database SQLAlchemy knows"]),
        ("study.db", ["study.db is not a database URL", "sqlite:///study.db"]),
        ("sqlite:///nofolder/study.db", ["the folder nofolder does not exist"]),
        ("sqlite:///notes.txt", ["notes.txt is not an SQLite database"]),
    ],
)
def test_a_url_that_names_no_usable_database_is_a_usage_error(work: Path, url: str, words: list[str]) -> None:
    """Each was 'internal error (ImportError / NoSuchModuleError / ArgumentError / OperationalError /
    DatabaseError)'; now a usage error at --storage, before any run, with the password as ***."""
    if "psycopg2" in url and not _driver_missing("psycopg2"):
        pytest.skip("psycopg2 is installed here")
    result = search(url)
    told(result, 2, "Invalid value for '--storage'", *words)
    if "user:" in url:
        assert "user:***@" in result.output
    assert not (work / "f2c.sweep.csv").exists()


def _study_db(folder: Path) -> Path:
    """A study database an Optuna search made."""
    result = search(f"sqlite:///{folder / 'study.db'}", "--csv", str(folder / "first.csv"))
    told(result, 0)
    return folder / "study.db"


def test_a_database_on_a_read_only_disk_is_a_message(work: Path, tmpfs: Any) -> None:
    made = _study_db(work)
    with tmpfs(work / "ro", "size=256k") as ro:
        shutil.copy(made, ro / "study.db")
        import subprocess

        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        told(search(f"sqlite:///{ro / 'study.db'}"), 1, "the study database cannot be used", "readonly database")
        told(search(f"sqlite:///{ro / 'new.db'}"), 1, "the study database cannot be used")
    assert not (work / "f2c.sweep.csv").exists()


def test_a_database_on_a_full_disk_is_a_message(work: Path, tmpfs: Any) -> None:
    with tmpfs(work / "small", "size=12k") as small:
        told(search(f"sqlite:///{small / 'study.db'}"), 1, "the study database cannot be used", "disk is full")
    assert not (work / "f2c.sweep.csv").exists()


def test_a_database_that_fails_mid_search_keeps_the_finished_runs(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up during the second of three trials: its run and the first trial's are in
    the CSV, one message says what failed, exit 1."""
    import optuna.storages
    from sqlalchemy.exc import OperationalError

    real = optuna.storages.RDBStorage.set_trial_state_values
    calls = [0]

    def full(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] > 1:  # the first trial's end is written, the second's is not
            raise OperationalError("UPDATE trials", {}, sqlite3.OperationalError("database or disk is full"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_state_values", full)
    args = ["sweep", "f2c.yaml", "--grid", "training.epochs=1,2,3", "--search", "optuna", "--trials", "3"]
    result = runner.invoke(app, [*args, "--storage", f"sqlite:///{work / 'study.db'}"])
    told(result, 1, "the study database cannot be used (database or disk is full)", "Stopped after 2 of 3 runs")
    assert len((work / "f2c.sweep.csv").read_text().splitlines()) == 3


def test_the_storage_url_is_never_written(work: Path) -> None:
    """What a search writes (its CSV, the best model) does not hold the URL, so a password in one
    could not leak through them."""
    result = search("sqlite:///kept-study.db", "--best-out", "best.json")
    told(result, 0)
    for name in ("f2c.sweep.csv", "best.json"):
        assert "kept-study" not in (work / name).read_text()


def test_a_warning_of_the_database_is_one_line_in_treegrads_words(work: Path) -> None:
    """SQLAlchemy warned with its own source path and line (storage.py:252: SAWarning ...)."""
    result = search("sqlite:///study.db?foo=bar")
    told(result, 0, "warning: --storage sqlite:///study.db?foo=bar: Query string argument(s) 'foo'")
    assert "site-packages" not in result.output and "SAWarning" not in result.output
