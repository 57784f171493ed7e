"""The fast evaluator: straight-line Python generated from a compiled graph and the op,
loss and optimizer tables.

For a graph, `Program` writes the forward pass as one assignment per node, the loss,
the backward pass as one assignment per node that leads to a parameter, and the
optimizer's update, into one function that loops over the samples of an epoch with
parameters held in local variables. There is no per-node dispatch left at run time, so a
step costs about what the same arithmetic written by hand costs.

Safety: the generated text contains only identifiers made here (`v12`, `p3`, `g7`, ...),
the expressions of the op/loss/optimizer tables, and integer indices. Parameter, input
and constant values are passed in as lists and unpacked; no name or number from a spec
or model file is ever pasted into the source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..core.nodes import Constant, Graph, Leaf, Node, Output, Parameter
from ..core.ops import NAMESPACE, softmax_code, softmax_grad_code, wide_sum
from ..errors import ModelError
from .losses import Loss
from .optim import Optimizer
from .penalties import StepRules


class SampleFailure(Exception):
    """An epoch stopped at a sample: its index in the data, the parameter values it was evaluated
    with, and the error raised (a math error, or the reference evaluator's ModelError).

    Not a TreegradError: `fit` turns it into one that says what went wrong and what to do.
    """

    def __init__(self, index: int, params: list[float], error: Exception) -> None:
        super().__init__(index, params, error)
        self.index, self.params, self.error = index, params, error


def is_name(expr: str) -> bool:
    """True if a generated expression is a bare variable: it can be reused or multiplied as it is."""
    return expr.isidentifier()


def times(g: str, d: str) -> str:
    """The expression `g` times the local derivative `d`, without multiplying by 1 or -1."""
    if d == "1.0":
        return g
    if d == "-1.0":
        return f"-{g}"
    return f"{g} * {d if is_name(d) or d.startswith('(') else f'({d})'}"


class Program:
    """Generated forward/backward code for one graph; builds fast functions on demand."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.names: dict[int, str] = {}
        for k, p in enumerate(graph.params):
            self.names[id(p)] = f"p{k}"
        for j, name in enumerate(graph.input_names):
            for node in graph.inputs_by_name.get(name, ()):
                self.names[id(node)] = f"x{j}"
        self.constants = graph.constants
        for k, c in enumerate(self.constants):
            self.names[id(c)] = f"c{k}"
        for i, n in enumerate(graph.order):
            self.names.setdefault(id(n), f"v{i}")
        self.outputs = (
            [f"s{j}" for j in range(len(graph.elements))]
            if graph.is_softmax
            else [self.names[id(e)] for e in graph.elements]
        )
        self.needs_grad = self._needs_grad()
        self._made: dict[tuple[object, ...], Any] = {}

    def cached(self, key: tuple[object, ...], make: Callable[[], Any]) -> Any:
        """What `make()` returns, made once per key: generated code depends only on the graph's
        structure (this program) and the key, so a second fit of the same model writes none."""
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]

    # ------------------------------------------------------------ pieces of code

    def _needs_grad(self) -> set[int]:
        """Nodes with a parameter at or below them: only these need a gradient."""
        needs: set[int] = set()
        for n in self.graph.order:
            if isinstance(n, Parameter) or any(id(c) in needs for c in n.children):
                needs.add(id(n))
        return needs

    def header(self) -> list[str]:
        """Unpack parameters and constants into locals."""
        lines = []
        if self.graph.params:
            lines.append(f"{self.param_tuple()}, = P")
        if self.constants:
            lines.append(f"{', '.join(f'c{k}' for k in range(len(self.constants)))}, = C")
        return lines

    def param_tuple(self) -> str:
        """The parameter variables as a comma-separated list: `p0, p1, ...`."""
        return ", ".join(f"p{k}" for k in range(len(self.graph.params)))

    def unpack_row(self, row: str) -> list[str]:
        """The statement unpacking the sample `row` into the input variables `x0, x1, ...` (none without inputs)."""
        n = len(self.graph.input_names)
        return [f"{', '.join(f'x{j}' for j in range(n))}, = {row}"] if n else []

    def forward(self) -> list[str]:
        """One assignment per operation node, children before parents."""
        lines: list[str] = []
        for n in self.graph.order:
            if isinstance(n, Leaf):
                continue
            args = [self.names[id(c)] for c in n.children]
            if n.kind == "softmax":
                lines += softmax_code(args, self.outputs, "_sm")
            elif isinstance(n, Output):
                continue
            else:
                assert n.op is not None
                lines.append(f"{self.names[id(n)]} = {n.op.value(args)}")
        return lines

    def backward(self, out_grads: Sequence[str]) -> tuple[list[str], list[str]]:
        """Statements for dL/d(node), given dL/d(output element) in `out_grads`.

        Returns (lines, gradient expression per parameter). In reverse topological
        order, each node's gradient is the sum of what its parents sent it, in the
        order they sent it; a node with one parent and derivative 1 just reuses the
        parent's gradient (no statement).
        """
        g = self.graph
        contribs: dict[int, list[str]] = {}
        lines: list[str] = []
        if g.is_softmax:
            gz = [f"gz{j}" for j in range(len(g.elements))]
            lines += softmax_grad_code(self.outputs, out_grads, gz, "_sm")
            sent = gz
        else:
            sent = list(out_grads)
        for e, s in zip(g.elements, sent):
            if id(e) in self.needs_grad:
                contribs.setdefault(id(e), []).append(s)
        param_grads: dict[int, str] = {}
        for i in range(len(g.order) - 1, -1, -1):
            n = g.order[i]
            if id(n) not in self.needs_grad or isinstance(n, Output) or isinstance(n, Constant):
                continue
            parts = contribs.pop(id(n), ["0.0"])
            if isinstance(n, Parameter):
                param_grads[id(n)] = wide_sum(parts)
                continue
            gname, summed = gather(parts, f"g{i}")
            lines += summed
            assert n.op is not None
            args = [self.names[id(c)] for c in n.children]
            for k, c in enumerate(n.children):
                if id(c) not in self.needs_grad:
                    continue
                contribs.setdefault(id(c), []).append(times(gname, n.op.deriv(args, self.names[id(n)], k)))
        return lines, [param_grads.get(id(p), "0.0") for p in g.params]

    # ------------------------------------------------------------ functions

    def _build(self, src: str, name: str) -> Callable[..., Any]:
        """The function `name` defined by the generated `src`, run in the op table's namespace."""
        ns: dict[str, object] = dict(NAMESPACE, SampleFailure=SampleFailure)
        exec(compile(src, f"<treegrad {name}>", "exec"), ns)  # noqa: S102 - generated from treegrad's tables only
        return ns[name]  # type: ignore[return-value]

    def output_expr(self) -> str:
        """The model's output as an expression: its variable, or a list display for a list output."""
        return f"[{', '.join(self.outputs)}]" if self.graph.is_list else self.outputs[0]

    def predict_fn(self) -> Callable[[Sequence[float], Sequence[float], Sequence[Sequence[float]]], list[Any]]:
        """(params, constants, rows) -> one output per row."""
        return self.cached(("predict",), self._predict_fn)  # type: ignore[no-any-return]

    def _predict_fn(self) -> Callable[[Sequence[float], Sequence[float], Sequence[Sequence[float]]], list[Any]]:
        """predict_fn's code, written."""
        body = [*self.header(), "out = []", "append = out.append", "for row in X:"]
        body += _indent(self.unpack_row("row") + self.forward() + [f"append({self.output_expr()})"])
        body.append("return out")
        return self._build(_def("predict_rows", "P, C, X", body), "predict_rows")

    def loss_fn(self, loss: Loss) -> Callable[..., float]:
        """(params, constants, rows, targets) -> summed loss over the rows."""
        return self.cached(("loss", loss), lambda: self._loss_fn(loss))  # type: ignore[no-any-return]

    def _loss_fn(self, loss: Loss) -> Callable[..., float]:
        """loss_fn's code, written."""
        gouts = [f"go{j}" for j in range(len(self.outputs))]
        body = [*self.header(), "total = 0.0", "for i in range(len(X)):"]
        body += _indent(
            self.unpack_row("X[i]")
            + ["t = T[i]"]
            + self.forward()
            + loss.code(self.outputs, "t", "L", gouts, "_l")
            + ["total += L"]
        )
        body.append("return total")
        return self._build(_def("loss_rows", "P, C, X, T", body), "loss_rows")

    def epoch_fn(
        self, loss: Loss, optimizer: Optimizer, batched: bool, rules: StepRules | None = None, weighted: bool = False
    ) -> Callable[..., float]:
        """One epoch of training; returns the summed per-sample loss.

        Per sample (`batched` False): (P, C, S, STEP, X, T, idx, lr, H, W) with idx the sample
        order. Mini-batches: the same with idx a list of batches (lists of indices); the
        gradient of a batch is the mean of its samples' gradients.
        `rules` (clipping, penalties; see penalties.py) read their values from H; with
        `weighted`, sample i's loss and gradient count W[i] times.
        P, the optimizer state S and the step count STEP are updated in place, at the end: a
        math error raises SampleFailure (the sample, the parameters then) and leaves them as they were.
        """
        key = ("epoch", loss, optimizer, batched, rules, weighted)
        return self.cached(key, lambda: self._epoch_fn(loss, optimizer, batched, rules, weighted))  # type: ignore[no-any-return]

    def _epoch_fn(
        self, loss: Loss, optimizer: Optimizer, batched: bool, rules: StepRules | None, weighted: bool
    ) -> Callable[..., float]:
        """epoch_fn's code, written."""
        np_ = len(self.graph.params)
        gouts = [f"go{j}" for j in range(len(self.outputs))]
        sample = self.unpack_row("X[i]") + ["t = T[i]"] + self.forward()
        sample += loss.code(self.outputs, "t", "L", gouts, "_l")
        if weighted:
            sample += ["_sw = W[i]", "L = L * _sw", *[f"{g} = {g} * _sw" for g in gouts]]
        sample += ["total += L"]
        back, pgrads = self.backward(gouts)
        sample += back
        # `m_3`, not `m3`: Adam's state `v` would otherwise take the names of node values.
        state = [[f"{s}_{k}" for s in optimizer.state] for k in range(np_)]
        grads = [(f"p{k}", f"gp{k}", [k], False) for k in range(np_)]
        update = rules.code(grads) if rules else []
        update += list(optimizer.prelude)
        for k in range(np_):
            update += optimizer.update(f"p{k}", f"gp{k}", state[k])
        update += rules.after(grads) if rules else []
        body = [*self.header(), *(rules.unpack() if rules else [])]
        for j, s in enumerate(optimizer.state):
            if np_:
                body.append(f"{', '.join(f'{s}_{k}' for k in range(np_))}, = S[{j}]")
        body += ["step = STEP[0]", "total = 0.0"]
        if not batched:
            loop = ["for i in idx:"]
            loop += _indent(sample + [f"gp{k} = {e}" for k, e in enumerate(pgrads)] + update)
        else:
            loop = ["for batch in idx:"]
            inner = [f"a{k} = 0.0" for k in range(np_)] + ["for i in batch:"]
            inner += _indent(sample + [f"a{k} += {e}" for k, e in enumerate(pgrads)])
            inner += ["n = len(batch)"] + [f"gp{k} = a{k} / n" for k in range(np_)] + update
            loop += _indent(inner)
        # A math error names its sample and the parameters of that moment, for fit to explain.
        # (A try costs nothing in the loop until something is raised.)
        body += ["try:", *_indent(loop), "except (ArithmeticError, ValueError) as _err:"]
        body += _indent([f"raise SampleFailure(i, [{self.param_tuple()}], _err) from None"])
        if np_:
            body.append(f"P[:] = [{self.param_tuple()}]")
        for j, s in enumerate(optimizer.state):
            if np_:
                body.append(f"S[{j}][:] = [{', '.join(f'{s}_{k}' for k in range(np_))}]")
        body += ["STEP[0] = step", "return total"]
        return self._build(_def("epoch", "P, C, S, STEP, X, T, idx, lr, H=(), W=None", body), "epoch")

    def constant_values(self) -> list[float]:
        """The constants' values, in the order of the `c0, c1, ...` variables (the argument C)."""
        return [float(c._value) for c in self.constants]  # type: ignore[arg-type]


def gather(parts: Sequence[str], name: str) -> tuple[str, list[str]]:
    """A node's gradient from what its parents sent: (its name, the statements to compute it).

    One part that is already a plain name is reused as is (no statement), so a chain of
    derivative-1 edges costs nothing; otherwise `name` = the parts summed in order.
    """
    if len(parts) == 1 and is_name(parts[0]):
        return parts[0], []
    return name, [f"{name} = {wide_sum(parts)}"]


def _indent(lines: list[str]) -> list[str]:
    """The lines one block deeper."""
    return [f"    {line}" for line in lines]


def _def(name: str, params: str, body: list[str]) -> str:
    """The source of a function `name(params)` with the statements `body`."""
    return f"def {name}({params}):\n" + "\n".join(_indent(body)) + "\n"


def program(graph: Graph) -> Program:
    """The (cached) program of a compiled graph."""
    prog = getattr(graph, "_program", None)
    if prog is None:
        prog = Program(graph)
        graph._program = prog  # type: ignore[attr-defined]
    return prog


def predict_many(
    model: Node, rows: Sequence[Sequence[float]], describe_row: Callable[[int], str] | None = None
) -> list[Any]:
    """Outputs of a compiled model for many rows at once, by the generated code.

    If a row cannot be evaluated (the log of a negative input), the ModelError names the
    row (`describe_row(i)`, by default "row i+1") and the op, found with the reference evaluator.
    """
    g = model.compiled_graph
    prog = program(g)
    fn = prog.predict_fn()
    try:
        return fn(g.param_values(), prog.constant_values(), rows)
    except (ArithmeticError, ValueError) as e:
        first_error = e
    for i, row in enumerate(rows):  # the slow path, only to say where it failed
        try:
            g.predict(row)
        except ModelError as e:
            where = describe_row(i) if describe_row else f"row {i + 1}"
            raise ModelError(f"{where}: {e}") from None
    raise ModelError(f"the model cannot be evaluated on these inputs: {first_error}")
