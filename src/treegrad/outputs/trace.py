"""Backpropagation shown by hand: per-sample SGD steps with every number laid out.

For each step, `trace` runs the reference engine (`graph.py`) on one sample: the forward
pass gives every node's value, the loss table gives the loss and its gradient with
respect to the output, `graph.backward` gives every node's total gradient, and
`graph.local_gradients` the part of it that arrived from each parent. The parameters
are then updated by the optimizer table's plain SGD rule, the same function the
reference trainer (`fit(engine="reference")`) calls, so the numbers are the trainer's.

The result is plain data; the CLI draws the tables.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.graph import local_gradients
from ..core.nodes import Constant, Input, Leaf, Node, Output, Parameter
from ..core.ops import ATOM, OUTPUT_FORMS, UNARY, pick
from ..core.printers import funcify, number
from ..engine.fit import check_targets, resolve_loss
from ..engine.optim import OPTIMIZERS
from ..errors import DataError, TrainingError
from ..run.setups import trace_setup


@dataclass
class NodeTrace:
    """One node in one step: what it computes, its value, and the gradient it received."""

    index: int
    label: str  # the input's or parameter's name, the constant's value, or "#index" for an op
    kind: str  # input, parameter, constant, op, output, softmax
    expr: str  # what it computes from its children's labels, e.g. "p0 * f" or "relu(#3)"
    formula: str  # the whole subexpression below it, as funcify prints it
    value: Any  # a float, or a list for an output
    arrivals: list[tuple[int, float]]  # (parent index, dL/d this node along that edge)
    grad: Any  # dL/d this node: the sum of the arrivals (a list for an output)


@dataclass
class ParamUpdate:
    """One parameter in one step: before, gradient, after."""

    name: str
    old: float
    grad: float
    new: float


@dataclass
class TraceStep:
    """Everything that happened in one per-sample SGD step."""

    step: int  # 1-based
    sample: int  # 0-based row of the data
    inputs: dict[str, float]
    target: Any
    output: Any
    loss: float
    loss_grad: list[float]  # dL/d output element
    nodes: list[NodeTrace]
    params: list[ParamUpdate]


def trace_labels(order: list[Node], precision: int) -> list[str]:
    """Each node as the trace names it: an input or parameter by name, a constant by value, an op `#index`."""
    out = []
    for i, n in enumerate(order):
        if isinstance(n, (Input, Parameter)):
            out.append(n.name or f"#{i}")
        elif isinstance(n, Constant):
            out.append(number(float(n.value), precision))
        else:
            out.append(f"#{i}")
    return out


def node_expr(n: Node, args: list[str]) -> str:
    """The node's own computation over its children's labels, in the op table's printed form."""
    if isinstance(n, Leaf):
        return n.kind
    # A label is a name, "#3" or a number; a negative number is printed like a unary minus.
    printed = [(a, UNARY if a.startswith("-") else ATOM) for a in args]
    if isinstance(n, Output):
        return pick(OUTPUT_FORMS[n.kind], "text")(printed)[0]
    assert n.op is not None
    return n.op.text(printed)[0]


def trace(
    root: Node,
    inputs: list[list[float]],
    targets: list[Any],
    *,
    loss: str = "mse",
    learning_rate: float = 0.01,
    steps: int = 1,
    precision: int = 4,
    formulas: bool = True,
) -> list[TraceStep]:
    """Run `steps` per-sample SGD steps on the first rows (cycling) and record every number
    (`trace_steps`, all kept)."""
    return list(
        trace_steps(
            root,
            inputs,
            targets,
            loss=loss,
            learning_rate=learning_rate,
            steps=steps,
            precision=precision,
            formulas=formulas,
        )
    )


def trace_steps(
    root: Node,
    inputs: list[list[float]],
    targets: list[Any],
    *,
    loss: str = "mse",
    learning_rate: float = 0.01,
    steps: int = 1,
    precision: int = 4,
    formulas: bool = True,
) -> Iterator[TraceStep]:
    """Run `steps` per-sample SGD steps on the first rows (cycling), each step's numbers yielded as
    it is taken: a caller that shows them as they come holds one step at a time.

    The parameters of `root` are updated as training would update them. Without `formulas`
    a node's formula is its own computation (`expr`): printing every node's whole
    subexpression costs time that grows with the square of a deep model's size.
    """
    if root.graph is None:
        root.compile()
    g = root.graph
    assert g is not None
    lossobj = resolve_loss(g, loss)
    if steps < 1:
        raise TrainingError(f"--steps must be at least 1, got {steps}")
    if not inputs:
        raise DataError("no samples to trace")
    if len(inputs) != len(targets):
        raise DataError(f"{len(inputs)} input rows but {len(targets)} targets")
    T = check_targets(g, lossobj, targets)
    lossfn = lossobj.fn(len(g.elements))
    sgd = OPTIMIZERS["sgd"].step_fn(len(g.params))
    order = g.order
    index = {id(n): i for i, n in enumerate(order)}
    for s in range(steps):
        i = s % len(inputs)
        row = g.row(inputs[i])
        out = g.predict(row)
        L, dL = lossfn(out if g.is_list else [out], T[i])
        g.output.backward(dL if g.is_list else dL[0])
        arrivals: dict[int, list[tuple[int, float]]] = {id(n): [] for n in order}
        for n in reversed(order):  # the order backward() visits them, so sums add up alike
            if isinstance(n, Leaf):
                continue
            for c, grad in zip(n.children, local_gradients(n), strict=True):
                arrivals[id(c)].append((index[id(n)], grad))
        labels = trace_labels(order, precision)
        nodes = [
            NodeTrace(
                k,
                labels[k],
                n.kind,
                expr := node_expr(n, [labels[index[id(c)]] for c in n.children]),
                labels[k] if isinstance(n, Leaf) else funcify(n, precision=precision) if formulas else expr,
                _copy(n.value),
                arrivals[id(n)],
                _copy(n.grad),
            )
            for k, n in enumerate(order)
        ]
        P = g.param_values()
        G = [0.0 + float(p.grad) for p in g.params]  # as the reference trainer sums them
        new = list(P)
        sgd(new, G, [], [0], learning_rate)
        params = [ParamUpdate(p.name or f"p{k}", P[k], G[k], new[k]) for k, p in enumerate(g.params)]
        g.set_param_values(new)
        yield TraceStep(
            s + 1,
            i,
            dict(zip(g.input_names, row, strict=True)),
            targets[i],
            _copy(out),
            float(L),
            list(dL),
            nodes,
            params,
        )


def _copy(v: Any) -> Any:
    return list(v) if isinstance(v, list) else v


@dataclass
class Traced:
    """What `treegrad trace` shows: the steps, and the loss and learning rate they were taken with."""

    steps: Iterator[TraceStep]  # each taken as it is asked for
    loss: str
    learning_rate: float


def trace_file(
    path: Path, data: str | None = None, learning_rate: float | None = None, *, steps: int = 1, precision: int = 4
) -> Traced:
    """`treegrad trace`: the model of a spec or a model file traced for `steps` SGD steps, one per
    row of `data` (else of its own data), from the first, at `learning_rate` (else its own). The
    steps are taken as they are read from `Traced.steps`, so that each can be shown as it comes;
    the model and its rows are checked now."""
    setup = trace_setup(path, data, learning_rate, rows=steps)
    lr = setup.learning_rate
    taken = trace_steps(
        setup.root, setup.inputs, setup.targets, loss=setup.loss, learning_rate=lr, steps=steps, precision=precision
    )
    first = next(taken)  # the checks of the first step (targets, the loss) before anything is shown
    return Traced(itertools.chain([first], taken), setup.loss, lr)
