"""What the commands do, as library functions: train a spec on data and save the model,
load a saved model, predict, evaluate. The CLI calls these and only renders the results.

Data flows one way: spec file -> spec -> nodes -> compiled graph -> fit -> model file ->
predict/show/eval.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .compiled import predict_many, program
from .data import Table, encode_targets, load_data, row_place, select, split_indices, standardize_stats
from .errors import DataError, SpecError, TrainingError
from .fit import History, fit
from .modelfile import FORMAT, VERSION, DataInfo, HistoryInfo, ModelRecord, Task

Progress = Callable[[int, float, "float | None", "dict[str, float]"], None]


@dataclass
class Trained:
    """The outcome of `train`: the model, its record (as saved), and what happened."""

    root: Any
    record: ModelRecord
    history: History
    seconds: float
    out: Path | None
    parameter_count: int
    node_count: int
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass
class Loaded:
    """A model file read back: its record and the rebuilt graph with learned parameters."""

    path: Path
    record: ModelRecord
    root: Any = field(repr=False)


def load_spec_file(path: Path) -> tuple[Any, str]:
    """(spec, its text as written) for a spec file."""
    from .spec import load_spec

    spec = load_spec(path)
    return spec, path.read_text(encoding="utf-8-sig")


def training_settings(spec: Any, overrides: dict[str, Any]) -> Any:
    """The spec's `training:` with command-line overrides applied and validated."""
    from pydantic import ValidationError

    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return spec.training
    cls = type(spec.training)
    try:
        return cls.model_validate({**spec.training.model_dump(), **given})
    except ValidationError as e:
        err = e.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "?"
        raise SpecError(f"--{key.replace('_', '-')}: {err['msg']} (got {err.get('input')!r})") from None


def _targets(
    spec: Any, kind: str, raw: list[Any], source: str, classes: list[str] | None
) -> tuple[list[Any], list[str] | None]:
    from .build import output_count

    y, found = encode_targets(raw, kind, classes, source=source)
    k = output_count(spec)
    if kind == "classes" and found is not None and len(found) != k:
        raise DataError(
            f"the model's softmax has {k} outputs but {source} has {len(found)} classes "
            f"({', '.join(found)}): make the softmax {len(found)} wide, or list the classes in `classes:`"
        )
    if kind != "classes" and k != 1:
        raise SpecError(
            f"a list output of {k} values without softmax cannot be trained from one target column; "
            "use a softmax for classes, or combine the heads into one output"
        )
    return y, found


def spec_table(spec: Any, spec_path: Path, data: str | None) -> Table:
    """The data for a spec: `data` (a dataset name, or a path from the current folder),
    else the spec's own `data:` (a path from the spec's folder)."""
    if data is not None:
        return load_data(data, base_dir=Path.cwd())
    if spec.data:
        return load_data(spec.data, base_dir=spec_path.parent)
    raise DataError(
        f"{spec_path} names no data: pass --data NAME or --data FILE.csv "
        "(see `treegrad datasets`), or add `data:` to the spec"
    )


def model_table(record: ModelRecord, data: str | None = None) -> Table:
    """The table `data` names (from the current folder), or the one the model was trained on.

    Generated datasets do not depend on the training seed, so `--data line` means the same
    points in train, eval, predict, plot and trace. A training source that is a relative
    path was relative to the current folder or to the spec's folder: both are tried.
    """
    if data is not None:
        return load_data(data, base_dir=Path.cwd())
    try:
        return load_data(record.data.source, base_dir=Path.cwd())
    except DataError:
        spec_dir = Path(record.spec_file).parent
        if Path(record.data.source).is_absolute() or not (spec_dir / record.data.source).exists():
            raise
        return load_data(record.data.source, base_dir=spec_dir)


def recorded_split(
    record: ModelRecord, data: str | None = None
) -> tuple[tuple[list[list[float]], list[Any]], tuple[list[list[float]], list[Any]]]:
    """((X, y) training, (X, y) validation): the model's data (or `data`) split as in training.

    The split is the one `train` made, from the recorded seed and validation fraction, so
    the rows are the same when the data is the same. A model whose training data cannot be
    read any more gets a DataError that says to pass the data.
    """
    try:
        table = model_table(record, data)
    except DataError as e:
        raise DataError(
            f"this needs the data the model was trained on, and {e}; pass it with --data FILE.csv"
        ) from None
    X, raw, _ = select(table, list(record.inputs), record.data.target)
    y, _ = encode_targets(raw, record.task, record.classes, source=table.source, training=False)
    train_rows, val_rows = split_indices(len(X), record.training.validation_split, record.training.seed)
    return ([X[i] for i in train_rows], [y[i] for i in train_rows]), (
        [X[i] for i in val_rows],
        [y[i] for i in val_rows],
    )


@dataclass
class Prepared:
    """A spec and its data, checked and split, with the model built: ready to train."""

    spec_path: Path
    spec: Any
    text: str
    settings: Any
    source: str
    target: str
    kind: Task
    classes: list[str] | None
    rows: int
    train: tuple[list[list[float]], list[Any]]
    validation: tuple[list[list[float]], list[Any]]
    train_rows: list[int]  # for each training sample, its row in the table (to name it in errors)
    validation_rows: list[int]
    stats: dict[str, tuple[float, float]] | None
    root: Any
    loss: str
    patience: int | None

    @property
    def name(self) -> str:
        """The model's name: the spec's `name:`, else the spec file's stem."""
        return str(self.spec.name or self.spec_path.stem)


def prepare(
    spec_path: Path, *, data: str | None = None, target: str | None = None, overrides: dict[str, Any] | None = None
) -> Prepared:
    """Load and check a spec and its data, split it, and build the model.

    Every mistake in the spec, the data or the settings is found here, before any
    training starts.
    """
    from .build import build_model, loss_name, task_kind

    spec, text = load_spec_file(spec_path)
    settings = training_settings(spec, overrides or {})
    if data is not None:
        table = load_data(data, base_dir=Path.cwd(), seed=settings.seed)
    elif spec.data:
        table = load_data(spec.data, base_dir=spec_path.parent, seed=settings.seed)
    else:
        raise DataError(
            f"{spec_path} names no data: pass --data NAME or --data FILE.csv "
            "(see `treegrad datasets`), or add `data:` to the spec"
        )
    kind = task_kind(spec)
    X, raw, tname = select(table, list(spec.inputs), target or spec.target)
    y, classes = _targets(spec, kind, raw, table.source, spec.classes)
    train_rows, val_rows = split_indices(len(X), settings.validation_split, settings.seed)
    Xtr, ytr = [X[i] for i in train_rows], [y[i] for i in train_rows]
    Xva, yva = [X[i] for i in val_rows], [y[i] for i in val_rows]
    if not Xtr:
        raise DataError(f"{table.source}: no rows left for training after the validation split")
    stats = standardize_stats(Xtr, list(spec.inputs)) if settings.normalize else None
    patience = settings.early_stopping.patience if settings.early_stopping else None
    if patience is not None and not Xva:
        raise TrainingError(
            "early_stopping needs a validation set: set training.validation_split (e.g. 0.2) or pass --validation-split"
        )
    root = build_model(spec, seed=settings.seed, stats=stats)
    return Prepared(
        spec_path,
        spec,
        text,
        settings,
        table.source,
        tname,
        kind,
        classes,
        len(X),
        (Xtr, ytr),
        (Xva, yva),
        train_rows,
        val_rows,
        stats,
        root,
        loss_name(spec),
        patience,
    )


def check_replace(out: Path, name: str) -> None:
    """Refuse to overwrite a file that is not a model of this spec (a typo in --out must
    not replace someone's data, or the model of another spec)."""
    import json

    from .errors import ModelFileError

    if not out.is_file():
        return
    if not is_model_file(out):
        raise ModelFileError(
            f"{out} exists and is not a treegrad model file: refusing to overwrite it. "
            "Choose another --out, or pass --force to replace it."
        )
    try:
        other = json.loads(out.read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, RecursionError, AttributeError):
        return  # a damaged model file: replacing it loses nothing
    if isinstance(other, str) and other != name:
        raise ModelFileError(
            f"{out} holds the model '{other}', not '{name}': refusing to replace it. "
            "Choose another --out, or pass --force to replace it."
        )


def run(
    prep: Prepared,
    *,
    out: Path | None = None,
    progress: Progress | None = None,
    checkpoint: bool = False,
    force: bool = False,
) -> Trained:
    """Train a prepared model and (if `out`) save it atomically.

    Nothing is written unless training finishes (or is interrupted with `checkpoint`
    after at least one complete epoch); a diverging run raises TrainingError and leaves
    any existing `out` untouched. Without `force`, an existing `out` is replaced only if
    it is a model of the same name.
    """
    if out is not None:
        from .modelfile import check_writable

        check_writable(out)  # now, not after an hour of training
        if not force:
            check_replace(out, prep.name)
    settings, kind, root = prep.settings, prep.kind, prep.root
    graph = root.compiled_graph
    (Xtr, ytr), (Xva, yva) = prep.train, prep.validation
    watch_X, watch_y = (Xva, yva) if Xva else (Xtr, ytr)
    pred_fn = program(graph).predict_fn() if progress else None
    consts = program(graph).constant_values()

    def on_epoch(epoch: int, train_loss: float, val_loss: float | None, params: list[float]) -> None:
        if progress is None or pred_fn is None:
            return
        extra: dict[str, float] = {}
        if kind != "regression" and (epoch == settings.epochs or epoch % max(1, settings.epochs // 100) == 0):
            try:
                extra["accuracy"] = accuracy(kind, pred_fn(params, consts, watch_X), watch_y)
            except (ArithmeticError, ValueError):
                pass
        progress(epoch, train_loss, val_loss, extra)

    def place(rows: list[int]) -> Callable[[int], str]:
        """Where sample i of a split is in the data, for messages: 'data.csv, line 7'."""
        return lambda i: row_place(prep.source, rows[i])

    if progress is not None:
        progress(0, math.nan, None, {})  # training starts now
    t0 = time.perf_counter()
    hist = fit(
        root,
        Xtr,
        ytr,
        loss=prep.loss,
        epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        batch_size=settings.batch_size,
        optimizer=settings.optimizer,
        shuffle=settings.shuffle,
        seed=settings.seed,
        validation=(Xva, yva) if Xva else None,
        patience=prep.patience,
        callback=on_epoch,
        describe_sample=place(prep.train_rows),
    )
    seconds = time.perf_counter() - t0
    if hist.interrupted and not (checkpoint and hist):
        # With no complete epoch there is no trained model to keep, checkpoint or not.
        raise KeyboardInterrupt
    metrics = {"train": evaluate_rows(root, kind, prep.loss, Xtr, ytr, place(prep.train_rows))}
    if Xva:
        metrics["validation"] = evaluate_rows(root, kind, prep.loss, Xva, yva, place(prep.validation_rows))
    record = ModelRecord(
        format=FORMAT,
        version=VERSION,
        name=prep.name,
        spec_file=str(prep.spec_path),
        spec_text=prep.text,
        inputs=list(graph.input_names),
        task=kind,
        loss=prep.loss,
        classes=prep.classes,
        normalization=dict(prep.stats) if prep.stats else None,
        parameters=dict(zip(graph.param_names, graph.param_values())),
        training=settings,
        data=DataInfo(
            source=prep.source, target=prep.target, rows=prep.rows, train_rows=len(Xtr), validation_rows=len(Xva)
        ),
        history=HistoryInfo(
            train=list(hist), validation=hist.validation, best_epoch=hist.best_epoch, stopped_early=hist.stopped_early
        ),
        metrics=metrics,
        treegrad_version=__version__,
    )
    if out is not None:
        from .modelfile import save

        save(out, record)
    warnings = []
    if len(hist) > 1 and not hist[-1] < hist[0]:
        warnings.append(
            f"the training loss did not go down (epoch 1: {hist[0]:.4g}, last: {hist[-1]:.4g}): "
            "try a smaller learning rate, or normalize the inputs"
        )
    return Trained(root, record, hist, seconds, out, len(graph.params), len(graph.order), hist.interrupted, warnings)


def train(
    spec_path: Path,
    *,
    data: str | None = None,
    target: str | None = None,
    overrides: dict[str, Any] | None = None,
    out: Path | None = None,
    progress: Progress | None = None,
    checkpoint: bool = False,
    force: bool = False,
) -> Trained:
    """Prepare and run in one call: train the model of a spec file on data, save it to `out`."""
    prep = prepare(spec_path, data=data, target=target, overrides=overrides)
    return run(prep, out=out, progress=progress, checkpoint=checkpoint, force=force)


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
    import json

    from .modelfile import MAX_BYTES

    if path.suffix.lower() != ".json" or not path.is_file():
        return "other"
    try:
        if path.stat().st_size > MAX_BYTES:
            return "model"  # modelfile.read refuses it with the right message
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
    """Say so plainly when a command that needs a trained model is given a spec or a CSV."""
    from .errors import ModelFileError

    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml") or _sniff_json(path) == "spec":
        raise ModelFileError(
            f"{path} is a spec, not a trained model: train it first (treegrad train {path}) "
            "and pass the .model.json file it writes"
        )
    if suffix in (".csv", ".tsv", ".txt"):
        raise ModelFileError(
            f"{path} is a data file, not a trained model: pass the model file first, then the data with --data {path}"
        )


def open_model(path: Path) -> Opened:
    """A model file (learned parameters) or a spec file (initial parameters), compiled."""
    if is_model_file(path):
        loaded = load(path)
        rec = loaded.record
        return Opened(loaded.root, rec.name, rec.task, rec.classes, loaded)
    from .build import build_model, task_kind

    spec, _ = load_spec_file(path)
    return Opened(build_model(spec), spec.name or path.stem, task_kind(spec), spec.classes)


def load(path: Path) -> Loaded:
    """Read a model file and rebuild its graph with the learned parameters."""
    from .modelfile import load_graph, read

    _not_a_model_file(path)
    record = read(path)
    return Loaded(path, record, load_graph(path, record))


# ----------------------------------------------------------------- predictions and metrics


def class_labels(task: str | None, classes: list[str] | None, outputs: int) -> list[str] | None:
    """The labels a classifier's outputs stand for: the known classes, else 0, 1, ...

    A binary model has one output and two labels; a softmax one label per output.
    Regression has none.
    """
    if task == "binary":
        return list(classes or ["0", "1"])
    if task == "classes":
        return list(classes or [str(i) for i in range(outputs)])
    return None


def decode(record: ModelRecord, out: Any) -> dict[str, Any]:
    """One raw model output as a result: value, or class label with its probability."""
    if record.task == "binary":
        p = float(out)
        labels = class_labels("binary", record.classes, 1) or []
        return {"label": labels[1] if p >= 0.5 else labels[0], "probability": p if p >= 0.5 else 1.0 - p, "output": p}
    if record.task == "classes":
        probs = [float(v) for v in out]
        k = max(range(len(probs)), key=probs.__getitem__)
        labels = class_labels("classes", record.classes, len(probs)) or []
        return {"label": labels[k], "probability": probs[k], "probabilities": dict(zip(labels, probs))}
    return {"prediction": float(out)}


def predict(
    loaded: Loaded, rows: Sequence[Sequence[float]], describe_row: Callable[[int], str] | None = None
) -> list[dict[str, Any]]:
    """Decoded predictions for rows of raw input values (in input order)."""
    return [decode(loaded.record, o) for o in predict_many(loaded.root, rows, describe_row)]


def with_predictions(table: Table, results: list[dict[str, Any]]) -> Table:
    """The table with the predictions added as columns (label and probability for classifiers)."""
    labelled = bool(results) and "label" in results[0]
    extra = ["prediction", "probability"] if labelled else ["prediction"]
    rows: list[list[Any]] = [
        [*row, r["label"], r["probability"]] if labelled else [*row, r["prediction"]]
        for row, r in zip(table.rows, results, strict=True)
    ]
    return Table(table.source, [*table.columns, *extra], rows)


def parse_values(inputs: list[str], values: Sequence[str]) -> list[float]:
    """Command-line values, in input order or as name=value, as one row."""
    named = [v for v in values if "=" in v]
    if named and len(named) != len(values):
        raise DataError("give the values either all in input order or all as name=value, not mixed")
    row: dict[str, float] = {}
    if named:
        for item in values:
            name, _, text = item.partition("=")
            name = name.strip()
            if name not in inputs:
                raise DataError(f"unknown input '{name}'; the model's inputs are {', '.join(inputs)}")
            if name in row:
                raise DataError(f"input '{name}' is given twice")
            row[name] = _number(text, name)
        missing = [n for n in inputs if n not in row]
        if missing:
            raise DataError(f"missing value(s) for {', '.join(missing)}; the model's inputs are {', '.join(inputs)}")
        return [row[n] for n in inputs]
    if len(values) != len(inputs):
        raise DataError(
            f"the model takes {len(inputs)} value(s), for {', '.join(inputs)}; got {len(values)}. "
            f"Example: treegrad predict MODEL.json " + " ".join(f"{n}=..." for n in inputs)
        )
    return [_number(v, n) for v, n in zip(values, inputs)]


def _number(text: str, name: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise DataError(f"the value for '{name}' is {text!r}, not a number") from None
    if not math.isfinite(v):
        raise DataError(f"the value for '{name}' is {text}: give a finite number")
    return v


def accuracy(kind: str, outputs: Sequence[Any], y: Sequence[Any]) -> float:
    """Fraction of samples classified right (binary: output >= 0.5 means class 1)."""
    if not y:
        return math.nan
    if kind == "binary":
        right = sum((float(o) >= 0.5) == (t >= 0.5) for o, t in zip(outputs, y))
    else:
        right = sum(max(range(len(o)), key=o.__getitem__) == t for o, t in zip(outputs, y))
    return right / len(y)


def evaluate_rows(
    root: Any,
    kind: str,
    loss: str,
    X: Sequence[Sequence[float]],
    y: Sequence[Any],
    describe_row: Callable[[int], str] | None = None,
) -> dict[str, Any]:
    """Loss and metrics of a model on rows: accuracy and a confusion matrix for classifiers,
    MSE/MAE/R² for regression."""
    from .losses import LOSSES

    outs = predict_many(root, X, describe_row)
    k = len(root.compiled_graph.elements)
    fn = LOSSES[loss].fn(k)
    total = sum(fn(o if isinstance(o, list) else [o], t)[0] for o, t in zip(outs, y))
    result: dict[str, Any] = {"loss": total / len(y) if y else math.nan, "rows": len(y)}
    if kind == "regression":
        errs = [float(o) - t for o, t in zip(outs, y)]
        mean_y = sum(y) / len(y)
        ss_tot = sum((t - mean_y) ** 2 for t in y)
        result["mse"] = sum(e * e for e in errs) / len(y)
        result["mae"] = sum(abs(e) for e in errs) / len(y)
        result["r2"] = 1.0 - sum(e * e for e in errs) / ss_tot if ss_tot > 0 else math.nan
    else:
        result["accuracy"] = accuracy(kind, outs, y)
        n = 2 if kind == "binary" else k
        matrix = [[0] * n for _ in range(n)]
        for o, t in zip(outs, y):
            pred = int(float(o) >= 0.5) if kind == "binary" else max(range(k), key=o.__getitem__)
            matrix[int(t)][pred] += 1
        result["confusion"] = matrix
    return result


def evaluate(loaded: Loaded, table: Any, target: str | None = None) -> dict[str, Any]:
    """Loss and metrics of a saved model on a table that has the target column."""
    rec = loaded.record
    X, raw, _ = select(table, list(rec.inputs), target or rec.data.target)
    y, _ = encode_targets(raw, rec.task, rec.classes, source=table.source, training=False)
    return evaluate_rows(loaded.root, rec.task, rec.loss, X, y)
