"""PyTorch, checked by agreement: the exported module predicts what `predict` predicts, parameters
trained in PyTorch come back into a model file, `--engine torch` gives treegrad's loss curves,
and two processes under torchrun give what one gives. Without torch every such command says
how to install it (those tests run whether or not torch is installed; the others skip)."""

from __future__ import annotations

import ast
import json
import math
import random
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from treegrad import __file__ as treegrad_file
from treegrad.cli import app
from treegrad.engine.compiled import predict_many
from treegrad.engine.fit import fit
from treegrad.engine.losses import LOSSES
from treegrad.engine.optim import OPTIMIZERS
from treegrad.run.modelfile import Opened, open_model
from treegrad.run.modelfile import load as load_model
from treegrad.run.prepare import prepare
from treegrad.run.train import run as run_prepared
from treegrad.run.train import train as train_spec
from treegrad.spec.models import parse_spec

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
EXAMPLES = sorted(p.stem for p in MODELS.glob("*.yaml"))
runner = CliRunner()


def flat(values: list[Any]) -> list[float]:
    return [float(x) for v in values for x in (v if isinstance(v, list) else [v])]


def max_diff(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b)
    return max((abs(x - y) for x, y in zip(a, b)), default=0.0)


def rel_diff(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b)
    return max((abs(x - y) / max(1.0, abs(y)) for x, y in zip(a, b)), default=0.0)


# ----------------------------------------------------------------- without torch


@pytest.mark.parametrize(
    "args",
    [
        ["export", "models/f2c.yaml", "--format", "torch", "-o", "OUT/m.py"],
        ["import-params", "MODEL", "--from", "OUT/sd.pt", "-o", "OUT/new.json"],
        ["train", "models/f2c.yaml", "--engine", "torch", "-o", "OUT/t.json", "--epochs", "1", "-q"],
    ],
)
def test_without_torch_every_command_says_how_to_install(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "f2c.model.json"
    r = runner.invoke(app, ["train", str(MODELS / "f2c.yaml"), "-o", str(model), "--epochs", "1", "-q"])
    assert r.exit_code == 0, r.output
    (tmp_path / "sd.pt").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "torch", None)
    argv = [str(model) if a == "MODEL" else a.replace("OUT", str(tmp_path)) for a in args]
    argv = [str(ROOT / a) if a.startswith("models/") else a for a in argv]
    r = runner.invoke(app, argv)
    assert r.exit_code == 1, r.output
    assert "pip install torch==2.13.0" in r.output and "Traceback" not in r.output
    assert not any(p.name in ("m.py", "new.json", "t.json") for p in tmp_path.iterdir())


def test_importing_treegrad_does_not_import_torch() -> None:
    ours = "treegrad.outputs.torchsource, treegrad.torch.module, treegrad.torch.params, treegrad.torch.trainer"
    code = f"import sys, treegrad, treegrad.cli, {ours}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_the_torch_trainer_steps_by_the_optimizer_table() -> None:
    """No second table of torch optimizers: a step is the entry's own statements (the torch
    trainer of every entry is tests/test_optimizers.py's)."""
    from treegrad.engine.penalties import StepRules
    from treegrad.torch.trainer import step_source

    for opt in OPTIMIZERS.values():
        source = step_source(opt, StepRules(0.0, 0.01, None, (True, False)))
        assert all(line in source for line in opt.update("F", "G", [f"{s}_F" for s in opt.state])), opt.name
    assert "torch.optim" not in Path(__file__).parent.parent.joinpath("src/treegrad/torch/trainer.py").read_text()


def test_every_array_name_has_its_torch_binding() -> None:
    """The op and loss tables' array forms may use every name vectorized.py binds to NumPy
    (but the NumPy trainer's own DT and as_numbers, and the loss clamps, which the torch
    engine binds per dtype from losses.array_clamps)."""
    from treegrad.engine.losses import ARRAY_CLAMPS
    from treegrad.engine.vectorized import array_namespace
    from treegrad.outputs.torchsource import ARRAY_BINDINGS

    assert set(array_namespace()) - {"np", "arange", "DT", "as_numbers", *ARRAY_CLAMPS} <= set(ARRAY_BINDINGS)


def test_torch_names_are_plain_distinct_attributes() -> None:
    from treegrad.outputs.torchsource import torch_names

    names = torch_names(["w", "a.b", "a_b", "1x", "forward", "class", "", "é"], reserved={"forward"})
    assert names[:2] == ["w", "a_b"]
    assert len(set(names)) == len(names)
    assert all(n.isidentifier() and n[0].isalpha() and n.isascii() for n in names)
    assert "forward" not in names and "class" not in names


def test_settings_the_torch_engine_lacks_are_refused_by_name() -> None:
    from pydantic import BaseModel

    from treegrad.errors import TrainingError
    from treegrad.torch.trainer import check_settings

    class Settings(BaseModel):
        epochs: int = 100
        l2: float = 0.0
        warmup: int = 0  # a setting treegrad's engine might gain before the torch engine does

    check_settings(Settings(epochs=3, l2=0.1))
    with pytest.raises(TrainingError, match=r"--engine torch does not support training\.warmup"):
        check_settings(Settings(warmup=5))


def test_the_torch_engine_carries_out_every_training_setting() -> None:
    from treegrad.engine.settings import Training
    from treegrad.torch.trainer import TORCH_SETTINGS

    assert set(Training.model_fields) == TORCH_SETTINGS


# ----------------------------------------------------------------- with torch

torch_tests = pytest.mark.usefixtures("torch")


@pytest.fixture
def torch() -> Any:
    return pytest.importorskip("torch")


def random_rows(n_inputs: int, n: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.uniform(-3.0, 3.0) for _ in range(n_inputs)] for _ in range(n)]


@torch_tests
@pytest.mark.parametrize("name", EXAMPLES)
def test_module_predicts_as_predict(name: str) -> None:
    import torch

    from treegrad.torch.module import torch_module

    model = open_model(MODELS / f"{name}.yaml")
    module = torch_module(model)
    g = model.root.compiled_graph
    assert [n for n, _ in module.named_parameters()] == g.param_names
    assert all(p.dtype == torch.float64 and p.shape == () for p in module.parameters())
    rows = random_rows(len(g.input_names), 25, seed=1)
    got = module(torch.tensor(rows, dtype=torch.float64)).tolist()
    assert max_diff(flat(got), flat(predict_many(model.root, rows))) <= 1e-12, name


@torch_tests
def test_exported_file_needs_torch_alone(tmp_path: Path) -> None:
    out = tmp_path / "model.py"
    r = runner.invoke(app, ["export", str(MODELS / "iris.yaml"), "--format", "torch", "-o", str(out)])
    assert r.exit_code == 0, r.output
    tree = ast.parse(out.read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported == {"torch"} and not any(isinstance(n, ast.ImportFrom) for n in ast.walk(tree))
    ns: dict[str, Any] = {}
    exec(compile(tree, str(out), "exec"), ns)  # noqa: S102 - the module just exported
    assert ns["CLASSES"] == ["setosa", "versicolor", "virginica"]
    assert set(ns["TREEGRAD_NAMES"].values()) == set(open_model(MODELS / "iris.yaml").root.compiled_graph.param_names)


@torch_tests
def test_hostile_model_names_stay_in_literals(tmp_path: Path) -> None:
    import torch

    from treegrad import Add, Constant, Input, Multiply, Parameter
    from treegrad.outputs.torchsource import module_source
    from treegrad.torch.module import torch_module

    root = Add([Multiply([Parameter(0.5, name='w""" ); import os #'), Input("x")]), Constant(1.5)])
    opened = Opened(root, 'evil"""\nimport os', "regression")
    source = module_source(opened)
    assert "import os" not in [line.strip() for line in source.splitlines()]
    out = torch_module(opened)(torch.tensor([[2.0]], dtype=torch.float64))
    assert float(out[0].detach()) == pytest.approx(root.predict([2.0]), rel=1e-12)


@torch_tests
def test_round_trip_through_a_users_pytorch_script(tmp_path: Path) -> None:
    """export -> 10 Adam steps in PyTorch -> import-params -> show and predict agree with PyTorch."""
    import torch

    model = tmp_path / "iris.model.json"
    r = runner.invoke(app, ["train", str(MODELS / "iris.yaml"), "-o", str(model), "--epochs", "2", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["export", str(model), "--format", "torch", "-o", str(tmp_path / "model.py")])
    assert r.exit_code == 0, r.output
    ns: dict[str, Any] = {}
    exec((tmp_path / "model.py").read_text(), ns)  # noqa: S102 - the module just exported
    m = ns["Model"]()
    rows = json.loads(model.read_text())
    loaded = load_model(model)
    X = torch.tensor(random_rows(4, 40, seed=2), dtype=torch.float64) + 4.0
    y = torch.tensor([i % 3 for i in range(40)])
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    for _ in range(10):
        opt.zero_grad()
        p = m(X)
        (-torch.log(p[torch.arange(len(y)), y])).mean().backward()
        opt.step()
    torch.save(m.state_dict(), tmp_path / "sd.pt")
    new = tmp_path / "new.json"
    r = runner.invoke(app, ["import-params", str(model), "--from", str(tmp_path / "sd.pt"), "-o", str(new)])
    assert r.exit_code == 0, r.output
    record = json.loads(new.read_text())
    assert record["parameters"] != rows["parameters"]
    for attr, name in ns["TREEGRAD_NAMES"].items():
        assert record["parameters"][name] == float(getattr(m, attr).detach())
    shown = runner.invoke(app, ["show", str(new)])
    assert shown.exit_code == 0 and "tanh(" in shown.output
    reloaded = load_model(new)
    ours = predict_many(reloaded.root, X.tolist())
    assert max_diff(flat(ours), flat(m(X).tolist())) <= 1e-12
    assert max_diff(flat(predict_many(loaded.root, X.tolist())), flat(ours)) > 1e-6  # the parameters did change


@torch_tests
def test_import_params_checks_names_shapes_and_files(tmp_path: Path) -> None:
    import torch

    model = tmp_path / "f2c.model.json"
    assert (
        runner.invoke(app, ["train", str(MODELS / "f2c.yaml"), "-o", str(model), "--epochs", "1", "-q"]).exit_code == 0
    )
    cases = {
        "missing": ({"p0": torch.tensor(1.0, dtype=torch.float64)}, "missing p1"),
        "extra": ({"p0": torch.tensor(1.0), "p1": torch.tensor(2.0), "bogus": torch.tensor(0.0)}, "unexpected 'bogus'"),
        "shape": ({"p0": torch.ones(2), "p1": torch.tensor(2.0)}, "p0 has shape (2,)"),
        "nan": ({"p0": torch.tensor(math.nan), "p1": torch.tensor(2.0)}, "finite numbers only"),
    }
    for key, (state, message) in cases.items():
        torch.save(state, tmp_path / f"{key}.pt")
        r = runner.invoke(app, ["import-params", str(model), "--from", str(tmp_path / f"{key}.pt"), "-o", "x.json"])
        assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, (key, r.output)
    # An object that only unpickling could make is refused (weights_only), not run.
    torch.save({"p0": torch.tensor(1.0), "p1": Path("/")}, tmp_path / "obj.pt")
    r = runner.invoke(app, ["import-params", str(model), "--from", str(tmp_path / "obj.pt"), "-o", "x.json"])
    assert r.exit_code == 1 and "not a state dict torch can read safely" in r.output
    for bad in (tmp_path / "nothere.pt", model):
        r = runner.invoke(app, ["import-params", str(model), "--from", str(bad), "-o", "x.json"])
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    # Writing over what the command reads would destroy its input.
    torch.save({"p0": torch.tensor(0.5), "p1": torch.tensor(-3.0)}, tmp_path / "sd.pt")
    for target in (tmp_path / "sd.pt", model):
        r = runner.invoke(app, ["import-params", str(model), "--from", str(tmp_path / "sd.pt"), "-o", str(target)])
        assert r.exit_code == 1 and "a file this command reads" in r.output, r.output
    # A DDP module's state dict has its keys under `module.`.
    torch.save({"module.p0": torch.tensor(0.5), "module.p1": torch.tensor(-3.0)}, tmp_path / "ddp.pt")
    new = tmp_path / "new.json"
    r = runner.invoke(app, ["import-params", str(model), "--from", str(tmp_path / "ddp.pt"), "-o", str(new)])
    assert r.exit_code == 0, r.output
    assert json.loads(new.read_text())["parameters"] == {"p0": 0.5, "p1": -3.0}


@torch_tests
def test_import_params_says_what_a_file_refers_to_in_its_own_words(tmp_path: Path) -> None:
    """Issue 24: import-params quoted torch's advice to load the file with weights_only=False
    (which runs whatever code it holds), and torch warned, with its source path, of a file saved
    with another pickle protocol. It names the code the file refers to, and says no more of torch's."""
    import warnings

    import torch

    model = tmp_path / "f2c.model.json"
    trained = runner.invoke(app, ["train", str(MODELS / "f2c.yaml"), "-o", str(model), "--epochs", "1", "-q"])
    assert trained.exit_code == 0, trained.output
    torch.save({"p0": torch.tensor(1.0), "p1": Path("/")}, tmp_path / "obj.pt")
    r = runner.invoke(app, ["import-params", str(model), "--from", str(tmp_path / "obj.pt"), "-o", "x.json"])
    assert r.exit_code == 1 and "it names pathlib.PosixPath, code that unpickling would run" in r.output, r.output
    assert "weights_only" not in r.output and "trust" not in r.output, r.output
    torch.save({"p0": torch.tensor(0.5), "p1": torch.tensor(-3.0)}, tmp_path / "p4.pt", pickle_protocol=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = runner.invoke(app, ["import-params", str(model), "--from", str(tmp_path / "p4.pt"), "-o", "p4.json"])
    # torch's safe reader does not take protocol 4's instructions: refused, saying how it was written
    assert r.exit_code == 1 and "torch.save with a pickle_protocol other than its default, 2" in r.output, r.output
    assert [str(w.message) for w in caught if "pickle protocol" in str(w.message)] == []
    assert "weights_only" not in r.output and "site-packages" not in r.output and not Path("p4.json").exists()


def curves(name: str, engine: str, epochs: int) -> tuple[list[float], list[float], list[float]]:
    """(training losses, validation losses, final parameters) of an example model."""
    from treegrad.torch import trainer as torch_trainer

    prep = prepare(MODELS / f"{name}.yaml", overrides={"epochs": epochs})
    data = prep.data
    hist = (fit if engine == "treegrad" else torch_trainer.fit)(
        prep.root,
        *data.train,
        prep.settings,
        loss=prep.loss,
        validation=data.validation if len(data.validation[0]) else None,
    )
    return list(hist), hist.validation, prep.root.compiled_graph.param_values()


# Epochs per example: enough for every kind of step, few for the per-sample models.
EPOCHS = {"f2c": 2, "line": 1, "iris": 5, "xor": 5, "circles": 3, "dag": 3, "regression": 5}


@torch_tests
@pytest.mark.parametrize("name", EXAMPLES)
def test_engine_torch_gives_treegrads_loss_curves(name: str) -> None:
    ours, ours_val, ours_p = curves(name, "treegrad", EPOCHS.get(name, 3))
    theirs, theirs_val, theirs_p = curves(name, "torch", EPOCHS.get(name, 3))
    assert rel_diff(theirs, ours) <= 1e-9, (name, ours, theirs)
    assert rel_diff(theirs_val, ours_val) <= 1e-9, name
    assert rel_diff(theirs_p, ours_p) <= 1e-9, name


SPECS = {
    "regression": "inputs: [x, y]\nlayers: [{linear: 3, activation: tanh}, {linear: 1}]\n",
    "binary": "inputs: [x, y]\nlayers: [{linear: 3, activation: relu}, {linear: 1, activation: sigmoid}]\n",
    "classes": "inputs: [x, y]\nlayers: [{linear: 3, activation: tanh}, {linear: 3}, {softmax: true}]\n",
    "list": "inputs: [x, y]\nlayers: [{linear: 3, activation: tanh}, {linear: 2}]\n",
}


@torch_tests
@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_every_loss_and_optimizer_trains_the_same(loss: str, optimizer: str) -> None:
    from treegrad.spec.build import build_model
    from treegrad.torch.trainer import fit as torch_fit

    task = LOSSES[loss].task
    kinds = ["list", "regression"] if task == "regression" else [task]
    rows = random_rows(2, 24, seed=5)
    for kind in kinds:
        targets: list[Any] = {
            "regression": [r[0] - 0.5 * r[1] for r in rows],
            "list": [[r[0], r[1] * r[0]] for r in rows],
            "binary": [float(r[0] > r[1]) for r in rows],
            "classes": [int(r[0] > 0) + int(r[1] > 0) for r in rows],
        }[kind]
        results = []
        for train in (fit, torch_fit):
            root = build_model(parse_spec(SPECS[kind], "m.yaml"), seed=2)
            kw = {"loss": loss, "optimizer": optimizer, "epochs": 3, "batch_size": 5, "shuffle": True, "seed": 4}
            hist = train(root, rows, targets, learning_rate=0.05, **kw)
            results.append((list(hist), root.compiled_graph.param_values()))
        (a, pa), (b, pb) = results
        assert rel_diff(b, a) <= 1e-9 and rel_diff(pb, pa) <= 1e-9, (loss, optimizer, kind, a, b)


@torch_tests
def test_train_engine_torch_from_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "xor.model.json"
    r = runner.invoke(app, ["train", str(MODELS / "xor.yaml"), "--engine", "torch", "-o", str(out), "--epochs", "2"])
    assert r.exit_code == 0, r.output
    ours = train_spec(MODELS / "xor.yaml", overrides={"epochs": 2})
    rec = json.loads(out.read_text())
    assert rel_diff(rec["history"]["train"], list(ours.history)) <= 1e-9
    assert runner.invoke(app, ["show", str(out)]).exit_code == 0
    for args, message in [
        (["--engine", "torch", "--device", "tpu"], "unknown device 'tpu'"),
        (["--device", "cuda"], "--device needs --engine torch"),
        (["--engine", "jax"], "unknown engine 'jax'"),
    ]:
        r = runner.invoke(app, ["train", str(MODELS / "xor.yaml"), "-o", str(tmp_path / "x.json"), *args])
        assert r.exit_code in (1, 2) and message in r.output and "Traceback" not in r.output, r.output
        assert not (tmp_path / "x.json").exists()
    # The penalties, once refused, train as treegrad's engine trains them.
    spec = tmp_path / "l2.yaml"
    spec.write_text((MODELS / "xor.yaml").read_text().replace("training:\n", "training:\n  l2: 0.01\n"))
    r = runner.invoke(app, ["train", str(spec), "--engine", "torch", "-o", str(tmp_path / "l2.json"), "--epochs", "2"])
    assert r.exit_code == 0, r.output
    ours = train_spec(spec, overrides={"epochs": 2}).record.history
    assert rel_diff(json.loads((tmp_path / "l2.json").read_text())["history"]["penalty"], ours.penalty) <= 1e-9


def both_engines(spec: Path, sets: dict[str, Any], epochs: int) -> tuple[Any, Any]:
    """The record of a spec trained by treegrad's engine and by --engine torch, with `sets`
    (training settings by key) applied to both."""
    from treegrad.torch.trainer import fit as torch_fit
    from treegrad.torch.trainer import trainer

    records = []
    for engine in ("treegrad", "torch"):
        prep = prepare(spec, overrides={"epochs": epochs}, sets=[(("training", k), v) for k, v in sets.items()])
        if engine == "torch":
            assert trainer(prep.settings) is not None  # every setting used here is carried out, none refused
        records.append(run_prepared(prep, trainer=torch_fit if engine == "torch" else None).record)
    return records[0], records[1]


def assert_same_training(ours: Any, theirs: Any) -> None:
    """Per-epoch losses, learning rates, penalties and the final parameters agree to 1e-9."""
    a, b = ours.history, theirs.history
    assert len(a.train) == len(b.train) and len(a.validation) == len(b.validation)
    assert rel_diff(b.train, a.train) <= 1e-9, (a.train, b.train)
    assert rel_diff(b.validation, a.validation) <= 1e-9
    assert b.learning_rates == a.learning_rates
    assert rel_diff(b.penalty, a.penalty) <= 1e-9
    assert rel_diff(list(theirs.parameters.values()), list(ours.parameters.values())) <= 1e-9
    assert (b.best_epoch, b.stopped_early) == (a.best_epoch, a.stopped_early)


# Each option of a step or a run that the torch engine carries out as treegrad's engine does,
# on an example model; `check` says the option did act (so that the test could fail).
OPTION_CASES: dict[str, tuple[str, dict[str, Any], int, Callable[[Any], bool]]] = {
    "l2": ("xor", {"l2": 0.05}, 4, lambda r: bool(r.history.penalty)),
    "l2-momentum": ("iris", {"l2": 0.01, "optimizer": "momentum"}, 3, lambda r: bool(r.history.penalty)),
    "l1": ("xor", {"l1": 0.05}, 4, lambda r: 0.0 in r.parameters.values()),  # the proximal step's zeros
    "l1-sgd": ("iris", {"l1": 0.2}, 3, lambda r: 0.0 in r.parameters.values()),
    "l1+l2-adam": ("xor", {"l1": 0.005, "l2": 0.01}, 4, lambda r: bool(r.history.penalty)),
    "step": ("iris", {"lr_schedule": {"type": "step", "step_size": 2, "gamma": 0.5}}, 5, None),
    "exponential": ("xor", {"lr_schedule": {"type": "exponential", "gamma": 0.7}}, 4, None),
    "cosine": ("iris", {"lr_schedule": {"type": "cosine", "min_lr": 0.001}}, 5, None),
    # On the validation loss, which rises now and then at this rate.
    "plateau": (
        "xor",
        {"lr_schedule": {"type": "plateau", "patience": 1, "factor": 0.5}, "learning_rate": 0.3},
        8,
        None,
    ),
    # On the training loss (circles has no validation split).
    "plateau-train": ("circles", {"lr_schedule": {"type": "plateau", "patience": 1}, "learning_rate": 0.3}, 5, None),
    "class_weight": (
        "iris",
        {"class_weight": {"setosa": 3.0, "virginica": 0.5}},
        3,
        lambda r: "weighted_loss" in r.metrics["train"],
    ),
    "balanced": ("xor", {"class_weight": "balanced"}, 3, lambda r: "weighted_loss" in r.metrics["train"]),
}


@torch_tests
@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_engine_torch_carries_out_each_training_option(case: str) -> None:
    name, sets, epochs, check = OPTION_CASES[case]
    ours, theirs = both_engines(MODELS / f"{name}.yaml", sets, epochs)
    assert_same_training(ours, theirs)
    if check is None:  # a schedule: the rate did change during the run
        assert len(set(ours.history.learning_rates)) > 1, ours.history.learning_rates
    else:
        assert check(ours), case


@torch_tests
def test_clipping_acts_and_torch_clips_as_treegrad() -> None:
    """A clip small enough to act changes the run, and both engines change it alike."""
    ours, theirs = both_engines(MODELS / "xor.yaml", {"clip_norm": 0.05}, 3)
    plain, _ = both_engines(MODELS / "xor.yaml", {}, 3)
    assert_same_training(ours, theirs)
    assert rel_diff(ours.history.train, plain.history.train) > 1e-6


@torch_tests
def test_engine_torch_weighs_rows_by_a_weight_column(tmp_path: Path) -> None:
    lines = (ROOT / "datasets" / "iris.csv").read_text().splitlines()
    rows = [lines[0] + ",w"] + [f"{line},{1 + i % 4}" for i, line in enumerate(lines[1:]) if line]
    (tmp_path / "iris_w.csv").write_text("\n".join(rows) + "\n")
    spec = tmp_path / "iris_w.yaml"
    spec.write_text((MODELS / "iris.yaml").read_text().replace("../datasets/iris.csv", "iris_w.csv"))
    ours, theirs = both_engines(spec, {"weight_column": "w", "class_weight": "balanced"}, 3)
    assert_same_training(ours, theirs)
    assert "weighted_loss" in ours.metrics["train"]
    unweighted = run_prepared(prepare(spec, overrides={"epochs": 3})).record  # the column unused
    assert rel_diff(ours.history.train, unweighted.history.train) > 1e-6


@torch_tests
def test_device_cuda_without_a_gpu_says_cuda_is_not_available(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "x.json"
    r = runner.invoke(app, ["train", str(MODELS / "xor.yaml"), "--engine", "torch", "--device", "cuda", "-o", str(out)])
    assert r.exit_code == 1, r.output
    assert "CUDA is not available" in r.output and "--device cpu" in r.output and "Traceback" not in r.output
    assert not out.exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The options of a step act on the gradient DDP has averaged, the same in every process.
OPTIONS = ["--l1", "0.001", "--l2", "0.01", "--clip-norm", "0.5", "--set", "training.class_weight=balanced"]
OPTIONS += ["--set", "training.lr_schedule={type: step, step_size: 1, gamma: 0.5}"]
SETS: dict[tuple[str, ...], Any] = {
    ("training", "l1"): 0.001,
    ("training", "l2"): 0.01,
    ("training", "clip_norm"): 0.5,
    ("training", "class_weight"): "balanced",
    ("training", "lr_schedule"): {"type": "step", "step_size": 1, "gamma": 0.5},
}


def torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`treegrad ARGS` in two processes under torchrun (gloo on localhost), bounded in time."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2"]
    cmd += ["--master-addr=127.0.0.1", f"--master-port={free_port()}", "-m", "treegrad", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=cwd)
    except subprocess.TimeoutExpired:
        pytest.fail("torchrun with 2 processes did not finish in 240 s")


@torch_tests
def test_two_processes_under_torchrun_equal_one(tmp_path: Path) -> None:
    """DistributedDataParallel over gloo on localhost, iris from its CSV with a validation split,
    standardised inputs, penalties, clipping, a schedule and class weights: each process parses
    about half the lines, and the run is the one a single process makes of all of them (the same
    losses, parameters, metrics and statistics). One torchrun for all of it: each costs three
    processes that import torch."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with gloo is not available")
    split = ["--set", "training.validation_split=0.2"]
    done = torchrun(
        ["train", str(MODELS / "iris.yaml"), "--engine", "torch", "--epochs", "4", *OPTIONS, *split]
        + ["-o", "two.json", "-q"],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["two.json"]  # rank 1 wrote nothing
    rec = json.loads((tmp_path / "two.json").read_text())
    parts = rec["provenance"]["data"]["parts"]
    assert sum(parts) == 150 and len(parts) == 2 and max(parts) < 100, parts
    from treegrad.torch.trainer import fit as torch_fit

    settings = [*SETS.items(), (("training", "validation_split"), 0.2)]
    one = run_prepared(prepare(MODELS / "iris.yaml", overrides={"epochs": 4}, sets=settings), trainer=torch_fit)
    rates = rec["history"]["learning_rates"]
    assert rates == one.history.learning_rates and [b / a for a, b in zip(rates, rates[1:])] == [0.5] * 3
    assert rec["history"]["penalty"]
    assert rec["provenance"]["data"]["sha256"] == one.record.provenance.data.sha256
    assert rec["data"] == one.record.data.model_dump()
    assert max_diff(rec["history"]["train"], list(one.history)) <= 1e-12
    assert max_diff(rec["history"]["validation"], one.history.validation) <= 1e-12
    assert max_diff(list(rec["parameters"].values()), list(one.record.parameters.values())) <= 1e-12
    for part in ("train", "validation"):
        assert rec["metrics"][part]["confusion"] == one.record.metrics[part]["confusion"]
        assert math.isclose(rec["metrics"][part]["loss"], one.record.metrics[part]["loss"], rel_tol=1e-12)
    assert one.record.normalization is not None
    assert flat(list(rec["normalization"].values())) == pytest.approx(
        flat([list(v) for v in one.record.normalization.values()]), rel=1e-13
    )


# Slow (three processes importing torch, about 4 s): the same promise is checked in the test
# command, in one process, by test_parts.py::test_a_bad_cell_in_any_part_stops_every_part_with_its_line.
@pytest.mark.slow
@torch_tests
def test_under_torchrun_a_bad_cell_stops_both_processes_and_is_reported_once(tmp_path: Path) -> None:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with gloo is not available")
    lines = (ROOT / "datasets" / "iris.csv").read_text().splitlines()
    lines[140] = lines[140].replace(lines[140].split(",")[1], "abc", 1)  # in the second process's half
    (tmp_path / "iris.csv").write_text("\n".join(lines) + "\n")
    done = torchrun(
        ["train", str(MODELS / "iris.yaml"), "--data", "iris.csv", "--engine", "torch", "-o", "m.json"], tmp_path
    )
    assert done.returncode != 0
    assert done.stderr.count("iris.csv, line 141, column 'sepal_width'") == 1, done.stderr[-3000:]
    # torchrun itself reports a failed child with a traceback of its own; none comes from treegrad's
    # code (its folder named whole: a clone called treegrad/ is in the path of the venv's Python).
    package = str(Path(treegrad_file).parent) + "/"
    assert package not in done.stderr and not (tmp_path / "m.json").exists(), done.stderr[-3000:]


# Slow (two processes importing torch, about 3 s): the same promise is checked in the test
# command, in one process, by test_parts.py::test_processes_given_different_data_files_stop_before_they_train.
@pytest.mark.slow
@torch_tests
def test_processes_of_one_run_given_different_files_stop_with_one_message(tmp_path: Path) -> None:
    """Two processes of one data-parallel run, as torchrun starts them on two machines (RANK,
    WORLD_SIZE, MASTER_ADDR set), each given its own iris.csv: 78 and 18 rows. They trained anyway
    and exited 0, the provenance naming rank 0's file alone; now rank 0 says the files differ,
    exit 1, and no model is written."""
    import os

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_gloo_available()):
        pytest.skip("torch.distributed with gloo is not available")
    lines = (ROOT / "datasets" / "iris.csv").read_text().splitlines(keepends=True)
    port = free_port()
    procs = []
    for rank, rows in enumerate((lines[:79], lines[:1] + lines[-18:])):
        folder = tmp_path / f"machine{rank}"
        folder.mkdir()
        (folder / "iris.csv").write_text("".join(rows))
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1")
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        args = [str(MODELS / "iris.yaml"), "--data", "iris.csv", "--engine", "torch", "-o", "m.json", "-q"]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "treegrad", "train", *args],
                cwd=folder,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        done = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
    (out0, err0), (out1, err1) = done
    assert procs[0].returncode == 1 and procs[1].returncode == 0, (err0, err1)
    assert err0.startswith("error: under torchrun every process must read the same data, but iris.csv"), err0
    assert "internal error" not in err0 + err1 and err1 == "" and out0 == out1 == ""
    assert not (tmp_path / "machine0" / "m.json").exists() and not (tmp_path / "machine1" / "m.json").exists()
