"""funcify: text, LaTeX and Python formulas, parentheses only where needed, shared
subexpressions printed once, and Python output that evaluates back to forward()."""

from __future__ import annotations

import math
import random
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import treegrad as tg
from treegrad import (
    Abs,
    Add,
    Constant,
    Divide,
    Exp,
    Input,
    Linear,
    Log,
    ModelError,
    Multiply,
    Negate,
    Node,
    Output,
    Parameter,
    Power,
    ReLU,
    Sigmoid,
    Softmax,
    Subtract,
    Tanh,
    fit,
    funcify,
)
from treegrad.core.ops import python_namespace


def _softmax(*z: float) -> list[float]:
    m = max(z)
    e = [math.exp(v - m) for v in z]
    return [v / sum(e) for v in e]


# Written here for the seed's ops, independently of the table; an op added to the table
# later runs with the function treegrad defines for it (ops.python_namespace).
PY_NAMESPACE: dict[str, object] = {
    **python_namespace(),
    "relu": lambda v: v if v > 0 else 0.0,
    "sigmoid": lambda v: 1 / (1 + math.exp(-v)),
    "tanh": math.tanh,
    "exp": math.exp,
    "log": math.log,
    "abs": abs,
    "softmax": _softmax,
}


def run_python(src: str, inputs: dict[str, float]) -> object:
    """Evaluate funcify(format="python"): `h = ...` lines first, the last line is the value."""
    *lines, last = src.split("\n")
    ns = dict(PY_NAMESPACE, **inputs)
    for line in lines:
        name, expr = line.split(" = ", 1)
        assert name.isidentifier()
        ns[name] = eval(expr, {"__builtins__": {}}, ns)  # noqa: S307 - text made by the test's own model
    return eval(last, {"__builtins__": {}}, ns)  # noqa: S307


# ----------------------------------------------------------------- text


def test_the_readme_examples() -> None:
    assert Add([Parameter(0.1), Parameter(0.2)]).funcify() == "0.1 + 0.2"
    f = Input("f")
    assert Add([Multiply([Parameter(0.5556), f]), Parameter(-17.78)]).funcify() == "0.5556 * f - 17.78"
    assert funcify(Add([Parameter(0.1), Parameter(0.2)])) == "0.1 + 0.2"


def test_trained_fahrenheit_model_prints_its_formula() -> None:
    tg.seed(0)
    f = Input("f")
    model = Add([Multiply([Parameter(), f]), Parameter()])
    r = random.Random(0)
    rows = [[r.uniform(-1, 1)] for _ in range(200)]
    fit(model, rows, [(v[0] - 32) * 5 / 9 for v in rows], epochs=300, learning_rate=0.05)
    assert model.funcify() == "0.5556 * f - 17.78"
    assert model.funcify(precision=6) == "0.555556 * f - 17.7778"


def _xyz() -> tuple[Input, Input, Input]:
    return Input("a"), Input("b"), Input("c")


@pytest.mark.parametrize(
    "build, text",
    [
        (lambda a, b, c: Multiply([Add([a, b]), c]), "(a + b) * c"),
        (lambda a, b, c: Add([Multiply([a, b]), c]), "a * b + c"),
        (lambda a, b, c: Add([a, Multiply([b, c])]), "a + b * c"),
        (lambda a, b, c: Subtract([a, Subtract([b, c])]), "a - (b - c)"),
        (lambda a, b, c: Subtract([Subtract([a, b]), c]), "a - b - c"),
        (lambda a, b, c: Subtract([a, Add([b, c])]), "a - (b + c)"),
        (lambda a, b, c: Add([a, Subtract([b, c])]), "a + b - c"),
        (lambda a, b, c: Divide([a, Multiply([b, c])]), "a / (b * c)"),
        (lambda a, b, c: Divide([Multiply([a, b]), c]), "a * b / c"),
        (lambda a, b, c: Divide([a, Divide([b, c])]), "a / (b / c)"),
        (lambda a, b, c: Divide([Divide([a, b]), c]), "a / b / c"),
        (lambda a, b, c: Multiply([a, Divide([b, c])]), "a * b / c"),
        (lambda a, b, c: Negate([Add([a, b])]), "-(a + b)"),
        (lambda a, b, c: Negate([a]), "-a"),
        (lambda a, b, c: Negate([Power([a, Constant(2)])]), "-a^2"),
        (lambda a, b, c: Power([Negate([a]), Constant(2)]), "(-a)^2"),
        (lambda a, b, c: Power([Constant(-2), Constant(2)]), "(-2)^2"),
        (lambda a, b, c: Power([Add([a, b]), Constant(2)]), "(a + b)^2"),
        (lambda a, b, c: Power([Power([a, Constant(2)]), Constant(3)]), "(a^2)^3"),
        (lambda a, b, c: Power([a, Constant(-1)]), "a^(-1)"),
        (lambda a, b, c: Power([Multiply([a, b]), Constant(0.5)]), "(a * b)^0.5"),
        (lambda a, b, c: Multiply([Negate([a]), b]), "-a * b"),
        (lambda a, b, c: Add([a, Multiply([Constant(-2), b])]), "a - 2 * b"),
        (lambda a, b, c: Add([a, Negate([b])]), "a - b"),
        (lambda a, b, c: Add([Negate([a]), b]), "-a + b"),
        (lambda a, b, c: Add([a, Constant(-3)]), "a - 3"),
        (lambda a, b, c: Add([a, Negate([Add([b, c])])]), "a - (b + c)"),
        # a sign after an operator gets parentheses, as in (-2)^2
        (lambda a, b, c: Negate([Negate([a])]), "-(-a)"),
        (lambda a, b, c: Negate([Constant(-2)]), "-(-2)"),
        (lambda a, b, c: Subtract([a, Constant(-3)]), "a - (-3)"),
        (lambda a, b, c: Subtract([a, Negate([b])]), "a - (-b)"),
        (lambda a, b, c: Multiply([a, Negate([b])]), "a * (-b)"),
        (lambda a, b, c: Divide([a, Constant(-4)]), "a / (-4)"),
        (lambda a, b, c: Multiply([Tanh([Add([a, b])]), Sigmoid([c])]), "tanh(a + b) * sigmoid(c)"),
        (lambda a, b, c: Add([ReLU([a]), Abs([b]), Exp([c]), Log([a])]), "relu(a) + abs(b) + exp(c) + log(a)"),
        (lambda a, b, c: Multiply([a, b, c]), "a * b * c"),
    ],
)
def test_text_parentheses_only_where_needed(build, text: str) -> None:
    a, b, c = _xyz()
    model = build(a, b, c)
    assert model.funcify() == text
    # and the text means what the graph computes
    inputs = {"a": 1.7, "b": 0.6, "c": -2.3}
    for name, v in inputs.items():
        {"a": a, "b": b, "c": c}[name].value = v
    assert run_python(model.funcify(precision=17, format="python"), inputs) == pytest.approx(model.forward(), rel=1e-14)


def test_numbers_print_at_the_requested_precision() -> None:
    x = Input("x")
    assert Multiply([Parameter(1 / 3), x]).funcify() == "0.3333 * x"
    assert Multiply([Parameter(1 / 3), x]).funcify(precision=2) == "0.33 * x"
    assert Multiply([Parameter(2.0), x]).funcify() == "2 * x"
    assert Tanh([Parameter(-0.0)]).funcify() == "tanh(0)"  # not -0
    assert Add([x, Parameter(-0.0)]).funcify() == "x"  # a zero term says nothing
    assert Multiply([Parameter(1.5e-7), x]).funcify() == "1.5e-07 * x"


def test_shared_subexpressions_are_printed_once() -> None:
    x, y = Input("x"), Input("y")
    h = Tanh([x + y])
    model = h * h + Sigmoid([h])
    assert model.funcify() == "h1 = tanh(x + y)\nh1 * h1 + sigmoid(h1)"
    assert model.funcify(format="latex") == (
        r"h_{1} = \tanh\left(x + y\right) \\" + "\n" + r"h_{1} \cdot h_{1} + \sigma\left(h_{1}\right)"
    )


def test_a_chain_of_doublings_stays_linear_in_size() -> None:
    x = Input("x")
    h: Node = x
    for _ in range(50):
        h = h + h
    text = h.funcify()
    lines = text.split("\n")
    assert len(lines) == 50
    assert lines[0] == "h1 = x + x" and lines[1] == "h2 = h1 + h1" and lines[-1] == "h49 + h49"
    assert len(text) < 50 * 20
    assert run_python(h.funcify(format="python"), {"x": 3.0}) == 3.0 * 2**50


def test_list_outputs_print_as_lists() -> None:
    x, y = Input("x"), Input("y")
    assert Output([x * 2, y]).funcify() == "[x * 2, y]"
    assert Softmax([x, Negate([y])]).funcify() == "softmax(x, -y)"
    assert Softmax([x, y]).funcify(format="latex") == r"\operatorname{softmax}\left(x, y\right)"
    assert Output([x, y]).funcify(format="latex") == r"\left[x, y\right]"


def test_compiled_macro_prints_its_expansion() -> None:
    x, y = Input("x"), Input("y")
    neuron = Linear([x, y], activation="sigmoid", rng=random.Random(0))
    with pytest.raises(ModelError, match="compile"):
        neuron.funcify()
    neuron.compile()
    assert neuron.graph is not None
    w1, w2, b = neuron.graph.params
    assert b.value == 0.0  # a fresh bias: 0, so not printed
    assert neuron.funcify() == f"sigmoid({w1.value:.4g} * x {'-' if w2.value < 0 else '+'} {abs(w2.value):.4g} * y)"
    b.value = 0.25
    assert neuron.funcify().endswith(" * y + 0.25)")


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(ModelError, match="unknown format 'html'"):
        Input("x").funcify(format="html")


# ----------------------------------------------------------------- LaTeX


@pytest.mark.parametrize(
    "build, latex",
    [
        (lambda a, b, c: Multiply([Add([a, b]), c]), r"\left(a + b\right) \cdot c"),
        (lambda a, b, c: Divide([a, Multiply([b, c])]), r"\frac{a}{b \cdot c}"),
        (lambda a, b, c: Divide([Add([a, b]), c]), r"\frac{a + b}{c}"),
        (lambda a, b, c: Power([Add([a, b]), Constant(2)]), r"\left(a + b\right)^{2}"),
        (lambda a, b, c: Power([a, Constant(-1)]), r"a^{-1}"),
        (lambda a, b, c: Sigmoid([a]), r"\sigma\left(a\right)"),
        (lambda a, b, c: Tanh([a]), r"\tanh\left(a\right)"),
        (lambda a, b, c: ReLU([a]), r"\operatorname{relu}\left(a\right)"),
        (lambda a, b, c: Exp([a]), r"\exp\left(a\right)"),
        (lambda a, b, c: Log([a]), r"\log\left(a\right)"),
        (lambda a, b, c: Abs([Subtract([a, b])]), r"\left|a - b\right|"),
        (lambda a, b, c: Negate([Add([a, b])]), r"-\left(a + b\right)"),
        (lambda a, b, c: Subtract([a, Subtract([b, c])]), r"a - \left(b - c\right)"),
    ],
)
def test_latex(build, latex: str) -> None:
    assert build(*_xyz()).funcify(format="latex") == latex


def test_latex_input_names() -> None:
    model = Multiply([Input("x1"), Input("sepal_length")])
    assert model.funcify(format="latex") == r"x_{1} \cdot \mathit{sepal\_length}"


# ----------------------------------------------------------------- Python, on random graphs


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**9), n_ops=st.integers(1, 16))
def test_python_output_reproduces_forward_on_random_graphs(seeded_dag, seed: int, n_ops: int) -> None:
    dag = seeded_dag(seed, n_ops)
    inputs = {x.name: x.value for x in dag.inputs}
    want = dag.root.forward()
    exact = run_python(dag.root.funcify(precision=17, format="python"), inputs)
    assert exact == pytest.approx(want, rel=1e-9, abs=1e-12)
    # the text form is the python form with ^ for **
    assert dag.root.funcify(precision=17).replace("^", " ** ") == dag.root.funcify(precision=17, format="python")


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**9))
def test_python_output_at_default_precision_is_close(seeded_dag, seed: int) -> None:
    """Parameters printed to 4 digits move the value by about that much, on a small graph."""
    dag = seeded_dag(seed, 3)
    inputs = {x.name: x.value for x in dag.inputs}
    want = dag.root.forward()
    got = run_python(dag.root.funcify(format="python"), inputs)
    assert got == pytest.approx(want, rel=2e-2, abs=2e-2)


def test_python_output_of_list_models() -> None:
    x, y = Input("x"), Input("y")
    h = Tanh([Parameter(0.25) * x + y])
    for model in (Softmax([h, Exp([y]), h * x]), Output([h, ReLU([x - y])])):
        model.compile()
        got = run_python(model.funcify(precision=17, format="python"), {"x": 0.7, "y": -1.1})
        assert got == pytest.approx(model.predict([0.7, -1.1]), rel=1e-14)


# ----------------------------------------------------------------- exact zeros


def _neuron(weights: list[float], bias: float) -> tuple[Node, list[Input]]:
    xs = [Input(name) for name in ("x", "y", "z")]
    return Add([*(Multiply([Parameter(w), x]) for w, x in zip(weights, xs)), Parameter(bias)]), xs


@pytest.mark.parametrize(
    "weights, bias, text, latex",
    [
        ([0.0, 2.0, 0.0], 0.5, "2 * y + 0.5", r"2 \cdot y + 0.5"),
        ([0.0, -2.0, 3.0], 0.0, "-2 * y + 3 * z", r"-2 \cdot y + 3 \cdot z"),
        ([0.0, 0.0, 0.0], -0.25, "-0.25", "-0.25"),  # all weights 0 (after L1, say): the bias
        ([0.0, 1.0, 0.0], -0.25, "1 * y - 0.25", r"1 \cdot y - 0.25"),
        ([0.0, -0.0, 0.0], 0.0, "0", "0"),
    ],
)
def test_terms_that_are_exactly_zero_are_left_out(weights: list[float], bias: float, text: str, latex: str) -> None:
    """`0 * x` says nothing: a product with a factor of exactly 0 is 0, a sum drops its 0 terms."""
    model, _ = _neuron(weights, bias)
    model.compile()
    assert model.funcify() == text and model.funcify(format="latex") == latex
    assert model.funcify(format="python") == text
    for row in ([0.3, -1.2, 2.5], [-4.0, 0.0, 7.0]):
        assert run_python(model.funcify(format="python"), dict(zip("xyz", row))) == model.predict(row)


def test_a_shared_part_used_only_by_zero_terms_is_not_printed() -> None:
    x = Input("x")
    h = Tanh([Multiply([Parameter(1.5), x])])
    model = Sigmoid([Add([Multiply([Parameter(0.0), h]), Multiply([h, Parameter(0.0), x]), Parameter(1.0)])])
    model.compile()
    assert model.funcify() == "sigmoid(1)"
    assert model.funcify(format="latex") == r"\sigma\left(1\right)"
    assert run_python(model.funcify(format="python"), {"x": 0.7}) == model.predict([0.7])


@pytest.mark.parametrize(
    "build, text",
    [
        (lambda x, zero: Subtract([x, zero]), "x"),
        (lambda x, zero: Subtract([zero, Add([x, Parameter(1.0)])]), "-(x + 1)"),
        (lambda x, zero: Subtract([zero, Multiply([zero, x])]), "0"),
        (lambda x, zero: Add([Negate([zero]), Divide([zero, x]), Tanh([x])]), "tanh(x)"),
        (lambda x, zero: (lambda h: Multiply([h, Tanh([h])]))(Add([x, zero])), "x * tanh(x)"),
        (lambda x, zero: (lambda h: Add([h, Tanh([h])]))(Add([Tanh([x]), zero])), "h1 = tanh(x)\nh1 + tanh(h1)"),
    ],
)
def test_a_difference_leaves_out_a_zero_side_and_zero_parts_go(build, text: str) -> None:
    model = build(Input("x"), Parameter(0.0))
    assert model.funcify() == text
    assert run_python(model.funcify(format="python"), {"x": 0.7}) == model.predict([0.7])


@pytest.mark.parametrize(
    "build, text, latex",
    [
        # 0 ^ p is 0 for a constant p > 0, so it is a zero factor (found by the test below, seed 15830719).
        (
            lambda x, zero: Add([Multiply([x, Power([zero, 1.5]), Parameter(-0.64), x]), Tanh([x])]),
            "tanh(x)",
            r"\tanh\left(x\right)",
        ),
        (lambda x, zero: Add([Power([Multiply([zero, x]), 3.0]), x]), "x", "x"),
        (
            lambda x, zero: Multiply([Sigmoid([Power([zero, 0.5])]), x]),
            "sigmoid(0) * x",
            r"\sigma\left(0\right) \cdot x",
        ),
        # 0 ^ 0 is 1, not 0: it stays, and evaluates to 1 as the model does.
        (
            lambda x, zero: Add([Multiply([x, Power([zero, 0.0])]), Tanh([x])]),
            "x * 0^0 + tanh(x)",
            r"x \cdot 0^{0} + \tanh\left(x\right)",
        ),
    ],
)
def test_zero_to_a_positive_power_is_a_zero_factor(build, text: str, latex: str) -> None:
    model = build(Input("x"), Parameter(0.0))
    model.compile()
    assert model.funcify() == text and model.funcify(format="latex") == latex
    assert run_python(model.funcify(format="python"), {"x": 0.7}) == model.predict([0.7])


def test_zero_to_a_negative_power_is_not_dropped() -> None:
    """0 ^ -1 is infinite (the model raises): the formula keeps it rather than print a finite `tanh(x)`."""
    x = Input("x")
    model = Add([Multiply([x, Power([Parameter(0.0), -1.0])]), Tanh([x])])
    model.compile()
    assert model.funcify() == "x * 0^(-1) + tanh(x)"
    with pytest.raises(ZeroDivisionError):
        run_python(model.funcify(format="python"), {"x": 0.7})


# A factor 0 (`0 * x`, `x \cdot 0`, not `0 ** 2`) and a term 0 (`x + 0`, `0 - x`, not `x + 0 ** 2`).
ZERO_FACTOR = re.compile(r"(?<![\w.])0 (\*(?!\*)|\\cdot)|((?<!\*)\*|\\cdot) 0(?![\w.])")
ZERO_TERM = re.compile(r"(^|\n|\(|= )0 [-+] |[-+] 0($|\n| [-+] |\)|\\right)")


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10**9), zeroed=st.integers(1, 7))
@example(seed=15830719, zeroed=1)  # h2 * 0 ** 1.5 * ... was printed: 0 to a positive power is 0
def test_formulas_with_zero_parameters_evaluate_like_the_model(seeded_dag, seed: int, zeroed: int) -> None:
    """Random graphs with some parameters set to exactly 0: no `0 *` is printed, and the
    Python form still computes forward() (where the graph stays finite)."""
    dag = seeded_dag(seed, 10)
    for k, p in enumerate(dag.params):
        if zeroed >> k & 1:
            p.value = 0.0
    try:
        want = dag.root.forward()
    except (ArithmeticError, ValueError, ModelError):
        return  # a zero that the graph divides by, or takes the log of
    if not all(math.isfinite(v) for v in (want if isinstance(want, list) else [want])):
        return
    inputs = {x.name: x.value for x in dag.inputs}
    python = dag.root.funcify(precision=17, format="python")
    assert run_python(python, inputs) == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert dag.root.funcify(precision=17).replace("^", " ** ") == python
    latex = dag.root.funcify(precision=17, format="latex")
    for form in (python, latex):
        assert not ZERO_FACTOR.search(form) and not ZERO_TERM.search(form), form


# ----------------------------------------------------------------- normalised inputs, folded


def _standardized_input(name: str, mean: float, std: float) -> Node:
    """An input as build.py writes it when the spec says normalize: true."""
    return Divide([Subtract([Input(name), Constant(mean)]), Constant(std)])


def test_a_linear_model_on_standardized_inputs_prints_in_raw_units() -> None:
    # 2 * (x - 10) / 4 + 3 * (y - 1) / 0.5 + 1 = 0.5 x + 6 y - 10
    x, y = _standardized_input("x", 10.0, 4.0), _standardized_input("y", 1.0, 0.5)
    model = Add([Multiply([Parameter(2.0), x]), Multiply([y, Parameter(3.0)]), Parameter(1.0)])
    model.compile()
    assert model.funcify() == "0.5 * x + 6 * y - 10"
    assert model.funcify(format="latex") == r"0.5 \cdot x + 6 \cdot y - 10"


def test_a_sum_without_standardized_inputs_prints_as_built() -> None:
    assert Add([Multiply([Parameter(2.0), Input("x")]), Parameter(0.5)]).funcify() == "2 * x + 0.5"


@given(st.integers(0, 10_000))
@settings(max_examples=25, deadline=None)
def test_folded_formulas_evaluate_like_the_model(seed: int) -> None:
    """An MLP over standardised inputs: the folded formula at 17 digits is the model."""
    rng = random.Random(seed)
    xs = [_standardized_input(n, rng.uniform(-50, 50), rng.uniform(0.1, 20)) for n in ("a", "b")]
    hidden = [
        Tanh([Add([Multiply([Parameter(rng.uniform(-2, 2)), v]) for v in xs] + [Parameter(rng.uniform(-1, 1))])])
        for _ in range(3)
    ]
    model = Add([Multiply([Parameter(rng.uniform(-2, 2)), h]) for h in hidden] + [Parameter(0.5)])
    model.compile()
    for _ in range(5):
        point = {"a": rng.uniform(-100, 100), "b": rng.uniform(-100, 100)}
        got = run_python(model.funcify(precision=17, format="python"), point)
        assert got == pytest.approx(model.predict(point), rel=1e-9, abs=1e-9)
