"""Spec files: a model described in YAML or JSON, checked with errors that point at the source.

A spec goes through three stages, and each reports a problem as one `SpecError` whose
message reads `file:line:col: path.in[0].spec: what is wrong — what to do`:

1. read (`reading`): the text becomes plain Python data plus a `Source`, the line and column
   of each path in it; anchors, aliases and tags are refused.
2. validate (this module): the pydantic models below check the shape. An expression is a
   recursive union told apart by a callable discriminator (a number, a name, or a one-key
   mapping whose key is the op), so a bad expression gives one error, not one per union branch.
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
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from typing_extensions import TypeAliasType

from ..core.nodes import ACTIVATIONS
from ..core.ops import OPS
from ..engine.losses import LOSSES
from ..engine.settings import Strict as _Strict
from ..engine.settings import Training
from ..engine.settings import custom_error as _custom
from ..errors import SettingError, SpecError, clip, describe, did_you_mean, escaped
from .reading import Source, SpecPath, read_data, read_text

if TYPE_CHECKING:
    from .analysis import Analysis

MAX_SHOWN = 3  # pydantic problems listed in one message
# A model's name becomes the default file name NAME.model.json in the current folder, so it
# may not hold a path: `name: ../../x` must not write outside it.
MODEL_NAME = re.compile(r"\w[\w.-]{0,99}\Z")


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


if TYPE_CHECKING:
    Activation = str
    LossName = str
else:
    Activation = Literal[tuple(ACTIVATIONS)]
    LossName = Literal[tuple(LOSSES)]


def _activation_hint(v: Any) -> Any:
    if v == "softmax":
        raise _custom(
            "'softmax' is not an activation of single units (it mixes a whole layer); "
            "under layers: end with the layer {softmax: true}; in an expression write "
            "{softmax: {linear: {...}}}"
        )
    return v


class _Call(_Strict):
    """A one-key mapping `{keyword: arguments}` inside an expression."""

    keyword: ClassVar[str] = ""


class ParamInit(_Strict):
    """`{param: {init: 0.5, name: bias}}`: a parameter's initial value (random if absent) and name."""

    init: float | None = None
    name: str | None = None


def _param_tag(v: Any) -> str | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return "<value>"
    if isinstance(v, (dict, ParamInit)):
        return "<init>"
    return None


class ParamCall(_Call):
    """`{param: 0.5}` or `{param: {init: 0.5, name: bias}}`: a trainable parameter."""

    keyword: ClassVar[str] = "param"
    param: Annotated[
        Annotated[float, Tag("<value>")] | Annotated[ParamInit, Tag("<init>")],
        Discriminator(
            _param_tag,
            custom_error_type="param_value",
            custom_error_message="param takes a number (its initial value) or {init: number, name: text}",
        ),
    ]


class OpCall(_Call):
    """`{op: arguments}` for an op of the op table: a list for several arguments, else one expression."""

    @model_validator(mode="before")
    @classmethod
    def _arity(cls, data: Any) -> Any:
        if not isinstance(data, dict) or cls.keyword not in data:
            return data
        op, args = OPS[cls.keyword], data[cls.keyword]
        if op.arity == 1:
            if isinstance(args, list):
                raise _custom(
                    f"'{op.name}' takes one expression, not a list of {len(args)}: write "
                    f"{{{op.name}: x}}" + (f" (for several, {{{op.name}: {{add: [...]}}}})" if len(args) > 1 else ""),
                    op.name,
                )
            return data
        if not isinstance(args, list):
            example = "[base, 2]" if op.constant_args else "[a, b]"
            raise _custom(
                f"'{op.name}' takes a list of {'at least 2' if op.arity is None else op.arity} "
                f"expressions, e.g. {{{op.name}: {example}}}; found {describe(args)}",
                op.name,
            )
        problem = op.check_arity(len(args))
        if problem:
            raise _custom(problem, op.name)
        for i in op.constant_args:
            a = args[i]
            if isinstance(a, bool) or not isinstance(a, (int, float)):
                raise _custom(
                    f"argument {i + 1} of '{op.name}' must be a constant number, found {describe(a)}"
                    + ("; for a learned exponent write {exp: {mul: [param, {log: x}]}}" if op.name == "pow" else ""),
                    op.name,
                    i,
                )
        return data


def _shape(v: Any) -> str:
    return "<list>" if isinstance(v, list) else "<one>"


def _list_or_one(item: Any) -> Any:
    """`list[item] | item`, told apart by shape so that errors come from one branch only."""
    return Annotated[
        Annotated[list[item], Tag("<list>")] | Annotated[item, Tag("<one>")],  # type: ignore[valid-type]
        Discriminator(_shape),
    ]


class LinearLayer(_Strict):
    """`{linear: {inputs: [...], units: k, activation: relu, bias: true}}`: k neurons over the inputs."""

    inputs: ExprList
    units: Annotated[int, Field(ge=1)] | None = None
    activation: Activation = "none"
    bias: bool = True

    _softmax_hint = field_validator("activation", mode="before")(_activation_hint)


def _linear_tag(v: Any) -> str | None:
    if isinstance(v, list):
        return "<neuron>"
    if isinstance(v, str):
        return "<over>"
    if isinstance(v, (dict, LinearLayer)):
        return "<layer>"
    return None


class LinearCall(_Call):
    """`{linear: [e1, ..., en]}` or `{linear: layer_name}`: one neuron w·e + b;
    `{linear: {inputs: ..., units: k, ...}}`: a layer of k neurons."""

    keyword: ClassVar[str] = "linear"
    linear: Annotated[
        Annotated[list[Expr], Tag("<neuron>"), Field(min_length=1)]
        | Annotated[str, Tag("<over>")]
        | Annotated[LinearLayer, Tag("<layer>")],
        Discriminator(
            _linear_tag,
            custom_error_type="linear_args",
            custom_error_message="linear takes a list of expressions or a node name (one neuron), or "
            "{inputs: [...], units: k, activation: relu} (a layer)",
        ),
    ]


class SoftmaxCall(_Call):
    """`{softmax: [e1, ...]}` or `{softmax: layer}`: probabilities; only as the model's output."""

    keyword: ClassVar[str] = "softmax"
    softmax: ExprList


def _op_model(name: str) -> type[OpCall]:
    op = OPS[name]
    annotation = "Expr" if op.arity == 1 else "list[Expr]"
    model: type[OpCall] = create_model(  # type: ignore[call-overload]
        f"{op.cls}Op",
        __base__=OpCall,
        __module__=__name__,
        __doc__=f"`{{{name}: {'x' if op.arity == 1 else '[...]'}}}`: {op.doc}.",
        **{name: (annotation, ...)},
    )
    model.keyword = name
    return model


OP_MODELS: dict[str, type[OpCall]] = {name: _op_model(name) for name in OPS}
CALLS: dict[str, type[_Call]] = {**OP_MODELS, "param": ParamCall, "linear": LinearCall, "softmax": SoftmaxCall}


def _expr_tag(v: Any) -> str | None:
    """The branch of the expression union for a value (None: not an expression)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return "<number>"
    if isinstance(v, str):
        return "<name>"
    if isinstance(v, dict):
        if len(v) == 1 and next(iter(v)) in CALLS:
            return f"<{next(iter(v))}>"
        return None
    if isinstance(v, _Call):
        return f"<{v.keyword}>"
    return None


if TYPE_CHECKING:
    Expr = float | str | _Call
    ExprList = list[Expr] | Expr
else:
    Expr = TypeAliasType(
        "Expr",
        Annotated[
            Union[  # noqa: UP007 - a union built at run time from the op table
                tuple(
                    [Annotated[float, Tag("<number>")], Annotated[str, Tag("<name>")]]
                    + [Annotated[m, Tag(f"<{k}>")] for k, m in CALLS.items()]
                )
            ],
            Discriminator(_expr_tag, custom_error_type="expression", custom_error_message="not an expression"),
        ],
    )
    ExprList = TypeAliasType("ExprList", _list_or_one(Expr))


class DenseLayer(_Strict):
    """`{linear: 8, activation: relu}` under layers: k units over the previous layer's outputs."""

    linear: Annotated[int, Field(ge=1)]
    activation: Activation = "none"
    bias: bool = True

    _softmax_hint = field_validator("activation", mode="before")(_activation_hint)


class SoftmaxLayer(_Strict):
    """`{softmax: true}` as the last of layers: a softmax over the previous layer."""

    softmax: Literal[True]


def _layer_tag(v: Any) -> str | None:
    if isinstance(v, DenseLayer) or (isinstance(v, dict) and "linear" in v):
        return "<linear>"
    if isinstance(v, SoftmaxLayer) or (isinstance(v, dict) and "softmax" in v):
        return "<softmax>"
    return None


Layer = Annotated[
    Annotated[DenseLayer, Tag("<linear>")] | Annotated[SoftmaxLayer, Tag("<softmax>")],
    Discriminator(
        _layer_tag,
        custom_error_type="layer",
        custom_error_message="a layer is {linear: units, activation: relu} or, last, {softmax: true}",
    ),
]


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
        problem = _selection_problem(v)
        if problem is not None:
            raise _custom(problem[0], "inputs", *problem[1])
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
            # analysis builds on these models (it imports this module), so it is imported here.
            from .analysis import analyse

            self._analysis = analyse(self)
        return self._analysis

    def error(self, path: SpecPath, text: str, key: bool = False) -> SpecError:
        """A SpecError at `path` of this spec's source."""
        return self._source.error(path, text, key)


# ----------------------------------------------------------------- rendering pydantic errors

_FRIENDLY = {
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "string_type": "expected text",
    "bool_type": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping (key: value lines)",
    "model_type": "expected a mapping (key: value lines)",
    "model_attributes_type": "expected a mapping (key: value lines)",
}

_HINTS = {
    "inputs": " — list the model's input names, e.g. inputs: [x, y]",
    "patience": " — the number of epochs without improvement before stopping, e.g. patience: 20",
}


def _clean_loc(loc: tuple[Any, ...], data: Any) -> SpecPath:
    """The spec path of a pydantic error location: union tags dropped, following the data."""
    path: list[str | int] = []
    cur: Any = data
    for part in loc:
        if isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
        elif isinstance(cur, dict) and isinstance(part, str) and part in cur:
            cur = cur[part]
        elif isinstance(part, str) and part.startswith("<") and part.endswith(">"):
            continue  # a union tag, not a place in the file
        else:
            cur = None
        path.append(part)
    return tuple(path)


def explain_expression(v: Any) -> str:
    """Why `v` is not an expression, and what would be."""
    kinds = "a number, an input or node name, param, or a one-key mapping {op: arguments}"
    if v is None:
        return f"an empty expression; write {kinds}"
    if isinstance(v, bool):
        return f"{str(v).lower()} is not an expression; write {kinds}"
    if isinstance(v, list):
        return (
            f"a list ({len(v)} items) is not an expression here; lists go where several arguments are "
            "taken, as in {add: [a, b]}"
        )
    if isinstance(v, dict):
        keys = list(v)
        if not keys:
            return f"an empty mapping {{}} is not an expression; write {kinds}"
        if len(keys) > 1:
            ops = [k for k in keys if k in CALLS]
            hint = ""
            if "linear" in keys and not isinstance(v.get("linear"), (list, dict)):
                hint = (
                    " ({linear: 8, activation: relu} is a layer under layers:; in an expression a layer is "
                    "{linear: {inputs: [...], units: 8, activation: relu}})"
                )
            elif len(ops) > 1:
                hint = " (write one op per mapping and nest them, e.g. {add: [{mul: [a, b]}, c]})"
            return (
                f"an expression mapping has exactly one key, the op; found {len(keys)}: "
                f"{', '.join(str(k) for k in keys)}{hint}"
            )
        key = str(keys[0])
        return f"unknown op '{key}'{did_you_mean(key, CALLS)} Ops are: {', '.join(CALLS)}"
    return f"{describe(v)} is not an expression; write {kinds}"


def _problem(err: Any, data: Any, source: Source) -> tuple[tuple[int, int], str, bool]:
    """(position, located message, whether the value there was given by an option) for one pydantic error."""
    path = _clean_loc(err["loc"], data)
    kind, ctx = err["type"], err.get("ctx") or {}
    key = False
    if kind == "spec":
        path += tuple(ctx.get("at", ()))
        key = bool(ctx.get("on_key"))
        text = str(ctx["message"])
    elif kind == "missing":
        name = str(path[-1]) if path else "?"
        path = path[:-1]
        text = f"the key '{name}' is missing{_HINTS.get(name, '')}"
    elif kind == "expression":
        text = explain_expression(err.get("input"))
    elif kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        got = err.get("input")
        mean = did_you_mean(got, choices) if isinstance(got, str) else "."
        text = f"{describe(got)} is not allowed{mean} Allowed: {', '.join(choices)}"
    elif kind == "recursion_loop" or kind == "recursion_depth_exceeded":
        text = "nested too deeply; give intermediate results names under nodes:"
    elif kind in ("param_value", "linear_args", "layer"):
        text = f"{err['msg']}; found {describe(err.get('input'))}"
    elif kind in ("too_short", "too_long"):
        n = ctx.get("min_length", ctx.get("max_length"))
        text = f"needs {'at least' if kind == 'too_short' else 'at most'} {n} item{'s' if n != 1 else ''}"
    else:
        msg = _FRIENDLY.get(kind) or str(err["msg"]).replace("Input should", "must")
        text = f"{msg}, found {describe(err.get('input'))}"
    pos = source.position(path, key) or (0, 0)
    return pos, source.message(path, text, key), source.given_by(path) is not None


def _render(e: ValidationError, data: Any, source: Source) -> SpecError:
    problems = sorted(set(_problem(err, data, source) for err in e.errors()))
    # A problem in a value given on the command line is the command line's: a usage error.
    cls = SettingError if any(given for _, _, given in problems) else SpecError
    if len(problems) == 1:
        return cls(problems[0][1])
    shown = [f"  - {text}" for _, text, _ in problems[:MAX_SHOWN]]
    more = len(problems) - MAX_SHOWN
    tail = [f"  (and {more} more)"] if more > 0 else []
    return cls("\n".join([f"{source.filename}: {len(problems)} problems in the spec:", *shown, *tail]))


def validate_spec(data: Any, source: Source | None = None, *, default_name: str | None = None) -> Spec:
    """A checked Spec from plain data (as loaded from YAML/JSON), with errors located via `source`."""
    source = source or Source("<spec>")
    if not isinstance(data, dict):
        raise source.error((), f"a spec is a mapping of keys such as inputs: and output:, found {describe(data)}")
    try:
        spec = Spec.model_validate(data, context={"source": source})
    except ValidationError as e:
        raise _render(e, data, source) from None
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
            {_problem({**err, "loc": ("training", *err["loc"])}, {"training": data}, source) for err in e.errors()}
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
