"""Taking a model elsewhere: as a standalone Python module, a Graphviz picture, a JSON dump
of its graph, a simplified formula (sympy), a LaTeX document, or an ONNX model.

Every exporter walks the compiled graph in evaluation order and translates each node
through the op table (`ops.OPS`): the Python module pastes the op's own value expression,
as the compiled evaluator does; sympy and ONNX use the entry's `sympy` and `onnx` forms.

The standalone Python module is standalone.py's, written with the helpers here.
Which of these `show` and `export` offer, and how each is written to a file, is the table of
formats.py.

Safety: what a user wrote (input, parameter, class and model names) reaches generated
Python only as `repr()` string literals, or as argument names when it is a plain ASCII
identifier that shadows nothing the module uses; DOT labels and LaTeX are escaped.
"""

from __future__ import annotations

import builtins
import json
import keyword
import math
import re
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..core.nodes import Constant, Input, Leaf, Node, Output, Parameter
from ..core.ops import NAMESPACE, softmax_code
from ..core.printers import funcify, number
from ..data.columns import Source, input_name, sources
from ..errors import TreegradError
from ..files import LATEX_MARK
from ..run.modelfile import Opened
from ..run.tasks import class_labels

ONNX_OPSET = 17
ONNX_IR_VERSION = 8  # the IR that goes with opset 17; readable by onnxruntime >= 1.11
SIMPLIFY_LIMIT = 30  # sympy.simplify on more operations than this can take minutes: expand only
# --simplify hands the formula to sympy, whose expand and printers recurse through it and
# multiply it out: beyond these it would take minutes or hit Python's recursion limit.
SIMPLIFY_MAX_DEPTH = 60  # operations nested in one another
SIMPLIFY_MAX_TERMS = 2000  # terms of the formula multiplied out, estimated from the graph


def _graph(root: Node) -> Any:
    if root.graph is None:
        root.compile()
    assert root.graph is not None
    return root.graph


def model_labels(model: Opened) -> list[str] | None:
    """The labels `treegrad predict` prints (the same defaults as `tasks.decode`)."""

    g = _graph(model.root)
    task = "classes" if g.is_softmax and model.task is None else model.task
    return class_labels(task, model.classes, len(g.elements))


# ----------------------------------------------------------------- standalone Python


# Names a generated module (standalone.py, torchsource.py) defines itself.
_MODULE_NAMES = {"NAME", "INPUTS", "COLUMNS", "VALUES", "CLASSES", "PARAMETERS", "predict", "predict_label"}
_MODULE_NAMES |= {"predict_row", "encode", "math", "torch", "Model"}


def is_plain_name(name: str) -> bool:
    """True if `name` can be a Python argument name in generated code without risk.

    ASCII only (Unicode identifiers are normalised, so two different names could become
    one), not a keyword, no leading underscore (the generated locals start with one),
    and no name that the generated module or Python's builtins already use.
    """
    return (
        name.isascii()
        and name.isidentifier()
        and not keyword.iskeyword(name)
        and not keyword.issoftkeyword(name)
        and not name.startswith("_")
        and name not in NAMESPACE
        and name not in _MODULE_NAMES
        and not hasattr(builtins, name)
    )


def argument_names(input_names: Sequence[str]) -> list[str]:
    """The names if every one is a plain name (and they differ), else x0, x1, ... for all of them."""
    if all(is_plain_name(n) for n in input_names) and len(set(input_names)) == len(input_names):
        return list(input_names)
    return [f"x{j}" for j in range(len(input_names))]


def columns(model: Opened) -> list[Source]:
    """The CSV columns the model reads, in the order of its inputs: as its model file records how
    they became inputs (renamed, one-hot); a model of a spec reads its inputs as they are named."""
    inputs = list(_graph(model.root).input_names)
    if model.loaded is None:
        return sources(inputs, {}, {})
    record = model.loaded.record
    return sources(inputs, dict(record.renamed or {}), dict(record.encodings or {}))


def column_arguments(found: Sequence[Source]) -> list[str]:
    """An argument name per column: its input's name (a text column: the column's, made usable),
    or x0, x1, ... for all when one is not a plain name (`argument_names`)."""
    return argument_names([s.inputs[0] if s.values is None else input_name(s.column) for s in found])


def python_names(graph: Any) -> dict[int, str]:
    """A generated local name per node: _x (inputs), _p (parameters), _c (constants), _v (ops)."""
    names: dict[int, str] = {}
    for j, name in enumerate(graph.input_names):
        for node in graph.inputs_by_name.get(name, ()):
            names[id(node)] = f"_x{j}"
    for k, p in enumerate(graph.params):
        names[id(p)] = f"_p{k}"
    for k, c in enumerate(graph.constants):
        names[id(c)] = f"_c{k}"
    for i, n in enumerate(graph.order):
        names.setdefault(id(n), f"_v{i}")
    return names


def python_body(graph: Any) -> tuple[list[str], str]:
    """(statements, returned expression): one assignment per node, from the op table."""
    names = python_names(graph)
    lines: list[str] = []
    for k, p in enumerate(graph.params):
        lines.append(f"_p{k} = {float(p.value)!r}")
    for k, c in enumerate(graph.constants):
        lines.append(f"_c{k} = {float(c.value)!r}")
    outputs = [names[id(e)] for e in graph.elements]
    for n in graph.order:
        if isinstance(n, Leaf):
            continue
        args = [names[id(c)] for c in n.children]
        if n.kind == "softmax":
            outputs = [f"_s{j}" for j in range(len(args))]
            lines += softmax_code(args, outputs, "_sm")
        elif isinstance(n, Output):
            continue
        else:
            assert n.op is not None
            lines.append(f"{names[id(n)]} = {n.op.value(args)}")
    result = f"[{', '.join(outputs)}]" if graph.is_list else outputs[0]
    return lines, result


# ----------------------------------------------------------------- Graphviz and JSON


def _dot_string(text: str) -> str:
    """A DOT quoted string: backslashes and quotes escaped, line breaks as DOT's \\n."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    text = re.sub(r"\r\n|\r|\n", r"\\n", text)
    return '"' + re.sub(r"[\x00-\x1f\x7f]", " ", text) + '"'


_DOT_STYLE = {
    "input": 'shape=box, style="rounded,filled", fillcolor="#d8f0d8"',
    "parameter": 'shape=box, style="rounded,filled", fillcolor="#d8e8f8"',
    "constant": 'shape=box, style=rounded, color="#999999"',
    "op": 'shape=ellipse, style=filled, fillcolor="#f4f4f4"',
    "softmax": 'shape=doubleoctagon, style=filled, fillcolor="#f8e8c8"',
    "output": 'shape=doubleoctagon, style=filled, fillcolor="#f8e8c8"',
}


def dot_source(root: Node, precision: int = 4) -> str:
    """A Graphviz digraph: each node once (shared nodes too), edges from child to parent."""
    g = _graph(root)
    ids = {id(n): f"n{i}" for i, n in enumerate(g.order)}
    lines = [
        "digraph treegrad {",
        "  rankdir=BT;",
        '  node [fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for n in g.order:
        kind = n.kind
        if kind == "input":
            label = n.name or "x"
        elif kind == "parameter":
            label = f"{n.name} = {number(float(n.value), precision)}"
        elif kind == "constant":
            label = number(float(n.value), precision)
        elif kind == "op":
            assert n.op is not None
            label = n.op.name
        else:
            label = kind
        lines.append(f"  {ids[id(n)]} [label={_dot_string(label)}, {_DOT_STYLE[kind]}];")
    for n in g.order:
        # Argument order matters for sub, div, pow and the outputs: number those edges.
        ordered = n.children and (
            isinstance(n, Output) or (n.op is not None and n.op.arity is not None and len(n.children) > 1)
        )
        for k, c in enumerate(n.children):
            attrs = f' [label="{k + 1}"]' if ordered else ""
            lines.append(f"  {ids[id(c)]} -> {ids[id(n)]}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_document(model: Opened, precision: int = 4) -> str:
    """The model's graph as a Graphviz file (`dot_source`), as `export --format dot` writes it."""
    return dot_source(model.root, precision)


def graph_dict(model: Opened) -> dict[str, Any]:
    """The compiled graph as plain data: nodes in evaluation order, children by id.

    Each node has `id`, `kind` (input, parameter, constant, op, output, softmax) and
    `children`; inputs and parameters a `name`; parameters and constants a `value`;
    ops their `op` name from the op table. `output` is the id of the model's output.
    """
    g = _graph(model.root)
    index = {id(n): i for i, n in enumerate(g.order)}
    nodes: list[dict[str, Any]] = []
    for i, n in enumerate(g.order):
        kind = n.kind
        entry: dict[str, Any] = {"id": i, "kind": kind}
        if kind in ("input", "parameter"):
            entry["name"] = n.name
        if kind == "op":
            assert n.op is not None
            entry["op"] = n.op.name
        if kind in ("parameter", "constant"):
            entry["value"] = float(n.value)
        entry["children"] = [index[id(c)] for c in n.children]
        nodes.append(entry)
    return {
        "format": "treegrad-graph",
        "version": 1,
        "name": model.name,
        "inputs": list(g.input_names),
        "classes": model_labels(model),
        "output": index[id(g.output)],
        "nodes": nodes,
    }


def graph_json(model: Opened) -> str:
    """`graph_dict` as indented JSON text."""
    return json.dumps(graph_dict(model), indent=1) + "\n"


# ----------------------------------------------------------------- LaTeX


def latex_document(model: Opened, precision: int = 4) -> str:
    """A standalone LaTeX document (amsmath) showing the model's formula."""
    formula = funcify(model.root, precision=precision, format="latex")
    return (
        "\n".join(
            [
                r"\documentclass{article}",
                r"\usepackage{amsmath}",
                LATEX_MARK,  # how export -o knows a file it may write again (files.LATEX)
                r"\begin{document}",
                r"\begin{gather*}",
                formula,
                r"\end{gather*}",
                r"\end{document}",
            ]
        )
        + "\n"
    )


# ----------------------------------------------------------------- sympy


def _sympy() -> Any:
    try:
        import sympy
    except ImportError:
        raise TreegradError(
            "simplifying a formula needs sympy, which is not installed: "
            "pip install sympy (or pip install 'treegrad[simplify]')"
        ) from None
    return sympy


def sympy_exprs(root: Node) -> tuple[list[Any], bool]:
    """(one sympy expression per output element, whether they go through a softmax)."""
    sp = _sympy()
    g = _graph(root)
    symbols = {name: sp.Symbol(name, real=True) for name in g.input_names}
    expr: dict[int, Any] = {}
    for n in g.order:
        if isinstance(n, Input):
            expr[id(n)] = symbols[n.name]
        elif isinstance(n, (Parameter, Constant)):
            v = float(n.value)
            expr[id(n)] = sp.Integer(int(v)) if v.is_integer() and abs(v) < 2**53 else sp.Float(v)
        elif isinstance(n, Output):
            continue
        else:
            assert n.op is not None
            expr[id(n)] = n.op.sympy(sp, [expr[id(c)] for c in n.children])
    return [expr[id(e)] for e in g.elements], g.is_softmax


def _check_simplifiable(g: Any) -> None:
    """Raise TreegradError if sympy cannot simplify the formula of `g` in bounded time.

    Per node, in topological order: its nesting depth, and how many terms it has when
    multiplied out (a sum adds its arguments' terms, a product multiplies them, a power
    raises them to the exponent; a function of x counts as one term), capped so the
    numbers stay small. A DAG of 40 doublings or (x + y + 1)^256 is refused at once.
    """
    cap = SIMPLIFY_MAX_TERMS + 1
    depth: dict[int, int] = {}
    terms: dict[int, int] = {}
    for n in g.order:
        kids = n.children
        depth[id(n)] = 1 + max((depth[id(c)] for c in kids), default=-1)
        t = [terms[id(c)] for c in kids]
        name = n.op.name if n.op is not None else ""
        if name == "neg":
            terms[id(n)] = t[0]
        elif name in ("add", "sub"):
            terms[id(n)] = min(cap, sum(t))
        elif name in ("mul", "div"):
            terms[id(n)] = min(cap, math.prod(t))
        elif name == "pow":
            k = abs(float(n.children[1].value))
            terms[id(n)] = cap if t[0] > 1 and k > math.log(cap, t[0]) else min(cap, t[0] ** max(1, math.ceil(k)))
        else:
            terms[id(n)] = 1
        worst_terms = max(terms[id(c)] for c in kids) if kids else 1
        problem = ""
        if depth[id(n)] > SIMPLIFY_MAX_DEPTH:
            problem = f"operations nested more than {SIMPLIFY_MAX_DEPTH} deep"
        elif max(terms[id(n)], worst_terms) > SIMPLIFY_MAX_TERMS:
            problem = f"more than {SIMPLIFY_MAX_TERMS:,} terms when multiplied out"
        if problem:
            raise TreegradError(
                f"--simplify: the formula is too large for sympy ({problem}); "
                "show it without --simplify, or export it with --format python"
            )


def simplified(root: Node, precision: int = 4, format: str = "text") -> str:
    """The model's formula simplified by sympy, numbers shown to `precision` digits."""
    if format not in ("text", "latex"):
        raise TreegradError(f"--simplify prints text or latex, not {format}")
    _check_simplifiable(_graph(root))  # the size first: it needs no sympy, and is true without it
    sp = _sympy()
    exprs, is_softmax = sympy_exprs(root)
    shown = []
    for e in exprs:
        e = sp.expand(e)
        if sp.count_ops(e) <= SIMPLIFY_LIMIT:
            e = sp.simplify(e)
        e = sp.N(e, precision)
        e = e.xreplace({f: sp.Float(f, precision) for f in e.atoms(sp.Float)})  # N leaves digits inside functions
        shown.append(sp.latex(e) if format == "latex" else str(e))
    g = _graph(root)
    if not g.is_list:
        return shown[0]
    inner = ", ".join(shown)
    if format == "latex":
        return rf"\operatorname{{softmax}}\left({inner}\right)" if is_softmax else rf"\left[{inner}\right]"
    return f"softmax({inner})" if is_softmax else f"[{inner}]"


# ----------------------------------------------------------------- ONNX


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise TreegradError(
            "ONNX export needs the onnx package, which is not installed: "
            "pip install onnx (and onnxruntime to run the result), "
            "or pip install 'treegrad[onnx]'"
        ) from None
    return onnx


class _OnnxGraph:
    """An ONNX graph as it is built: its nodes (each named for its one output) and initializers,
    named apart from the graph's inputs (`taken`: a column may be called p0 or y)."""

    def __init__(self, helper: Any, tensor_proto: Any, taken: set[str]) -> None:
        self.helper = helper
        self.types = tensor_proto
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.taken = taken

    def fresh(self, name: str) -> str:
        """`name`, or with `_` after it while a graph input has it (no name of ours ends in `_`)."""
        while name in self.taken:
            name += "_"
        return name

    def emit(self, op_type: str, inputs: list[str], output: str, **attrs: Any) -> str:
        """Add a node computing `output`; return its name."""
        output = self.fresh(output)
        self.nodes.append(self.helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output

    def tensor(self, name: str, data_type: int, dims: list[int], values: list[Any], doc: str = "") -> str:
        """Add an initializer; return its name."""
        name = self.fresh(name)
        t = self.helper.make_tensor(name, data_type, dims, values)
        if doc:
            t.doc_string = doc
        self.inits.append(t)
        return name


ONNX_ML_OPSET = 1  # the ai.onnx.ml domain, for OneHotEncoder


def onnx_model(model: Opened) -> Any:
    """An ONNX model (opset 17, float64 throughout) computing the model's output from the columns
    of its data, as `treegrad predict` takes them (numbers in their own units; standardised inside).

    A model of numbers only has one input `X` of shape [N, k]: N samples, the k columns in the
    order of the metadata entry `columns`. A model with text columns (one-hot) has one input per
    column, named as the column, of shape [N]: float64 for a number, a string for text (one of the
    values the model was trained on; ONNX-ML's OneHotEncoder encodes it). One output `y` (`y_` if
    a column is named y): shape [N] for a single output, [N, m] for a list output or a softmax
    (probabilities, one per class).
    """
    onnx = _onnx()
    from onnx import TensorProto, helper

    g = _graph(model.root)
    found = columns(model)
    by_column = any(s.values is not None for s in found)
    b = _OnnxGraph(helper, TensorProto, {s.column for s in found} if by_column else {"X"})
    names, depends = _onnx_leaves(b, g)
    inputs = _onnx_columns(b, g, found, names, depends)
    _onnx_ops(b, g, names, depends)
    y_info = _onnx_output(b, g, names, depends, inputs[0].name if inputs else "X")
    graph = helper.make_graph(
        b.nodes,
        "treegrad",
        inputs,
        [y_info],
        b.inits,
        doc_string="one input per column of the data, [N] each (see metadata 'columns')"
        if by_column
        else "X: [N, k] float64, the columns of the data (see metadata 'columns')",
    )
    opsets = [helper.make_opsetid("", ONNX_OPSET)]
    if by_column:
        opsets.append(helper.make_opsetid("ai.onnx.ml", ONNX_ML_OPSET))
    m = helper.make_model(graph, producer_name="treegrad", producer_version=__version__, opset_imports=opsets)
    m.ir_version = ONNX_IR_VERSION
    meta = {
        "name": model.name,
        "columns": json.dumps([{"name": s.column, "values": s.values} for s in found]),
        "inputs": json.dumps(list(g.input_names)),
        "task": model.task or "",
        "classes": json.dumps(model_labels(model)),
    }
    helper.set_model_props(m, meta)
    onnx.checker.check_model(m)
    return m


def _onnx_leaves(b: _OnnxGraph, g: Any) -> tuple[dict[int, str], set[int]]:
    """Each parameter and constant an initializer: (the ONNX name of each leaf, the leaves whose
    value varies with the input, shape [N] rather than a scalar: none yet)."""
    types = b.types
    names: dict[int, str] = {}
    for k, p in enumerate(g.params):
        names[id(p)] = b.tensor(f"p{k}", types.DOUBLE, [], [float(p.value)], doc=f"parameter {p.name}")
    for k, c in enumerate(g.constants):
        names[id(c)] = b.tensor(f"c{k}", types.DOUBLE, [], [float(c.value)])
    return names, set()


def _onnx_columns(b: _OnnxGraph, g: Any, found: list[Source], names: dict[int, str], depends: set[int]) -> list[Any]:
    """The graph's inputs, and each model input as a [N] tensor made from them (added to `names`
    and `depends`): columns of X, or per column a number, or text one-hot encoded."""
    types, helper = b.types, b.helper
    made: dict[str, str] = {}  # model input -> its [N] tensor
    if all(s.values is None for s in found):
        for j, name in enumerate(g.input_names):
            made[name] = b.emit("Gather", ["X", b.tensor(f"col{j}", types.INT64, [], [j])], f"x{j}", axis=1)
        inputs = [helper.make_tensor_value_info("X", types.DOUBLE, ["N", len(g.input_names)])]
    else:
        inputs = []
        for k, s in enumerate(found):
            if s.values is None:
                made[s.inputs[0]] = s.column
                inputs.append(helper.make_tensor_value_info(s.column, types.DOUBLE, ["N"]))
                continue
            inputs.append(helper.make_tensor_value_info(s.column, types.STRING, ["N"]))
            # zeros=0: a value the model was not trained on is an error, as it is for predict.
            hot = b.emit("OneHotEncoder", [s.column], f"onehot{k}", domain="ai.onnx.ml", cats_strings=s.values, zeros=0)
            hot = b.emit("Cast", [hot], f"onehot{k}_double", to=types.DOUBLE)
            for j, name in enumerate(s.inputs):
                index = b.tensor(f"onehot{k}_{j}", types.INT64, [], [j])
                made[name] = b.emit("Gather", [hot, index], f"onehot{k}_col{j}", axis=1)
    for name in g.input_names:
        for node in g.inputs_by_name.get(name, ()):
            names[id(node)] = made[name]
            depends.add(id(node))
    return inputs


def _onnx_ops(b: _OnnxGraph, g: Any, names: dict[int, str], depends: set[int]) -> None:
    """Each op node as its ONNX operator from the op table, in evaluation order (adds to `names`
    and `depends`)."""
    for i, n in enumerate(g.order):
        if isinstance(n, (Leaf, Output)):
            continue
        assert n.op is not None
        args = [names[id(c)] for c in n.children]
        op_type = n.op.onnx
        if op_type is None:
            raise TreegradError(
                f"the op '{n.op.name}' has no ONNX operator, so this model cannot be exported to ONNX; "
                "export it as python instead"
            )
        if n.op.arity is None:  # a chain, ((a0 + a1) + a2) + ..., so sums round as in treegrad
            acc = args[0]
            for m, a in enumerate(args[1:], start=1):
                acc = b.emit(op_type, [acc, a], f"v{i}" if m == len(args) - 1 else f"v{i}_{m}")
            names[id(n)] = acc
        else:
            names[id(n)] = b.emit(op_type, args, f"v{i}")
        if any(id(c) in depends for c in n.children):
            depends.add(id(n))


def _onnx_output(b: _OnnxGraph, g: Any, names: dict[int, str], depends: set[int], rows_from: str) -> Any:
    """The output `y` from the model's elements (columns of [N, m], through a softmax for one);
    returns its value info. `rows_from`: an input with a row per sample."""
    types, helper = b.types, b.helper
    n_rows: list[str] = []  # the name of a [1] tensor holding N, made when first needed

    def per_sample(j: int, e: Node) -> str:
        """The element as a [N] tensor; one that does not depend on the inputs is broadcast to N rows."""
        if id(e) in depends:
            return names[id(e)]
        if not n_rows:
            start, end = b.tensor("start0", types.INT64, [1], [0]), b.tensor("end1", types.INT64, [1], [1])
            n_rows.append(b.emit("Slice", [b.emit("Shape", [rows_from], "x_shape"), start, end], "n_rows"))
        return b.emit("Expand", [names[id(e)], n_rows[0]], f"element{j}")

    columns = [per_sample(j, e) for j, e in enumerate(g.elements)]
    if not g.is_list:
        y = b.emit("Identity", [columns[0]], "y")
        return helper.make_tensor_value_info(y, types.DOUBLE, ["N"])
    axis = b.tensor("axis1", types.INT64, [1], [1])
    cols = [b.emit("Unsqueeze", [c, axis], f"out{j}") for j, c in enumerate(columns)]
    y = z = b.emit("Concat", cols, "z" if g.is_softmax else "y", axis=1)
    if g.is_softmax:
        y = b.emit("Softmax", [z], "y", axis=1)
    return helper.make_tensor_value_info(y, types.DOUBLE, ["N", len(columns)])


def onnx_bytes(model: Opened) -> bytes:
    """The ONNX model serialised, ready to write to a .onnx file."""
    return onnx_model(model).SerializeToString()  # type: ignore[no-any-return]
