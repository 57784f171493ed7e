"""One self-contained HTML page of a model: its graph with the values and gradients of each
trace step, the learning curves, the formula, the metrics and, for two inputs, what it
learned over the data.

The page is built from what the other modules compute, never by redoing their maths: the
steps are `trace.trace`'s, the formula is `printers.funcify`'s, the local derivatives come
from the op table, the metrics from `tasks.evaluate_rows`, the grid from the compiled
evaluator. Every number is formatted here by `printers.number`, as `treegrad trace` prints
it, so the page shows the terminal's digits.

The page works from disk with nothing fetched: the style, the script (in
`report_assets/`) and the data (one JSON block) are inlined, the formula is MathML, and a
Content-Security-Policy lets only this page's own script and style run. Text from files
(labels, names) reaches the page only as JSON data that the script puts in text nodes,
or, for the MathML, escaped here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.nodes import Node, Output, Softmax
from ..core.printers import funcify, number
from ..errors import ModelError, OptionError
from ..files import PAGE, check_output, write_atomic
from ..limits import MAX_PAGE_STEPS, MAX_TRACE_STEPS
from .mathml import derivative_latex, latex_to_mathml, template
from .pagehtml import as_json, render
from .structure import as_data, structure
from .trace import node_expr, trace, trace_labels

__all__ = ["Model", "latex_to_mathml", "page", "page_data", "render"]

FORMULAS = 300  # up to this many nodes each op's panel shows its whole subexpression (its cost grows as n^2)
LEAVES = ("input", "parameter", "constant")
# A page's size: BASE_BYTES (style, script, metrics, surface) + NODE_BYTES a node + its steps' numbers
# (`steps_that_fit`). Measured at 4 digits: style and script 70 kB, the formula's MathML up to ~150 kB
# (MAX_FORMULA characters of text), 57 bytes a node for the graph and 45-50 a node for each step.
PAGE_BYTES = 5_000_000
BASE_BYTES = 300_000
NODE_BYTES = 60
MAX_FORMULA = 20_000  # characters of formula text shown; a longer one is left to `treegrad show`
GRID = 41  # cells per axis of the decision boundary or fitted surface
MAX_POINTS = 600  # data points drawn over it at most


@dataclass
class Source:
    """What the page is about, read from a spec or a model file."""

    name: str
    task: str  # regression | binary | classes
    trained: bool  # a model file (learned parameters) rather than a spec (initial ones)
    history: dict[str, Any] | None  # {"train": [...], "validation": [...]} for a trained model
    recorded: dict[str, Any]  # the metrics stored in the model file, by part


def _source(path: Path) -> Source:
    from ..run.modelfile import is_model_file, read
    from ..run.prepare import load_spec_file

    if is_model_file(path):
        rec = read(path)
        hist = {"train": list(rec.history.train), "validation": list(rec.history.validation or [])}
        return Source(rec.name, rec.task, True, hist, dict(rec.metrics))
    from ..spec.build import task_kind

    spec, _ = load_spec_file(path)
    return Source(str(spec.name or path.stem), task_kind(spec), False, None, {})


def page(
    path: Path,
    data: str | None = None,
    *,
    steps: int = 3,
    learning_rate: float | None = None,
    precision: int = 4,
) -> str:
    """The HTML page of the model in `path` (a spec or a model file) traced on `data`."""
    return render(page_data(path, data, steps=steps, learning_rate=learning_rate, precision=precision))


def page_data(
    path: Path,
    data: str | None = None,
    *,
    steps: int = 3,
    learning_rate: float | None = None,
    precision: int = 4,
    max_bytes: int = PAGE_BYTES,
) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data (numbers already formatted), with as many of
    the `steps` asked for as keep the page under `max_bytes` (`steps_that_fit`, then `within`)."""
    from ..run.setups import trace_setup
    from ..run.tasks import class_labels, evaluate_rows

    source = _source(path)
    # All rows, for the metrics and the points; the trace takes the first ones, in the file's
    # order, exactly as `treegrad trace` does with its rows=steps.
    setup = trace_setup(path, data, learning_rate)
    root = setup.root
    g = root.compiled_graph
    labels = class_labels(source.task, setup.classes, len(g.elements))
    # Before tracing: the trace moves the parameters.
    now = evaluate_rows(root, source.task, setup.loss, setup.inputs, setup.targets)
    metrics = [{"part": f"{setup.source} ({len(setup.inputs)} rows, these parameters)", **_metrics(now, precision)}]
    for part, m in source.recorded.items():
        metrics.append({"part": f"{part} (recorded at training)", **_metrics(m, precision)})
    formula = _formula(root, precision)
    surface = _surface(root, source.task, labels, setup.inputs, setup.targets, g.input_names)
    kept = steps_that_fit(len(g.order), steps, precision, max_bytes)
    model = Model(root, precision)
    traced = model.steps(setup.inputs, setup.targets, setup.loss, setup.learning_rate, kept)
    whole = {
        "name": source.name,
        "trained": source.trained,
        "task": source.task,
        "source": setup.source,
        "loss": setup.loss,
        "learningRate": model.num(setup.learning_rate),
        "precision": precision,
        "inputs": list(g.input_names),
        "classes": labels,
        **model.shape(),
        "steps": traced,
        "history": source.history,
        "metrics": metrics,
        "formula": formula,
        "surface": surface,
        "live": None,
        "stepsAsked": steps,
    }
    return within(whole, max_bytes)


def within(data: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """`data` with as many of its steps as keep its page within `max_bytes`, by the page's own bytes.

    `steps_that_fit` estimates how many steps to trace; a number's printed length varies (at one
    digit a node's step took 40 bytes where 22 were counted, and 1.5e-08 is longer than 0.15), so
    the steps' bytes are counted and the last ones left out until the page fits."""
    steps = data["steps"]
    # The page without its steps; its line "K of the N steps asked for" may grow by a few digits.
    fixed = len(render({**data, "steps": []}).encode("utf-8")) + 32
    total, kept = fixed, 0
    for step in steps:
        total += len(as_json(step).encode("utf-8")) + 1  # and its comma
        if total > max_bytes:
            break
        kept += 1
    if kept == 0 and steps:
        raise ModelError(_too_large(len(data["nodes"]["kind"]), max_bytes))
    return data if kept == len(steps) else {**data, "steps": steps[:kept]}


def _too_large(nodes: int, max_bytes: int) -> str:
    return (
        f"a page of this model ({nodes:,} nodes) would be over {max_bytes / 1e6:g} MB even with one step; "
        "print its steps with `treegrad trace`, its formula with `treegrad show`"
    )


def steps_that_fit(nodes: int, asked: int, precision: int = 4, max_bytes: int = PAGE_BYTES) -> int:
    """How many of the `asked` trace steps a page of a model of `nodes` nodes holds within `max_bytes`.

    A page is about BASE_BYTES, plus NODE_BYTES a node for the graph, plus a step's numbers:
    four a node (value, gradient, what it sends each parent, its local slope), counted as 10 bytes
    a digit and 12 more (measured: 36 + 3.7 a digit, 52 at 4 digits). An estimate, to trace no
    more steps than can fit: `within` counts them. A model whose page would be over `max_bytes`
    with one step is refused.
    """
    # Under 4 digits a number's sign, point and quotes outweigh its digits: counted as 4 digits.
    per_step = nodes * (12 + 10 * max(precision, 4))
    room = max_bytes - BASE_BYTES - nodes * NODE_BYTES
    fits = room // per_step if room > 0 else 0
    if fits < 1:
        raise ModelError(_too_large(nodes, max_bytes))
    return min(asked, fits)


class Model:
    """A compiled model as the page draws it: its nodes, groups and derivative templates, and
    its trace steps with every number formatted as `treegrad trace` prints it."""

    def __init__(self, root: Node, precision: int) -> None:
        self.root, self.precision = root, precision
        self.graph = root.compiled_graph
        self.order = self.graph.order
        self.index = {id(n): i for i, n in enumerate(self.order)}
        self.structure = structure(self.graph)
        # Printing each node's whole subexpression costs time with the square of a deep model's size.
        self.formulas = len(self.order) <= FORMULAS
        self.templates: list[Any] = []
        self._template_ids: dict[tuple[str, int, int], int] = {}

    def num(self, v: Any) -> Any:
        """As `treegrad trace` prints: floats at the precision, anything else (a class index) as it is."""
        if isinstance(v, list):
            return [self.num(x) for x in v]
        return number(v, self.precision) if isinstance(v, float) else str(v)

    def shape(self) -> dict[str, Any]:
        """The graph's nodes, its groups and its derivative templates (what no step changes)."""
        g, order = self.graph, self.order
        first = trace_labels(order, self.precision)
        kinds = [n.kind for n in order]
        return {
            "nodes": {
                "label": first,
                "kind": kinds,
                "op": [_op_name(n) for n in order],
                "expr": [
                    node_expr(n, [first[self.index[id(c)]] for c in n.children]) if k not in LEAVES else ""
                    for n, k in zip(order, kinds)
                ],
                "rule": [self._rule(n) for n in order],
                "children": [[self.index[id(c)] for c in n.children] for n in order],
            },
            "templates": self.templates,
            "groups": as_data(self.structure),
            "paramNodes": [self.index[id(p)] for p in g.params],
            "paramNames": list(g.param_names),
        }

    def _rule(self, n: Node) -> list[int | None] | None:
        """Per child: the template of d node / d child (None for a constant argument)."""
        if n.kind != "op" or n.op is None:
            return None
        count = len(n.children)
        out: list[int | None] = []
        for i in range(count):
            key = (n.op.name, count, i)
            if key not in self._template_ids:
                latex = None if i in n.op.constant_args else derivative_latex(n.op, count, i)
                self.templates.append(None if latex is None else template(latex))
                self._template_ids[key] = len(self.templates) - 1
            out.append(self._template_ids[key])
        return out

    def steps(self, inputs: list[list[float]], targets: list[Any], loss: str, lr: float, steps: int) -> list[Any]:
        """`steps` per-sample SGD steps as the page shows them (the model's parameters move)."""
        traced = trace(
            self.root,
            inputs,
            targets,
            loss=loss,
            learning_rate=lr,
            steps=steps,
            precision=self.precision,
            formulas=self.formulas,
        )
        return [self._step(step) for step in traced]

    def _step(self, step: Any) -> dict[str, Any]:
        """One trace step; each node's arrivals in the order its parents' gradients reach it (the
        page derives the parents), each op's local derivatives by value (the page has the rule)."""
        num, nodes = self.num, step.nodes
        grads = [num(t.grad) for t in nodes]
        pnodes = [self.index[id(p)] for p in self.graph.params]
        return {
            "step": step.step,
            "sample": step.sample,
            "inputs": [[k, num(v)] for k, v in step.inputs.items()],
            "target": num(step.target),
            "output": num(step.output),
            "loss": num(step.loss),
            "lossGrad": num(step.loss_grad),
            "value": [num(t.value) for t in nodes],
            "grad": grads,
            "arrivals": [[num(gr) for _, gr in t.arrivals] for t in nodes],
            "local": [self._local(n, nodes) for n in self.order],
            # Each op's whole subexpression with this step's parameters (None where it is just `expr`).
            "formula": [
                t.formula if t.kind in ("op", "softmax", "output") and t.formula != t.expr else None for t in nodes
            ]
            if self.formulas
            else None,
            "params": [num(u.new) for u in step.params],
            # The update's gradient where it prints unlike the node's (-0 summed as 0.0 + -0.0 = 0).
            "paramGrad": {str(k): num(u.grad) for k, u in enumerate(step.params) if num(u.grad) != grads[pnodes[k]]},
            "groups": self._summaries(step),
        }

    def _local(self, n: Node, traced: list[Any]) -> list[str] | None:
        """Per child: d node / d child at this step's numbers; None for a leaf, a softmax or an output."""
        if n.kind != "op" or n.op is None:
            return None
        args = [traced[self.index[id(c)]].value for c in n.children]
        derivs = n.op.derivs_fn(len(args))(traced[self.index[id(n)]].value, *args)
        return ["0" if d is None else self.num(d) for d in derivs]

    def _summaries(self, step: Any) -> list[list[str]]:
        """Per group: [least, greatest value of what leaves it, least, greatest gradient there,
        the largest |gradient| of its parameters, how many of its ReLU units are off]."""
        out = []
        pgrad = {self.index[id(p)]: abs(u.grad) for p, u in zip(self.graph.params, step.params)}
        for grp in self.structure.groups:
            values = _flat([step.nodes[i].value for i in grp.tops])
            grads = _flat([step.nodes[i].grad for i in grp.tops])
            off = sum(1 for v in values if v == 0.0) if grp.activation == "relu" else 0
            largest = max((pgrad[i] for i in grp.params), default=None)
            row = [min(values), max(values), min(grads), max(grads)] if values else [None] * 4
            out.append(
                [
                    *("" if v is None else self.num(float(v)) for v in row),
                    "" if largest is None else self.num(largest),
                    str(off),
                ]
            )
        return out


def _flat(values: list[Any]) -> list[float]:
    return [float(x) for v in values for x in (v if isinstance(v, list) else [v])]


def _op_name(n: Node) -> str:
    if isinstance(n, Softmax):
        return "softmax"
    if isinstance(n, Output):
        return "output"
    return n.op.name if n.op is not None else ""


def _metrics(m: dict[str, Any], precision: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in ("loss", "accuracy", "mse", "mae", "r2"):
        v = m.get(key)
        if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
            out[key] = f"{v:.2%}" if key == "accuracy" else number(float(v), precision)
    return out


def _formula(root: Node, precision: int) -> dict[str, Any]:
    text = funcify(root, precision=precision)
    if len(text) > MAX_FORMULA:
        return {"text": None, "mathml": None, "length": len(text)}
    return {"text": text, "mathml": latex_to_mathml(funcify(root, precision=precision, format="latex"))}


def _surface(
    root: Node, task: str, labels: list[str] | None, X: list[list[float]], y: list[Any], inputs: list[str]
) -> dict[str, Any] | None:
    """For two inputs: the model on a grid over the data (probability, class or value), and the points."""
    if len(inputs) != 2 or not X:
        return None
    from ..engine.compiled import predict_many
    from .plotting import _span

    (x0, x1), (y0, y1) = _span([r[0] for r in X]), _span([r[1] for r in X])
    rows = [
        [x0 + (x1 - x0) * i / (GRID - 1), y0 + (y1 - y0) * j / (GRID - 1)] for j in range(GRID) for i in range(GRID)
    ]
    out = predict_many(root, rows)
    cells: list[Any]
    if task == "classes":
        cells = [max(range(len(o)), key=o.__getitem__) for o in out]
    else:
        cells = [round(float(o), 5) if math.isfinite(float(o)) else None for o in out]
    step = max(1, math.ceil(len(X) / MAX_POINTS))
    points = [[r[0], r[1], t] for r, t in zip(X[::step], y[::step])]
    return {
        "inputs": inputs,
        "x": [x0, x1],
        "y": [y0, y1],
        "n": GRID,
        "cells": cells,
        "points": points,
        "kind": task,
        "labels": labels,
    }


def write_page(
    out: Path,
    path: Path,
    data: str | None = None,
    *,
    steps: int = 3,
    learning_rate: float | None = None,
    precision: int = 4,
    force: bool = False,
    option: str = "-o",
) -> int:
    """`treegrad report` (and `trace --html`): the page of `page` written to `out`, checked
    writable first (not after tracing a large model); returns its size in bytes."""
    if steps > MAX_PAGE_STEPS:  # each step holds every node's numbers: 10,000 of iris were 264 MB
        raise OptionError(
            f"--steps {steps}: a page walks through at most {MAX_PAGE_STEPS:,} steps (each holds every node's "
            f"numbers); treegrad trace prints up to {MAX_TRACE_STEPS:,}",
            "--steps",
        )
    check_output(out, force=force, kind=PAGE, option=option)
    text = page(path, data, steps=steps, learning_rate=learning_rate, precision=precision)
    write_atomic(out, text, force=force, kind=PAGE, option=option)
    return len(text.encode("utf-8"))
