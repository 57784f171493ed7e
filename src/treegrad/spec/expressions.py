"""The pydantic models of a spec's model: expressions (a number, a name, `param`, or a one-key
mapping whose key is the op) and the layers of a `layers:` stack.

An expression is a recursive union told apart by a callable discriminator, so a bad
expression gives one error, not one per union branch; `explain_expression` says what is
wrong with it. An op added to the op table is a spec key here (`OP_MODELS`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

from pydantic import Discriminator, Field, Tag, create_model, field_validator, model_validator
from typing_extensions import TypeAliasType

from ..core.nodes import ACTIVATIONS
from ..core.ops import OPS
from ..engine.settings import Strict as _Strict
from ..engine.settings import custom_error as _custom
from ..errors import describe, did_you_mean

if TYPE_CHECKING:
    Activation = str
else:
    Activation = Literal[tuple(ACTIVATIONS)]


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


def _layer_name(v: Any) -> Any:
    if isinstance(v, str) and (not v.strip() or any(ord(c) < 32 or ord(c) == 127 for c in v)):
        raise _custom("a layer's name is a word or a few on one line, e.g. name: hidden")
    return v


# A layer's name, as pages and messages show it (to the page it is text, never markup).
LayerName = Annotated[str, Field(max_length=60)]


class DenseLayer(_Strict):
    """`{name: hidden, linear: 8, activation: relu}` under layers: k units over the previous layer's
    outputs; unnamed, it is `layer 1`, `layer 2`, ... by its place."""

    name: LayerName | None = None
    linear: Annotated[int, Field(ge=1)]
    activation: Activation = "none"
    bias: bool = True

    _softmax_hint = field_validator("activation", mode="before")(_activation_hint)
    _name = field_validator("name", mode="before")(_layer_name)


class SoftmaxLayer(_Strict):
    """`{softmax: true}` as the last of layers: a softmax over the previous layer."""

    name: LayerName | None = None
    softmax: Literal[True]

    _name = field_validator("name", mode="before")(_layer_name)


def layer_name(layer: DenseLayer | SoftmaxLayer, i: int) -> str:
    """The name a layer goes by: its `name:`, else `softmax` for the softmax, `layer N` (1-based) for another."""
    return layer.name or ("softmax" if isinstance(layer, SoftmaxLayer) else f"layer {i + 1}")


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
