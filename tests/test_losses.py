"""Every entry of the loss table, through finite differences: a loss added to `losses.py` is
checked here with no line of its own, and a wrong gradient in any of its forms fails.

A loss entry is code that each engine pastes into its own program: the per-sample statements
(the reference evaluator's `Loss.fn`, the compiled evaluator's training loop), the array
statements (the NumPy trainer, and PyTorch's), and a softmax loss's folded gradient with respect
to the logits (the NumPy trainer). Two levels check them: each form's statements alone, on
random outputs and targets in the loss's domain, and one training step of each engine on a
model whose outputs are its inputs, against central differences of the loss that engine reports.
"""

from __future__ import annotations

import importlib
import math
import typing
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import treegrad
from treegrad import Add, Input, Multiply, Node, Output, Parameter, Softmax
from treegrad.core.ops import softmax_array_code
from treegrad.engine.losses import LOSSES, Loss, TaskKind
from treegrad.engine.vectorized import array_namespace

FIT = importlib.import_module("treegrad.engine.fit")
H = 1e-6  # the step of the central differences
MARGIN = 1e-3  # outputs stay this far from their targets: a loss may have a kink there (mae)


def close(analytic: float, numeric: float) -> bool:
    return abs(analytic - numeric) <= 1e-5 * max(1.0, abs(numeric))


# ----------------------------------------------------------------- each loss's domain
# Per kind of task, what outputs and targets a loss of that task takes: numbers with numbers;
# probabilities (a sigmoid's, kept off the clamps) with labels in [0, 1]; per class a softmax's
# logits (or, for the statements alone, probabilities) with a class index.


@st.composite
def regression(draw: st.DrawFn, k: int, n: int, logits: bool) -> tuple[list[list[float]], list[Any]]:
    outs = [[draw(st.floats(-5.0, 5.0)) for _ in range(k)] for _ in range(n)]
    targets = [[draw(st.floats(-5.0, 5.0)) for _ in range(k)] for _ in range(n)]
    assume(all(abs(p - t) > MARGIN for o, ts in zip(outs, targets) for p, t in zip(o, ts)))
    return outs, [ts[0] if k == 1 else tuple(ts) for ts in targets]


@st.composite
def binary(draw: st.DrawFn, k: int, n: int, logits: bool) -> tuple[list[list[float]], list[Any]]:
    outs = [[draw(st.floats(0.05, 0.95)) for _ in range(k)] for _ in range(n)]
    targets = [
        [draw(st.sampled_from([0.0, 1.0])) if draw(st.booleans()) else draw(st.floats(0.0, 1.0)) for _ in range(k)]
        for _ in range(n)
    ]
    return outs, [ts[0] if k == 1 else tuple(ts) for ts in targets]


@st.composite
def classes(draw: st.DrawFn, k: int, n: int, logits: bool) -> tuple[list[list[float]], list[Any]]:
    lo, hi = (-4.0, 4.0) if logits else (0.05, 1.0)
    outs = [[draw(st.floats(lo, hi)) for _ in range(k)] for _ in range(n)]
    return outs, [draw(st.integers(0, k - 1)) for _ in range(n)]


DOMAINS: dict[str, Callable[..., st.SearchStrategy[tuple[list[list[float]], list[Any]]]]] = {
    "regression": regression,
    "binary": binary,
    "classes": classes,
}
WIDTHS = {"regression": (1, 3), "binary": (1, 3), "classes": (2, 4)}  # outputs per sample, fewest and most


def test_every_kind_of_task_has_a_domain() -> None:
    assert set(DOMAINS) == set(WIDTHS) == set(typing.get_args(TaskKind))


def samples(data: st.DataObject, loss: Loss, logits: bool = False) -> tuple[int, list[list[float]], list[Any]]:
    """k outputs per sample and 1 to 3 samples of outputs and targets in the loss's domain."""
    k = data.draw(st.integers(*WIDTHS[loss.task]), label="outputs")
    n = data.draw(st.integers(1, 3), label="samples")
    outs, targets = data.draw(DOMAINS[loss.task](k, n, logits), label="outputs, targets")
    return k, outs, targets


# ----------------------------------------------------------------- the statements of each form


def scalar_form(loss: Loss, k: int) -> Callable[[list[float], Any], tuple[float, list[float]]]:
    """The per-sample statements, as the reference and compiled evaluators run them."""
    return loss.fn(k)


def array_form(loss: Loss, k: int) -> Callable[[list[float], Any], tuple[float, list[float]]]:
    """The array statements, as the NumPy trainer runs them, on a batch of one sample."""
    p, g = [f"p{i}" for i in range(k)], [f"g{i}" for i in range(k)]
    code = "\n".join(loss.code(p, "t", "L", g, "_", vectorized=True))

    def run(outs: list[float], target: Any) -> tuple[float, list[float]]:
        ns: dict[str, Any] = {f"p{i}": np.array([v]) for i, v in enumerate(outs)}
        # a list output's t[i] is the array of the i-th target element
        ns["t"] = np.array([[v] for v in target]) if isinstance(target, tuple) else np.array([target])
        exec(code, array_namespace(), ns)  # noqa: S102 - the table's own text
        return float(ns["L"][0]), [float(ns[gi][0]) for gi in g]

    return run


def softmax_form(loss: Loss, k: int) -> Callable[[list[float], Any], tuple[float, list[float]]]:
    """A softmax loss's folded form: logits in, the loss and d loss / d logits out."""
    assert loss.softmax_array is not None
    code = "\n".join(softmax_array_code("Z", "Pm", "_s") + loss.softmax_array("Pm", "t", "L", "GZ", "_"))

    def run(logits: list[float], target: Any) -> tuple[float, list[float]]:
        ns: dict[str, Any] = {"Z": np.array([logits]), "t": np.array([target])}
        exec(code, array_namespace(), ns)  # noqa: S102 - the table's own text
        return float(ns["L"][0]), [float(v) for v in ns["GZ"][0]]

    return run


FORMS = {"scalar": scalar_form, "array": array_form, "softmax": softmax_form}
CASES = [(name, form) for name, loss in LOSSES.items() for form in FORMS if form != "softmax" or loss.softmax_array]


@pytest.mark.parametrize(("name", "form"), CASES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_each_form_of_each_loss_has_the_gradient_of_its_value(name: str, form: str, data: st.DataObject) -> None:
    """Every form's dL/doutput against central differences of that form's own value."""
    loss = LOSSES[name]
    k, outs, targets = samples(data, loss, logits=form == "softmax")
    fn = FORMS[form](loss, k)
    for out, target in zip(outs, targets):
        value, grad = fn(out, target)
        assert math.isfinite(value) and len(grad) == k
        for i in range(k):
            up, down = list(out), list(out)
            up[i] += H
            down[i] -= H
            numeric = (fn(up, target)[0] - fn(down, target)[0]) / (2 * H)
            assert close(grad[i], numeric), (
                f"loss '{name}', {form} form, at {out} for target {target}: dL/dp{i} is {grad[i]}, "
                f"finite differences give {numeric}"
            )


# ----------------------------------------------------------------- through each engine


def identity_model(task: TaskKind, k: int) -> tuple[Node, list[Parameter]]:
    """A dense layer of k units over k inputs with weights 1 on the diagonal, 0 elsewhere, and
    biases 0: its outputs are its inputs (under a softmax for a loss of classes). Returns the
    root and the biases, through which d loss / d output reaches the parameters unchanged."""
    xs = [Input(f"x{i}") for i in range(k)]
    biases = [Parameter(0.0) for _ in range(k)]
    units: list[Node] = [
        Add([*(Multiply([Parameter(1.0 if i == j else 0.0), x]) for i, x in enumerate(xs)), b])
        for j, b in enumerate(biases)
    ]
    root: Node = Softmax(units) if task == "classes" else Output(units) if k > 1 else units[0]
    return root, biases


def run_engine(engine: str, mp: pytest.MonkeyPatch) -> Callable[..., Any]:
    """fit(model, rows, targets, **kw) by `engine`; the NumPy trainer whatever the batch's size."""
    if engine == "torch":
        pytest.importorskip("torch")
        return importlib.import_module("treegrad.torch.trainer").fit  # type: ignore[no-any-return]
    vectorized = FIT.vectorized_epoch_fn
    used: list[bool] = []

    def spy(graph: Any, loss: Any, opt: Any, batch_size: Any, *rest: Any) -> Any:
        fn = vectorized(graph, loss, opt, None, *rest) if engine == "vectorized" else None
        used.append(fn is not None)
        return fn

    mp.setattr(FIT, "vectorized_epoch_fn", spy)

    def fit(model: Node, rows: list[list[float]], targets: list[Any], **kw: Any) -> Any:
        used.clear()
        hist = treegrad.fit(model, rows, targets, engine="reference" if engine == "reference" else "compiled", **kw)
        assert any(used) == (engine == "vectorized"), f"the NumPy trainer was {'not ' * (engine == 'vectorized')}used"
        return hist

    return fit


def check_one_step(name: str, engine: str, data: st.DataObject) -> None:
    """One step of plain SGD (rate 1, one batch of all samples) moves each bias by minus the
    mean of d loss / d output, which central differences of the epoch's reported loss give."""
    loss = LOSSES[name]
    k, outs, targets = samples(data, loss, logits=True)
    root, biases = identity_model(loss.task, k)
    start = root.compile().compiled_graph.param_values()
    kw = {"loss": name, "epochs": 1, "learning_rate": 1.0, "batch_size": len(outs), "optimizer": "sgd"}
    with pytest.MonkeyPatch.context() as mp:  # a fixture would outlive one example
        fit = run_engine(engine, mp)

        def mean_loss(shift: int, by: float) -> float:
            # a step moves the weights too: every parameter starts again where it was
            root.compiled_graph.set_param_values(start)
            if shift >= 0:
                biases[shift].value = by
            return float(fit(root, outs, targets, **kw)[0])

        mean_loss(-1, 0.0)
        grads = [-b.value for b in biases]  # the step from 0 with rate 1
        for j in range(k):
            numeric = (mean_loss(j, H) - mean_loss(j, -H)) / (2 * H)
            assert close(grads[j], numeric), (
                f"loss '{name}', engine {engine}, outputs {outs}, targets {targets}: the step gives "
                f"dL/dp{j} = {grads[j]}, finite differences {numeric}"
            )


@pytest.mark.parametrize("engine", ["reference", "compiled", "vectorized"])
@pytest.mark.parametrize("name", list(LOSSES))
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_each_engine_steps_down_the_gradient_of_each_loss(name: str, engine: str, data: st.DataObject) -> None:
    check_one_step(name, engine, data)


@pytest.mark.parametrize("name", list(LOSSES))
@settings(max_examples=6, deadline=None)  # fewer: a torch step costs far more (test_torch trains each loss too)
@given(data=st.data())
def test_torch_steps_down_the_gradient_of_each_loss(name: str, data: st.DataObject) -> None:
    check_one_step(name, "torch", data)
