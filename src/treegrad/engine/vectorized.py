"""The vectorized trainer: a whole mini-batch at once, as NumPy arrays.

The elementary graph stays the model; this module only finds, in a compiled graph, the
structure that arrays can compute together, and writes one epoch function (the signature
and meaning of `Program.epoch_fn(..., batched=True)`) that evaluates each batch with NumPy:

- a *dense layer* is a set of Add nodes that are each a sum of `Multiply([w, a_k])` terms
  over the same ordered activations a_1..a_n (either factor order), plus at most one bias
  Parameter anywhere in the sum, every w and bias used nowhere else. Its neurons become the
  columns of one (batch, width) array, `Z = A @ W + b`, and its gradients matmuls;
- a *map* is one unary op (ReLU, Sigmoid, ...) applied to columns of such an array, by the
  op's array form from the op table;
- every other node is computed elementwise over a (batch,) array, from the op table too.

The arithmetic is that of the scalar code up to the order of the additions inside a sum
(a matmul adds in its own order), so both agree to about 1e-15 per step. Arrays do not pay
for every graph: each NumPy statement costs about a microsecond whatever the batch, so for
a graph without dense layers, or a small one in small batches, `vectorized_epoch_fn`
returns None and the caller runs the scalar code.

Safety, as in compiled.py: the generated text holds only names made here, the expressions
of the op/loss/optimizer tables and integer literals; parameter values and the index arrays
that place them go in as arrays, never as text. NumPy is imported only when this module
builds a trainer, so that importing treegrad stays fast.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import accumulate, chain
from typing import Any, Literal, cast, get_args

from ..core.graph import Graph
from ..core.nodes import Constant, Input, Leaf, Node, Output, Parameter
from ..core.ops import NAMESPACE, Op, softmax_array_code, softmax_grad_array_code, wide_sum
from .compiled import gather, program, times
from .losses import Loss, array_clamps
from .optim import Optimizer
from .penalties import StepRules

# One NumPy statement on a small batch (~1.1 us) costs about what 37 scalar operations of the
# generated code cost (~30 ns each; measured on the benchmark MLPs and chains): arrays pay when
# statements * STATEMENT_COST < batch size * (nodes + parameters).
STATEMENT_COST = 37
# Per-sample training runs batches of one, where a statement costs (with the loop around it)
# about what 100 scalar operations cost (measured on MLPs 2-16-16-1 to 64-32-10): only wide
# layers pay, the 64-32-10 digits MLP (4x faster), not the 2-16-16-1 one (2x slower).
SAMPLE_STATEMENT_COST = 100

# The precision of the arrays: float64, the reference, whose numbers are the scalar code's, or
# float32 (parameters, data, gradients and optimizer state), half the memory and bandwidth.
Dtype = Literal["float64", "float32"]
DTYPES: tuple[str, ...] = get_args(Dtype)


class _Unit:
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
        self.source: _Unit | None = None
        self.cols: list[int] = []
        self.deps: list[_Unit] = []


def _is_op(node: Node, name: str) -> bool:
    """True if `node` computes the op `name` (a list output never does)."""
    return node.op is not None and node.op.name == name and not isinstance(node, Output)


class _Lowering:
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
        self.where: dict[int, tuple[_Unit, int]] = {}
        self.vec_name: dict[int, str] = {}
        self.per_sample: set[int] = set()  # vec nodes whose value depends on the sample
        self.units: list[_Unit] = []
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
        layers: dict[tuple[object, ...], _Unit] = {}
        maps: dict[tuple[str, int], _Unit] = {}
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
                if unit is None or col in unit.cols:
                    unit = maps[(n.op.name, id(src))] = self._new("map", f"H{len(self.units)}", i)
                    unit.op, unit.source, unit.needs_grad = n.op, src, src.needs_grad
                unit.cols.append(col)
                self._add(unit, n)
                continue
            unit = self._new("vec", f"v{i}", i)
            unit.needs_grad = id(n) in self.needs
            unit.members.append(n)
            self.vec_name[id(n)] = unit.name
            if any(id(c) in self.where or id(c) in self.per_sample for c in n.children):
                self.per_sample.add(id(n))

    def _new(self, kind: str, name: str, first: int) -> _Unit:
        """A new, empty unit, listed among the units."""
        unit = _Unit(kind, name, first)
        self.units.append(unit)
        return unit

    def _add(self, unit: _Unit, node: Node) -> None:
        """Make `node` the next column of `unit`."""
        self.where[id(node)] = (unit, unit.width)
        unit.members.append(node)
        unit.width += 1

    def ordered_units(self) -> list[_Unit] | None:
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
        readers: dict[str, list[_Unit]] = {}
        for u in self.units:
            for d in u.deps:
                readers.setdefault(d.name, []).append(u)
        ready = [(u.first, u.name) for u in self.units if not u.deps]
        heapq.heapify(ready)
        out: list[_Unit] = []
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


class VectorizedEpoch:
    """One epoch of mini-batch training on NumPy arrays; call it as `Program.epoch_fn`'s result."""

    def __init__(self, core: Callable[..., float], source: str, graph: Graph, dtype: str = "float64") -> None:
        self.core = core
        self.source = source  # the generated text, for reading and for tests
        self.dtype = dtype  # the precision of its arrays (the parameters it returns are floats)
        self.kind = "softmax" if graph.is_softmax else "list" if graph.is_list else "single"
        self._cache: tuple[object, object, Any, Any] | None = None
        self._weights: tuple[object, Any] | None = None

    def __call__(
        self,
        P: list[float],
        C: list[float],
        S: list[list[float]],
        STEP: list[int],
        X: Sequence[Sequence[float]],
        T: Sequence[Any],
        idx: Sequence[Sequence[int]] | Sequence[int],
        lr: float,
        H: Sequence[float] = (),
        W: Sequence[float] | None = None,
    ) -> float:
        """Train one epoch over the batches `idx` (or the samples, in this order); update P, S,
        STEP; return the summed loss. H and W as for `Program.epoch_fn`: the step rules' values
        and the sample weights."""
        import numpy as np

        dt = getattr(np, self.dtype)
        # fit passes the same (never changed) lists every epoch: convert them once.
        if self._cache is None or self._cache[0] is not X or self._cache[1] is not T:
            Xa = np.array(X, dtype=dt).reshape(len(X), -1 if len(X) and len(X[0]) else 0)
            Ta = np.array(T, dtype=np.intp if self.kind == "softmax" else dt)
            self._cache = (X, T, Xa, Ta)
        Xa, Ta = self._cache[2], self._cache[3]
        if W is not None and (self._weights is None or self._weights[0] is not W):
            self._weights = (W, np.array(W, dtype=dt))
        Wa = self._weights[1] if W is not None and self._weights is not None else None
        # The data permuted once, in the epoch's order, so that each batch is a slice of it.
        # Per-sample training (idx: the sample order) is batches of one.
        batches = [] if len(idx) and isinstance(idx[0], int) else cast("Sequence[Sequence[int]]", idx)
        order = np.fromiter(chain.from_iterable(batches) if batches else idx, dtype=np.intp)
        if len(order) != len(Xa) or (order != np.arange(len(order))).any():
            Xa, Ta = Xa[order], Ta[order]
            Wa = None if Wa is None else Wa[order]
        ends = list(accumulate(len(b) for b in batches) if batches else range(1, len(order) + 1))
        bounds = list(zip([0, *ends[:-1]], ends))
        # Overflow and NaN are not errors here: fit sees a non-finite loss or parameter.
        with np.errstate(all="ignore"):
            return self.core(P, C, S, STEP, Xa, Ta, bounds, lr, H, Wa)


_BLAS: list[Any] = []  # threadpoolctl's controller of the loaded BLAS libraries, made on first use


def limit_blas_threads() -> Any | None:
    """Run NumPy's BLAS on one thread until `.restore_original_limits()` is called on the result
    (None when threadpoolctl is missing: an environment installed before it was a dependency).

    treegrad's matrices are small (a batch of 32 by a layer of 64): a second thread saves little
    and, on a machine whose cores are busy, BLAS threads waiting for each other cost 10x or more.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    if not _BLAS:
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def blas_threads() -> str:
    """How NumPy's BLAS runs: its library and thread count (for the benchmark's report)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl missing: BLAS threads not capped"
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(f"{i['internal_api']} {i['num_threads']} thread(s)" for i in libs) or "no BLAS loaded"


def array_namespace(dtype: str = "float64") -> dict[str, object]:
    """The names the op, loss and optimizer expressions use, bound to NumPy's functions, and the
    losses' clamp bounds and `DT` (the arrays' float type) for arrays of `dtype`."""
    import numpy as np

    dt = getattr(np, dtype)

    ns: dict[str, object] = {
        "np": np,
        "exp": np.exp,
        "log": np.log,
        "tanh": np.tanh,
        "sqrt": np.sqrt,
        "fpow": np.power,
        "where": np.where,
        "sign": np.sign,
        "minimum": np.minimum,
        "maximum": np.maximum,
        "stack": np.stack,
        "arange": np.arange,
        "DT": dt,
        "as_numbers": _as_numbers(np, dt),
        **array_clamps(dt),
    }
    assert set(NAMESPACE) <= set(ns), "every name of the scalar expressions needs an array binding"
    return ns


def _as_numbers(np: Any, dt: Any) -> Callable[[Any], list[Any]]:
    """The function that turns parameters and constants outside the arrays into numbers: Python
    floats in float64, as the scalar code has them; NumPy scalars otherwise, so that a NumPy
    function of one (exp of a parameter) stays in that precision too."""
    if dt is np.float64:
        return lambda a: np.asarray(a, dt).tolist()  # type: ignore[no-any-return]
    return lambda a: list(np.asarray(a, dt))


def vectorized_epoch_fn(
    graph: Graph,
    loss: Loss,
    optimizer: Optimizer,
    batch_size: int | None = None,
    rules: StepRules | None = None,
    weighted: bool = False,
    dtype: str = "float64",
) -> VectorizedEpoch | None:
    """An epoch function that evaluates each batch (of one sample, for batch_size 1) with NumPy,
    or None where the scalar code serves better: a graph without dense layers, or (given
    `batch_size`) one whose batches are too small for arrays to pay for NumPy's cost per statement.
    `dtype`: the arrays' precision, one of DTYPES; the source is the same for each."""
    assert dtype in DTYPES, f"unknown dtype {dtype!r}"
    prog = program(graph)
    low = prog.cached(("lowering",), lambda: _lower(graph))
    if low is None:
        return None
    # every unit is one statement at least: a graph of many small units is refused before its code is written
    scalar_ops = len(graph.order) + len(graph.params)  # about what one sample costs the scalar code
    cost = SAMPLE_STATEMENT_COST if batch_size == 1 else STATEMENT_COST
    if batch_size is not None and len(low[1]) * cost >= batch_size * scalar_ops:
        return None
    key = (loss, optimizer, rules, weighted)
    src, statements = prog.cached(
        ("vectorized source", *key), lambda: _write(low[0], low[1], graph, loss, optimizer, rules, weighted)
    )
    if batch_size is not None and statements * cost >= batch_size * scalar_ops:
        return None
    return prog.cached(  # type: ignore[no-any-return]
        ("vectorized", *key, dtype), lambda: _build(src, low[0].arrays, graph, dtype)
    )


def _lower(graph: Graph) -> tuple[_Lowering, list[_Unit]] | None:
    """The graph cut into units, and the units in the order they run; None for a graph without
    dense layers (or a cycle among its units)."""
    low = _Lowering(graph)
    if not any(u.kind == "dense" for u in low.units):
        return None
    order = low.ordered_units()
    return None if order is None else (low, order)


def _build(src: str, arrays: dict[str, Any], graph: Graph, dtype: str) -> VectorizedEpoch:
    """The epoch function defined by `src`, with its index arrays bound, on arrays of `dtype`."""
    import numpy as np

    ns = array_namespace(dtype)
    ns.update({name: np.array(v, dtype=np.intp) for name, v in arrays.items()})
    exec(compile(src, "<treegrad vectorized epoch>", "exec"), ns)  # noqa: S102 - generated from treegrad's tables only
    return VectorizedEpoch(ns["epoch"], src, graph, dtype)  # type: ignore[arg-type]


# ---------------------------------------------------------------- writing the epoch function


def _write(
    low: _Lowering,
    order: list[_Unit],
    graph: Graph,
    loss: Loss,
    opt: Optimizer,
    rules: StepRules | None = None,
    weighted: bool = False,
) -> tuple[str, int]:
    """The source of `epoch(P, C, S, STEP, Xp, Tp, bounds, lr, H, Wp)` (Xp, Tp, Wp: the data and
    the sample weights as arrays, in the epoch's order; bounds: each batch's (start, end) in
    them), and the number of statements run per batch.

    All parameters live in one flat array F, the dense layers' W and b as views into it, the
    other parameters at its end; their gradients likewise in G, so the optimizer updates F (and
    its state, arrays of the same layout) in one set of statements per batch.
    """
    # (variable, parameter indices in row-major order, shape) of each block of F
    blocks: list[tuple[str, list[int], tuple[int, ...]]] = []
    for u in order:
        if u.kind != "dense":
            continue
        tag = u.name[1:]
        rows = [[low.param_index[id(ws[a])] for ws in u.weights] for a in range(len(u.acts))]
        blocks.append((f"W{tag}", [k for row in rows for k in row], (len(u.acts), u.width)))
        if u.biases:
            blocks.append((f"B{tag}", [low.param_index[id(b)] for b in u.biases], (u.width,)))
    scalars = [k for k, p in enumerate(graph.params) if id(p) not in low.owned]
    low.arrays["perm"] = [k for _, ks, _ in blocks for k in ks] + scalars
    # DT, the arrays' float type, is bound when the source is built: one source for each precision.
    head: list[str] = ["F = np.array(P, dtype=DT)[perm]", "G = np.zeros(len(F), DT)"]
    start = 0
    for v, ks, shape in blocks:
        view = f"[{start}:{start + len(ks)}]" + (f".reshape{shape}" if len(shape) > 1 else "")
        head += [f"{v} = F{view}", f"g{v} = G{view}"]
        start += len(ks)
    for j, s in enumerate(opt.state):
        head.append(f"{s}_F = np.array(S[{j}], dtype=DT)[perm]")
    if graph.constants:
        head.append(f"{', '.join(f'c{k}' for k in range(len(graph.constants)))}, = as_numbers(C)")
    # the loss is summed in float64 whatever DT (a NumPy float64, which a float32 sum joins as float64)
    head += ["step = STEP[0]", "total = np.float64(0.0)", *(rules.unpack() if rules else [])]
    tail = ["Pa = np.empty(len(F))", "Pa[perm] = F", "P[:] = Pa.tolist()"]
    for j, s in enumerate(opt.state):
        tail += [f"Pa[perm] = {s}_F", f"S[{j}][:] = Pa.tolist()"]
    tail += ["STEP[0] = step", "return float(total)"]

    body = ["nb = e - s"]
    if scalars:  # the other parameters as numbers, as the scalar code has them
        body.append(f"{''.join(f'p{k}, ' for k in scalars)}= as_numbers(F[{start}:])")
    if graph.input_names:
        body.append("Xb = Xp[s:e]")
    body.append("Tb = Tp[s:e].T" if graph.is_list and not graph.is_softmax else "Tb = Tp[s:e]")
    if weighted:
        body.append("Wb = Wp[s:e]")
    back = _Backward(low)
    reads: dict[str, str | None] = {}  # per dense or map unit: how its input gets its gradient
    inputs: dict[str, str] = {}  # per dense or map unit: the expression of its input array
    for u in order:
        if u.kind == "dense":
            tag = u.name[1:]
            lines, a, how = low.columns(u.acts, f"A{tag}")
            body += lines
            inputs[u.name], reads[u.name] = a, how
            body.append(f"{u.name} = {a} @ W{tag}" + (f" + B{tag}" if u.biases else ""))
        elif u.kind == "map":
            assert u.op is not None and u.source is not None
            lines, a, how = low.columns(_cols_of(u), f"S{u.name[1:]}")
            body += lines
            inputs[u.name], reads[u.name] = a, how
            body.append(f"{u.name} = {u.op.array_value([a])}")
        elif u.kind == "vec":
            n = u.members[0]
            assert n.op is not None
            body.append(f"{u.name} = {n.op.array_value([low.expr(c) for c in n.children])}")

    # the loss, and its gradient sent to the output elements
    # The batch's gradient is the mean of its samples': dividing d loss / d output by the batch
    # size here makes every sum over the batch below that mean, with one division in all.
    gouts = [f"go{j}" for j in range(len(graph.elements))]
    if graph.is_softmax:
        lines, z, how = low.columns(graph.elements, "Zs")
        body += lines + softmax_array_code(z, "Pm", "_sm")
        if loss.softmax_array is not None:  # loss and d loss / d logits at once
            body += loss.softmax_array("Pm", "Tb", "L", "GZ", "_l")
            body += ["L = L * Wb", "GZ = GZ * Wb[:, None]"] if weighted else []
            body.append("total += L.sum()")
        else:
            outs = [f"Pm[:, {j}]" for j in range(len(graph.elements))]
            body += loss.code(outs, "Tb", "L", gouts, "_l", vectorized=True)
            body += ["L = L * Wb", *[f"{g} = {g} * Wb" for g in gouts]] if weighted else []
            body.append("total += L.sum()")
            body.append(f"_smg = np.stack(({', '.join(gouts)},), axis=1)")
            body += softmax_grad_array_code("Pm", "_smg", "GZ", "_sm")
        body.append("GZ = GZ / nb")
        back.send_array(graph.elements, "GZ", how)
    else:
        body += loss.code([low.expr(e) for e in graph.elements], "Tb", "L", gouts, "_l", vectorized=True)
        body += ["L = L * Wb", *[f"{g} = {g} * Wb" for g in gouts]] if weighted else []
        body.append("total += L.sum()")
        body += [f"{g} = {g} / nb" for g in gouts]
        for e, gname in zip(graph.elements, gouts, strict=True):
            back.send(e, gname)

    # backward, units in reverse order, then each parameter's gradient summed over the batch
    for u in reversed(order):
        if u.needs_grad:
            body += back.unit(u, inputs.get(u.name, ""), reads.get(u.name))
    for k in scalars:
        body.append(f"gp{k} = ({wide_sum(back.params.pop(k))}).sum()" if k in back.params else f"gp{k} = 0.0")
    if rules is not None and rules.active:
        # The rules rebind the gradient variables they are given: they get copies of the names
        # of G's views, and what they leave is copied into the views.
        body += [f"_r{v} = g{v}" for v, _, _ in blocks]
        body += rules.code(
            [(v, f"_r{v}", ks, True) for v, ks, _ in blocks] + [(f"p{k}", f"gp{k}", [k], False) for k in scalars]
        )
        body += [f"g{v}[...] = _r{v}" for v, _, _ in blocks]
    if scalars:
        body.append(f"G[{start}:] = {''.join(f'gp{k}, ' for k in scalars)}")

    # the optimizer's statements once, on the flat arrays; F changes in place, so its views follow
    body += list(opt.prelude)
    update = opt.update("F", "G", [f"{s}_F" for s in opt.state])
    assert not any(line.startswith("F = ") for line in update), "an update must change F in place"
    body += update
    blockwise = [(f"_q{v}", f"g{v}", ks, True) for v, ks, _ in blocks]
    after = rules.after(blockwise + [(f"p{k}", f"gp{k}", [k], False) for k in scalars]) if rules else []
    if after:  # steps on the updated parameters (L1's): on copies of the names, copied back into F
        body += [f"_q{v} = {v}" for v, _, _ in blocks]
        body += [f"{''.join(f'p{k}, ' for k in scalars)}= as_numbers(F[{start}:])"] if scalars else []
        body += after + [f"{v}[...] = _q{v}" for v, _, _ in blocks]
        body += [f"F[{start}:] = {''.join(f'p{k}, ' for k in scalars)}"] if scalars else []

    lines = head + ["for s, e in bounds:"] + [f"    {line}" for line in body] + tail
    src = "def epoch(P, C, S, STEP, Xp, Tp, bounds, lr, H, Wp):\n" + "\n".join(f"    {line}" for line in lines) + "\n"
    return src, len(body)


def _cols_of(u: _Unit) -> list[Node]:
    """The nodes a map unit reads, one per column, as nodes of its source unit."""
    assert u.source is not None
    return [u.source.members[c] for c in u.cols]


class _Backward:
    """Gradient bookkeeping: what each unit, node and parameter has been sent so far."""

    def __init__(self, low: _Lowering) -> None:
        self.low = low
        self.full: dict[str, list[str]] = {}  # (batch, width) arrays for a whole unit
        self.scatter: dict[str, list[tuple[str, str]]] = {}  # (index array, (batch, k) array)
        self.column: dict[str, dict[int, list[str]]] = {}  # per column, (batch,) arrays
        self.node: dict[int, list[str]] = {}  # per vec node
        self.params: dict[int, list[str]] = {}  # per parameter outside dense layers

    def send(self, node: Node, expr: str) -> None:
        """Add d loss / d node (a (batch,) array) to what `node` has received."""
        low = self.low
        if id(node) not in low.needs:
            return
        if id(node) in low.where:
            unit, col = low.where[id(node)]
            self.column.setdefault(unit.name, {}).setdefault(col, []).append(expr)
        elif id(node) in low.vec_name:
            self.node.setdefault(id(node), []).append(expr)
        elif isinstance(node, Parameter):
            self.params.setdefault(low.param_index[id(node)], []).append(expr)

    def send_array(self, nodes: Sequence[Node], grad: str, how: str | None) -> None:
        """Send the columns of a (batch, n) gradient to `nodes`, as `columns()` made them."""
        if not any(id(n) in self.low.needs for n in nodes):
            return
        unit = self.low.where[id(nodes[0])][0] if how is not None else None
        if how == "full":
            assert unit is not None
            self.full.setdefault(unit.name, []).append(grad)
        elif how is not None:
            assert unit is not None
            self.scatter.setdefault(unit.name, []).append((how, grad))
        else:
            for k, n in enumerate(nodes):
                self.send(n, f"{grad}[:, {k}]")

    def _gather(self, u: _Unit) -> tuple[list[str], str]:
        """Statements summing what unit `u` was sent into d{name}, and that name."""
        name = f"d{u.name}"
        full = self.full.pop(u.name, [])
        scatter = self.scatter.pop(u.name, [])
        cols = self.column.pop(u.name, {})
        if not scatter and not cols:
            if len(full) == 1:
                return [], full[0]
            return [f"{name} = {wide_sum(full) if full else f'np.zeros((nb, {u.width}), DT)'}"], name
        if not full and not scatter and len(cols) == u.width:
            sums = [wide_sum(cols[j]) for j in range(u.width)]
            if u.width == 1:
                return [f"{name} = ({sums[0]})[:, None]"], name
            return [f"{name} = np.stack(({', '.join(sums)},), axis=1)"], name
        if full:
            start = wide_sum(full) if len(full) > 1 else f"{full[0]}.copy()"
        else:
            start = f"np.zeros((nb, {u.width}), DT)"
        lines = [f"{name} = {start}"]
        lines += [f"{name}[:, {ix}] += {g}" for ix, g in scatter]
        lines += [f"{name}[:, {j}] += {wide_sum(parts)}" for j, parts in sorted(cols.items())]
        return lines, name

    def unit(self, u: _Unit, a: str, how: str | None) -> list[str]:
        """Backward statements of one unit (`a`: its input array, `how`: as columns() said)."""
        low = self.low
        if u.kind == "vec":
            n = u.members[0]
            parts = self.node.pop(id(n), [])
            if not parts:
                return []
            g, lines = gather(parts, f"g{u.name[1:]}")
            assert n.op is not None
            args = [low.expr(c) for c in n.children]
            for k, c in enumerate(n.children):
                if id(c) not in low.needs:
                    continue
                self.send(c, times(g, n.op.array_deriv(args, u.name, k)))
            return lines
        lines, d = self._gather(u)
        tag = u.name[1:]
        if u.kind == "map":
            assert u.op is not None and u.source is not None
            if u.source.needs_grad:
                lines.append(f"dS{tag} = {times(d, u.op.array_deriv([a], u.name, 0))}")
                self.send_array(_cols_of(u), f"dS{tag}", how)
            return lines
        # dense: Z = A @ W + b, summed over the batch
        lines.append(f"np.matmul({a}.T, {d}, gW{tag})")
        if u.biases:
            lines.append(f"{d}.sum(axis=0, out=gB{tag})")
        if any(id(x) in low.needs for x in u.acts):
            lines.append(f"dA{tag} = {d} @ W{tag}.T")
            self.send_array(u.acts, f"dA{tag}", how)
        return lines
