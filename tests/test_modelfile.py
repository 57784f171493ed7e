"""The model file: what `treegrad train` writes reads back whole, and every way a file can be
malformed is a `ModelFileError` that says what is wrong, where, and what to do.

The command-line side of the same damage (exit codes, one message, no file changed) is in
test_robustness.py; these tests call `modelfile.read` and `load_graph` directly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from treegrad.cli import app
from treegrad.engine.settings import Training
from treegrad.errors import ModelFileError
from treegrad.run.modelfile import load_graph, read

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
    ("\u2028", "U+2028"),  # a line separator, which some terminals break the line at
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
    message = refused(path, where, code, "control character" if code != "U+2028" else "line separator")
    assert char not in message and "\x1b" not in message, repr(message)


# ----------------------------------------------------------------- every other malformed file


def test_unprintable_text_beyond_control_characters(trained: Path, tmp_path: Path) -> None:
    """A lone surrogate (JSON's "\\ud800") cannot be printed at all: predict crashed on it with
    UnicodeEncodeError. An empty label or name is never written either."""
    path = rewrite(trained, tmp_path, lambda r: r.__setitem__("classes", ["a", "\ud800"]))
    assert "\ud800" not in refused(path, "classes.1")  # pydantic or our check, by version
    path = rewrite(trained, tmp_path, lambda r: r.__setitem__("classes", ["", "b"]))
    refused(path, "classes.0", "at least 1 character")
    path = rewrite(trained, tmp_path, lambda r: r.__setitem__("name", ""))
    refused(path, "name", "at least 1 character")


def test_a_key_given_twice_is_refused(trained: Path, tmp_path: Path) -> None:
    """JSON readers keep the last of two equal keys, silently: an edited file with a second
    "parameters" or "p0" would load values nobody can see by reading it from the top."""
    text = trained.read_text()
    path = tmp_path / "twice.model.json"
    path.write_text(text.replace('"parameters": {', '"parameters": {"p0": 5.0, ', 1))
    refused(path, "'p0'", "twice", "train the model again")
    path.write_text(text.replace('"format":', '"name": "other", "format":', 1))
    refused(path, "'name'", "twice")


@pytest.mark.parametrize(
    ("version", "shown"),
    [(True, "True"), (1.0, "1.0"), ("1", "'1'"), (2, "2"), (None, "None")],
)
def test_only_the_whole_number_1_is_version_1(trained: Path, tmp_path: Path, version: object, shown: str) -> None:
    """`true == 1` and `1.0 == 1` in Python: those passed the version check."""
    path = rewrite(trained, tmp_path, lambda r: r.__setitem__("version", version))
    refused(path, f"version {shown}", "reads version 1", "train the model again")


def test_a_byte_order_mark_is_no_damage(trained: Path, tmp_path: Path) -> None:
    """Editors on Windows may add one; it was 'not valid JSON ... the file may be truncated'."""
    path = tmp_path / "bom.model.json"
    path.write_bytes(b"\xef\xbb\xbf" + trained.read_bytes())
    assert (
        load_graph(path, read(path)).compiled_graph.param_values()
        == load_graph(trained, read(trained)).compiled_graph.param_values()
    )


def test_special_files_are_refused_without_being_read(tmp_path: Path) -> None:
    """/dev/zero named model.json was read forever (all memory); a FIFO would block."""
    zero = Path("/dev/zero")
    if not zero.exists():
        pytest.skip("no /dev/zero here")
    link = tmp_path / "zero.model.json"
    link.symlink_to(zero)
    refused(link, "zero.model.json", "not a regular file")


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.model.json"
    with path.open("wb") as f:
        f.truncate(65 * 1024 * 1024)  # sparse: no disk space used
    refused(path, "huge.model.json", "larger than 64 MB", "treegrad train")


HUGE = "q" * 100_000


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.__setitem__("format", HUGE),
        lambda r: r.__setitem__("format", [[[[HUGE]]]]),
        lambda r: r.__setitem__("version", HUGE),
        lambda r: r["parameters"].__setitem__(HUGE, 1.0),
        lambda r: r.__setitem__("inputs", [f"x{i}" for i in range(100_000)]),
        lambda r: r.__setitem__("classes", [HUGE]),
        lambda r: r.__setitem__("normalization", {f"x{i}": [0.0, 1.0] for i in range(100_000)}),
        lambda r: r.__setitem__(HUGE, 1),
    ],
    ids=["format", "format-nested", "version", "parameter-name", "inputs", "class", "normalization", "key"],
)
def test_messages_stay_short_whatever_the_file_holds(
    trained: Path, tmp_path: Path, change: Callable[[dict[str, Any]], object]
) -> None:
    """A message quotes what it found, cut: the CLI prints it as one short paragraph."""
    message = refused(rewrite(trained, tmp_path, change), "edited.model.json")
    assert len(message) < 800, message[:2000]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda r: r.pop("parameters"), ("parameters: Field required",)),
        (lambda r: r.__setitem__("task", "poetry"), ("task",)),
        (lambda r: r["history"].__setitem__("train", ["x"]), ("history.train.0",)),
    ],
)
def test_a_damaged_field_says_what_to_do(
    trained: Path, tmp_path: Path, change: Callable[[dict[str, Any]], object], words: tuple[str, ...]
) -> None:
    refused(rewrite(trained, tmp_path, change), "edited.model.json is damaged", *words, "train the model again")


def test_a_file_that_cannot_be_read_is_refused(trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EACCES or EIO on reading was an internal error (an OSError nobody caught)."""

    def denied(self: Path, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "open", denied)  # root reads any file, so chmod cannot show this
    refused(trained, "cannot read", "stop.model.json", "Permission denied")


def test_the_embedded_spec_file_name_is_quoted_safely(trained: Path, tmp_path: Path) -> None:
    """spec_file is named in the messages about the embedded spec; it went out unescaped."""

    def change(r: dict[str, Any]) -> None:
        r["spec_file"] = "\x1b[31mstop.yaml"
        r["spec_text"] = "inputs: [x]\noutput: {frob: x}\n"

    message = refused(rewrite(trained, tmp_path, change), "no longer validates", "\\x1b[31mstop.yaml", "frob")
    assert "\x1b" not in message


# ----------------------------------------------------------------- an edited spec


def test_a_spec_edited_after_training_is_refused_with_the_reason(trained: Path, tmp_path: Path) -> None:
    """Issue 24: a model file's spec_text edited (sigmoid to tanh: the same parameters, another
    model) was predicted, shown and resumed silently. Every writer records the spec's SHA-256, so
    the edit is refused, saying why and how to go on; deleting the record takes the file as edited."""
    record = json.loads(trained.read_text())
    assert record["spec_sha256"] == hashlib.sha256(record["spec_text"].encode()).hexdigest()

    def edit(r: dict[str, Any]) -> None:
        r["spec_text"] = r["spec_text"].replace("sigmoid", "tanh")

    edited = rewrite(trained, tmp_path, edit)
    refused(edited, "its spec_text was edited after treegrad wrote it", "delete its spec_sha256 line")
    for command in (["predict", str(edited), "1"], ["train", "--resume", str(edited), "-o", str(tmp_path / "r.json")]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 1 and "its spec_text was edited" in result.output, result.output

    def accepted(r: dict[str, Any]) -> None:
        edit(r)
        del r["spec_sha256"]

    as_edited = rewrite(trained, tmp_path, accepted)
    load_graph(as_edited, read(as_edited))


def test_every_writer_records_the_spec_it_wrote(trained: Path, tmp_path: Path) -> None:
    """The digest is written by the record itself, whatever the writer set: a record copied with
    another spec (as simplify makes its candidates) is saved with that spec's digest."""
    from treegrad.run.modelfile import save

    record = read(trained)
    other = record.model_copy(update={"spec_text": record.spec_text.replace("sigmoid", "tanh")})
    save(tmp_path / "other.model.json", other)
    load_graph(tmp_path / "other.model.json", read(tmp_path / "other.model.json"))
