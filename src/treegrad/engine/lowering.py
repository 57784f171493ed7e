"""A compiled graph cut into *units*, the nodes that NumPy arrays compute together, for the
vectorized trainer (`vectorized.py`, which writes its epoch function from them with `arraycode.py`):

- a *dense layer* is a set of Add nodes that are each a sum of `Multiply([w, a_k])` terms
  over the same ordered activations a_1..a_n (either factor order), plus at most one bias
  Parameter anywhere in the sum, every w and bias used nowhere else. Its neurons become the
  columns of one (batch, width) array, `Z = A @ W + b`, and its gradients matmuls;
- a *map* is one unary op (ReLU, Sigmoid, ...) applied to columns of such an array, by the
  op's array form from the op table;
- every other node is computed elementwise over a (batch,) array (a *vec* unit), from the op
  table too.

The graph itself stays the model: this only finds its structure, orders the units, and says
how a node's value is written inside the batch loop.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..core.nodes import Constant, Graph, Input, Leaf, Node, Output, Parameter
from ..core.ops import Op


class Unit:
    """Nodes computed by one statement: an array of columns (input, dense, map) or one node (vec)."""

    def __init__(self, kind: str, name: str, first: int) -> None:
        self.kind = kind
        self.name = name
        self.first = first  # position of its first node in the graph's order: ties in the unit order
        self.members: list[Node] = []
        self.width = 0
        self.needs_grad = False
        # dense: per member its weights (one per activation) and bias
        self.acts: list[Node] = []
        self.weights: list[list[Parameter]] = []
        self.biases: list[Parameter] = []
        # map: the op, the unit it reads and which of its columns
        self.op: Op | None = None
        self.source: Unit | None = None
        self.cols: list[int] = []
        self.reads: set[int] = set()  # the same columns, to ask in constant time (a list was quadratic)
        self.deps: list[Unit] = []


def _is_op(node: Node, name: str) -> bool:
    """True if `node` computes the op `name` (a list output never does)."""
    return node.op is not None and node.op.name == name and not isinstance(node, Output)


class Lowering:
    """A compiled graph cut into units, and the epoch function's source written from them."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.uses: Counter[int] = Counter(id(c) for n in graph.order for c in n.children)
        self.param_index = {id(p): k for k, p in enumerate(graph.params)}
        self.const_index = {id(c): k for k, c in enumerate(graph.constants)}
        self.position = {id(n): i for i, n in enumerate(graph.order)}
        self.needs: set[int] = set()
        for n in graph.order:
            if isinstance(n, Parameter) or any(id(c) in self.needs for c in n.children):
                self.needs.add(id(n))
        self.owned: set[int] = set()  # weights, biases and products inside dense layers
        self.where: dict[int, tuple[Unit, int]] = {}
        self.vec_name: dict[int, str] = {}
        self.per_sample: set[int] = set()  # vec nodes whose value depends on the sample
        self.units: list[Unit] = []
        self.arrays: dict[str, Any] = {}  # index arrays the generated code reads, by name
        self._cut()

    # ------------------------------------------------------------ finding the units

    def _exclusive_param(self, node: Node) -> bool:
        """True for a parameter used once in the graph: it can be a weight or bias of a dense layer."""
        return isinstance(node, Parameter) and self.uses[id(node)] == 1

    def _dense_terms(self, node: Node) -> tuple[list[Node], list[Parameter], Parameter | None] | None:
        """(activations, weights, bias) if `node` is a neuron of a dense layer, else None."""
        if not _is_op(node, "add"):
            return None
        acts: list[Node] = []
        weights: list[Parameter] = []
        bias: Parameter | None = None
        for c in node.children:
            if self._exclusive_param(c):
                if bias is not None:
                    return None
                assert isinstance(c, Parameter)
                bias = c
                continue
            if not (_is_op(c, "mul") and len(c.children) == 2 and self.uses[id(c)] == 1):
                return None
            a, b = c.children
            if self._exclusive_param(a) and self._activation(b):
                w, x = a, b
            elif self._exclusive_param(b) and self._activation(a):
                w, x = b, a
            else:
                return None
            assert isinstance(w, Parameter)
            acts.append(x)
            weights.append(w)
        return (acts, weights, bias) if acts else None

    @staticmethod
    def _activation(node: Node) -> bool:
        """True if `node` can be an activation a dense layer reads: an input or a computed node."""
        return isinstance(node, Input) or not isinstance(node, (Leaf, Output))

    def _ref(self, node: Node) -> object:
        """What a node's value is: inputs of one name are one column, other nodes themselves."""
        if node.name is not None and isinstance(node, Input):
            return ("x", self.graph.input_names.index(node.name))
        return id(node)

    def _cut(self) -> None:
        """Assign every node of the graph to a unit: the inputs, dense layers, maps over them, or its own vec unit."""
        g = self.graph
        xunit = self._new("input", "Xb", -1)
        for name in g.input_names:
            nodes = g.inputs_by_name.get(name, [])
            for node in nodes:
                self.where[id(node)] = (xunit, xunit.width)
            xunit.members.append(nodes[0] if nodes else Input(name))  # a declared input the model ignores
            xunit.width += 1
        dense: dict[int, tuple[list[Node], list[Parameter], Parameter | None]] = {}
        for n in g.order:
            terms = self._dense_terms(n)
            if terms is not None:
                dense[id(n)] = terms
                acts, weights, bias = terms
                self.owned.update(id(w) for w in weights)
                self.owned.update(id(c) for c in n.children if not isinstance(c, Parameter))
                if bias is not None:
                    self.owned.add(id(bias))
        layers: dict[tuple[object, ...], Unit] = {}
        maps: dict[tuple[str, int], Unit] = {}
        for i, n in enumerate(g.order):
            if isinstance(n, (Leaf, Output)) or id(n) in self.owned:
                continue
            if id(n) in dense:
                acts, weights, bias = dense[id(n)]
                key = (tuple(self._ref(a) for a in acts), bias is not None)
                unit = layers.get(key)
                if unit is None:
                    unit = layers[key] = self._new("dense", f"Z{len(self.units)}", i)
                    unit.acts = acts
                    unit.needs_grad = True
                unit.weights.append(weights)
                if bias is not None:
                    unit.biases.append(bias)
                self._add(unit, n)
                continue
            assert n.op is not None
            child = n.children[0]
            if len(n.children) == 1 and id(child) in self.where:
                src, col = self.where[id(child)]
                unit = maps.get((n.op.name, id(src)))
                if unit is None or col in unit.reads:
                    unit = maps[(n.op.name, id(src))] = self._new("map", f"H{len(self.units)}", i)
                    unit.op, unit.source, unit.needs_grad = n.op, src, src.needs_grad
                unit.cols.append(col)
                unit.reads.add(col)
                self._add(unit, n)
                continue
            unit = self._new("vec", f"v{i}", i)
            unit.needs_grad = id(n) in self.needs
            unit.members.append(n)
            self.vec_name[id(n)] = unit.name
            if any(id(c) in self.where or id(c) in self.per_sample for c in n.children):
                self.per_sample.add(id(n))

    def _new(self, kind: str, name: str, first: int) -> Unit:
        """A new, empty unit, listed among the units."""
        unit = Unit(kind, name, first)
        self.units.append(unit)
        return unit

    def _add(self, unit: Unit, node: Node) -> None:
        """Make `node` the next column of `unit`."""
        self.where[id(node)] = (unit, unit.width)
        unit.members.append(node)
        unit.width += 1

    def ordered_units(self) -> list[Unit] | None:
        """The units, each after those it reads (by first node, on ties); None on a cycle."""
        by_name = {u.name: u for u in self.units}
        for u in self.units:
            if u.kind == "dense":
                reads = u.acts
            elif u.kind == "map":
                assert u.source is not None
                u.deps = [u.source]
                continue
            else:
                reads = [c for m in u.members for c in m.children]
            deps = {}
            for c in reads:
                if id(c) in self.where:
                    d = self.where[id(c)][0]
                    deps[d.name] = d
                elif id(c) in self.vec_name:
                    deps[self.vec_name[id(c)]] = by_name[self.vec_name[id(c)]]
            u.deps = list(deps.values())
        waiting = {u.name: len(u.deps) for u in self.units}
        readers: dict[str, list[Unit]] = {}
        for u in self.units:
            for d in u.deps:
                readers.setdefault(d.name, []).append(u)
        ready = [(u.first, u.name) for u in self.units if not u.deps]
        heapq.heapify(ready)
        out: list[Unit] = []
        while ready:
            _, name = heapq.heappop(ready)
            out.append(by_name[name])
            for r in readers.get(name, ()):
                waiting[r.name] -= 1
                if waiting[r.name] == 0:
                    heapq.heappush(ready, (r.first, r.name))
        return out if len(out) == len(self.units) else None

    # ------------------------------------------------------------ expressions

    def expr(self, node: Node) -> str:
        """The value of a node inside the batch loop: a column, an array or a number."""
        if id(node) in self.where:
            unit, col = self.where[id(node)]
            return f"{unit.name}[:, {col}]"
        if id(node) in self.vec_name:
            return self.vec_name[id(node)]
        if isinstance(node, Parameter):
            return f"p{self.param_index[id(node)]}"
        assert isinstance(node, Constant)
        return f"c{self.const_index[id(node)]}"

    def batched(self, node: Node) -> bool:
        """True if the node's value differs per sample (an array), False for a number."""
        return id(node) in self.where or id(node) in self.per_sample

    def columns(self, nodes: Sequence[Node], name: str) -> tuple[list[str], str, str | None]:
        """Statements making a (batch, n) array of `nodes`' values, its expression, and how
        its gradient goes back: "full" (the whole of one unit), an index array's name
        (some columns of one unit), or None (column by column)."""
        refs = [self.where[id(n)] for n in nodes if id(n) in self.where]
        if len(refs) == len(nodes):
            unit = refs[0][0]
            if all(r[0] is unit for r in refs):
                cols = [r[1] for r in refs]
                if cols == list(range(unit.width)):
                    return [], unit.name, "full"
                if len(set(cols)) == len(cols):
                    ix = f"ix_{name}"
                    self.arrays[ix] = cols
                    return [f"{name} = {unit.name}[:, {ix}]"], name, ix
        parts = [self.expr(n) if self.batched(n) else f"np.full(nb, {self.expr(n)}, DT)" for n in nodes]
        return [f"{name} = np.stack(({', '.join(parts)},), axis=1)"], name, None


def lower(graph: Graph) -> tuple[Lowering, list[Unit]] | None:
    """The graph cut into units, and the units in the order they run; None for a graph without
    dense layers (or a cycle among its units)."""
    low = Lowering(graph)
    if not any(u.kind == "dense" for u in low.units):
        return None
    order = low.ordered_units()
    return None if order is None else (low, order)


def cols_of(u: Unit) -> list[Node]:
    """The nodes a map unit reads, one per column, as nodes of its source unit."""
    assert u.source is not None
    return [u.source.members[c] for c in u.cols]
