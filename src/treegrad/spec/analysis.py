"""Semantic analysis of a validated spec: what its shape alone cannot show.

Names in scope, cycles among `nodes:`, where a layer (several values) may stand, where a
softmax may stand, whether the loss and classes fit the output. The first problem found is a
`SpecError` located in the spec's source. `walk` and `arguments` are the one way to visit an
expression's parts, used here and by `build`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from ..engine.losses import LOSSES
from ..engine.settings import Training
from ..errors import ModelError, SpecError, describe_char, did_you_mean, listed, unprintable
from ..limits import MAX_CLASSES
from .expressions import (
    DenseLayer,
    LinearCall,
    LinearLayer,
    OpCall,
    ParamCall,
    ParamInit,
    SoftmaxCall,
    SoftmaxLayer,
    layer_name,
)
from .reading import Source, SpecPath, format_path

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
RESERVED = ("param",)  # `param` in an expression makes a fresh parameter, so it cannot name anything


class SpecView(Protocol):
    """What the analysis reads of a spec: `models.Spec`, which sits above this module so that its
    `analysis` property can run `analyse`."""

    inputs: list[str]
    nodes: dict[str, Any]  # name -> expression
    output: Any
    layers: list[Any] | None
    loss: str | None
    target: str | None
    classes: list[str] | None
    training: Training

    @property
    def selection(self) -> Any:
        """The `inputs:` selection still to resolve against a header, else None."""
        ...

    @property
    def source(self) -> Source:
        """Where the spec came from, for located errors."""
        ...

    @property
    def analysis(self) -> Analysis:
        """The checked facts about the model (`analyse`, computed once)."""
        ...

    def error(self, path: SpecPath, text: str, key: bool = False) -> SpecError:
        """A SpecError at `path` of the spec's source."""
        ...


@dataclass
class Analysis:
    """Facts about a checked spec that building and training need."""

    order: list[str]  # node names, each after the nodes it uses
    widths: dict[str, int]  # node name -> how many values it stands for (a layer: its units)
    output_kind: str  # "scalar" | "list" | "softmax"
    output_count: int
    size: Size  # how big the built model will be, counted before anything is built


def arguments(e: Any) -> list[tuple[SpecPath, Any, bool]]:
    """An expression's sub-expressions: (path below it, sub-expression, may it be a layer?)."""
    if isinstance(e, OpCall):
        args = getattr(e, e.keyword)
        if isinstance(args, list):
            return [((e.keyword, i), a, False) for i, a in enumerate(args)]
        return [((e.keyword,), args, False)]
    if isinstance(e, LinearCall):
        if isinstance(e.linear, list):
            return [(("linear", i), a, True) for i, a in enumerate(e.linear)]
        if isinstance(e.linear, str):
            return [(("linear",), e.linear, True)]
        ins = e.linear.inputs
        if isinstance(ins, list):
            return [(("linear", "inputs", i), a, True) for i, a in enumerate(ins)]
        return [(("linear", "inputs"), ins, True)]
    if isinstance(e, SoftmaxCall):
        if isinstance(e.softmax, list):
            return [(("softmax", i), a, True) for i, a in enumerate(e.softmax)]
        return [(("softmax",), e.softmax, True)]
    return []


def walk(e: Any, path: SpecPath) -> Iterator[tuple[SpecPath, Any, bool]]:
    """Every sub-expression of `e` with its path, parents first (iterative)."""
    stack: list[tuple[SpecPath, Any, bool]] = [(path, e, True)]
    while stack:
        p, x, layer_ok = stack.pop()
        yield p, x, layer_ok
        stack.extend((p + rel, a, ok) for rel, a, ok in reversed(arguments(x)))


def _roots(spec: SpecView) -> list[tuple[SpecPath, Any]]:
    """The top-level expressions: each node's definition, then the output (each list item)."""
    roots: list[tuple[SpecPath, Any]] = [(("nodes", n), e) for n, e in spec.nodes.items()]
    if isinstance(spec.output, list):
        roots += [(("output", i), e) for i, e in enumerate(spec.output)]
    elif spec.output is not None:
        roots.append((("output",), spec.output))
    return roots


def _check_name(spec: SpecView, name: str, path: SpecPath, what: str, key: bool = False) -> None:
    if not NAME.match(name):
        raise spec.error(
            path,
            f"{what} '{name}' is not a usable name; use letters, digits and _ "
            "(not starting with a digit), e.g. sepal_length",
            key,
        )
    if name in RESERVED:
        raise spec.error(
            path, f"'{name}' cannot be {what}: in expressions `param` makes a fresh parameter; choose another name", key
        )


def _width(e: Any, widths: dict[str, int]) -> int:
    """How many values an expression stands for: a layer's units, a named layer's width, else 1."""
    if isinstance(e, LinearCall) and isinstance(e.linear, LinearLayer):
        return e.linear.units or 1
    if isinstance(e, str):
        return widths.get(e, 1)
    return 1


def _list_width(e: Any, widths: dict[str, int]) -> int:
    if isinstance(e, list):
        return sum(_width(x, widths) for x in e)
    return _width(e, widths)


def analyse(spec: SpecView) -> Analysis:
    """The semantic checks of a validated spec; the first problem found is a located SpecError."""
    _check_inputs(spec)
    _check_model_present(spec)
    deps = _check_names(spec)
    order = _node_order(spec, deps)
    widths: dict[str, int] = {}
    for name in order:
        widths[name] = _width(spec.nodes[name], widths)
    _check_widths(spec, widths)
    kind, count = _output_shape(spec, widths)
    _check_loss_and_labels(spec, kind, count)
    return Analysis(order, widths, kind, count, measure(spec, widths))


def _check_inputs(spec: SpecView) -> None:
    if spec.selection is not None:
        raise spec.error(
            ("inputs",),
            "the inputs are selected from the data's header (all, match or range), so this needs the data: "
            "give the spec a `data:` or pass --data FILE.csv",
        )
    if not spec.inputs:
        raise spec.error(
            ("inputs",), "no inputs; list the model's input names (the CSV columns it reads), e.g. inputs: [x, y]"
        )
    seen: dict[str, int] = {}
    for i, name in enumerate(spec.inputs):
        _check_name(spec, name, ("inputs", i), "the input name")
        if name in seen:
            raise spec.error(
                ("inputs", i), f"the input '{name}' is listed twice (also inputs[{seen[name]}]); list each input once"
            )
        seen[name] = i
    for name in spec.nodes:
        _check_name(spec, name, ("nodes", name), "the node name", key=True)
        if name in seen:
            raise spec.error(
                ("nodes", name),
                f"the node '{name}' has the same name as the input "
                f"inputs[{seen[name]}]; a name is defined once: rename the node",
                key=True,
            )
    if spec.target is not None and spec.target in seen:
        raise spec.error(
            ("target",), f"the target '{spec.target}' is also an input; a model cannot learn a column it is given"
        )


def _check_model_present(spec: SpecView) -> None:
    if spec.output is not None and spec.layers is not None:
        raise spec.error(
            ("layers",),
            "both output: and layers: are given; a spec describes its model with one of them: remove the other",
            key=True,
        )
    if spec.output is None and spec.layers is None:
        raise spec.error(
            (),
            "the spec has no model: add output: (an expression, e.g. output: {add: [{mul: "
            "[param, x]}, param]}) or layers: (a stack, e.g. layers: [{linear: 1}])",
        )
    if isinstance(spec.output, list) and not spec.output:
        raise spec.error(("output",), "the output is an empty list; give at least one expression")
    if spec.layers is not None:
        if not spec.layers:
            raise spec.error(("layers",), "no layers; give at least one, e.g. layers: [{linear: 1}]")
        named: dict[str, int] = {}
        for i, layer in enumerate(spec.layers):
            name = layer_name(layer, i)
            if name in named:
                raise spec.error(
                    ("layers", i, "name") if layer.name else ("layers", i),
                    f"two layers are called '{name}' (layers {named[name] + 1} and {i + 1}); give each its own name",
                )
            named[name] = i
            if isinstance(layer, SoftmaxLayer):
                if i != len(spec.layers) - 1:
                    raise spec.error(("layers", i), "{softmax: true} can only be the last layer")
                prev = spec.layers[i - 1] if i else None
                if not isinstance(prev, DenseLayer) or prev.linear < 2:
                    raise spec.error(
                        ("layers", i),
                        "{softmax: true} needs a linear layer of at least 2 units "
                        "before it, one unit per class, e.g. {linear: 3}",
                    )


def _check_names(spec: SpecView) -> dict[str, list[tuple[str, SpecPath]]]:
    """Check every name is in scope; return, per node, the nodes it uses (with where)."""
    scope = list(spec.inputs) + list(spec.nodes)
    deps: dict[str, list[tuple[str, SpecPath]]] = {n: [] for n in spec.nodes}
    params: dict[str, SpecPath] = {}
    for root_path, root in _roots(spec):
        owner = str(root_path[1]) if root_path[0] == "nodes" else None
        for path, e, _ in walk(root, root_path):
            if isinstance(e, str) and e != "param":
                if e not in spec.nodes and e not in spec.inputs:
                    raise spec.error(
                        path,
                        f"unknown name '{e}'{did_you_mean(e, scope)} Names in scope: {listed(scope)} (and param)",
                    )
                if owner is not None and e in spec.nodes:
                    deps[owner].append((e, path))
            elif isinstance(e, SoftmaxCall) and path != ("output",):
                raise spec.error(
                    path,
                    "softmax can only be the whole model output (output: {softmax: [...]}); "
                    "it gives a list of probabilities that nothing else can take",
                )
            elif isinstance(e, ParamCall) and isinstance(e.param, ParamInit) and e.param.name is not None:
                name = e.param.name
                _check_name(spec, name, path + ("param", "name"), "the parameter name")
                if name in params:
                    first = spec.source.where(params[name])
                    raise spec.error(
                        path + ("param", "name"),
                        f"the parameter name '{name}' is used twice "
                        f"(first at {first}); to use one parameter in two places, define it once "
                        f"under nodes: and refer to it by its node name",
                    )
                if name in spec.inputs:
                    raise spec.error(
                        path + ("param", "name"), f"the parameter name '{name}' is an input's name; choose another"
                    )
                params[name] = path + ("param", "name")
    return deps


def _node_order(spec: SpecView, deps: dict[str, list[tuple[str, SpecPath]]]) -> list[str]:
    """Node names with every node after the nodes it uses; a cycle is a located error."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in spec.nodes:
        if state.get(start):
            continue
        state[start] = 1
        stack: list[tuple[str, Iterator[tuple[str, SpecPath]]]] = [(start, iter(deps[start]))]
        while stack:
            name, it = stack[-1]
            for dep, path in it:
                if state.get(dep) == 1:
                    names = [n for n, _ in stack]
                    cycle = " -> ".join(names[names.index(dep) :] + [dep])
                    raise spec.error(
                        path,
                        f"cycle among nodes: {cycle}; a node cannot depend on itself, directly or through other nodes",
                    )
                if not state.get(dep):
                    state[dep] = 1
                    stack.append((dep, iter(deps[dep])))
                    break
            else:
                stack.pop()
                state[name] = 2
                order.append(name)
    return order


def _check_widths(spec: SpecView, widths: dict[str, int]) -> None:
    """A layer (several values) may only stand where a list is taken."""
    for root_path, root in _roots(spec):
        for path, e, layer_ok in walk(root, root_path):
            n = _width(e, widths)
            if n != 1 and not layer_ok:
                what = f"'{e}' is a layer of {n} values" if isinstance(e, str) else f"this layer has {n} units"
                raise spec.error(
                    path,
                    f"{what}, but '{path[-2] if isinstance(path[-1], int) else path[-1]}' "
                    "takes single values; a layer can go into linear inputs, softmax or "
                    "the output list (for one value, add a {linear: [...]} over it)",
                )


def _output_shape(spec: SpecView, widths: dict[str, int]) -> tuple[str, int]:
    if spec.layers is not None:
        last = spec.layers[-1]
        if isinstance(last, SoftmaxLayer):
            prev = spec.layers[-2]
            assert isinstance(prev, DenseLayer)
            return "softmax", prev.linear
        assert isinstance(last, DenseLayer)
        return ("scalar" if last.linear == 1 else "list"), last.linear
    out = spec.output
    if isinstance(out, SoftmaxCall):
        n = _list_width(out.softmax, widths)
        if n < 2:
            raise spec.error(
                ("output", "softmax"),
                f"a softmax needs at least 2 values (one per class), got {n}; "
                "for one probability use {sigmoid: ...} with loss: bce",
            )
        return "softmax", n
    if isinstance(out, list):
        return "list", _list_width(out, widths)
    n = _width(out, widths)
    return ("scalar" if n == 1 else "list"), n


def _check_loss_and_labels(spec: SpecView, kind: str, count: int) -> None:
    if kind == "softmax" and count > MAX_CLASSES:
        where = ("layers", len(spec.layers) - 2, "linear") if spec.layers is not None else ("output", "softmax")
        raise spec.error(
            where,
            f"the softmax has {count:,} outputs, one per class, more than the {MAX_CLASSES:,} a classifier takes "
            "(its confusion matrix alone would hold the square); group the labels into fewer classes",
        )
    if spec.loss is not None:
        fits_softmax = LOSSES[spec.loss].on_softmax
        if kind == "softmax" and not fits_softmax:
            raise spec.error(
                ("loss",),
                f"the loss '{spec.loss}' does not fit a softmax output; use "
                "cross_entropy (the default for a softmax), or drop the softmax",
            )
        if kind != "softmax" and fits_softmax:
            raise spec.error(
                ("loss",),
                f"the loss '{spec.loss}' needs a softmax output (output: {{softmax: "
                "[...]} or a last layer {softmax: true}); for one probability use "
                "a sigmoid output with loss: bce",
            )
    if spec.classes is not None:
        seen: set[str] = set()
        for i, c in enumerate(spec.classes):
            if c in seen:
                raise spec.error(("classes", i), f"the class '{c}' is listed twice")
            bad = unprintable(c)
            if bad is not None:
                raise spec.error(("classes", i), f"the class holds {describe_char(bad)}; labels are printed, remove it")
            seen.add(c)
        if kind == "softmax" and len(spec.classes) != count:
            raise spec.error(
                ("classes",),
                f"{len(spec.classes)} classes are listed but the softmax has {count} "
                "outputs; give one class per output",
            )
        if kind != "softmax":
            if spec.loss is None or LOSSES[spec.loss].task != "binary":
                raise spec.error(
                    ("classes",),
                    "a list of classes is for classifiers (a softmax output, or loss: bce); remove it for a regression",
                    key=True,
                )
            if len(spec.classes) != 2:
                raise spec.error(
                    ("classes",),
                    f"a binary classifier (loss: bce) tells 2 classes apart, {len(spec.classes)} are listed",
                )
    t = spec.training
    if t.early_stopping is not None and t.validation_split <= 0:
        raise spec.error(
            ("training", "early_stopping"),
            "early stopping watches the validation loss: set validation_split too (e.g. validation_split: 0.2)",
            key=True,
        )


# ----------------------------------------------------------------- the size budget
# A few bytes of spec can ask for millions of nodes (`layers: [{linear: 10000000}]`), and
# building them is where time and memory go. So the size is counted here, by arithmetic on
# the spec, and checked before anything is built. Measured: a 1,003,000-parameter layer
# (3 million nodes) takes about 1 GB and 40 s of CPU to build and compile, so the default
# budget (5 million nodes, 1 million parameters) stays within a few GB of the 24 GB machine.

MAX_NODES = 5_000_000
MAX_PARAMS = 1_000_000
NODES_VAR, PARAMS_VAR = "TREEGRAD_MAX_NODES", "TREEGRAD_MAX_PARAMS"


@dataclass
class Size:
    """How many nodes (after macros are expanded) and parameters a spec's model has."""

    nodes: int = 0
    params: int = 0
    biggest: SpecPath = ()  # the part of the spec that adds the most nodes
    biggest_nodes: int = 0

    def add(self, path: SpecPath, nodes: int, params: int = 0) -> None:
        """Count one part of the model, remembering the biggest."""
        self.nodes += nodes
        self.params += params
        if nodes > self.biggest_nodes:
            self.biggest, self.biggest_nodes = path, nodes


@dataclass(frozen=True)
class Budget:
    """The largest model treegrad will build: nodes after macro expansion, and parameters."""

    max_nodes: int = MAX_NODES
    max_params: int = MAX_PARAMS

    @classmethod
    def from_env(cls) -> Budget:
        """The default budget, raised or lowered by TREEGRAD_MAX_NODES and TREEGRAD_MAX_PARAMS."""
        return cls(_env_limit(NODES_VAR, MAX_NODES), _env_limit(PARAMS_VAR, MAX_PARAMS))


def _env_limit(var: str, default: int) -> int:
    text = os.environ.get(var, "").strip().replace("_", "")
    if not text:
        return default
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise ModelError(f"{var}={os.environ[var][:40]!r} is not a positive whole number; set it to e.g. {default}")
    return int(text)


def _linear_size(units: int, n: int, bias: bool, activation: str) -> tuple[int, int]:
    """(nodes, parameters) of `units` neurons over `n` values, as `Linear.expand` builds them:
    per neuron n weights, n products, a bias, their sum and the activation."""
    terms = n + int(bias)
    per_unit = 2 * n + int(bias) + int(terms > 1) + int(activation != "none")
    return units * per_unit + 1, units * terms


def measure(spec: SpecView, widths: dict[str, int]) -> Size:
    """The model's size, counted from the spec alone (each named node once, as it is built once)."""
    size = Size()
    size.add(("inputs",), len(spec.inputs))
    if spec.layers is not None:
        previous = len(spec.inputs)
        for i, layer in enumerate(spec.layers):
            if isinstance(layer, DenseLayer):
                size.add(("layers", i), *_linear_size(layer.linear, previous, layer.bias, layer.activation))
                previous = layer.linear
            else:
                size.add(("layers", i), 1)
        return size
    for root_path, root in _roots(spec):
        for path, e, _ in walk(root, root_path):
            if isinstance(e, LinearCall):
                if isinstance(e.linear, LinearLayer):
                    over = e.linear
                    n = _list_width(over.inputs, widths)
                    size.add(path, *_linear_size(over.units or 1, n, over.bias, over.activation))
                else:
                    size.add(path, *_linear_size(1, _list_width(e.linear, widths), True, "none"))
            elif isinstance(e, ParamCall) or e == "param":
                size.add(path, 1, 1)
            elif not isinstance(e, str):  # a name is a node counted where it is defined
                size.add(path, 1)
    if isinstance(spec.output, list):
        size.add(("output",), 1)
    return size


def check_budget(spec: SpecView, budget: Budget | None = None) -> Size:
    """The model's size, if it fits `budget` (default: `Budget.from_env()`); else a ModelError."""
    budget = budget or Budget.from_env()
    size = spec.analysis.size
    if size.nodes <= budget.max_nodes and size.params <= budget.max_params:
        return size
    where = spec.source.where(size.biggest)
    part = f"{format_path(size.biggest)} alone adds {size.biggest_nodes:,} nodes; " if size.biggest else ""
    raise ModelError(
        f"{where}: the model is too large to build: {size.nodes:,} nodes once its layers are expanded and "
        f"{size.params:,} parameters, over the limit of {budget.max_nodes:,} nodes and {budget.max_params:,} "
        f"parameters ({part}nothing was built). Make the model smaller, or raise the limit with the "
        f"environment variables {NODES_VAR}=N and {PARAMS_VAR}=N (in Python: build_model(spec, "
        "budget=Budget(max_nodes=N, max_params=N)))"
    )
