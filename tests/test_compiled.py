"""The compiled evaluator agrees with the reference one: predictions, losses, and whole
training runs (histories and parameters to 1e-12) for every optimizer and batch size."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import treegrad as tg
from treegrad import (
    LOSSES,
    Add,
    Constant,
    Exp,
    Input,
    Linear,
    Multiply,
    Node,
    Output,
    Parameter,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    fit,
)
from treegrad.engine.compiled import Program, predict_many, program
from treegrad.engine.optim import OPTIMIZERS


def reference_outputs(model: Node, rows: list[list[float]]) -> list[object]:
    return [model.predict(r) for r in rows]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**9), n_ops=st.integers(1, 16))
def test_predict_many_matches_reference_on_random_dags(seeded_dag, seed: int, n_ops: int) -> None:
    dag = seeded_dag(seed, n_ops)
    root = dag.root
    root.compile()
    g = root.graph
    assert g is not None
    base = [g.inputs_by_name[name][0].value for name in g.input_names]
    # nearby rows: the builder kept the ops' domains safe around the base point
    rows = [base] + [[v + 1e-3 * k for v in base] for k in (1, -1, 2)]
    want = reference_outputs(root, rows)
    got = predict_many(root, rows)
    assert got == pytest.approx(want, rel=1e-13, abs=1e-13)


def test_predict_many_on_list_outputs_and_edge_shapes() -> None:
    x, y = Input("x"), Input("y")
    p = Parameter(0.5)
    h = Tanh([p * x + y])
    models: list[Node] = [
        Output([h, h * h, x, p]),  # a shared element, a leaf input, a parameter as elements
        Softmax([h, Exp([y]), p, Constant(2.0)]),
        Softmax([x, x]),
        Add([Constant(1.0), Constant(2.0)]),  # no inputs, no parameters
    ]
    rows = [[0.1, -0.3], [1.5, 2.0], [-2.0, 0.0]]
    for model in models:
        model.compile()
        g = model.graph
        assert g is not None
        use = [r[: len(g.input_names)] for r in rows]
        got, want = predict_many(model, use), reference_outputs(model, use)
        assert len(got) == len(want) == 3
        for a, b in zip(got, want, strict=True):
            assert a == pytest.approx(b, rel=1e-14)


def test_predict_many_compiles_on_first_use_and_reports_domain_errors() -> None:
    from treegrad import Log, ModelError

    model = Log([Input("x")])
    assert predict_many(model, [[math.e]]) == [pytest.approx(1.0)]
    with pytest.raises(ModelError, match=r"row 2: cannot evaluate 'log' at \[-1.0\]"):
        predict_many(model, [[1.0], [-1.0]])


# ----------------------------------------------------------------- whole training runs


def _classifier() -> Node:
    tg.seed(1)
    x, y = Input("x"), Input("y")
    return Sigmoid([Parameter() * ReLU([Parameter() * x + Parameter() * y + Parameter()]) + Parameter()])


def _softmax_mlp() -> Node:
    x, y = Input("x"), Input("y")
    return Softmax(
        [Linear([Linear([x, y], units=3, activation="tanh", rng=random.Random(4))], units=3, rng=random.Random(5))]
    )


def _two_outputs() -> Node:
    x, y = Input("x"), Input("y")
    h = Sigmoid([Linear([x, y], rng=random.Random(6))])
    return Output([h * Parameter(0.3) + x, Tanh([h + Parameter(-0.2) * y])])


def _data(n: int, kind: str) -> tuple[list[list[float]], list[object]]:
    r = random.Random(11)
    rows = [[r.uniform(-1, 1), r.uniform(-1, 1)] for _ in range(n)]
    if kind == "bce":
        return rows, [1.0 if b > a else 0.0 for a, b in rows]
    if kind == "cross_entropy":
        return rows, [0 if a + b < -0.3 else (1 if a > b else 2) for a, b in rows]
    return rows, [[a * b, a - b] for a, b in rows]


CASES: list[tuple[str, Callable[[], Node], str]] = [
    ("classifier-bce", _classifier, "bce"),
    ("softmax-mlp", _softmax_mlp, "cross_entropy"),
    ("two-outputs-mse", _two_outputs, "mse"),
    ("two-outputs-mae", _two_outputs, "mae"),
]


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("batch_size", [1, 4, 7])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_engines_give_identical_training_runs(
    case: tuple[str, Callable[[], Node], str], optimizer: str, batch_size: int
) -> None:
    _, make, loss = case
    kind = "bce" if loss == "bce" else ("cross_entropy" if loss == "cross_entropy" else "list")
    rows, targets = _data(20, kind)
    val_rows, val_targets = _data(6, kind)
    runs = {}
    for engine in ("compiled", "reference"):
        model = make()
        hist = fit(
            model,
            rows,
            targets,
            loss=loss,
            epochs=4,
            learning_rate=0.05,
            optimizer=optimizer,
            batch_size=batch_size,
            shuffle=True,
            seed=3,
            validation=(val_rows, val_targets),
            engine=engine,
        )
        assert model.graph is not None
        runs[engine] = (list(hist), hist.validation, model.graph.param_values())
    (hc, vc, pc), (hr, vr, pr) = runs["compiled"], runs["reference"]
    assert hc == pytest.approx(hr, rel=1e-12, abs=1e-12)
    assert vc == pytest.approx(vr, rel=1e-12, abs=1e-12)
    assert pc == pytest.approx(pr, rel=1e-12, abs=1e-12)
    assert hc[-1] < hc[0], "the run should have learned something"


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10**9),
    n_ops=st.integers(1, 12),
    optimizer=st.sampled_from(sorted(OPTIMIZERS)),
    batch_size=st.sampled_from([1, 2]),
)
def test_engines_agree_on_random_dags(seeded_dag, seed: int, n_ops: int, optimizer: str, batch_size: int) -> None:
    dag = seeded_dag(seed, n_ops)
    root = dag.root
    root.compile()
    g = root.graph
    assert g is not None
    base = [g.inputs_by_name[name][0].value for name in g.input_names]
    rows = [base, [v + 1e-3 for v in base], [v - 1e-3 for v in base]]
    targets = [root.predict(r) + 0.1 for r in rows]
    start = g.param_values()
    runs = {}
    for engine in ("compiled", "reference"):
        g.set_param_values(start)
        hist = fit(
            root, rows, targets, epochs=2, learning_rate=1e-4, optimizer=optimizer, batch_size=batch_size, engine=engine
        )
        runs[engine] = (list(hist), g.param_values())
    assert runs["compiled"][0] == pytest.approx(runs["reference"][0], rel=1e-12, abs=1e-12)
    assert runs["compiled"][1] == pytest.approx(runs["reference"][1], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_loss_is_its_table_entry_whatever_its_name(case: tuple[str, Callable[[], Node], str]) -> None:
    # Loss.code used to single out cross-entropy by name: the same entry under another name
    # failed an assert. Each entry now carries its scalar and array code, used as they are.
    _, make, name = case
    entry = LOSSES[name]
    assert callable(entry.scalar) and callable(entry.array)
    renamed = dataclasses.replace(entry, name=f"my_{name}")
    kind = "bce" if name == "bce" else ("cross_entropy" if name == "cross_entropy" else "list")
    rows, targets = _data(16, kind)
    runs = []
    settings = [(entry, "compiled", 1), (renamed, "compiled", 1), (renamed, "reference", 1)]
    settings += [(entry, "compiled", 16), (renamed, "compiled", 16)]  # 16: the vectorized path where it pays
    for loss, engine, batch_size in settings:
        model = make()
        hist = fit(model, rows, targets, loss=loss, epochs=2, learning_rate=0.05, batch_size=batch_size, engine=engine)
        assert model.graph is not None
        runs.append((list(hist), model.graph.param_values()))
    assert runs[1] == runs[0]
    assert runs[2][0] == pytest.approx(runs[0][0], rel=1e-12) and runs[2][1] == pytest.approx(runs[0][1], rel=1e-12)
    assert runs[4] == runs[3]


def test_validation_loss_is_the_mean_loss_on_the_validation_rows() -> None:
    model = _classifier()
    rows, labels = _data(10, "bce")
    val_rows, val_labels = _data(5, "bce")
    hist = fit(model, rows, labels, loss="bce", epochs=1, learning_rate=0.1, validation=(val_rows, val_labels))
    lossfn = LOSSES["bce"].fn(1)
    by_hand = sum(lossfn([model.predict(r)], t)[0] for r, t in zip(val_rows, val_labels, strict=True)) / 5
    assert hist.validation == [pytest.approx(by_hand, rel=1e-12)]


# ----------------------------------------------------------------- the generated code


def _sources(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = Program._build

    def spy(self: Program, src: str, name: str) -> Callable[..., object]:
        seen.append(src)
        return real(self, src, name)

    monkeypatch.setattr(Program, "_build", spy)
    return seen


def test_names_from_the_user_never_reach_the_generated_code(monkeypatch: pytest.MonkeyPatch) -> None:
    sources = _sources(monkeypatch)
    evil_input = "__import__('os').system('echo pwned')"
    evil_param = "p0); import os; ("
    x = Input(evil_input)
    model = Sigmoid([Parameter(0.5, name=evil_param) * x + Parameter(1e300 / 1e299)])
    model.compile()
    assert predict_many(model, [[1.0]]) == [pytest.approx(model.predict([1.0]))]
    fit(model, [[1.0]], [1.0], loss="bce", epochs=1, optimizer="adam", validation=([[0.0]], [0.0]))
    assert len(sources) == 3  # predict, epoch, validation loss
    for src in sources:
        assert "import" not in src and "system" not in src and "echo" not in src
        assert "1e300" not in src and "10.0" not in src  # values are passed in, not pasted


def test_a_node_used_by_one_parent_with_derivative_one_needs_no_gradient_statement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x = Input("x")
    model = Add([Multiply([Parameter(2.0), x]), Parameter(1.0)])
    model.compile()
    assert model.graph is not None
    lines, grads = program(model.graph).backward(["go0"])
    assert lines == []
    assert grads == ["go0 * x0", "go0"]


def test_the_program_is_cached_per_graph() -> None:
    model = Input("x") * Parameter(1.0)
    model.compile()
    assert model.graph is not None
    assert program(model.graph) is program(model.graph)


def test_one_rule_for_what_is_a_plain_name_in_generated_code() -> None:
    # compiled.py and vectorized.py each had an `_is_name`, with different rules ("GZ" was a
    # name to one and not to the other); both evaluators now share one (through `gather`,
    # which names a node's gradient), and one `times`.
    from treegrad.engine import arraycode, compiled

    assert arraycode.gather is compiled.gather and arraycode.times is compiled.times
    assert not hasattr(arraycode, "_is_name") and getattr(arraycode, "is_name", compiled.is_name) is compiled.is_name
    assert compiled.gather(["g3"], "g9") == ("g3", [])
    assert compiled.gather(["g3 * v2", "-g4"], "g9") == ("g9", ["g9 = g3 * v2 + -g4"])
    cases = ["v12", "GZ", "go0", "g3 * v2", "-g3", "(1.0 / a0)", "Z1[:, 0]", "1.0"]
    assert [compiled.is_name(e) for e in cases] == [True, True, True, False, False, False, False, False]
    assert [compiled.times("g1", d) for d in ["1.0", "-1.0", "v3", "(1.0 / a0)", "v1 * v2"]] == [
        "g1",
        "-g1",
        "g1 * v3",
        "g1 * (1.0 / a0)",
        "g1 * (v1 * v2)",
    ]
    assert not hasattr(compiled, "is_finite")  # was never used


def test_functions_and_methods_of_the_evaluators_have_docstrings() -> None:
    import inspect

    from treegrad.data.generated import GENERATORS
    from treegrad.engine import arraycode, compiled, lowering, vectorized

    missing = []
    for module in (compiled, lowering, arraycode, vectorized):
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__:
                continue  # imported, documented where it is defined
            members = [(name, obj)]
            if inspect.isclass(obj):
                members += [(f"{name}.{m}", getattr(f, "__func__", f)) for m, f in vars(obj).items()]
            for qualname, f in members:
                if (inspect.isfunction(f) or inspect.isclass(f)) and not qualname.split(".")[-1].startswith("__"):
                    if not inspect.getdoc(f):
                        missing.append(f"{module.__name__}.{qualname}")
    assert not missing, "no docstring: " + ", ".join(missing)
    assert all(inspect.getdoc(g.make) for g in GENERATORS.values())
