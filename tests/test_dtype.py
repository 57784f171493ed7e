"""training.dtype: float32 on the NumPy trainer, float64 (the default) unchanged.

float32 runs every array of the vectorized epoch in single precision; the losses agree with
float64 to about 1e-5 relative on the example models, the parameters it returns are float32
numbers (as Python floats), and where only the scalar engines could train (no dense layers, the
reference engine) float32 is refused with a message saying what to do.
"""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import treegrad as tg
from treegrad import Add, Exp, Input, Multiply, Node, Output, Parameter, ReLU, Sigmoid, Softmax, Tanh
from treegrad.cli import app
from treegrad.engine.losses import BCE_EPS, CE_TINY, array_clamps
from treegrad.engine.settings import Training
from treegrad.engine.vectorized import VectorizedEpoch
from treegrad.errors import TrainingError
from treegrad.run.modelfile import load as load_model
from treegrad.run.prepare import prepare
from treegrad.run.train import run as run_prepared
from treegrad.run.train import train as train_spec

MODELS = Path(__file__).resolve().parent.parent / "models"
# The example models whose training runs on the NumPy trainer (dense layers, batches > 1).
BATCHED = ["xor", "circles", "iris", "dag", "diabetes", "regression"]
# A quadratic in f: a product of three factors is no dense layer, so only the scalar engine trains it.
SCALAR_ONLY = "inputs: [f]\noutput: {add: [{mul: [param, f, f]}, param]}\ndata: f2c\ntarget: c\n"


def is_float32(values: list[float]) -> bool:
    """True if every value is a float32 number (survives the round trip through float32)."""
    return all(float(np.float32(v)) == v for v in values)


def mlp(sizes: tuple[int, ...], hidden: type[Node] = Tanh, seed: int = 1) -> list[Node]:
    """The last layer's pre-activations of an MLP of dense layers (one Add per neuron)."""
    rng = random.Random(seed)
    acts: list[Node] = [Input(f"x{j}") for j in range(sizes[0])]
    for k, nout in enumerate(sizes[1:]):
        zs: list[Node] = [
            Add([*[Multiply([Parameter(rng.uniform(-1, 1)), a]) for a in acts], Parameter(rng.uniform(-0.1, 0.1))])
            for _ in range(nout)
        ]
        acts = zs if k == len(sizes) - 2 else [hidden([z]) for z in zs]
    return acts


def points(n: int, dims: int, seed: int = 0) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.uniform(-1, 1) for _ in range(dims)] for _ in range(n)]


@pytest.mark.parametrize("name", BATCHED)
def test_float32_losses_agree_with_float64_on_the_example_models(name: str) -> None:
    """Ten epochs of each batched example model: per-epoch losses within 1e-5 relative, and the
    float32 run really is float32 (its parameters are float32 numbers; float64's are not)."""
    runs = {
        dtype: train_spec(MODELS / f"{name}.yaml", overrides={"epochs": 10, "dtype": dtype})
        for dtype in ("float64", "float32")
    }
    h64, h32 = runs["float64"].history, runs["float32"].history
    assert len(h64) == len(h32) == 10
    for a, b in zip(h64, h32, strict=True):
        assert math.isclose(a, b, rel_tol=1e-5), (name, list(h64), list(h32))
    p64 = list(runs["float64"].record.parameters.values())
    p32 = list(runs["float32"].record.parameters.values())
    assert is_float32(p32) and not is_float32(p64)
    assert runs["float32"].record.training.dtype == "float32"
    assert list(h64) != list(h32)  # two precisions, not one run twice


def test_float64_is_the_default_and_changes_nothing(tmp_path: Path) -> None:
    """A spec without the key and one with `dtype: float64` train to the same bits, and the model
    file records the precision it was trained in."""
    plain = (MODELS / "iris.yaml").read_text()
    assert "dtype" not in plain
    spec = tmp_path / "iris.yaml"
    spec.write_text(
        plain.replace("training:\n", "training:\n  dtype: float64\n").replace(
            "../datasets", str(MODELS.parent / "datasets")
        )
    )
    a = train_spec(MODELS / "iris.yaml", overrides={"epochs": 5})
    b = train_spec(spec, overrides={"epochs": 5})
    assert list(a.history) == list(b.history) and a.history.validation == b.history.validation
    assert a.record.parameters == b.record.parameters
    assert a.record.training.dtype == "float64" == Training().dtype


def test_float32_runs_per_sample_on_arrays_however_small_the_model() -> None:
    """float32 asks for the NumPy trainer, so a small model in batches of one, which the cost
    estimate would give to the scalar code, trains on arrays in float32."""
    X = points(30, 2)
    T = [1.0 if x[1] > x[0] else 0.0 for x in X]
    used: list[str] = []
    for dtype in ("float64", "float32"):
        (z,) = mlp((2, 3, 1))
        model = Sigmoid([z])
        model.compile()
        assert model.graph is not None
        tg.fit(model, X, T, loss="bce", epochs=2, batch_size=1, dtype=dtype)
        used.append(dtype if is_float32(model.graph.param_values()) else "float64")
    assert used == ["float64", "float32"]


def epoch_arrays(fit_call: Any, required: bool = True) -> dict[str, str]:
    """The float dtype of every array (and NumPy number) left in the vectorized epoch's locals
    when it returns, by variable name (`required`: the epoch must have run on arrays)."""
    seen: dict[str, str] = {}

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "return":
            for k, v in frame.f_locals.items():
                if isinstance(v, (np.ndarray, np.floating)) and v.dtype.kind == "f":
                    seen[k] = str(v.dtype)
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename == "<treegrad vectorized epoch>" else None

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        fit_call()
    finally:
        sys.settrace(old)
    assert seen or not required, "the vectorized epoch did not run"
    return seen


CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "softmax, adam": (lambda: Softmax(mlp((3, 6, 3))), {"loss": "cross_entropy", "optimizer": "adam", "batch_size": 8}),
    "softmax, per sample, momentum, l1, l2, clip": (
        lambda: Softmax(mlp((3, 6, 3), ReLU)),
        {"loss": "cross_entropy", "optimizer": "momentum", "batch_size": 1, "l1": 0.01, "l2": 0.01, "clip_norm": 0.5},
    ),
    "softmax, weighted": (
        lambda: Softmax(mlp((3, 6, 3))),
        {"loss": "cross_entropy", "batch_size": 5, "sample_weight": [1.0 + i % 3 for i in range(40)]},
    ),
    "list output": (lambda: Output([Sigmoid([z]) for z in mlp((3, 5, 2))]), {"loss": "mse", "clip_norm": 1.0}),
    # a parameter outside the dense layers, and a node of parameters alone (exp(p q)), per sample
    "mixed": (
        lambda: Sigmoid(
            [Add([Multiply([Parameter(0.5), mlp((3, 4, 1))[0]]), Exp([Multiply([Parameter(0.1), Parameter(0.2)])])])]
        ),
        {"loss": "bce", "batch_size": 1, "l1": 0.01, "l2": 0.1},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_no_float64_array_inside_a_float32_epoch(case: str) -> None:
    """Every array the epoch computes is float32: no float64 array, constant or number of NumPy
    slips in to turn the rest into float64. Two are float64 on purpose: the loss total, summed
    in float64, and the buffer that writes the parameters back as Python floats."""
    build, kw = CASES[case]
    X = points(40, 3)
    T: list[Any]
    if kw["loss"] == "cross_entropy":
        T = [int(x[0] > x[1]) + int(x[2] > 0) for x in X]
    elif kw["loss"] == "bce":
        T = [1.0 if x[1] > x[0] else 0.0 for x in X]
    else:
        T = [[x[0], 2 * x[1]] for x in X]
    kw = {"optimizer": "adam", "batch_size": 4, **kw}
    dtypes = epoch_arrays(lambda: tg.fit(build(), X, T, epochs=2, learning_rate=0.05, dtype="float32", **kw))
    wider = {k: d for k, d in dtypes.items() if d != "float32"}
    assert wider == {"total": "float64", "Pa": "float64"}, wider
    # float64, where its cost estimate gives the model to arrays at all, is float64 throughout
    assert all(d == "float64" for d in epoch_arrays(lambda: tg.fit(build(), X, T, epochs=1, **kw), False).values())


def test_saturated_outputs_keep_finite_losses_in_float32() -> None:
    """float32 rounds 1 - 1e-8 to 1 and 1e-300 to 0, where bce's and cross-entropy's clamps
    would let log meet 0 (a NaN for a confident right answer): the clamps are float32 numbers."""
    X = [[1.0, 0.0], [0.0, 1.0]] * 4
    # sigmoid(+-40) is exactly 1 or 0 in float32: confident and right
    (z,) = mlp((2, 1))
    model = Sigmoid([z])
    model.compile()
    assert model.graph is not None
    model.graph.set_param_values([40.0, -40.0, 0.0])
    hist = tg.fit(model, X, [1.0, 0.0] * 4, loss="bce", epochs=2, batch_size=4, dtype="float32")
    assert all(math.isfinite(v) and v < 1e-6 for v in hist)
    # a softmax confidently wrong by 200: its true class's probability underflows float32
    zs = mlp((2, 2))
    soft = Softmax(zs)
    soft.compile()
    assert soft.graph is not None
    soft.graph.set_param_values([100.0, -100.0, 0.0, -100.0, 100.0, 0.0])
    hist = tg.fit(soft, X, [1, 0] * 4, loss="cross_entropy", epochs=1, batch_size=4, dtype="float32")
    assert all(math.isfinite(v) and v > 80 for v in hist)


def test_clamps_are_the_float64_constants_and_float32_numbers_below_one() -> None:
    c64 = array_clamps(np.float64)
    assert c64 == {"bce_lo": BCE_EPS, "bce_hi": 1.0 - BCE_EPS, "ce_tiny": CE_TINY}
    c32 = array_clamps(np.float32)
    assert np.float32(c32["bce_hi"]) < 1 and np.float32(c32["bce_lo"]) > 0 and np.float32(c32["ce_tiny"]) > 0
    assert is_float32(list(c32.values()))


def test_float32_where_only_the_scalar_engine_trains_is_refused() -> None:
    model = Add([Multiply([Parameter(0.5), Input("x"), Input("x")]), Parameter(0.0)])  # no dense layer
    with pytest.raises(TrainingError, match=r"dtype float32 needs the NumPy trainer.*use dtype float64"):
        tg.fit(model, [[1.0], [2.0]], [2.0, 4.0], dtype="float32")
    with pytest.raises(TrainingError, match="the reference engine computes in float64 only"):
        tg.fit(Sigmoid(mlp((2, 2, 1))), [[1.0, 0.0]], [1.0], dtype="float32", engine="reference")
    with pytest.raises(TrainingError, match="unknown dtype 'float16'; use float64 or float32"):
        tg.fit(model, [[1.0]], [2.0], dtype="float16")


def test_cli_refuses_float32_for_a_model_without_dense_layers(tmp_path: Path) -> None:
    spec = tmp_path / "lin.yaml"
    spec.write_text(SCALAR_ONLY + "training: {dtype: float32, epochs: 2}\n")
    out = tmp_path / "lin.model.json"
    result = CliRunner().invoke(app, ["train", str(spec), "-o", str(out), "-q"])
    assert result.exit_code == 1, result.output
    assert "dtype float32 needs the NumPy trainer" in result.output and "training.dtype" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_a_misspelt_dtype_is_a_located_error_with_did_you_mean(tmp_path: Path) -> None:
    spec = tmp_path / "lin.yaml"
    spec.write_text(SCALAR_ONLY + "training: {dtype: flaot32}\n")
    result = CliRunner().invoke(app, ["train", str(spec), "-q"])
    assert result.exit_code == 1, result.output
    assert "lin.yaml:5:" in result.output
    assert "training.dtype: the text 'flaot32' is not allowed — did you mean 'float32'?" in result.output
    assert "Allowed: float64, float32" in result.output and "Traceback" not in result.output
    spec.write_text(SCALAR_ONLY)
    bad = CliRunner().invoke(app, ["train", str(spec), "-q", "--set", "training.dtype=float16"])
    assert bad.exit_code == 2 and "training.dtype" in bad.output and "float16" in bad.output, bad.output


def test_a_float32_model_file_predicts_in_float64_from_its_saved_values(tmp_path: Path) -> None:
    """The model file holds the float32 parameters as JSON numbers; predict computes from them
    in float64, as for any model, so the file reads and predicts like any other."""
    out = tmp_path / "xor.model.json"
    result = CliRunner().invoke(
        app, ["train", str(MODELS / "xor.yaml"), "-o", str(out), "-q", "--epochs", "3", "--set", "dtype=float32"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["training"]["dtype"] == "float32" and is_float32(list(doc["parameters"].values()))
    loaded = load_model(out)
    assert loaded.root.compiled_graph.param_values() == list(doc["parameters"].values())
    shown = CliRunner().invoke(app, ["predict", str(out), "0.2", "0.9"])
    assert shown.exit_code == 0, shown.output


def test_the_vectorized_epoch_says_its_precision() -> None:
    from treegrad.engine.losses import LOSSES
    from treegrad.engine.optim import OPTIMIZERS
    from treegrad.engine.vectorized import vectorized_epoch_fn

    model = Sigmoid(mlp((2, 4, 1)))
    model.compile()
    assert model.graph is not None
    args = (model.graph, LOSSES["bce"], OPTIMIZERS["sgd"], None, None, False)
    f64, f32 = vectorized_epoch_fn(*args), vectorized_epoch_fn(*args, "float32")
    assert isinstance(f64, VectorizedEpoch) and isinstance(f32, VectorizedEpoch)
    assert (f64.dtype, f32.dtype) == ("float64", "float32") and f64.source == f32.source  # one source, two precisions


@pytest.mark.parametrize("name", ["xor", "iris", "diabetes"])
def test_engine_torch_trains_in_float32_as_treegrad_does(name: str) -> None:
    """--engine torch with dtype float32: a float32 module, data and loss (its clamps float32's),
    so the losses are the NumPy trainer's float32 ones to float32's rounding."""
    pytest.importorskip("torch")
    from treegrad.torch.trainer import fit as torch_fit
    from treegrad.torch.trainer import trainer

    records = {}
    for engine in ("treegrad", "torch"):
        prep = prepare(MODELS / f"{name}.yaml", overrides={"epochs": 3, "dtype": "float32"})
        if engine == "torch":
            assert trainer(prep.settings) is not None  # carried out, not refused
        records[engine] = run_prepared(prep, trainer=torch_fit if engine == "torch" else None).record
    ours, theirs = records["treegrad"], records["torch"]
    for a, b in zip(ours.history.train, theirs.history.train, strict=True):
        assert math.isclose(a, b, rel_tol=1e-5), (ours.history.train, theirs.history.train)
    assert is_float32(list(theirs.parameters.values())) and theirs.training.dtype == "float32"
    for a, b in zip(ours.parameters.values(), theirs.parameters.values(), strict=True):
        assert math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-5)


def test_engine_torch_keeps_saturated_losses_finite_in_float32() -> None:
    pytest.importorskip("torch")
    from treegrad.torch.trainer import fit as torch_fit

    (z,) = mlp((2, 1))
    model = Sigmoid([z])
    model.compile()
    assert model.graph is not None
    model.graph.set_param_values([40.0, -40.0, 0.0])
    X = [[1.0, 0.0], [0.0, 1.0]] * 4
    hist = torch_fit(model, X, [1.0, 0.0] * 4, loss="bce", epochs=2, batch_size=4, dtype="float32")
    assert all(math.isfinite(v) and v < 1e-6 for v in hist)
    with pytest.raises(TrainingError, match="unknown dtype 'float16'"):
        torch_fit(model, X, [1.0, 0.0] * 4, loss="bce", dtype="float16")
