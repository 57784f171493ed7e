"""The saved model file: versioned JSON, validated on load, written atomically.

A model file holds the spec as the user wrote it (its text), the learned parameter
values by stable name, the input names, class labels, normalisation statistics, the
training settings used, the data source, and the loss history. Loading rebuilds the
graph from the embedded spec and checks that the parameters match it exactly.

A run that can be continued (`train --resume`) also records its optimizer state (`resume`,
see resume.py). The field is optional, so the format stays version 1: files written before it
existed load as before (they cannot be resumed, and say so); a file that has it needs a
treegrad that knows it.

Here too is how a command recognises what it is given: a model file (`load`), or a model
file or a spec (`open_model`), and a file that must not be replaced (`check_replace`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StrictFloat,
    StringConstraints,
    ValidationError,
    field_serializer,
)
from pydantic_core import PydanticCustomError

from ..data.columns import model_inputs
from ..data.readers import is_data_file_name, load_data
from ..data.table import MISSING_VALUES
from ..engine.settings import Training
from ..errors import ModelFileError, SpecError, describe_char, escaped, listed, unprintable
from ..files import Kind, note_read, what_is, write_atomic
from .provenance import Provenance

FORMAT = "treegrad-model"
VERSION = 1
MAX_BYTES = 64 * 1024 * 1024


Task = Literal["regression", "binary", "classes"]


# Characters that text to be printed may not hold, by Unicode category, as named in messages.
# Control (Cc) and format (Cf) characters are terminal escapes, carriage returns, bidirectional
# overrides, zero-width spaces: printed, they recolour the terminal, move the cursor, or make
# two different labels look alike. Line and paragraph separators break lines; a lone surrogate
# (JSON's "\ud800") is not text at all, and printing it fails.
def _shown(text: str, limit: int = 40) -> str:
    """Text from a file as quoted in a message: unprintable characters escaped, long text cut."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return escaped(text).replace("\n", "\\n").replace("\t", "\\t")


def _location(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as written in messages: `history.train.0`, `parameters, key 'w'`."""
    parts = [_shown(str(x)) for x in loc]
    if len(parts) >= 2 and parts[-1] == "[key]":  # pydantic's mark for an error in a mapping's key
        return f"{'.'.join(parts[:-2])}, key '{parts[-2]}'"
    return ".".join(parts)


def _printable(text: str) -> str:
    c = unprintable(text)
    if c is not None:
        # The text goes in through the context, so that braces in it are not placeholders.
        raise PydanticCustomError(
            "unprintable_character",
            "{message}",
            {"message": f"holds {describe_char(c)}, which treegrad never writes"},
        )
    return text


# Text that is printed (labels, names): not empty, nothing unprintable in it.
PrintedText = Annotated[str, StringConstraints(min_length=1), AfterValidator(_printable)]


# The models here are built on first use (defer_build), not when a command imports this module.
class DataInfo(BaseModel):
    """Where the training data came from and how it was split."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    source: str
    target: str
    rows: int
    train_rows: int
    validation_rows: int


class HistoryInfo(BaseModel):
    """Per-epoch mean losses."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    train: list[float]
    validation: list[float] = []
    best_epoch: int | None = None
    stopped_early: bool = False
    learning_rates: list[float] = []  # per epoch, when a schedule changed it
    penalty: list[float] = []  # per epoch, with l1 or l2: the weights' penalty, apart from the loss


class ResumeState(BaseModel):
    """What continuing the run bit for bit needs: the optimizer's state after its last epoch."""

    model_config = ConfigDict(extra="forbid")
    epochs: int  # epochs done
    steps: int  # optimizer steps taken (Adam's bias correction counts them)
    # Per state variable of the optimizer (momentum's "m", Adam's "m" and "v"), by parameter name.
    moments: dict[str, dict[PrintedText, StrictFloat]]
    data_sha256: str  # of the training and validation rows as trained (resume.rows_digest)
    # With early stopping the file's parameters are the best epoch's: the parameters after the last
    # epoch (those the moments belong to) and the best validation loss as training compared it.
    last: dict[PrintedText, StrictFloat] | None = None
    best_loss: StrictFloat | None = None


class Lineage(BaseModel):
    """Where a run began, beyond its command line: the parameters of another model file
    (`train --init-from`), and the recorded runs it continues (`train --resume`)."""

    model_config = ConfigDict(extra="forbid")
    init_from: str | None = None  # the model file whose parameters the (first) run started from, absolute
    init_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None  # that file's, as read
    # A resumed run: the provenance of each run it continues, first to last (None: a file that
    # recorded none); the record's own `provenance` is that of the resume.
    continues: list[Provenance | None] = []


class ModelRecord(BaseModel):
    """Everything in a model file (format `treegrad-model`, version 1)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    format: str
    version: int
    name: PrintedText
    spec_file: str
    spec_text: str
    # The SHA-256 of spec_text, written with every file (whatever the writer put here): the
    # parameters were learned for that spec, and one edited since is refused (`check_spec_text`).
    spec_sha256: str | None = None
    inputs: list[PrintedText]
    task: Task
    loss: str
    classes: list[PrintedText] | None = None
    # Strict: a parameter written as true or "0.5" is an edited file, not a number.
    normalization: dict[PrintedText, tuple[StrictFloat, StrictFloat]] | None = None
    # A regression target standardised for training: (mean, std); the graph answers in raw units.
    target_normalization: tuple[StrictFloat, StrictFloat] | None = None
    # How the CSV's columns became the inputs (columns.Recoding): renamed columns and one-hot
    # text columns ({column: {value: input}}), so predict reads the raw CSV.
    renamed: dict[str, PrintedText] | None = None
    encodings: dict[str, dict[str, PrintedText]] | None = None
    # training.missing: fill: the value each CSV column's missing cells take (the training rows' mean,
    # or most frequent text), so that predict and eval fill them as training did (data/missing.py).
    fill: dict[str, StrictFloat | str] | None = None
    parameters: dict[PrintedText, StrictFloat]
    # The spec's own model: the settings were validated by it when the model was trained.
    training: Training
    data: DataInfo
    history: HistoryInfo
    metrics: dict[str, Any] = {}
    treegrad_version: str = ""
    resume: ResumeState | None = None  # absent in files of older versions, and where a run cannot go on
    # Optional, so that files written before them still load: how the model was made, and each
    # input's (min, max) over the training rows in raw units, which predict warns against.
    provenance: Provenance | None = None
    input_ranges: dict[PrintedText, tuple[StrictFloat, StrictFloat]] | None = None
    lineage: Lineage | None = None  # a run begun from another model file's parameters, or resumed

    @field_serializer("spec_sha256")
    def _spec_digest(self, value: str | None) -> str:
        return spec_digest(self.spec_text)


def spec_digest(text: str) -> str:
    """The SHA-256 (hex) of a model file's spec text, as its `spec_sha256` records it."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def save(path: Path, record: ModelRecord, *, force: bool = False) -> None:
    """Write a model file atomically (see `files.write_atomic`; `force` replaces a symbolic link)."""
    write_atomic(path, json.dumps(record.model_dump(mode="json"), indent=1) + "\n", force=force)


AGAIN = "the file was edited or damaged — train the model again"


def _too_deep(path: Path) -> ModelFileError:
    return ModelFileError(
        f"{path} is nested too deeply to read (lists or objects inside each other hundreds of levels "
        f"deep, where treegrad writes a few): {AGAIN}"
    )


class _DuplicateKey(Exception):
    """A key given twice in one JSON object (json.loads would keep the last, silently)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _text(path: Path) -> str:
    """The file's text: a regular file (not /dev/zero, not a FIFO) of at most MAX_BYTES, UTF-8."""
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file; check the path")
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not a model file")
    if not path.is_file():  # a device or a pipe: reading it could take forever and all memory
        raise ModelFileError(f"{path} is not a regular file, so not a model file; pass the .json file it was saved to")
    too_big = ModelFileError(
        f"{path} is larger than {MAX_BYTES // 2**20} MB: not a treegrad model file; "
        "pass the .json file written by `treegrad train`"
    )
    try:
        if path.stat().st_size > MAX_BYTES:
            raise too_big
        with path.open("rb") as f:
            note_read(f.fileno())
            data = f.read(MAX_BYTES + 1)  # bounded, in case the file grew since stat
    except OSError as e:
        raise ModelFileError(f"cannot read {path}: {e.strerror or e}") from None
    if len(data) > MAX_BYTES:
        raise too_big
    try:
        return data.decode("utf-8-sig")  # an editor's byte order mark is no damage
    except UnicodeDecodeError:
        raise ModelFileError(f"{path} is not a text file, so not a treegrad model file") from None


def _names(items: Any, quoted: bool = False) -> str:
    """Names from a file as listed in messages: control characters escaped, long ones cut, the
    list shortened as every list of names is (`errors.listed`); `quoted` (for labels, which may
    hold spaces) in quotes."""
    q = "'" if quoted else ""
    return listed([f"{q}{_shown(str(x))}{q}" for x in items])


def read(path: Path) -> ModelRecord:
    """Read and validate a model file (format, version, fields, finite parameters)."""
    text = _text(path)
    try:
        doc = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise ModelFileError(
            f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg}); the file may be truncated — train the model again"
        ) from None
    except ValueError:  # int() refuses a number of more than 4300 digits
        raise ModelFileError(
            f"{path} holds a number thousands of digits long, which treegrad never writes: {AGAIN}"
        ) from None
    except RecursionError:  # the json module recurses once per level of [ or {
        raise _too_deep(path) from None
    except _DuplicateKey as e:
        raise ModelFileError(
            f"{path}: the key '{_shown(str(e))}' is given twice in one object, which treegrad never writes: {AGAIN}"
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ModelFileError(
            f"{path} is not a treegrad model file (format {_shown(repr(found))}, expected '{FORMAT}'); "
            "pass the .json file written by `treegrad train`"
        )
    version = doc.get("version")
    if type(version) is not int or version != VERSION:  # not `!=` alone: true == 1.0 == 1 in Python
        raise ModelFileError(
            f"{path} is a treegrad model file of version {_shown(repr(version))}; this treegrad "
            f"reads version {VERSION}: train the model again with this version"
        )
    try:
        record = ModelRecord.model_validate(doc)
    except RecursionError:  # a nesting just short of the json module's limit, in a field typed Any
        raise _too_deep(path) from None
    except ValidationError as e:
        problems = "; ".join(f"{_location(err['loc'])}: {err['msg']}" for err in e.errors()[:3])
        more = f" (and {e.error_count() - 3} more)" if e.error_count() > 3 else ""
        raise ModelFileError(f"{path} is damaged: {problems}{more}; train the model again") from None
    bad = [k for k, v in record.parameters.items() if not math.isfinite(v)]
    if bad:
        raise ModelFileError(f"{path}: parameter(s) {_names(bad)} are not finite numbers; {AGAIN}")
    return record


def _check_record(path: Path, record: ModelRecord, spec: Any) -> None:
    """The record's own claims (task, loss, classes, normalisation) agree with its spec.

    predict and eval trust them to decode outputs, so a file edited to say "binary" over
    a regression spec would otherwise print nonsense or fail deep inside.
    """
    from ..spec.build import loss_name, output_count, task_kind

    def damaged(what: str) -> ModelFileError:
        return ModelFileError(f"{path}: {what}; {AGAIN}")

    kind, loss = task_kind(spec), loss_name(spec)
    if record.task != kind or record.loss != loss:
        raise damaged(
            f"it says task '{record.task}' with loss '{record.loss}', but its spec makes a {kind} "
            f"model trained with {loss}"
        )
    if record.classes is not None:
        wanted = {"binary": 2, "classes": output_count(spec)}.get(kind, 0)
        if len(record.classes) != wanted or len(set(record.classes)) != len(record.classes):
            raise damaged(
                f"its classes [{_names(record.classes, quoted=True)}] do not fit a {kind} model "
                + (f"of {wanted} distinct classes" if wanted else "(which has none)")
            )
    if record.normalization is not None and set(record.normalization) != set(spec.inputs):
        raise damaged(
            f"it normalises {_names(sorted(record.normalization)) or 'nothing'} but the model's "
            f"inputs are {_names(spec.inputs)}"
        )
    ranges = record.input_ranges
    if ranges is not None and (
        set(ranges) != set(spec.inputs)
        or not all(math.isfinite(lo) and math.isfinite(hi) and lo <= hi for lo, hi in ranges.values())
    ):
        raise damaged("its input_ranges do not fit the model's inputs (one finite [min, max] per input)")


def check_spec_text(path: Path, record: ModelRecord) -> None:
    """Refuse a model file whose spec_text was edited after treegrad wrote it (it no longer has the
    SHA-256 the file records): its parameters, history and optimizer state are those of the spec
    as it was, so predicting, showing or resuming the edited one (another activation, say) would
    silently be another model. A file without the record (older versions) is taken as it is."""
    if record.spec_sha256 is not None and record.spec_sha256 != spec_digest(record.spec_text):
        raise ModelFileError(
            f"{path}: its spec_text was edited after treegrad wrote it (it no longer has the SHA-256 in "
            "spec_sha256), and its parameters were learned for the spec as it was: undo the edit, or save the "
            "edited spec to a file and train it; to use the file as edited all the same, delete its "
            "spec_sha256 line"
        )


def load_graph(path: Path, record: ModelRecord) -> Any:
    """Rebuild the model graph from the record's spec and set its learned parameters."""
    from ..spec.build import build_model
    from ..spec.models import parse_spec

    try:
        spec = parse_spec(record.spec_text, filename=f"{path} (its embedded spec {_shown(record.spec_file, 200)})")
    except SpecError as e:
        raise ModelFileError(f"the spec inside {path} no longer validates: {e}") from None
    if spec.selection is not None or record.renamed or record.encodings:
        # Inputs selected from a header (inputs: all) or recoded (one-hot): the record has the list.
        try:
            spec = spec.with_inputs(list(record.inputs))
        except SpecError as e:
            raise ModelFileError(f"{path}: its inputs do not fit its spec ({e}); {AGAIN}") from None
    _check_record(path, record, spec)
    stats = {k: (float(v[0]), float(v[1])) for k, v in record.normalization.items()} if record.normalization else None
    target = record.target_normalization
    if target is not None and (record.task != "regression" or not (math.isfinite(target[1]) and target[1] > 0)):
        raise ModelFileError(f"{path}: its target_normalization does not fit the model; {AGAIN}")
    try:
        root = build_model(spec, seed=record.training.seed, stats=stats, target=target)
    except SpecError as e:
        raise ModelFileError(f"{e}; {AGAIN}") from None
    graph = root.compiled_graph
    names = graph.param_names
    known = set(names)  # a set: a model of 100,000 parameters made a list lookup quadratic (40 s)
    missing = [n for n in names if n not in record.parameters]
    extra = [n for n in record.parameters if n not in known]
    if missing or extra:
        raise ModelFileError(
            f"{path}: its parameters do not match its spec"
            + (f"; missing {_names(missing)}" if missing else "")
            + (f"; unexpected {_names(extra)}" if extra else "")
            + f"; {AGAIN}"
        )
    if list(graph.input_names) != list(record.inputs):
        theirs, ours = _names(record.inputs, quoted=True), _names(graph.input_names, quoted=True)
        raise ModelFileError(f"{path}: its inputs [{theirs}] do not match its spec's [{ours}]; {AGAIN}")
    check_spec_text(path, record)  # last: an edit the checks above meet is named by them
    graph.set_param_values([record.parameters[n] for n in names])
    return root


# ----------------------------------------------------------------- opening what a command is given


@dataclass
class Loaded:
    """A model file read back: its record and the rebuilt graph with learned parameters."""

    path: Path
    record: ModelRecord
    root: Any = field(repr=False)


@dataclass
class Opened:
    """A model to show, export or trace: from a model file (learned parameters) or from a
    spec (initial parameters), with what is known of its task and class labels."""

    root: Any
    name: str
    task: str | None = None  # "regression" | "binary" | "classes"; None when unknown
    classes: list[str] | None = None
    loaded: Loaded | None = None


def _sniff_json(path: Path) -> str:
    """What a `.json` file is: "model", "spec", or "other" (not a readable JSON object).

    Model files have a top-level `format` key; a spec may not. A file that is not valid
    JSON (a truncated model file) is a "model" when it names a `format` near its top, so
    it gets the model file's message, not a spec's.
    """
    if path.suffix.lower() != ".json" or not path.is_file():
        return "other"
    try:
        if path.stat().st_size > MAX_BYTES:
            return "model"  # read refuses it with the right message
        raw = path.read_bytes()
        doc = json.loads(raw)
    except OSError:
        return "other"
    except (ValueError, RecursionError):
        return "model" if b'"format"' in raw[:4096] else "other"
    if not isinstance(doc, dict):
        return "other"
    return "model" if "format" in doc else "spec"


def is_model_file(path: Path) -> bool:
    """True for a `.json` file that is (or was meant to be) a model file rather than a spec."""
    return _sniff_json(path) == "model"


def _not_a_model_file(path: Path) -> None:
    """Say so plainly when a command that needs a trained model is given a spec or a CSV.

    Only a file that exists is judged by its name: a missing `nothere.yaml` is missing
    (`read` says so), not a spec.
    """
    if not path.is_file():
        return
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml") or _sniff_json(path) == "spec":
        raise ModelFileError(
            f"{path} is a spec, not a trained model: train it first (treegrad train {path}) "
            "and pass the .model.json file it writes"
        )
    if is_data_file_name(path):
        raise ModelFileError(
            f"{path} is a data file, not a trained model: pass the model file first, then the data with --data {path}"
        )


def load(path: Path) -> Loaded:
    """Read a model file and rebuild its graph with the learned parameters."""
    _not_a_model_file(path)
    record = read(path)
    return Loaded(path, record, load_graph(path, record))


def open_model(path: Path) -> Opened:
    """A model file (learned parameters) or a spec file (initial parameters), compiled."""
    if is_model_file(path):
        loaded = load(path)
        rec = loaded.record
        return Opened(loaded.root, rec.name, rec.task, rec.classes, loaded)
    from ..spec.build import build_model, task_kind
    from ..spec.models import load_spec

    spec = load_spec(path)
    if spec.selection is not None and spec.data:
        # Inputs selected from a header: read the spec's own data to know them.
        markers = MISSING_VALUES if spec.missing_values is None else spec.missing_values
        table = load_data(spec.data, base_dir=path.parent, missing=markers)
        spec, _, _ = model_inputs(spec, table, spec.target, spec.training)
    return Opened(build_model(spec), spec.name or path.stem, task_kind(spec), spec.classes)


def _not_replaceable(out: Path, name: str) -> str | None:
    """Why a model named `name` may not replace the file `out`; None if `out` is absent, or a
    model file of that name (or a damaged one: replacing it loses nothing)."""
    if not out.is_file():
        return None
    if not is_model_file(out):
        return f"{out} exists and is not a treegrad model file ({what_is(out)}): refusing to overwrite it"
    try:
        other = json.loads(out.read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, RecursionError, AttributeError):
        return None
    if isinstance(other, str) and other != name:
        return f"{out} holds the model '{other}', not '{name}': refusing to replace it"
    return None


def output_kind(name: str) -> Kind:
    """The kind of file a model named `name` is written as: for files.check_output, which
    then replaces only a model file of that name (a typo in -o must not replace someone's
    data, or the model of another spec)."""
    return Kind("a treegrad model file", judge=functools.partial(_not_replaceable, name=name))


def check_replace(out: Path, name: str, *, option: str = "--out") -> None:
    """Refuse to overwrite a file that is not a model of this spec (see `output_kind`)."""
    reason = _not_replaceable(out, name)
    if reason is not None:
        raise ModelFileError(f"{reason}. Choose another {option}, or pass --force to replace it.")
