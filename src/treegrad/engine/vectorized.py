"""The vectorized trainer: a whole mini-batch at once, as NumPy arrays.

The elementary graph stays the model; `lowering.py` finds, in a compiled graph, the structure
that arrays can compute together (dense layers, maps over their columns, elementwise nodes),
`arraycode.py` writes from it one epoch function (the signature and meaning of
`Program.epoch_fn(..., batched=True)`) that evaluates each batch with NumPy, and this module
decides where arrays pay, builds that function and runs it over an epoch's batches.

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

from collections.abc import Callable, Sequence
from itertools import accumulate, chain
from typing import Any, Literal, cast, get_args

from ..core.nodes import Graph, Node
from ..core.ops import NAMESPACE
from .arraycode import write_epoch, write_rows
from .compiled import program
from .losses import Loss, array_clamps
from .lowering import lower
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
    low = prog.cached(("lowering",), lambda: lower(graph))
    if low is None:
        return None
    # every unit is one statement at least: a graph of many small units is refused before its code is written
    scalar_ops = len(graph.order) + len(graph.params)  # about what one sample costs the scalar code
    cost = SAMPLE_STATEMENT_COST if batch_size == 1 else STATEMENT_COST
    if batch_size is not None and len(low[1]) * cost >= batch_size * scalar_ops:
        return None
    key = (loss, optimizer, rules, weighted)
    src, statements = prog.cached(
        ("vectorized source", *key), lambda: write_epoch(low[0], low[1], graph, loss, optimizer, rules, weighted)
    )
    if batch_size is not None and statements * cost >= batch_size * scalar_ops:
        return None
    return prog.cached(  # type: ignore[no-any-return]
        ("vectorized", *key, dtype), lambda: _build(src, low[0].arrays, graph, dtype)
    )


def _build(src: str, arrays: dict[str, Any], graph: Graph, dtype: str) -> VectorizedEpoch:
    """The epoch function defined by `src`, with its index arrays bound, on arrays of `dtype`."""
    import numpy as np

    ns = array_namespace(dtype)
    ns.update({name: np.array(v, dtype=np.intp) for name, v in arrays.items()})
    exec(compile(src, "<treegrad vectorized epoch>", "exec"), ns)  # noqa: S102 - generated from treegrad's tables only
    return VectorizedEpoch(ns["epoch"], src, graph, dtype)  # type: ignore[arg-type]


ROWS_CHUNK = 4096  # rows evaluated at a time: a few layers' arrays of this many rows stay small


class ArrayRows:
    """A model evaluated on many rows at once on NumPy arrays, in float64: each row's output, its
    loss against a target, and whether each watched node (a ReLU unit) is above 0 on some row."""

    def __init__(self, core: Callable[..., Any], source: str, graph: Graph) -> None:
        self.core = core
        self.source = source  # the generated text, for reading and for tests
        self.graph = graph

    def __call__(self, X: Any, T: Any = None, P: Sequence[float] | None = None) -> tuple[Any, Any, Any]:
        """(outputs, per-row losses or None without targets `T`, watched nodes alive) on rows `X`
        (a 2-D array or rows of numbers) at parameters `P` (default: the graph's)."""
        import numpy as np

        graph = self.graph
        Xa = np.asarray(X, dtype=np.float64).reshape(len(X), len(graph.input_names))
        Ta = None
        if T is not None:
            Ta = np.asarray(T, dtype=np.intp if graph.is_softmax else np.float64)
        n = len(Xa)
        bounds = [(s, min(s + ROWS_CHUNK, n)) for s in range(0, n, ROWS_CHUNK)]
        params = graph.param_values() if P is None else list(P)
        with np.errstate(all="ignore"):  # overflow and NaN: the caller looks at the results
            return self.core(params, program(graph).constant_values(), Xa, Ta, bounds)  # type: ignore[no-any-return]


def array_rows_fn(graph: Graph, loss: Loss | None = None, watched: Sequence[Node] = ()) -> ArrayRows | None:
    """The model of `graph` on whole arrays of rows (ArrayRows), with `loss` per row and the
    `watched` nodes' signs; None for a graph without dense layers, which the scalar code evaluates."""
    prog = program(graph)
    low = prog.cached(("lowering",), lambda: lower(graph))
    if low is None:
        return None
    key = ("array rows", loss, tuple(id(n) for n in watched))

    def build() -> ArrayRows:
        import numpy as np

        src = write_rows(low[0], low[1], graph, loss, list(watched))
        ns = array_namespace("float64")
        ns.update({name: np.array(v, dtype=np.intp) for name, v in low[0].arrays.items()})
        exec(compile(src, "<treegrad array rows>", "exec"), ns)  # noqa: S102 - generated from treegrad's tables only
        return ArrayRows(ns["array_rows"], src, graph)  # type: ignore[arg-type]

    return prog.cached(key, build)  # type: ignore[no-any-return]
