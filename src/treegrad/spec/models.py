"""Spec files: a model described in YAML or JSON, checked with errors that point at the source.

A spec goes through three stages, and each reports a problem as one `SpecError` whose
message reads `file:line:col: path.in[0].spec: what is wrong — what to do`:

1. read (`reading`): the text becomes plain Python data plus a `Source`, the line and column
   of each path in it; anchors, aliases and tags are refused.
2. validate (this module, with the expression models of `expressions` and the training
   settings of `engine.settings`): pydantic checks the shape, and `problems` renders what it
   finds as located messages.
3. analyse (`analysis`): what pydantic cannot see: names in scope, cycles among `nodes:`,
   layer widths, where a softmax may stand, whether the loss fits the output.

`load_spec` and `parse_spec` run all three. The format (see models/*.yaml for examples):

    name: f2c                     # optional, default: the file's stem
    inputs: [f]                   # input names, in CSV-column / predict-argument order
    nodes: {h: {relu: f}}         # optional named expressions, usable any number of times
    output: {add: [{mul: [param, f]}, param]}   # or a list of expressions, or a softmax
    layers:                       # instead of output: a stack of linear layers, each over the
      - {linear: 8, activation: relu}   # previous one's outputs (the first over the inputs);
      - {linear: 3}                     # a softmax output is the last layer {softmax: true}
      - {softmax: true}
    loss: mse                     # mse | mae | bce | cross_entropy
    data: f2c                     # a built-in dataset or a CSV path relative to the spec
    target: c                     # the CSV column to learn
    classes: [a, b, c]            # label order, for classifiers
    training: {epochs: 100, learning_rate: 0.01, ...}
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, model_validator

from ..engine.losses import LOSSES
from ..engine.settings import Strict as _Strict
from ..engine.settings import Training
from ..engine.settings import custom_error as _custom
from ..errors import SpecError, clip, describe, escaped
from .analysis import Analysis, analyse
from .expressions import Expr, ExprList, Layer
from .problems import problem, render
from .reading import Source, SpecPath, read_data, read_text

# A model's name becomes the default file name NAME.model.json in the current folder, so it
# may not hold a path: `name: ../../x` must not write outside it.
MODEL_NAME = re.compile(r"\w[\w.-]{0,99}\Z")

if TYPE_CHECKING:
    LossName = str
else:
    LossName = Literal[tuple(LOSSES)]


def load_spec(path: Path) -> Spec:
    """Read, validate and analyse the spec file at `path`; any problem is a located SpecError."""
    path = Path(path)
    return parse_spec(read_text(path), str(path), default_name=path.stem)


def parse_spec(text: str, filename: str = "<spec>", *, default_name: str | None = None) -> Spec:
    """Validate and analyse a spec given as text; `filename` is used in messages (and for JSON detection)."""
    data, source = read_data(text, filename)
    if default_name is None and Path(filename).suffix.lower() in (".yaml", ".yml", ".json"):
        default_name = Path(filename).stem
    return validate_spec(data, source, default_name=default_name)


def _selection_problem(v: Any) -> tuple[str, tuple[str | int, ...]] | None:
    """What is wrong with an `inputs:` value that selects columns, and where; None if it is fine
    (a plain list of names is not a selection and is checked by the spec's own rules)."""
    if v == "all":
        return None
    if isinstance(v, str):
        return (
            f"inputs is '{clip(escaped(v))}': write `inputs: all` for every column but the target, "
            "or a list of names, {match: 'glob*'} and {range: [first, last]}",
            (),
        )
    if not isinstance(v, list):
        return None
    for i, item in enumerate(v):
        if isinstance(item, str):
            continue
        if not isinstance(item, dict) or len(item) != 1 or next(iter(item)) not in ("match", "range"):
            return (
                "an input is a column name, {match: 'glob*'} (the columns whose names match, in header "
                "order) or {range: [first, last]} (the columns from first to last)",
                (i,),
            )
        key, arg = next(iter(item.items()))
        if key == "match" and (not isinstance(arg, str) or not arg):
            return ("match takes a glob pattern such as 'pixel_*'", (i, key))
        if key == "range" and not (isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, str) for a in arg)):
            return ("range takes two column names, [first, last]", (i, key))
    return None


def _is_selection(v: Any) -> bool:
    """True for an `inputs:` value that must be resolved against a header (`all`, match, range)."""
    return v == "all" or (isinstance(v, list) and any(isinstance(item, dict) for item in v))


class Spec(_Strict):
    """A whole spec file: the model, its loss, data and training settings."""

    name: str | None = None
    """The model's name (default: the file's stem)."""
    description: str | None = None
    """What the model is for."""
    inputs: list[str]
    """Input names, in CSV-column / predict-argument order; or `all` (every column but the target),
    or a list mixing names, {match: 'glob*'} and {range: [first, last]}, resolved against the data."""
    nodes: dict[str, Expr] = Field(default_factory=dict)
    """Named expressions; a name used several times is one shared node."""
    output: ExprList | None = None
    """The model: an expression, a list of them, or {softmax: [...]}."""
    layers: list[Layer] | None = None
    """Instead of output: a stack of {linear: units, activation: ...}, optionally ending in {softmax: true}."""
    loss: LossName | None = None
    """Default: cross_entropy for a softmax output, else mse."""
    data: str | None = None
    """A built-in dataset name, or a CSV path relative to this file."""
    target: str | None = None
    """The CSV column to learn."""
    classes: list[str] | None = None
    """For classifiers: the labels, in output order."""
    missing_values: list[str] | None = None
    """The texts of a cell that read as missing (besides an empty cell), replacing the default
    list: NA, N/A, NaN, nan, null, NULL, None, #N/A, - and ? (quote null and ~ in YAML)."""
    training: Training = Field(default_factory=Training)
    """How to train; every key has a default."""

    _source: Source = PrivateAttr(default_factory=lambda: Source("<spec>"))
    _analysis: Analysis | None = PrivateAttr(default=None)
    _selection: Any = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _input_selection(cls, data: Any, info: ValidationInfo) -> Any:
        # `inputs: all` or a list with {match: ...} / {range: ...} is resolved against the data's
        # header later (`with_inputs`); until then the spec has no inputs and is not analysed.
        if not isinstance(data, dict) or not isinstance(info.context, dict):
            return data
        v = data.get("inputs")
        wrong = _selection_problem(v)
        if wrong is not None:
            raise _custom(wrong[0], "inputs", *wrong[1])
        if _is_selection(v):
            info.context["selection"] = v
            return {**data, "inputs": []}
        return data

    @field_validator("name")
    @classmethod
    def _name_is_a_file_name(cls, v: str | None) -> str | None:
        if v is not None and not MODEL_NAME.match(v):
            raise _custom(
                f"the name {v[:40]!r} cannot be used: it names the model file (NAME.model.json), so "
                "write letters, digits, _, - and . (not first; at most 100), e.g. name: f2c_v2"
            )
        return v

    @field_validator("classes", mode="before")
    @classmethod
    def _labels_as_text(cls, v: Any) -> Any:
        # `classes: [0, 1]` names labels that a CSV holds as text "0", "1".
        if isinstance(v, list):
            return [str(c) if isinstance(c, int) and not isinstance(c, bool) else c for c in v]
        return v

    @model_validator(mode="after")
    def _attach(self, info: ValidationInfo) -> Spec:
        if isinstance(info.context, dict) and isinstance(info.context.get("source"), Source):
            self._source = info.context["source"]
        if isinstance(info.context, dict):
            self._selection = info.context.pop("selection", None)
        return self

    @property
    def selection(self) -> Any:
        """The `inputs:` selection still to resolve against a header (`all`, match, range), else None."""
        return self._selection

    def with_inputs(self, inputs: list[str]) -> Spec:
        """This spec with its inputs set to the resolved list, checked and analysed."""
        new = self.model_copy(update={"inputs": list(inputs)})
        new._source, new._selection, new._analysis = self._source, None, None
        new.analysis  # noqa: B018 - checked now, like a spec as loaded
        return new

    @property
    def source(self) -> Source:
        """Where this spec came from (file name and positions), for located errors."""
        return self._source

    @property
    def analysis(self) -> Analysis:
        """The checked facts about the model: node order, widths, output kind (computed once)."""
        if self._analysis is None:
            self._analysis = analyse(self)
        return self._analysis

    def error(self, path: SpecPath, text: str, key: bool = False) -> SpecError:
        """A SpecError at `path` of this spec's source."""
        return self._source.error(path, text, key)


def validate_spec(data: Any, source: Source | None = None, *, default_name: str | None = None) -> Spec:
    """A checked Spec from plain data (as loaded from YAML/JSON), with errors located via `source`."""
    source = source or Source("<spec>")
    if not isinstance(data, dict):
        raise source.error((), f"a spec is a mapping of keys such as inputs: and output:, found {describe(data)}")
    try:
        spec = Spec.model_validate(data, context={"source": source})
    except ValidationError as e:
        raise render(e, data, source) from None
    if spec.name is None and default_name:
        if not MODEL_NAME.match(default_name):
            raise source.error(
                (),
                f"the file name '{escaped(default_name)}' cannot name the model (it names the model file): "
                "add a name: key made of letters, digits, '.', '_' or '-'",
            )
        spec.name = default_name
    if spec.selection is None:
        spec.analysis  # noqa: B018 - the semantic checks run now, so a bad spec fails at load time
    return spec


def _attribute_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a class, read from its source."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
    assert isinstance(body, ast.ClassDef)
    docs: dict[str, str] = {}
    for field, doc in zip(body.body, body.body[1:]):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(field.target, ast.Name)
            and isinstance(doc, ast.Expr)
            and isinstance(doc.value, ast.Constant)
            and isinstance(doc.value.value, str)
        ):
            docs[field.target.id] = inspect.cleandoc(doc.value.value)
    return docs


def validate_training(data: Any, where: str) -> Training:
    """Training settings from plain data (as changed on the command line), checked as in a spec
    file; a problem is a SpecError that names `where` (an option) and the path, training.KEY."""
    source = Source(where)
    try:
        return Training.model_validate(data)
    except ValidationError as e:
        problems = sorted(
            {problem({**err, "loc": ("training", *err["loc"])}, {"training": data}, source) for err in e.errors()}
        )
        raise SpecError("\n".join(text for _, text, _ in problems)) from None


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of spec files (for editors' completion and checking)."""
    schema = Spec.model_json_schema()
    # The docstrings under fields describe them; read here, not by pydantic's
    # use_attribute_docstrings, which would inspect the source at import, in every command.
    for cls, properties in ((Spec, schema["properties"]), (Training, schema["$defs"]["Training"]["properties"])):
        for name, doc in _attribute_docs(cls).items():
            properties[name]["description"] = doc
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "treegrad model spec"
    schema["description"] = (Spec.__doc__ or "") + " Expressions are numbers, names, `param`, or one-key mappings."
    return schema
