"""The model file: what `treegrad train` writes reads back whole, and every way a file can be
malformed is a `ModelFileError` that says what is wrong, where, and what to do.

The command-line side of the same damage (exit codes, one message, no file changed) is in
test_robustness.py; these tests call `modelfile.read` and `load_graph` directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from treegrad.cli import app
from treegrad.errors import ModelFileError
from treegrad.modelfile import load_graph, read
from treegrad.spec import Training

SPEC = """\
name: stop
inputs: [x]
output: {sigmoid: {add: [{mul: [param, x]}, param]}}
loss: bce
target: y
training: {epochs: 4, learning_rate: 0.05, optimizer: adam, seed: 7, validation_split: 0.25,
           early_stopping: {patience: 2}, normalize: true}
"""
CSV = "x,y\n" + "".join(f"{i},{'a' if i % 3 else 'b'}\n" for i in range(12))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained with every training setting given, early stopping included."""
    folder = tmp_path_factory.mktemp("modelfile")
    (folder / "stop.yaml").write_text(SPEC)
    (folder / "stop.csv").write_text(CSV)
    out = folder / "stop.model.json"
    result = CliRunner().invoke(
        app, ["train", str(folder / "stop.yaml"), "--data", str(folder / "stop.csv"), "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.stderr
    return out


def rewrite(trained: Path, tmp_path: Path, change: Callable[[dict[str, Any]], object]) -> Path:
    """A copy of the trained model file with `change` applied to its JSON."""
    record = json.loads(trained.read_text())
    change(record)
    path = tmp_path / "edited.model.json"
    path.write_text(json.dumps(record))
    return path


def refused(path: Path, *words: str) -> str:
    """read + load_graph of `path` raise a ModelFileError holding `words`; returns its message."""
    with pytest.raises(ModelFileError) as caught:
        load_graph(path, read(path))
    message = str(caught.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


# ----------------------------------------------------------------- the training block


def test_the_training_settings_written_read_back_as_the_specs_training_model(trained: Path) -> None:
    """The record's training block is the spec's own `Training` model, early stopping included."""
    record = read(trained)
    assert isinstance(record.training, Training)
    assert record.training.early_stopping is not None and record.training.early_stopping.patience == 2
    assert (record.training.learning_rate, record.training.optimizer, record.training.seed) == (0.05, "adam", 7)
    assert record.training.validation_split == 0.25 and record.training.normalize is True
    load_graph(trained, record)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("learning_rate", "abc", ("training.learning_rate", "valid number")),
        ("learning_rate", -1.0, ("training.learning_rate", "greater than 0")),
        ("epochs", 2.5, ("training.epochs",)),
        ("seed", "abc", ("training.seed", "valid integer")),
        ("seed", True, ("training.seed",)),
        ("optimizer", "adamw", ("training.optimizer", "'adam'")),
        ("early_stopping", {"patience": 0}, ("training.early_stopping.patience",)),
        ("frob", 1, ("training", "unknown key 'frob'")),
    ],
)
def test_a_bad_training_setting_is_refused(
    trained: Path, tmp_path: Path, key: str, value: object, words: tuple[str, ...]
) -> None:
    path = rewrite(trained, tmp_path, lambda r: r["training"].__setitem__(key, value))
    assert "is damaged" in refused(path, *words)


def test_a_training_block_that_is_not_a_mapping_is_refused(trained: Path, tmp_path: Path) -> None:
    path = rewrite(trained, tmp_path, lambda r: r.__setitem__("training", [1, 2]))
    refused(path, "training", "is damaged")


# ----------------------------------------------------------------- text that reaches the terminal


def _set_first_key(mapping: dict[str, Any], key: str) -> None:
    """Rename the first key of `mapping` to `key`, keeping its value."""
    first = next(iter(mapping))
    mapping[key] = mapping.pop(first)


CONTROL = [
    ("\x1b[31m", "U+001B"),  # the escape that starts a terminal colour or cursor code
    ("\x07", "U+0007"),  # the bell
    ("\r", "U+000D"),  # returns to the start of the line, so what follows overwrites it
    ("\u202e", "U+202E"),  # right-to-left override (a format character, category Cf)
    ("\u200b", "U+200B"),  # zero-width space: two labels that look the same
]
FIELDS: list[tuple[str, Callable[[dict[str, Any], str], object], str]] = [
    ("classes", lambda r, c: r.__setitem__("classes", ["a", f"b{c}"]), "classes.1"),
    ("name", lambda r, c: r.__setitem__("name", f"stop{c}"), "name"),
    ("inputs", lambda r, c: r.__setitem__("inputs", [f"x{c}"]), "inputs.0"),
    ("parameters", lambda r, c: _set_first_key(r["parameters"], f"p0{c}"), "parameters"),
    ("normalization", lambda r, c: _set_first_key(r["normalization"], f"x{c}"), "normalization"),
]


@pytest.mark.parametrize(("char", "code"), CONTROL, ids=[c[1] for c in CONTROL])
@pytest.mark.parametrize(("field", "change", "where"), FIELDS, ids=[f[0] for f in FIELDS])
def test_control_characters_in_printed_text_are_refused(
    trained: Path,
    tmp_path: Path,
    field: str,
    change: Callable[[dict[str, Any], str], object],
    where: str,
    char: str,
    code: str,
) -> None:
    """Labels, names, inputs and parameter names are printed: a control character in one could
    recolour the terminal, move the cursor or hide text, so the file is refused, and the message
    names the field and the character without printing it."""
    path = rewrite(trained, tmp_path, lambda r: change(r, char))
    message = refused(path, where, code, "control character")
    assert char not in message and "\x1b" not in message, repr(message)
