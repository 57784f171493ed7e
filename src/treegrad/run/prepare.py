"""A run made ready to train: its spec and settings read and checked, its data read, checked and
split, its model built. Every mistake in the spec, the data or the settings is found here,
before any training starts.

What is prepared comes in two parts: the data (`Dataset`: the rows of each split, the task,
classes, weights and standardisation) and the run (`Prepared`: the spec, the settings record,
the model, and what the model file will record of the run's making).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.columns import Recoding, model_inputs
from ..data.parts import WHOLE, Part
from ..data.split import split_indices, standardize_stats
from ..data.table import Numbering, Table, row_place
from ..data.targets import check_varies, class_order, encode_targets, label_texts, select_arrays
from ..data.weighting import check_weight_role, class_weights, row_weights, take_weight_column
from ..engine.settings import Training, with_options
from ..errors import DataError, SpecError, TrainingError
from ..errors import describe as described
from .datasource import recorded_table, spec_table
from .modelfile import Lineage, Task, load
from .options import Asked
from .provenance import Provenance, describe
from .resume import Continuation, check_same_data, continuation, resumed_lineage, start_from, warm_start
from .runlog import resolved_spec
from .tasks import class_labels

# Losses in the target's units, for which a standardised target trains the same model better
# conditioned: training.normalize standardises the target too (mse scales by std^2, mae by std).
SCALED_LOSSES = {"mse": 2, "mae": 1}


def load_spec_file(path: Path, sets: Sequence[tuple[Any, Any]] = ()) -> tuple[Any, str]:
    """(spec, its text as written) for a spec file, with `sets` (--set KEY=VALUE) applied (settings.load)."""
    from ..spec.models import load_spec

    if sets:
        from ..spec.settings import load

        return load(path, sets)
    spec = load_spec(path)
    return spec, path.read_text(encoding="utf-8-sig")


def training_settings(spec: Any, overrides: dict[str, Any], sets: Sequence[tuple[Any, Any]] = ()) -> Training:
    """The spec's `training:` (with `sets` already in it) and the options --epochs, ... applied
    and validated; a setting given both ways is refused."""
    from ..spec.settings import clashes

    given = {k: v for k, v in overrides.items() if v is not None}
    clashes(given, sets)
    if not given:
        return spec.training  # type: ignore[no-any-return]
    return with_options(spec.training, given)


def build_on(
    spec: Any, X: list[list[float]], *, seed: int | None = None, normalize: bool = False, part: Part = WHOLE
) -> tuple[Any, dict[str, tuple[float, float]] | None]:
    """(model, statistics): the spec's model, standardising its inputs with the statistics of
    the rows `X` (of every part) when `normalize` (and there are rows). The one way train,
    trace and check build a model from a spec and its data."""
    from ..spec.build import build_model

    stats = standardize_stats(X, list(spec.inputs), part) if (len(X) or not part.alone) and normalize else None
    return build_model(spec, seed=seed, stats=stats), stats


@dataclass(kw_only=True)
class Dataset:
    """What the data of a run is: its rows read, checked and split, for the model's task."""

    source: str
    target: str
    kind: Task
    classes: list[str] | None
    rows: int
    train: tuple[Any, list[Any]]  # (inputs, one float64 array of shape (rows, inputs); targets)
    validation: tuple[Any, list[Any]]
    train_rows: list[int]  # for each training sample, its row in the table (to name it in errors)
    validation_rows: list[int]
    row_index: Sequence[int] | None  # each row's index among the rows read (Table.index), to place it
    numbering: Numbering  # how messages name the table's rows (Table.numbering)
    recoding: Recoding
    train_weights: list[float] | None = None  # how much each training sample counts (None: 1 each)
    stats: dict[str, tuple[float, float]] | None = None  # the inputs' standardisation (training.normalize)
    target_stats: tuple[float, float] | None = None  # a regression target standardised for training
    # Data-parallel (parts.py): this process's part of the samples. `positions` is each of its
    # training samples' place in the training order of all parts; `counts` the samples of all
    # parts (training, validation). Alone: the samples here are all, in order.
    part: Part = WHOLE
    positions: list[int] | None = None
    counts: tuple[int, int] | None = None

    @property
    def train_count(self) -> int:
        """Training samples, of every part."""
        return len(self.train[0]) if self.counts is None else self.counts[0]

    @property
    def validation_count(self) -> int:
        """Validation samples, of every part."""
        return len(self.validation[0]) if self.counts is None else self.counts[1]

    def place(self, row: int) -> str:
        """Where row `row` of the table (an index of X) is, for messages: 'data.csv, line 7'."""
        return row_place(self.source, row, self.row_index, self.numbering)

    def describe_sample(self, rows: list[int]) -> Any:
        """Where sample i of a split (`rows`: its rows in the table) is, for messages: 'data.csv, line 7'."""
        return lambda i: self.place(rows[i])


@dataclass(kw_only=True)
class Prepared:
    """What a run is: a spec and its settings, its data (`data`), and the model built: ready to train."""

    spec_path: Path
    spec: Any
    text: str
    settings: Training
    data: Dataset
    root: Any
    loss: str
    resolved: dict[str, Any] = field(default_factory=dict)  # the spec as trained (runlog.resolved_spec)
    continued: Continuation | None = None  # a recorded run going on (train --resume)
    provenance: Provenance | None = None  # the software, command line and data of this run
    lineage: Lineage | None = None  # begun from another model's parameters, or resumed (resume.py)

    @property
    def name(self) -> str:
        """The model's name: the spec's `name:`, else the spec file's stem."""
        return str(self.spec.name or self.spec_path.stem)

    @property
    def part(self) -> Part:
        """This process's part of a data-parallel run (alone: WHOLE)."""
        return self.data.part


def prepare(
    spec_path: Path,
    *,
    data: str | None = None,
    target: str | None = None,
    overrides: dict[str, Any] | None = None,
    sets: Sequence[tuple[Any, Any]] = (),
    spec_text: str | None = None,
    settings: Training | None = None,
    table: Table | None = None,
    command: Sequence[str] | None = None,
    part: Part = WHOLE,
    reading: Callable[[str, int], None] | None = None,
) -> Prepared:
    """Load and check a spec and its data, split it, and build the model; `reading(source, rows)`
    hears how many rows of the data are read so far.

    A recorded run (resume) gives its spec's text, its settings and its table. `command` is
    the command line to record in the model file (argv). With `part` of several processes (a
    data-parallel run, parts.py), this process reads and keeps its part of the rows; the
    classes, split, statistics and checks are those of all rows, as one process's.
    """
    from ..spec.build import loss_name
    from ..spec.models import parse_spec

    # A mistake in the spec is every process's: rank 0 alone reports it (parts.py).
    if spec_text is None:
        spec, text = part.agree(lambda: load_spec_file(spec_path, sets))
    else:
        spec, text = parse_spec(spec_text, str(spec_path), default_name=spec_path.stem), spec_text
    if settings is None:
        settings = part.agree(lambda: training_settings(spec, overrides or {}, sets))
    part.same((text, settings.model_dump_json(), target), _runs_differ)  # before the data's exchanges
    if table is None:
        table = spec_table(spec, spec_path, data, part, reading)
    origin = table.origin  # the table as read: derived tables (recoded, weights taken) have none
    spec, dataset = _dataset(spec, table, target or spec.target, settings, part)
    root, dataset.stats = build_on(spec, dataset.train[0], seed=settings.seed, normalize=settings.normalize, part=part)
    where = Path.cwd() if data else spec_path.parent
    return Prepared(
        spec_path=spec_path,
        spec=spec,
        text=text,
        settings=settings,
        data=dataset,
        root=root,
        loss=loss_name(spec),
        resolved=resolved_spec(text, settings, data if data is not None else spec.data, dataset.target, where),
        provenance=describe(origin, command),
    )


def _runs_differ(first: tuple[str, str, str | None], other: tuple[str, str, str | None], rank: int) -> str:
    """Processes of one torchrun given different runs: which part of the run differs."""
    if first[0] != other[0]:
        what = "the spec's text"
    elif first[1] != other[1]:
        ours, theirs = json.loads(first[1]), json.loads(other[1])
        key = next(k for k in ours if ours[k] != theirs.get(k))
        what = f"training.{key} ({described(ours[key])} for process 0, {described(theirs.get(key))} for process {rank})"
    else:
        what = f"--target ({first[2]} for process 0, {other[2]} for process {rank})"
    return (
        f"under torchrun every process must train the same model, but process {rank} was given another run "
        f"than process 0: {what} differs. Give every process the same spec and options"
    )


def _dataset(spec: Any, table: Table, target: str, settings: Training, part: Part) -> tuple[Any, Dataset]:
    """(the spec with its inputs resolved, the data of the run): rows selected, targets encoded,
    split, weighted; the target's standardisation; a validation set if early stopping needs one."""
    from ..spec.build import loss_name, output_count, task_kind

    check_weight_role(settings.weight_column, () if spec.selection is not None else spec.inputs, target, part)
    spec, table, recoding = model_inputs(spec, table, target, settings, part)
    kind = task_kind(spec)
    table, column = take_weight_column(table, settings.weight_column, part)
    X, raw, tname = part.agree(lambda: select_arrays(table, list(spec.inputs), target))
    y, classes = _targets(spec, kind, raw, table, spec.classes, part)
    first, rows = part.offset(len(X))
    train_rows, val_rows = split_indices(rows, settings.validation_split, settings.seed)
    counts, positions = None, None
    if not part.alone:  # this part's samples, in the split's order; rows first.. are here
        counts = (len(train_rows), len(val_rows))
        positions = [p for p, r in enumerate(train_rows) if first <= r < first + len(X)]
        train_rows = [train_rows[p] - first for p in positions]
        val_rows = [r - first for r in val_rows if first <= r < first + len(X)]
    ytr = [y[i] for i in train_rows]
    per_class = None
    if settings.class_weight is not None:
        if kind == "regression":
            part.fail(SpecError("training.class_weight is for classifiers; this model does regression"))
        labels = class_labels(kind, classes, output_count(spec)) or []
        per_class = class_weights(settings.class_weight, labels, ytr, part)
    dataset = Dataset(
        source=table.source,
        target=tname,
        kind=kind,
        classes=classes,
        rows=rows,
        train=(X[train_rows], ytr),
        validation=(X[val_rows], [y[i] for i in val_rows]),
        train_rows=train_rows,
        validation_rows=val_rows,
        row_index=table.index,
        numbering=table.numbering,
        recoding=recoding,
        train_weights=row_weights(ytr, per_class, None if column is None else [column[i] for i in train_rows]),
        part=part,
        positions=positions,
        counts=counts,
    )
    if not dataset.train_count:
        part.fail(DataError(f"{table.source}: no rows left for training after the validation split"))
    if settings.normalize and kind == "regression" and loss_name(spec) in SCALED_LOSSES:
        dataset.target_stats = standardize_stats([[v] for v in ytr], [tname], part)[tname]
    if settings.early_stopping is not None and not dataset.validation_count:
        part.fail(
            TrainingError(
                "early_stopping needs a validation set: set training.validation_split (e.g. 0.2) "
                "or pass --validation-split"
            )
        )
    return spec, dataset


def _targets(
    spec: Any, kind: str, raw: list[Any], table: Table, classes: list[str] | None, part: Part = WHOLE
) -> tuple[list[Any], list[str] | None]:
    """The targets of `raw` (cells of `table`) and the class names; with `part`, the classes
    and the checks are those of every part's rows together."""
    from ..spec.build import output_count

    if not part.alone and kind != "regression":
        # One process checks every row's label before it counts the classes or looks them up:
        # the parts check theirs together first, so that the first bad label in the file is reported.
        labels = part.agree(lambda: label_texts(raw, table.place))
        if classes is None:
            classes = class_order(part.union(labels))

    def encode() -> tuple[list[Any], list[str] | None]:
        if not raw and not part.alone:  # a part without rows (more processes than rows): the others have them
            return [], classes
        return encode_targets(raw, kind, classes, source=table.source, training=part.alone, place=table.place)

    y, found = part.agree(encode)
    if not part.alone and kind == "regression":
        ends = [e for e in part.gather((min(y), max(y)) if y else None) if e is not None]
        part.agree(lambda: check_varies([v for e in ends for v in e], table.source))
    k = output_count(spec)
    if kind == "classes" and found is not None and len(found) != k:
        part.fail(
            DataError(
                f"the model's softmax has {k} outputs but {table.source} has {len(found)} classes "
                f"({', '.join(found)}): make the softmax {len(found)} wide, or list the classes in `classes:`"
            )
        )
    if kind != "classes" and k != 1:
        part.fail(
            SpecError(
                f"a list output of {k} values without softmax cannot be trained from one target column; "
                "use a softmax for classes, or combine the heads into one output"
            )
        )
    return y, found


def prepare_resume(
    model: Path, *, epochs: int | None = None, data: str | None = None, command: Sequence[str] | None = None
) -> Prepared:
    """The run recorded in a model file, ready to go on for `epochs` more (see resume.py): its
    spec, settings, data (or `data`, checked to be the same rows) and split, its parameters and
    its optimizer's state. `command` (argv) is recorded as the resume's, beside the runs it continues."""
    record = load(model).record
    cont = continuation(model, record, epochs)
    prep = prepare(
        Path(record.spec_file),
        target=record.data.target,
        spec_text=record.spec_text,
        settings=record.training.model_copy(update={"epochs": cont.epochs_done + cont.more}),
        table=recorded_table(record, data),
        command=command,
    )
    check_same_data(cont, record, prep.data)
    graph = prep.root.compiled_graph
    start_from(graph, record, model)
    last = cont.last(graph.param_names)
    if last is not None:  # early stopping kept the best epoch's: go on from the last epoch's
        graph.set_param_values(last)
    prep.continued = cont
    prep.provenance, prep.lineage = resumed_lineage(record, prep.provenance)
    return prep


def start(
    asked: Asked,
    *,
    data: str | None = None,
    part: Part = WHOLE,
    command: Sequence[str] | None = None,
    reading: Callable[[str, int], None] | None = None,
) -> Prepared:
    """The run `treegrad train` was asked for (options.Asked, checked by options.check_train), ready
    to train: a recorded run going on (--resume, for --epochs more), or the spec's with the options
    and the `--set KEY=VALUE` settings applied, begun from another model's parameters (--init-from).
    With `part`, this process's part of a data-parallel run; `command` (argv) is recorded;
    `reading(source, rows)` hears of the rows of the data read so far."""
    from ..spec.settings import parse_assignment

    if asked.resume is not None:
        return prepare_resume(asked.resume, epochs=asked.overrides.get("epochs"), data=data, command=command)
    assert asked.spec is not None, "check_train refuses a run with neither SPEC nor --resume"
    sets = [(key, values[0]) for key, values in (parse_assignment(item, "--set") for item in asked.sets)]
    prep = prepare(
        asked.spec,
        data=data,
        target=asked.target,
        overrides=dict(asked.overrides),
        sets=sets,
        command=command,
        part=part,
        reading=reading,
    )
    if asked.init_from is not None:
        init_from = asked.init_from
        part.agree(lambda: warm_start(prep, init_from))
    return prep
