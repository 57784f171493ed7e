"""From a checked spec to a compiled node graph: `build_model(spec)`.

Each name is one node object: an input used five times is one `Input`, a node of `nodes:`
used by two heads is one subgraph shared by both (a DAG, not a copy). Fresh parameters and
`Linear` weights draw from one generator, `seeds.stream(seed, "init")`, in a fixed order (named nodes in
dependency order, then the output, left to right), so a spec and a seed give one model.
"""

from __future__ import annotations

import math
import random
from typing import Any

from ..core.nodes import (
    OPERATIONS,
    Add,
    Constant,
    Divide,
    Input,
    Linear,
    Multiply,
    Node,
    Output,
    Parameter,
    Softmax,
    Subtract,
)
from ..engine.losses import LOSSES, TaskKind, default_loss
from ..errors import ModelError, SpecError
from ..seeds import stream
from .analysis import Budget, arguments, check_budget
from .expressions import DenseLayer, LinearCall, LinearLayer, OpCall, ParamCall, SoftmaxCall, layer_name
from .models import Spec
from .reading import SpecPath


def loss_name(spec: Spec) -> str:
    """The spec's loss, or the default for its output (`losses.default_loss`)."""
    if spec.loss is not None:
        return spec.loss
    return default_loss(spec.analysis.output_kind == "softmax")


def task_kind(spec: Spec) -> TaskKind:
    """What the model learns, as its loss says: "regression", "binary" or "classes"."""
    return LOSSES[loss_name(spec)].task


def output_count(spec: Spec) -> int:
    """How many values the model outputs (for a softmax: the number of classes)."""
    return spec.analysis.output_count


def build_model(
    spec: Spec,
    *,
    seed: int | None = None,
    stats: dict[str, tuple[float, float]] | None = None,
    target: tuple[float, float] | None = None,
    budget: Budget | None = None,
) -> Node:
    """The spec's model as a compiled graph (inputs in the spec's order); returns its output node.

    With `stats` (input name -> (mean, std)) each input enters as (x - mean) / std, so the
    graph takes raw values and standardises them itself. With `target` (mean, std) of a
    regression target, the output is mean + std * (the model), so it answers in raw units
    while it was trained on the standardised target. A model larger than `budget`
    (default: `Budget.from_env()`) is refused before any node is made.
    """
    check_budget(spec, budget)
    rng = stream(spec.training.seed if seed is None else seed, "init")
    env: dict[str, Node] = {name: _input(spec, name, stats) for name in spec.inputs}
    for name in spec.analysis.order:
        env[name] = _build(spec, spec.nodes[name], ("nodes", name), env, rng)
        if env[name].kind in ("op", "macro") and env[name].name is None:
            env[name].name = name  # the page shows the node by its spec name (a leaf keeps its own)
    if spec.layers is not None:
        root = _build_layers(spec, env, rng)
    elif isinstance(spec.output, list):
        root = Output([_build(spec, e, ("output", i), env, rng) for i, e in enumerate(spec.output)])
    else:
        root = _build(spec, spec.output, ("output",), env, rng)
    if target is not None:
        mean, std = target
        root = Add([Multiply([root, Constant(std)]), Constant(mean)])
    try:
        root.compile(inputs=spec.inputs)
    except ModelError as e:
        raise SpecError(f"{spec.source.filename}: the model does not compile: {e}") from None
    assert root.graph is not None
    # A layer at the top compiles to its expansion (an Output of its neurons): hand that out.
    return root.graph.output


def _input(spec: Spec, name: str, stats: dict[str, tuple[float, float]] | None) -> Node:
    x: Node = Input(name)
    if stats is None or name not in stats:
        return x
    mean, std = stats[name]
    if not (math.isfinite(mean) and math.isfinite(std)) or std <= 0.0:
        raise SpecError(
            f"{spec.source.filename}: cannot standardise input '{name}' with mean {mean} and "
            f"standard deviation {std}; they must be finite and the deviation positive"
        )
    return Divide([Subtract([x, Constant(mean)]), Constant(std)])


def _build(spec: Spec, expr: Any, path: SpecPath, env: dict[str, Node], rng: random.Random) -> Node:
    """The node(s) of one expression, children first, without recursion (post-order with a value stack)."""
    work: list[tuple[Any, SpecPath, bool]] = [(expr, path, False)]
    built: list[Node] = []
    while work:
        e, p, ready = work.pop()
        args = arguments(e)
        if args and not ready:
            work.append((e, p, True))
            work.extend((a, p + rel, False) for rel, a, _ in reversed(args))
            continue
        children = built[len(built) - len(args) :] if args else []
        del built[len(built) - len(args) :]
        try:
            built.append(_node(e, children, env, rng))
        except ModelError as err:
            raise spec.error(p, str(err)) from None
    assert len(built) == 1
    return built[0]


def _node(e: Any, children: list[Node], env: dict[str, Node], rng: random.Random) -> Node:
    """One expression's node, given its children's nodes."""
    if isinstance(e, str):
        return Parameter(rng=rng) if e == "param" else env[e]
    if isinstance(e, (int, float)):
        return Constant(e)
    if isinstance(e, ParamCall):
        if isinstance(e.param, float):
            return Parameter(e.param)
        return Parameter(e.param.init, name=e.param.name, rng=rng)
    if isinstance(e, OpCall):
        return OPERATIONS[e.keyword](children)
    if isinstance(e, LinearCall):
        if isinstance(e.linear, LinearLayer):
            layer = e.linear
            return Linear(children, units=layer.units, activation=layer.activation, bias=layer.bias, rng=rng)
        return Linear(children, rng=rng)
    if isinstance(e, SoftmaxCall):
        return Softmax(children)
    raise AssertionError(f"not an expression: {e!r}")  # the spec was validated


def _build_layers(spec: Spec, env: dict[str, Node], rng: random.Random) -> Node:
    assert spec.layers is not None
    previous: list[Node] = [env[name] for name in spec.inputs]
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, DenseLayer):
            node: Node = Linear(previous, units=layer.linear, activation=layer.activation, bias=layer.bias, rng=rng)
        else:
            node = Softmax(previous)
        node.name = layer_name(layer, i)
        previous = [node]
    return previous[0]
