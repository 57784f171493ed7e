"""The nodes a model is built from: leaves, elementary operations, macros and outputs.

The vocabulary is the one learners know from tree-shaped networks: `Input`, `Parameter`,
`Constant`, the operations (`Add`, `Multiply`, `ReLU`, `Sigmoid`, ...), each taking its
children as a list, `Macro`/`Linear`, and list outputs `Output`/`Softmax`:

    model = Add([Multiply([Parameter(), Input("f")]), Parameter()])

A node caches its value. Assigning `.value` on an input or parameter marks every node
that depends on it stale (parents are linked for that), so `forward()` recomputes
exactly what changed. The graph algorithms (forward, backward, expansion) live in
`graph.py` and are iterative, the formulas in `printers.py`; the methods here are the doors
to them. `compile()` makes a `Graph`: the model with its macros expanded, its inputs and
parameters named, its evaluation order fixed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..errors import ModelError
from .graph import backward, evaluate, expand_macros, refresh, topological_order
from .ops import OPS, Op
from .printers import funcify

Number = int | float
Value = float | list[float]

# The generator behind `Parameter()` without a value; `seed()` resets it.
_default_rng = random.Random(0)


def seed(n: int) -> None:
    """Reseed the generator that initialises parameters created without a value."""
    _default_rng.seed(n)


def as_node(x: Node | Number) -> Node:
    """A node as is, a plain number as a `Constant`."""
    if isinstance(x, Node):
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return Constant(float(x))
    raise ModelError(f"expected a node or a number as a child, got {type(x).__name__} {x!r}")


class Node:
    """A vertex of the model graph: children below, parents above, a cached value."""

    op: Op | None = None
    # What the node is, the one question to ask of a node: input, parameter, constant,
    # op, macro, output (a list) or softmax. The graph walks, printers and exporters key on it.
    kind: str = "node"
    expansion: list[Node] | None = None  # a macro's elementary nodes, once compiled

    def __init__(self, children: Sequence[Node | Number] = ()) -> None:
        if isinstance(children, (Node, int, float)):
            raise ModelError(
                f"{type(self).__name__} takes its children as a list, e.g. "
                f"{type(self).__name__}([a, b]); got a single {type(children).__name__}"
            )
        self.children: list[Node] = [as_node(c) for c in children]
        self.parents: list[Node] = []
        for c in self.children:
            c.parents.append(self)
        self.name: str | None = None
        self._value: Value | None = None
        self._dirty = True
        self.grad: Any = 0.0
        self.graph: Graph | None = None

    # -- values
    @property
    def value(self) -> Any:
        """The cached value (computed by `forward()`); None before the first evaluation."""
        return self._value

    def invalidate(self) -> None:
        """Mark this node and everything that depends on it stale."""
        stack: list[Node] = [self]
        while stack:
            n = stack.pop()
            if n._dirty and n is not self:
                continue  # its ancestors are stale already
            n._dirty = True
            stack.extend(n.parents)

    # -- the doors to graph.py
    def compile(self, inputs: Sequence[str] | None = None) -> Node:
        """Expand macros, find and name inputs and parameters, fix an evaluation order."""
        self.graph = Graph(self, inputs)
        return self

    @property
    def compiled_graph(self) -> Graph:
        """The compiled graph of this node (compiled on first use)."""
        if self.graph is None:
            self.compile()
        assert self.graph is not None
        return self.graph

    def forward(self) -> Any:
        """This node's value, recomputing only what changed since the last evaluation."""
        return evaluate(self)

    def backward(self, seed: Any = 1.0) -> None:
        """Leave on every node below this one `.grad` = d(this node)/d(node)."""
        backward(self, seed)

    def predict(self, values: Sequence[float] | Mapping[str, float]) -> Any:
        """The model's output for one sample: values in input order, or by input name."""
        if self.graph is None:
            self.compile()
        assert self.graph is not None
        return self.graph.predict(values)

    def funcify(self, precision: int = 4, format: str = "text") -> str:
        """This node as a formula: `text`, `latex` or `python`."""
        return funcify(self, precision=precision, format=format)

    def expand(self) -> list[Node]:
        """The elementary nodes this node stands for: itself, but a macro's expansion for a macro."""
        return [self]

    def label(self) -> str:
        """A short description for error messages."""
        return f"{type(self).__name__} node" + (f" '{self.name}'" if self.name else "")

    def __repr__(self) -> str:
        # Short and flat: children by count, never by their own repr, which would walk the
        # graph (recursion depth grows with a chain, size doubles with each shared level).
        n = len(self.children)
        parts = [f"<{n} {'child' if n == 1 else 'children'}>"]
        if self.name:
            parts.append(f"name={self.name!r}")
        if isinstance(self._value, float):
            parts.append(f"value={self._value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- operator sugar on top of the list-taking constructors
    def __add__(self, other: Node | Number) -> Node:
        return Add([self, other])

    def __radd__(self, other: Node | Number) -> Node:
        return Add([other, self])

    def __sub__(self, other: Node | Number) -> Node:
        return Subtract([self, other])

    def __rsub__(self, other: Node | Number) -> Node:
        return Subtract([other, self])

    def __mul__(self, other: Node | Number) -> Node:
        return Multiply([self, other])

    def __rmul__(self, other: Node | Number) -> Node:
        return Multiply([other, self])

    def __truediv__(self, other: Node | Number) -> Node:
        return Divide([self, other])

    def __rtruediv__(self, other: Node | Number) -> Node:
        return Divide([other, self])

    def __pow__(self, exponent: Number) -> Node:
        return Power([self, exponent])

    def __neg__(self) -> Node:
        return Negate([self])


# ----------------------------------------------------------------- leaves


class Leaf(Node):
    """A node without children whose value is set from outside."""

    def __init__(self) -> None:
        super().__init__([])

    @property
    def value(self) -> Any:
        """The current value; assigning it marks everything that depends on it stale."""
        return self._value

    @value.setter
    def value(self, v: float) -> None:
        self._value = float(v)
        self.invalidate()
        self._dirty = False


class Input(Leaf):
    """A named model input: one column of the data, one argument of `predict`."""

    kind = "input"

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self.name = name

    def __repr__(self) -> str:
        return f"Input({self.name!r})"


class Parameter(Leaf):
    """A trainable number; without a value it is drawn uniform(-1, 1) from a seeded RNG."""

    kind = "parameter"

    def __init__(
        self, value: Number | None = None, name: str | None = None, *, rng: random.Random | None = None
    ) -> None:
        super().__init__()
        self.name = name
        v = (rng or _default_rng).uniform(-1.0, 1.0) if value is None else float(value)
        if not math.isfinite(v):
            raise ModelError(f"a parameter's value must be a finite number, got {v}")
        self.value = v

    def __repr__(self) -> str:
        return f"Parameter({self._value!r}" + (f", name={self.name!r})" if self.name else ")")


class Constant(Leaf):
    """A fixed number in the formula."""

    kind = "constant"

    def __init__(self, value: Number) -> None:
        super().__init__()
        v = float(value)
        if not math.isfinite(v):
            raise ModelError(f"a constant must be a finite number, got {v}")
        self.value = v

    def __repr__(self) -> str:
        return f"Constant({self._value!r})"


# ----------------------------------------------------------------- operations


class Operation(Node):
    """A node computing an elementary op (from the op table) of its children."""

    kind = "op"

    def __init__(self, children: Sequence[Node | Number]) -> None:
        super().__init__(children)
        assert self.op is not None
        problem = self.op.check_arity(len(self.children))
        if problem:
            raise ModelError(problem)
        for i in self.op.constant_args:
            if not isinstance(self.children[i], Constant):
                raise ModelError(f"argument {i + 1} of '{self.op.name}' must be a constant number")


def _operation(op: Op) -> type[Operation]:
    cls = type(op.cls, (Operation,), {"op": op, "__doc__": f"The '{op.name}' operation: {op.doc}."})
    cls.__module__ = __name__
    return cls


# One node class per entry of the op table, by op name; an op added there has its class here.
OPERATIONS: dict[str, type[Operation]] = {name: _operation(op) for name, op in OPS.items()}
_BY_CLASS_NAME = {cls.__name__: cls for cls in OPERATIONS.values()}

# The seed vocabulary, spelled out so that readers and type checkers see the names.
Add = OPERATIONS["add"]
Subtract = OPERATIONS["sub"]
Multiply = OPERATIONS["mul"]
Divide = OPERATIONS["div"]
Negate = OPERATIONS["neg"]
Power = OPERATIONS["pow"]
ReLU = OPERATIONS["relu"]
Sigmoid = OPERATIONS["sigmoid"]
Tanh = OPERATIONS["tanh"]
Exp = OPERATIONS["exp"]
Log = OPERATIONS["log"]
Abs = OPERATIONS["abs"]


def __getattr__(name: str) -> type[Operation]:
    """The node class of any op in the table by its class name (`cls`), e.g. one added later."""
    try:
        return _BY_CLASS_NAME[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


# ----------------------------------------------------------------- macros

# A layer's activations (`activation:` of a linear layer): none, or each op the table marks as one.
ACTIVATIONS: dict[str, type[Operation] | None] = {
    "none": None,
    **{name: cls for name, cls in OPERATIONS.items() if OPS[name].activation},
}


class Macro(Node):
    """An operation that expands itself into elementary nodes at compile time."""

    kind = "macro"

    def expand(self) -> list[Node]:
        """The elementary nodes that replace this macro (its children are expanded already)."""
        raise NotImplementedError


class Linear(Macro):
    """A neuron `w1*e1 + ... + wn*en + b` with fresh parameters, or with `units=k` a layer.

    The layer is k such neurons over the same inputs, each under `activation` (none, or an op
    of the table marked as one: relu, sigmoid, tanh). Weights start uniform(-s, s) with s = 1/sqrt(n), biases at 0.
    """

    def __init__(
        self,
        children: Sequence[Node | Number],
        units: int | None = None,
        activation: str | None = None,
        bias: bool = True,
        *,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(children)
        if not self.children:
            raise ModelError("Linear needs at least one input")
        if units is not None and units < 1:
            raise ModelError(f"Linear needs units >= 1, got {units}")
        if (activation or "none") not in ACTIVATIONS:
            raise ModelError(f"unknown activation '{activation}'; use one of {', '.join(ACTIVATIONS)}")
        self.units, self.activation, self.bias = units, activation or "none", bias
        self.rng = rng or _default_rng

    def expand(self) -> list[Node]:
        inputs = self.children
        scale = 1.0 / math.sqrt(len(inputs))
        act = ACTIVATIONS[self.activation]
        neurons: list[Node] = []
        for _ in range(self.units or 1):
            terms: list[Node] = [Multiply([Parameter(self.rng.uniform(-scale, scale)), e]) for e in inputs]
            if self.bias:
                terms.append(Parameter(0.0))
            z = Add(terms) if len(terms) > 1 else terms[0]
            neurons.append(act([z]) if act else z)
        return neurons


# ----------------------------------------------------------------- list outputs


class Output(Node):
    """A model output whose value is the list of its children's values."""

    kind = "output"


class Softmax(Output):
    """A list output of probabilities: exp(z_i - max z) / sum_j exp(z_j - max z)."""

    kind = "softmax"

    def __init__(self, children: Sequence[Node | Number]) -> None:
        super().__init__(children)
        if not self.children:
            raise ModelError("Softmax needs at least one input")


# ----------------------------------------------------------------- the compiled graph


class Graph:
    """A compiled model: macros expanded, inputs and parameters found and named, an order fixed."""

    def __init__(self, root: Node, inputs: Sequence[str] | None = None) -> None:
        self.root = root
        elements = expand_macros(root)
        if isinstance(root, Macro) and len(elements) > 1:
            self.output: Node = Output(elements)  # a layer at the top is a list output
        elif isinstance(root, Macro):
            self.output = elements[0]
        else:
            self.output = root
        if isinstance(self.output, Output):
            self.elements = list(self.output.children)
        else:
            self.elements = [self.output]
        self.output.graph = self
        self.is_list = isinstance(self.output, Output)
        # The one way to ask whether the model ends in a softmax (it can stand only there).
        self.is_softmax = self.output.kind == "softmax"
        self.order = topological_order([self.output])
        if any(isinstance(n, Output) for n in self.order[:-1]):
            raise ModelError("a Softmax or Output can only be the model's output, not inside it")
        self.input_names, self.inputs_by_name = self._find_inputs(inputs)
        self.params = self._name_params()
        self.param_names = [p.name or "" for p in self.params]
        self.index = {id(n): i for i, n in enumerate(self.order)}

    def _preorder(self) -> Iterator[Node]:
        """Nodes in order of first appearance, left to right, depth first."""
        seen: set[int] = set()
        stack = [self.output]
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            yield n
            stack.extend(reversed(n.children))

    def _find_inputs(self, declared: Sequence[str] | None) -> tuple[list[str], dict[str, list[Input]]]:
        found = [n for n in self._preorder() if isinstance(n, Input)]
        taken = {n.name for n in found if n.name}
        k = 0
        for n in found:
            if not n.name:
                while f"x{k}" in taken:
                    k += 1
                n.name = f"x{k}"
                taken.add(n.name)
        by_name: dict[str, list[Input]] = {}
        for n in found:
            assert n.name is not None
            by_name.setdefault(n.name, []).append(n)
        if declared is None:
            return list(by_name), by_name
        unknown = [name for name in by_name if name not in declared]
        if unknown:
            raise ModelError(
                f"the model uses input(s) {', '.join(unknown)} that are not among the declared "
                f"inputs {', '.join(declared)}"
            )
        return list(declared), by_name

    def _name_params(self) -> list[Parameter]:
        params = [n for n in self._preorder() if isinstance(n, Parameter)]
        names: dict[str, Parameter] = {}
        for p in params:
            if p.name:
                if p.name in names and names[p.name] is not p:
                    raise ModelError(f"two different parameters are both named '{p.name}'")
                names[p.name] = p
        k = 0
        for p in params:
            if not p.name:
                while f"p{k}" in names:
                    k += 1
                p.name = f"p{k}"
                names[p.name] = p
        return params

    @property
    def constants(self) -> list[Constant]:
        """The constants of the model, in evaluation order."""
        return [n for n in self.order if isinstance(n, Constant)]

    def param_values(self) -> list[float]:
        """Current parameter values, in parameter order."""
        return [float(p._value) for p in self.params]  # type: ignore[arg-type]

    def set_param_values(self, values: Sequence[float]) -> None:
        """Assign all parameter values (marks what depends on them stale)."""
        for p, v in zip(self.params, values, strict=True):
            p.value = v

    def row(self, values: Sequence[float] | Mapping[str, float]) -> list[float]:
        """One sample as a list in input order, from a list or a mapping by name."""
        if isinstance(values, Mapping):
            missing = [n for n in self.input_names if n not in values]
            extra = [n for n in values if n not in self.input_names]
            if missing or extra:
                raise ModelError(
                    f"predict() needs values for inputs {', '.join(self.input_names)}"
                    + (f"; missing {', '.join(missing)}" if missing else "")
                    + (f"; unknown {', '.join(extra)}" if extra else "")
                )
            row = [values[n] for n in self.input_names]
        else:
            row = list(values)
            if len(row) != len(self.input_names):
                raise ModelError(
                    f"predict() needs {len(self.input_names)} value(s), for "
                    f"{', '.join(self.input_names) or 'no inputs'}; got {len(row)}"
                )
        out = [float(v) for v in row]
        if not all(math.isfinite(v) for v in out):
            raise ModelError(f"predict() needs finite numbers, got {row}")
        return out

    def set_inputs(self, row: Sequence[float]) -> None:
        """Assign one sample to the input nodes (marks what depends on them stale)."""
        for name, v in zip(self.input_names, row):
            for node in self.inputs_by_name.get(name, ()):
                if node._value != v:
                    node.value = v

    def predict(self, values: Sequence[float] | Mapping[str, float]) -> Any:
        """The output for one sample (a float, or a list for a list output)."""
        self.set_inputs(self.row(values))
        refresh(self.order)
        return self.output._value
