"""Every op of the table, end to end: an op added to `ops.py` alone is taken through spec,
build, training by every engine, funcify and every exporter here, so an op that is only
half added (a form missing or wrong, an array form missing where its value branches)
fails a test that names it. Also: the classes, losses and node kinds derived from the tables."""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable
from typing import Any

import pytest

import treegrad
import treegrad.core.nodes
from treegrad import Add, Input, Node, Parameter, Softmax
from treegrad.core.nodes import OPERATIONS, Constant, Linear, Output
from treegrad.core.ops import OPS, Op, python_namespace
from treegrad.core.printers import funcify
from treegrad.engine.losses import LOSSES, default_loss, fitting
from treegrad.outputs.export import dot_source, graph_dict, latex_document, sympy_exprs
from treegrad.outputs.standalone import python_module
from treegrad.run.modelfile import Opened
from treegrad.spec.build import build_model, loss_name, task_kind
from treegrad.spec.models import parse_spec

FIT = importlib.import_module("treegrad.engine.fit")
ROWS = [[0.1 * i, 1.0 - 0.07 * i] for i in range(12)]
TARGETS = [0.3 + 0.05 * i for i in range(12)]
SAMPLE = [0.4, 0.7]


def spec_text(op: Op) -> str:
    """A model of two inputs whose output is `op` over arguments in (0.6, 3.4): on the smooth
    part of every op's domain; a constant argument (an exponent) is 2. A linear neuron in each
    argument gives the vectorized trainer a dense layer to take."""
    n = 2 if op.arity is None else op.arity
    args = ["2.0" if i in op.constant_args else "{add: [{linear: [x, y]}, 2.0]}" for i in range(n)]
    arg = args[0] if n == 1 else f"[{', '.join(args)}]"
    return f"inputs: [x, y]\noutput:\n  {op.name}: {arg}\ntraining: {{seed: 3}}\n"


def model(op: Op) -> Node:
    return build_model(parse_spec(spec_text(op), f"{op.name}.yaml"))


def train(
    op: Op, engine: str, batch_size: int, vectorized: bool, monkeypatch: pytest.MonkeyPatch, dtype: str = "float64"
) -> list[float]:
    """One epoch of a fresh model (its arrays in `dtype`); the parameters after it."""
    used: list[bool] = []

    def spy(graph: Any, loss: Any, opt: Any, batch_size: int, *rules: Any) -> Any:
        from treegrad.engine.vectorized import vectorized_epoch_fn

        fn = vectorized_epoch_fn(graph, loss, opt, None, *rules) if vectorized else None  # however small the batch
        used.append(fn is not None)
        return fn

    root = model(op)
    with monkeypatch.context() as mp:
        mp.setattr(FIT, "vectorized_epoch_fn", spy)
        hist = treegrad.fit(
            root, ROWS, TARGETS, epochs=1, batch_size=batch_size, learning_rate=0.05, engine=engine, dtype=dtype
        )
    assert len(hist) == 1 and math.isfinite(hist[0]), f"op '{op.name}': one epoch gave loss {list(hist)}"
    assert any(used) == vectorized, f"op '{op.name}': the vectorized trainer was {'not ' if vectorized else ''}used"
    assert root.graph is not None
    return root.graph.param_values()


def check_array_forms(op: Op) -> None:
    """The op's value and derivatives evaluate on NumPy arrays, or a message naming what to add."""
    import numpy as np

    from treegrad.engine.vectorized import array_namespace

    n = 2 if op.arity is None else op.arity
    args = [f"a{i}" for i in range(n)]
    cols = {a: np.array([1.5, 2.5]) for a in args}
    try:
        out = eval(op.array_value(args), array_namespace(), dict(cols))  # noqa: S307 - the table's own text
    except (ValueError, TypeError, NameError) as e:
        pytest.fail(f"op '{op.name}': its value does not work on arrays ({e}); give its entry np_value")
    for i in range(n):
        if i in op.constant_args:
            continue
        try:
            eval(op.array_deriv(args, "out", i), array_namespace(), {**cols, "out": out})  # noqa: S307
        except (ValueError, TypeError, NameError) as e:
            pytest.fail(f"op '{op.name}': its derivative does not work on arrays ({e}); give its entry np_deriv")


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return abs(a - b) <= rel * max(1.0, abs(b))


def engines(op: Op, monkeypatch: pytest.MonkeyPatch) -> None:
    """The array forms, one epoch by every engine of treegrad's own, and the gradient the table
    gives against finite differences."""
    # The forms the vectorized trainer evaluates on arrays, where an `if` cannot stand.
    check_array_forms(op)

    # Training: every engine and batch size, agreeing with the reference engine.
    for batch in (1, 4):
        ref = train(op, "reference", batch, False, monkeypatch)
        runs = {"compiled": train(op, "compiled", batch, False, monkeypatch)}
        if batch > 1:
            runs["vectorized"] = train(op, "compiled", batch, True, monkeypatch)
        for engine, params in runs.items():
            assert all(close(a, b) for a, b in zip(params, ref, strict=True)), (
                f"op '{op.name}': the {engine} engine (batch {batch}) disagrees with the reference one: "
                f"{params} != {ref}"
            )
        # the vectorized engine in float32 (training.dtype), to float32's rounding
        single = train(op, "compiled", batch, True, monkeypatch, dtype="float32")
        assert all(close(a, b, 1e-5) for a, b in zip(single, ref, strict=True)), (
            f"op '{op.name}': the vectorized engine in float32 (batch {batch}) disagrees with the reference one: "
            f"{single} != {ref}"
        )

    # The gradient the table gives against finite differences, at the sample.
    root = model(op)
    g = root.compiled_graph
    g.set_inputs(SAMPLE)
    root.backward()
    for p in g.params:
        v, h = float(p.value), 1e-6
        p.value = v + h
        up = root.forward()
        p.value = v - h
        down = root.forward()
        p.value = v
        assert close(p.grad, (up - down) / (2 * h), 1e-5), (
            f"op '{op.name}': d/d{p.name} is {p.grad}, not {(up - down) / (2 * h)}"
        )


def printers(op: Op, monkeypatch: pytest.MonkeyPatch) -> None:
    """funcify: text and LaTeX print; Python runs with the functions treegrad defines."""
    root = model(op)
    for fmt in ("text", "latex"):
        assert funcify(root, format=fmt), f"op '{op.name}': empty {fmt} form"
    ns: dict[str, Any] = {**python_namespace(), "x": SAMPLE[0], "y": SAMPLE[1]}
    *lines, last = funcify(root, precision=17, format="python").split("\n")
    exec("\n".join(lines), ns)  # noqa: S102 - treegrad's own formula
    assert close(eval(last, ns), root.predict(SAMPLE)), f"op '{op.name}': its python form computes another value"  # noqa: S307


def exporters(op: Op, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exporters that need no optional package: Python module, LaTeX, dot, JSON graph."""
    root = model(op)
    opened = Opened(root, op.name, "regression", None)
    module: dict[str, Any] = {}
    exec(python_module(opened), module)  # noqa: S102 - treegrad's own module
    assert module["predict"](*SAMPLE) == pytest.approx(root.predict(SAMPLE), rel=1e-12), (
        f"op '{op.name}': exported python"
    )
    assert funcify(root, format="latex") in latex_document(opened)
    assert f'label="{op.name}"' in dot_source(root)
    assert op.name in [n.get("op") for n in json.loads(json.dumps(graph_dict(opened)))["nodes"]]


def sympy_form(op: Op, monkeypatch: pytest.MonkeyPatch) -> None:
    """The op built in sympy computes its value."""
    sympy = pytest.importorskip("sympy", reason="the sympy form needs sympy (pip install -e '.[simplify]')")
    root = model(op)
    (expr,), _ = sympy_exprs(root)
    x, y = sorted(expr.free_symbols, key=str)
    fn = sympy.lambdify((x, y), expr, modules=[python_namespace(), "math"])
    assert fn(*SAMPLE) == pytest.approx(root.predict(SAMPLE), rel=1e-9), (
        f"op '{op.name}': its sympy form computes another value"
    )


def onnx_form(op: Op, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exported ONNX model runs in onnxruntime, in float64, and computes the op's value."""
    why = "the ONNX form needs onnx and onnxruntime (pip install -e '.[onnx]')"
    pytest.importorskip("onnx", reason=why)
    onnxruntime = pytest.importorskip("onnxruntime", reason=why)
    import numpy as np

    from treegrad.outputs.export import onnx_bytes

    root = model(op)
    session = onnxruntime.InferenceSession(
        onnx_bytes(Opened(root, op.name, "regression", None)), providers=["CPUExecutionProvider"]
    )
    (y_onnx,) = session.run(None, {"X": np.array([SAMPLE], dtype=np.float64)})
    assert float(y_onnx[0]) == pytest.approx(root.predict(SAMPLE), rel=1e-12), f"op '{op.name}': its ONNX operator"


def torch_form(op: Op, monkeypatch: pytest.MonkeyPatch) -> None:
    """The torch module computes the op's value, and --engine torch trains as the reference engine."""
    torch = pytest.importorskip("torch", reason="the torch form needs torch (pip install -e '.[torch]')")
    from treegrad.torch.module import torch_module
    from treegrad.torch.trainer import fit as torch_fit

    root = model(op)
    y_torch = torch_module(Opened(root, op.name, "regression", None))(torch.tensor([SAMPLE], dtype=torch.float64))
    assert float(y_torch.detach()[0]) == pytest.approx(root.predict(SAMPLE), rel=1e-12), (
        f"op '{op.name}': its torch module"
    )
    ref = train(op, "reference", 4, False, monkeypatch)
    fresh = model(op)
    torch_fit(fresh, ROWS, TARGETS, epochs=1, batch_size=4, learning_rate=0.05)
    params = fresh.compiled_graph.param_values()
    assert all(close(a, b) for a, b in zip(params, ref, strict=True)), (
        f"op '{op.name}': --engine torch disagrees with the reference engine: {params} != {ref}"
    )


# Each form of an op its own test case: one that needs an optional package skips, saying which,
# where the package is missing (`pytest -rs` lists them), instead of passing without running.
FORMS: dict[str, Callable[[Op, pytest.MonkeyPatch], None]] = {
    "engines": engines,
    "printers": printers,
    "exporters": exporters,
    "sympy": sympy_form,
    "onnx": onnx_form,
    "torch": torch_form,
}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("name", list(OPS))
def test_op_end_to_end(name: str, form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """spec -> build -> the op's node class, then one form of the op: training (per sample,
    batched, vectorized), funcify, the exporters, sympy, ONNX, torch."""
    op = OPS[name]
    assert model(op).op is op, f"the spec's '{name}' did not build its node class"
    FORMS[form](op, monkeypatch)


# ----------------------------------------------------------------- derived from the tables


def test_every_op_has_its_node_class_named_by_the_table() -> None:
    assert list(OPERATIONS) == list(OPS)
    for name, cls in OPERATIONS.items():
        assert cls.op is OPS[name] and cls.__name__ == OPS[name].cls
        assert getattr(treegrad.core.nodes, cls.__name__) is cls  # reachable by its class name


def test_every_op_class_is_a_public_name_of_the_package_from_the_table() -> None:
    # treegrad's __getattr__ asks the table only for capitalised names (its submodules are not)
    for op in OPS.values():
        assert op.cls.isidentifier() and op.cls[:1].isupper(), f"op '{op.name}': class name {op.cls!r}"
        assert op.cls in treegrad.__all__ and op.cls in dir(treegrad), op.cls
        assert getattr(treegrad, op.cls) is OPERATIONS[op.name]
    star: dict[str, Any] = {}
    exec("from treegrad import *", star)  # noqa: S102 - the test's own line
    assert set(treegrad.__all__) <= set(star) | {"__version__"}


def test_activations_of_layers_are_the_ops_the_table_marks() -> None:
    from treegrad.core.nodes import ACTIVATIONS
    from treegrad.errors import SpecError

    marked = [name for name, op in OPS.items() if op.activation]
    assert list(ACTIVATIONS) == ["none", *marked] and {"relu", "sigmoid", "tanh"} <= set(marked)
    for name in ACTIVATIONS:
        if name != "none":
            op = OPS[name]
            assert op.arity == 1 and not op.constant_args, f"op '{name}': an activation takes one argument"
        spec = parse_spec(f"inputs: [x]\nlayers: [{{linear: 2, activation: {name}}}, {{linear: 1}}]\n", "m.yaml")
        graph = build_model(spec).compiled_graph
        assert sum(n.op is not None and n.op.name == name for n in graph.order) == (0 if name == "none" else 2), name
    unmarked = next(name for name, op in OPS.items() if op.arity == 1 and not op.activation)
    with pytest.raises(SpecError, match="relu"):
        parse_spec(f"inputs: [x]\nlayers: [{{linear: 2, activation: {unmarked}}}, {{linear: 1}}]\n", "m.yaml")


def test_an_unknown_class_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="Nonesuch"):
        treegrad.core.nodes.Nonesuch  # noqa: B018


def test_seed_vocabulary_is_the_table_classes() -> None:
    for cls_name, op in [("Add", "add"), ("Multiply", "mul"), ("ReLU", "relu"), ("Sigmoid", "sigmoid"), ("Log", "log")]:
        assert getattr(treegrad, cls_name) is OPERATIONS[op]
    node = treegrad.Add([treegrad.Multiply([Parameter(2.0), Input("f")]), 1])
    assert node.predict([3.0]) == 7.0


def test_table_records_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Op("twice", "Twice", 1, lambda a: f"2.0 * {a[0]}", lambda a, o, i: "2.0", "two times x")  # type: ignore[misc]


@pytest.mark.parametrize("name", list(OPS))
def test_an_op_has_a_kink_exactly_where_its_slope_jumps_at_zero(name: str) -> None:
    """The table's `kink` (which explain splits its paths at) agrees with the op's own
    derivative: it jumps across 0 in the first argument (others 1.5, an exponent 2)."""
    op = OPS[name]
    n = 2 if op.arity is None else op.arity
    rest = [2.0 if i in op.constant_args else 1.5 for i in range(1, n)]
    derivs, eps = op.deriv_fns(n), 1e-9
    assert derivs[0] is not None
    slopes = []
    for x in (-eps, eps):
        try:
            slopes.append(derivs[0](op.value_fn(n)(x, *rest), x, *rest))
        except (ValueError, ZeroDivisionError):  # not defined on one side: a domain's edge, not a kink
            slopes.append(math.nan)
    jumps = all(map(math.isfinite, slopes)) and abs(slopes[1] - slopes[0]) > 0.5
    assert op.kink == jumps, (name, slopes)
    assert not op.kink or op.arity == 1  # explain reads a kinked op's one argument


def test_explain_finds_kinks_by_the_table() -> None:
    from treegrad.interpret.explain import _Scalar

    x = Input("x")
    kinked = [treegrad.ReLU([x]), treegrad.Abs([x])]
    root = Add([*kinked, treegrad.Tanh([x]), treegrad.Sigmoid([x])])
    assert {id(n) for n in _Scalar(root, None).kinks} == {id(n) for n in kinked}


def test_python_namespace_computes_each_op_of_fixed_arity() -> None:
    ns = python_namespace()
    assert ns["relu"](-2.0) == 0.0 and ns["sigmoid"](0.0) == 0.5 and ns["abs"](-3.0) == 3.0
    assert ns["softmax"](0.0, 0.0) == [0.5, 0.5]


def test_node_kind_is_the_one_question() -> None:
    x, p, c = Input("x"), Parameter(1.0), Constant(2.0)
    op = Add([x, p, c])
    assert [n.kind for n in (x, p, c, op)] == ["input", "parameter", "constant", "op"]
    assert Output([op]).kind == "output" and Softmax([op, x]).kind == "softmax"
    assert Linear([x]).kind == "macro"
    assert Softmax([op, x]).compile().compiled_graph.is_softmax
    assert not Output([op, x]).compile().compiled_graph.is_softmax


def test_losses_say_their_task() -> None:
    # by hand for these; a loss added to the table is checked by test_losses, with no line here
    by_hand = {"mse": "regression", "mae": "regression", "bce": "binary", "cross_entropy": "classes"}
    assert {name: LOSSES[name].task for name in by_hand} == by_hand
    assert default_loss(softmax=False) == "mse" and default_loss(softmax=True) == "cross_entropy"
    assert "cross_entropy" not in fitting(False) and fitting(True) == ["cross_entropy"]


@pytest.mark.parametrize(
    ("text", "kind", "loss"),
    [
        ("inputs: [x]\noutput: {sigmoid: {mul: [param, x]}}\nloss: bce\n", "binary", "bce"),
        ("inputs: [x]\noutput: {mul: [param, x]}\nloss: mae\n", "regression", "mae"),
        ("inputs: [x]\noutput: {mul: [param, x]}\n", "regression", "mse"),
        ("inputs: [x]\noutput: {softmax: [x, {mul: [param, x]}]}\n", "classes", "cross_entropy"),
    ],
)
def test_task_and_default_loss_come_from_the_loss_table(text: str, kind: str, loss: str) -> None:
    spec = parse_spec(text)
    assert (task_kind(spec), loss_name(spec)) == (kind, loss)


def test_trace_prints_ops_by_their_text_form() -> None:
    from treegrad.outputs.trace import trace

    w = Parameter(0.5, name="w")
    root = Add([treegrad.Negate([Input("x")]), treegrad.Power([w, Constant(2.0)]), Constant(-1.5)])
    (step,) = trace(root, [[1.0]], [0.0])
    assert [n.expr for n in step.nodes if n.kind == "op"] == ["-x", "w^2", "#1 + #4 - 1.5"]


def test_random_ops_stay_in_range() -> None:
    # the shared DAG builder draws every op of the table (tests/conftest.py)
    from conftest import OP_KINDS, dag_from_seed

    assert OP_KINDS == tuple(OPS)
    seen = {n.op.name for s in range(30) for n in dag_from_seed(s).nodes if n.op is not None}
    assert seen == set(OPS)
