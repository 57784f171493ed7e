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

import base64
import hashlib
import html
import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..core.nodes import Leaf, Node, Output, Softmax
from ..core.printers import funcify, number
from ..files import PAGE, check_output, write_atomic

FULL_GRAPH = 300  # up to this many nodes the graph opens expanded; larger ones open as layers
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
) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data (numbers already formatted)."""
    from ..run.setups import trace_setup
    from ..run.tasks import class_labels, evaluate_rows
    from .trace import trace

    source = _source(path)
    # All rows, for the metrics and the points; the trace takes the first ones, in the file's
    # order, exactly as `treegrad trace` does with its rows=steps.
    setup = trace_setup(path, data, learning_rate)
    root = setup.root
    g = root.compiled_graph
    labels = class_labels(source.task, setup.classes, len(g.elements))

    def num(v: Any) -> Any:
        # As `treegrad trace` prints: floats at the precision, anything else (a class index) as it is.
        if isinstance(v, list):
            return [num(x) for x in v]
        return number(v, precision) if isinstance(v, float) else str(v)

    # Before tracing: the trace moves the parameters.
    now = evaluate_rows(root, source.task, setup.loss, setup.inputs, setup.targets)
    metrics = [{"part": f"{setup.source} ({len(setup.inputs)} rows, these parameters)", **_metrics(now, precision)}]
    for part, m in source.recorded.items():
        metrics.append({"part": f"{part} (recorded at training)", **_metrics(m, precision)})
    formula = _formula(root, precision)
    surface = _surface(root, source.task, labels, setup.inputs, setup.targets, g.input_names)
    big = len(g.order) > FULL_GRAPH
    traced = trace(
        root,
        setup.inputs,
        setup.targets,
        loss=setup.loss,
        learning_rate=setup.learning_rate,
        steps=steps,
        precision=precision,
        formulas=not big,
    )
    order = g.order
    index = {id(n): i for i, n in enumerate(order)}
    return {
        "name": source.name,
        "trained": source.trained,
        "task": source.task,
        "source": setup.source,
        "loss": setup.loss,
        "learningRate": num(setup.learning_rate),
        "precision": precision,
        "inputs": list(g.input_names),
        "classes": labels,
        "nodes": _nodes(order, index, traced[0].nodes),
        "level": _levels(order, index),
        "column": _columns(order, index),
        "collapsed": big,
        "paramNodes": [index[id(p)] for p in g.params],
        "paramNames": [u.name for u in traced[0].params],
        "steps": [_step(step, order, index, num, formulas=not big) for step in traced],
        "history": source.history,
        "metrics": metrics,
        "formula": formula,
        "surface": surface,
    }


def _nodes(order: list[Node], index: dict[int, int], first: list[Any]) -> dict[str, list[Any]]:
    """The graph's nodes as the page draws them, from the first trace step's view of them."""
    # One list per field rather than one object per node: a page of 100,000 nodes is half the size.
    return {
        "label": [t.label for t in first],
        "kind": [t.kind for t in first],
        "op": [_op_name(n) for n in order],
        "expr": [t.expr if t.kind not in ("input", "parameter", "constant") else "" for t in first],
        "rule": [_rule(n, t, first, index) for n, t in zip(order, first, strict=True)],
        "children": [[index[id(c)] for c in n.children] for n in order],
    }


def _op_name(n: Node) -> str:
    if isinstance(n, Softmax):
        return "softmax"
    if isinstance(n, Output):
        return "output"
    return n.op.name if n.op is not None else ""


def _levels(order: list[Node], index: dict[int, int]) -> list[int]:
    """Each node's distance from the leaves (longest path): the forward pass's order by rank."""
    level = [0] * len(order)
    for i, n in enumerate(order):  # children come first in the order
        if n.children:
            level[i] = 1 + max(level[index[id(c)]] for c in n.children)
    return level


def _columns(order: list[Node], index: dict[int, int]) -> list[int]:
    """Where each node is drawn, left to right: ops at their level, a leaf just left of its
    first user, so that parameters sit beside the op that uses them."""
    column = _levels(order, index)
    for n in reversed(order):
        if isinstance(n, Leaf) and n.parents:
            column[index[id(n)]] = min(column[index[id(p)]] for p in n.parents if id(p) in index) - 1
    return column


def _step(step: Any, order: list[Node], index: dict[int, int], num: Any, *, formulas: bool) -> dict[str, Any]:
    """One trace step with numbers as `treegrad trace` prints them, and each op's local
    derivatives from the op table with the step's numbers plugged in."""
    local: list[list[list[str]] | None] = []
    for n, t in zip(order, step.nodes, strict=True):
        local.append(_local(n, t, step.nodes, index, num))
    return {
        "step": step.step,
        "sample": step.sample,
        "inputs": [[k, num(v)] for k, v in step.inputs.items()],
        "target": num(step.target),
        "output": num(step.output),
        "loss": num(step.loss),
        "lossGrad": num(step.loss_grad),
        "value": [num(t.value) for t in step.nodes],
        "grad": [num(t.grad) for t in step.nodes],
        "arrivals": [[[p, num(gr)] for p, gr in t.arrivals] for t in step.nodes],
        "local": local,
        # Each op's whole subexpression with this step's parameters (None where it is just `expr`).
        "formula": [
            t.formula if t.kind in ("op", "softmax", "output") and t.formula != t.expr else None for t in step.nodes
        ]
        if formulas
        else None,
        "params": [[num(u.old), num(u.grad), num(u.new)] for u in step.params],
    }


def _local(n: Node, t: Any, traced: list[Any], index: dict[int, int], num: Any) -> list[list[str]] | None:
    """Per child: [d node / d child written with the numbers, its value], or None for a leaf.

    An op's derivative is the op table's expression (the one the engines compile) over the
    printed numbers; a softmax's or an output's is described in words, since it is a matrix
    or the identity.
    """
    if isinstance(n, Leaf):
        return None
    if isinstance(n, Softmax):
        return [["p_i (g_i − Σ p_j g_j), the softmax's Jacobian times its incoming gradients", ""] for _ in n.children]
    if isinstance(n, Output):
        return [["1 (the output passes each element's gradient through)", "1"] for _ in n.children]
    op = n.op
    assert op is not None
    args = [traced[index[id(c)]].value for c in n.children]
    shown = [_operand(num(a)) for a in args]
    derivs = op.derivs_fn(len(args))(t.value, *args)
    out = []
    for i, d in enumerate(derivs):
        if d is None:
            out.append(["constant: no gradient", "0"])
        else:
            out.append([op.deriv(shown, _operand(num(t.value)), i), num(d)])
    return out


def _rule(n: Node, t: Any, traced: list[Any], index: dict[int, int]) -> list[str] | None:
    """Per child: d node / d child in the op table's form, over the children's labels."""
    if isinstance(n, Leaf) or n.op is None:
        return None
    args = [traced[index[id(c)]].label for c in n.children]
    return ["0" if i in n.op.constant_args else n.op.deriv(args, t.label, i) for i in range(len(n.children))]


def _operand(s: str) -> str:
    return f"({s})" if s.startswith("-") else s


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


# ----------------------------------------------------------------- the formula as MathML
# funcify's LaTeX is a small language: \frac{}{}, \left( \right), ^{}, _{}, \operatorname{},
# \mathit{}, a few symbols and escapes, and \\ between lines. It is turned into MathML Core,
# which browsers render with no script or font to fetch.

_SYMBOLS = {
    "cdot": ("mo", "·"),
    "sigma": ("mi", "σ"),
    "tanh": ("mi", "tanh"),
    "exp": ("mi", "exp"),
    "log": ("mi", "log"),
    "backslash": ("mi", "\\"),
    "wedge": ("mo", "∧"),
    "sim": ("mo", "∼"),
}
_TOKEN = re.compile(r"\\\\|\\[A-Za-z]+|\\.|[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|\s+|.", re.S)


def latex_to_mathml(latex: str) -> str:
    """funcify's LaTeX as MathML: one `<math>` element per line (`h1 = ...`, then the output)."""
    return "".join(f'<math display="block">{_MathParser(line).row()}</math>' for line in latex.split("\\\\"))


class _MathParser:
    """Reads one line of funcify's LaTeX, left to right, into MathML (no recursion on depth:
    groups are kept on an explicit stack)."""

    def __init__(self, text: str) -> None:
        self.tokens = [t for t in _TOKEN.findall(text) if not t.isspace()]

    def row(self) -> str:
        # Each frame: (closing token, parts, how to wrap them when it closes).
        stack: list[tuple[str, list[str], str]] = [("", [], "mrow")]
        i = 0
        toks = self.tokens
        while i < len(toks):
            t = toks[i]
            i += 1
            parts = stack[-1][1]
            if t == "\\frac":
                stack.append(("}", [], "frac-num"))
                i += 1  # the "{"
            elif t in ("^", "_"):
                stack.append(("}", [], "sup" if t == "^" else "sub"))
                i += 1
            elif t == "\\left":
                opener = toks[i]
                i += 1
                fence = {"\\{": "{", "\\|": "‖"}.get(opener, opener)
                stack.append(("\\right", [f"<mo>{html.escape(fence)}</mo>"], "fenced"))
            elif t == "\\right":
                closer = toks[i]
                i += 1
                fence = {"\\}": "}"}.get(closer, closer)
                closing, inner, _ = stack.pop()
                assert closing == "\\right"
                stack[-1][1].append(f"<mrow>{''.join(inner)}<mo>{html.escape(fence)}</mo></mrow>")
            elif t in ("\\operatorname", "\\mathit"):
                j = toks.index("}", i)
                name = "".join(_unescape(x) for x in toks[i + 1 : j])
                i = j + 1
                parts.append(
                    f"<mi>{html.escape(name)}</mi>"
                    if t == "\\mathit"
                    else f'<mi mathvariant="normal">{html.escape(name)}</mi>'
                )
            elif t == "{":
                stack.append(("}", [], "mrow"))
            elif t == "}":
                closing, inner, kind = stack.pop()
                group = f"<mrow>{''.join(inner)}</mrow>"
                target = stack[-1][1]
                if kind == "frac-num":
                    stack.append(("}", [group], "frac-den"))
                    i += 1  # the "{" of the denominator
                elif kind == "frac-den":
                    target.append(f"<mfrac>{inner[0]}<mrow>{''.join(inner[1:])}</mrow></mfrac>")
                elif kind in ("sup", "sub"):
                    base = target.pop() if target else "<mrow></mrow>"
                    target.append(f"<m{kind}>{base}{group}</m{kind}>")
                else:
                    target.append(group)
            elif t.startswith("\\") and t[1:] in _SYMBOLS:
                tag, text = _SYMBOLS[t[1:]]
                parts.append(f"<{tag}>{html.escape(text)}</{tag}>")
            elif t[0].isdigit():
                parts.append(f"<mn>{t}</mn>")
            elif t[0].isalpha():
                parts.append(f"<mi>{html.escape(t)}</mi>")
            else:
                parts.append(f"<mo>{html.escape(_unescape(t))}</mo>")
        while len(stack) > 1:  # unbalanced input: keep what was read
            _, inner, _ = stack.pop()
            stack[-1][1].append(f"<mrow>{''.join(inner)}</mrow>")
        return f"<mrow>{''.join(stack[0][1])}</mrow>"


def _unescape(t: str) -> str:
    if t == "\\ ":
        return " "
    if t.startswith("\\") and len(t) == 2:
        return t[1]
    if t.startswith("\\") and t[1:] in _SYMBOLS:
        return _SYMBOLS[t[1:]][1]
    return t


# ----------------------------------------------------------------- the page


def _asset(name: str) -> str:
    return (resources.files("treegrad.outputs") / "report_assets" / name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def render(data: dict[str, Any]) -> str:
    """The page: the template with its style, script and data inlined."""
    style, script = _asset("report.css"), _asset("report.js")
    mathml = data["formula"]["mathml"] or ""
    # JSON inside <script> must not close it: every <, > and & is written as a \u escape.
    payload = (
        json.dumps(data, ensure_ascii=False, allow_nan=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    csp = (
        f"default-src 'none'; script-src {_csp_hash(script)}; style-src {_csp_hash(style)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    data = {**data, "formula": {**data["formula"], "mathml": bool(data["formula"]["mathml"])}}  # in the body only
    fill = {
        "csp": html.escape(csp, quote=False),  # our own text, with no double quote
        "title": html.escape(f"treegrad · {data['name']}"),
        "style": style,
        "mathml": mathml,
        "data": payload,
        "script": script,
    }
    # One pass, so that text filled in (a label reading "{{script}}") is never filled again.
    return re.sub(r"\{\{(\w+)\}\}", lambda m: fill[m.group(1)], _asset("report.html"))


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
    check_output(out, force=force, kind=PAGE, option=option)
    text = page(path, data, steps=steps, learning_rate=learning_rate, precision=precision)
    write_atomic(out, text, force=force, kind=PAGE, option=option)
    return len(text.encode("utf-8"))
