"""Training options beyond the optimizer: penalties, clipping, schedules, sample weights.

Each is checked on a small case worked out by hand, and the three engines (the compiled
scalar code, the vectorized mini-batch code, the reference evaluator) against each other.
"""

from __future__ import annotations

import importlib
import math
import random
from typing import Any

import pytest

import treegrad as tg
from treegrad import Add, Input, Multiply, Node, Parameter, ReLU, Sigmoid
from treegrad.engine.penalties import StepRules, weight_mask
from treegrad.engine.schedules import CosineSchedule, ExponentialSchedule, PlateauSchedule, Scheduler, StepSchedule
from treegrad.engine.vectorized import vectorized_epoch_fn

# The module (the attribute `treegrad.fit` is the function of the same name).
FIT = importlib.import_module("treegrad.engine.fit")


def line(w: float = 2.0, b: float = 1.0) -> Node:
    """y = w * x + b, with named parameters w (a weight) and b (a bias)."""
    return Add([Multiply([Parameter(w, name="w"), Input("x")]), Parameter(b, name="b")])


def params(model: Node) -> dict[str, float]:
    g = model.compiled_graph
    return dict(zip(g.param_names, g.param_values()))


def test_weights_are_the_factors_of_products() -> None:
    """A parameter multiplied by something is a weight; one that is added, or under another op, is not."""
    x = Input("x")
    model = Add([Multiply([Parameter(1.0, name="w"), x]), Parameter(0.0, name="b"), tg.Exp([Parameter(0.0, name="e")])])
    model.compile()
    assert dict(zip(model.compiled_graph.param_names, weight_mask(model.compiled_graph))) == {
        "w": True,
        "b": False,
        "e": False,
    }


@pytest.mark.parametrize("engine", ["compiled", "reference"])
def test_one_l2_step_by_hand(engine: str) -> None:
    """One SGD step on y = w x + b at x = 1, target 0, lr 0.1, l2 0.5, from w = 2, b = 1:
    output 3, dL/dy = 2 * 3 = 6; dL/dw = 6 * 1 + 0.5 * 2 = 7, dL/db = 6 (biases are not penalised).
    w = 2 - 0.1 * 7 = 1.3, b = 1 - 0.1 * 6 = 0.4. The penalty after the step: 0.5/2 * 1.3^2."""
    model = line()
    hist = tg.fit(model, [[1.0]], [0.0], epochs=1, learning_rate=0.1, l2=0.5, engine=engine)
    assert params(model) == pytest.approx({"w": 1.3, "b": 0.4}, abs=1e-15)
    assert hist[0] == 9.0  # the data loss, without the penalty
    assert hist.penalty == pytest.approx([0.25 * 1.3**2], abs=1e-15)


@pytest.mark.parametrize("engine", ["compiled", "reference"])
def test_one_l1_step_by_hand(engine: str) -> None:
    """l1 0.5 from w = -2: dL/dw = 2 * (-2 + 1) * 1 + 0.5 * sign(-2) = -2.5, w = -2 + 0.25."""
    model = line(-2.0, 1.0)
    hist = tg.fit(model, [[1.0]], [0.0], epochs=1, learning_rate=0.1, l1=0.5, engine=engine)
    assert params(model) == pytest.approx({"w": -1.75, "b": 1.2}, abs=1e-15)
    assert hist.penalty == pytest.approx([0.5 * 1.75], abs=1e-15)


@pytest.mark.parametrize("engine", ["compiled", "reference"])
def test_one_clipped_step_by_hand(engine: str) -> None:
    """The gradient (6, 6) has norm 6 * sqrt(2); clipped to norm 3 it is (3/sqrt(2), 3/sqrt(2)),
    and the penalty's gradient l2 * w = 1 is added after clipping."""
    model = line()
    tg.fit(model, [[1.0]], [0.0], epochs=1, learning_rate=0.1, clip_norm=3.0, l2=0.5, engine=engine)
    g = 3.0 / math.sqrt(2.0)
    assert params(model) == pytest.approx({"w": 2.0 - 0.1 * (g + 1.0), "b": 1.0 - 0.1 * g}, abs=1e-15)


def test_clipping_leaves_small_gradients_alone() -> None:
    a, b = line(), line()
    tg.fit(a, [[1.0]], [0.0], epochs=1, learning_rate=0.1)
    tg.fit(b, [[1.0]], [0.0], epochs=1, learning_rate=0.1, clip_norm=100.0)
    assert params(a) == params(b)


def mlp(seed: int = 1, width: int = 4) -> Node:
    """A 2-`width`-1 ReLU/sigmoid network written node by node (dense layers for the vectorizer)."""
    rng = random.Random(seed)
    xs = [Input("x0"), Input("x1")]
    hidden = [
        ReLU([Add([*[Multiply([Parameter(rng.uniform(-1, 1)), x]) for x in xs], Parameter(rng.uniform(-0.1, 0.1))])])
        for _ in range(width)
    ]
    out = Add([*[Multiply([Parameter(rng.uniform(-1, 1)), h]) for h in hidden], Parameter(0.0)])
    # A weight outside the dense layers: the vectorized code keeps it as a number, not in an array.
    return Sigmoid([Multiply([Parameter(1.5, name="scale"), out])])


def data(n: int = 40, seed: int = 0) -> tuple[list[list[float]], list[float]]:
    rng = random.Random(seed)
    X = [[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(n)]
    return X, [1.0 if y > x else 0.0 for x, y in X]


def run(how: str, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> tuple[list[float], list[float]]:
    """(history, parameters) of the MLP trained by `how`: vectorized, scalar or reference."""
    used: list[bool] = []

    def spy(graph: Any, loss: Any, opt: Any, batch_size: int, *rest: Any) -> Any:
        fn = None if how == "scalar" else vectorized_epoch_fn(graph, loss, opt, None, *rest)
        used.append(fn is not None)
        return fn

    X, y = data()
    with monkeypatch.context() as mp:
        mp.setattr(FIT, "vectorized_epoch_fn", spy)
        model = mlp()
        engine = "reference" if how == "reference" else "compiled"
        hist = tg.fit(model, X, y, loss="bce", epochs=5, batch_size=8, shuffle=True, engine=engine, **kw)
    if how != "reference":
        assert used == [how == "vectorized"]
    return list(hist), model.compiled_graph.param_values()


OPTIONS: list[dict[str, Any]] = [
    {"l2": 0.1},
    {"l1": 0.05, "optimizer": "adam"},
    {"clip_norm": 0.05, "optimizer": "momentum"},
    {"l1": 0.01, "l2": 0.1, "clip_norm": 0.1, "sample_weight": [1.0 + (i % 3) for i in range(40)]},
    {"sample_weight": [0.5 + (i % 2) for i in range(40)], "lr_schedule": StepSchedule(step_size=2, gamma=0.5)},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "+".join(o))
def test_engines_agree_with_options(options: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The vectorized, scalar and reference engines give the same losses and parameters to 1e-12."""
    runs = [run(how, monkeypatch, **options) for how in ("vectorized", "scalar", "reference")]
    for hist, ps in runs[1:]:
        assert hist == pytest.approx(runs[0][0], rel=1e-12, abs=1e-12)
        assert ps == pytest.approx(runs[0][1], rel=1e-12, abs=1e-12)
    plain = run("scalar", monkeypatch)
    assert plain[1] != runs[0][1]  # the option did something


def test_l1_drives_more_weights_to_zero() -> None:
    """Same seed, same data: with l1 more of the weights end near zero."""
    X, y = data(60)

    def small_weights(**kw: Any) -> int:
        model = mlp(seed=2, width=6)
        tg.fit(model, X, y, loss="bce", epochs=200, learning_rate=0.1, **kw)
        g = model.compiled_graph
        return sum(abs(v) < 1e-2 for v, w in zip(g.param_values(), weight_mask(g)) if w)

    assert small_weights(l1=0.02) > small_weights()


@pytest.mark.parametrize(
    "kw, problem",
    [({"l2": -1.0}, "l2 must be a number >= 0"), ({"clip_norm": 0.0}, "clip_norm must be a positive")],
)
def test_bad_values_are_refused(kw: dict[str, Any], problem: str) -> None:
    with pytest.raises(tg.TrainingError, match=problem):
        tg.fit(line(), [[1.0]], [0.0], **kw)


def test_rules_are_inactive_without_options() -> None:
    """No option: no statement added, so the generated code is what it was without them."""
    rules = StepRules(0.0, 0.0, None, (True, False))
    assert not rules.active and rules.code([("p0", "gp0", [0])]) == [] and rules.unpack() == []


# ------------------------------------------------------------------ schedules


def rates(schedule: Any, epochs: int, lr: float = 0.1, losses: list[float] | None = None) -> list[float]:
    s = Scheduler(schedule, lr, epochs)
    out = []
    for e in range(1, epochs + 1):
        out.append(s.rate(e))
        if losses is not None:
            s.observe(losses[e - 1])
    return out


def test_schedule_columns_by_hand() -> None:
    assert rates(StepSchedule(step_size=2, gamma=0.5), 5, lr=1.0) == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert rates(ExponentialSchedule(gamma=0.5), 3, lr=1.0) == [1.0, 0.5, 0.25]
    assert rates(CosineSchedule(min_lr=0.0), 4, lr=1.0) == pytest.approx(
        [1.0, (1 + math.sqrt(0.5)) / 2, 0.5, (1 - math.sqrt(0.5)) / 2]
    )
    # plateau, patience 2: the loss stops improving after epoch 2; epochs 3 and 4 are worse, so
    # from epoch 5 the rate is 0.1 * 0.5; epoch 5 improves, 6 and 7 do not: from epoch 8, 0.025.
    losses = [5.0, 4.0, 4.0, 4.5, 3.0, 3.0, 3.0, 3.0]
    assert rates(PlateauSchedule(factor=0.5, patience=2), 8, lr=0.1, losses=losses) == pytest.approx(
        [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]
    )
    assert rates(None, 3) == [0.1, 0.1, 0.1]


def test_fit_records_the_learning_rate_of_each_epoch() -> None:
    """The schedule's rate is the one used: with gamma 0.5 every epoch, the second step is half as long."""
    model = line()
    hist = tg.fit(model, [[1.0]], [0.0], epochs=3, learning_rate=0.1, lr_schedule=ExponentialSchedule(gamma=0.5))
    assert hist.learning_rates == [0.1, 0.05, 0.025]
    (
        w,
        b,
    ) = 2.0, 1.0
    for lr in hist.learning_rates:
        g = 2.0 * (w + b)
        w, b = w - lr * g, b - lr * g
    assert params(model) == pytest.approx({"w": w, "b": b}, abs=1e-15)


def test_sample_weights_scale_loss_and_gradient() -> None:
    """A sample of weight 3 counts as that sample three times in one step's loss and gradient."""
    a, b = line(), line()
    ha = tg.fit(a, [[1.0]], [0.0], epochs=1, learning_rate=0.01, sample_weight=[3.0])
    hb = tg.fit(b, [[1.0], [1.0], [1.0]], [0.0] * 3, epochs=1, learning_rate=0.01, batch_size=3)
    assert ha[0] == pytest.approx(3 * hb[0]) and params(a) == pytest.approx(
        {k: 1.0 + 3 * (v - 1.0) if k == "b" else 2.0 + 3 * (v - 2.0) for k, v in params(b).items()}
    )


def test_bad_sample_weights() -> None:
    with pytest.raises(tg.TrainingError, match="finite and >= 0"):
        tg.fit(line(), [[1.0]], [0.0], sample_weight=[-1.0])
    with pytest.raises(tg.TrainingError, match="1 sample weights for 2 samples"):
        tg.fit(line(), [[1.0], [2.0]], [0.0, 1.0], sample_weight=[1.0])


# ------------------------------------------------------------------ dead units


def test_dead_relu_is_named() -> None:
    """A ReLU whose bias puts it below 0 on every row is reported with its formula; a live one is not."""
    from treegrad.run.diagnose import dead_unit_warning, dead_units

    x = Input("x")
    dead = ReLU([Add([Multiply([Parameter(1.0, name="w"), x]), Parameter(-5.0, name="b")])])
    live = ReLU([Multiply([Parameter(1.0, name="v"), x])])
    model = Add([dead, live])
    model.compile()
    rows = [[0.5], [1.0], [2.0]]
    assert dead_units(model.compiled_graph, rows) == [dead]
    warning = dead_unit_warning(model.compiled_graph, rows)
    assert warning is not None and "ReLU 1 of 2" in warning and "relu(1 * x - 5)" in warning


# ------------------------------------------------------------------ through the spec and the CLI

SPEC = """\
inputs: [x, y]
output:
  sigmoid:
    add:
      - mul: [param, {relu: {add: [{mul: [param, x]}, {mul: [param, y]}, param]}}]
      - param
loss: bce
data: line:200
target: label
training:
  epochs: 6
  learning_rate: 0.1
  seed: 3
  l2: 0.01
  lr_schedule: {type: step, step_size: 2, gamma: 0.5}
"""


def test_options_are_recorded_in_the_model_file(tmp_path: Any) -> None:
    import json

    from typer.testing import CliRunner

    from treegrad.cli import app

    spec = tmp_path / "m.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "m.model.json"
    result = CliRunner().invoke(app, ["train", str(spec), "-o", str(out), "--clip-norm", "2", "-q"])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["training"]["l2"] == 0.01 and doc["training"]["clip_norm"] == 2.0
    assert doc["training"]["lr_schedule"] == {"type": "step", "step_size": 2, "gamma": 0.5}
    assert doc["history"]["learning_rates"] == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    assert len(doc["history"]["penalty"]) == 6
    shown = CliRunner().invoke(app, ["show", str(out)])
    assert shown.exit_code == 0, shown.output


@pytest.mark.parametrize(
    "change, message",
    [
        ("  l2: -1", "training.l2: must be greater than or equal to 0"),
        ("  lr_schedule: {type: cosin}", "unknown schedule type 'cosin' — did you mean 'cosine'?"),
        ("  lr_schedule: {type: step, gama: 0.5}", "unknown key 'gama' for a step schedule — did you mean 'gamma'?"),
        ("  clip_norm: 0", "training.clip_norm: must be greater than 0"),
    ],
)
def test_bad_option_values_get_located_errors(tmp_path: Any, change: str, message: str) -> None:
    from typer.testing import CliRunner

    from treegrad.cli import app

    spec = tmp_path / "m.yaml"
    text = SPEC.replace("  lr_schedule: {type: step, step_size: 2, gamma: 0.5}\n", "")
    spec.write_text(text.replace("  l2: 0.01", change))
    result = CliRunner().invoke(app, ["train", str(spec), "-q"])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_bad_option_on_the_command_line(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from treegrad.cli import app

    spec = tmp_path / "m.yaml"
    spec.write_text(SPEC)
    result = CliRunner().invoke(app, ["train", str(spec), "-q", "--l2", "-0.5"])
    assert result.exit_code == 1 and "--l2" in result.output and "Traceback" not in result.output


# ------------------------------------------------------------------ class and sample weights

IMBALANCED = """\
inputs: [x]
output: {sigmoid: {add: [{mul: [param, x]}, param]}}
loss: bce
data: rare.csv
target: label
training: {epochs: 20, learning_rate: 0.05, seed: 0}
"""


def write_rare(folder: Any, n: int = 400, with_weight: bool = False) -> None:
    """A 95/5 table: label 1 in 5% of rows, its x one deviation higher on average."""
    rng = random.Random(0)
    lines = ["x,label" + (",w" if with_weight else "")]
    for i in range(n):
        label = "yes" if i % 20 == 0 else "no"
        x = rng.gauss(1.5 if label == "yes" else 0.0, 1.0)
        lines.append(f"{x!r},{label}" + (",2.0" if with_weight else ""))
    (folder / "rare.csv").write_text("\n".join(lines) + "\n")


def recall_of_yes(trained: Any) -> float:
    report = {c["label"]: c for c in trained.record.metrics["train"]["per_class"]}
    return float(report["yes"]["recall"])


def test_balanced_class_weight_raises_minority_recall(tmp_path: Any) -> None:
    from treegrad.run.train import train as train_spec

    write_rare(tmp_path)
    (tmp_path / "plain.yaml").write_text(IMBALANCED)
    (tmp_path / "balanced.yaml").write_text(IMBALANCED.replace("seed: 0}", "seed: 0, class_weight: balanced}"))
    plain = train_spec(tmp_path / "plain.yaml")
    balanced = train_spec(tmp_path / "balanced.yaml")
    assert recall_of_yes(plain) < 0.3 < 0.6 < recall_of_yes(balanced)
    m = balanced.record.metrics["train"]
    assert "weighted_loss" in m and "weighted_accuracy" in m and "weighted_loss" not in plain.record.metrics["train"]
    # balanced: n / (2 n_c), so 400 / (2 * 20) = 10 for "yes" and 400 / (2 * 380) for "no"
    from treegrad.data.weighting import class_weights

    assert class_weights("balanced", ["no", "yes"], [0.0] * 380 + [1.0] * 20) == pytest.approx([400 / 760, 10.0])


def test_class_weight_by_label_and_weight_column(tmp_path: Any) -> None:
    """{label: w} names classes; a weight column of 2 everywhere doubles every step, which for
    SGD is the same run as a doubled learning rate (exactly: multiplying by 2 is exact)."""
    from treegrad.run.train import train as train_spec

    write_rare(tmp_path, with_weight=True)
    spec = tmp_path / "m.yaml"
    spec.write_text(IMBALANCED.replace("seed: 0}", "seed: 0, weight_column: w}"))
    doubled = train_spec(spec)
    spec.write_text(IMBALANCED.replace("learning_rate: 0.05", "learning_rate: 0.1"))
    faster = train_spec(spec)  # the w column is not an input and not the target: give the target
    assert doubled.record.parameters == faster.record.parameters
    spec.write_text(IMBALANCED.replace("seed: 0}", "seed: 0, class_weight: {yes: 5}}"))
    assert recall_of_yes(train_spec(spec)) > recall_of_yes(faster)


def test_class_weight_errors(tmp_path: Any) -> None:
    from treegrad.run.train import train as train_spec

    write_rare(tmp_path)
    spec = tmp_path / "m.yaml"
    spec.write_text(IMBALANCED.replace("seed: 0}", "seed: 0, class_weight: {yess: 5}}"))
    with pytest.raises(tg.SpecError, match="'yess' is not a class — did you mean 'yes'"):
        train_spec(spec)
    spec.write_text(IMBALANCED.replace("seed: 0}", "seed: 0, weight_column: weight}"))
    with pytest.raises(tg.DataError, match="has no column 'weight'"):
        train_spec(spec)


def test_eval_reports_per_class_scores_and_weighted_metrics(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from treegrad.cli import app

    write_rare(tmp_path)
    spec = tmp_path / "m.yaml"
    spec.write_text(IMBALANCED.replace("seed: 0}", "seed: 0, class_weight: balanced}"))
    out = tmp_path / "m.model.json"
    runner = CliRunner()
    assert runner.invoke(app, ["train", str(spec), "-o", str(out), "-q"]).exit_code == 0
    result = runner.invoke(app, ["eval", str(out), "--data", str(tmp_path / "rare.csv")])
    assert result.exit_code == 0, result.output
    assert "weighted accuracy" in result.output and "recall" in result.output and "F1" in result.output


def test_class_report_by_hand() -> None:
    """True a: 8 right, 2 called b; true b: 1 called a, 9 right. a: precision 8/9, recall 8/10."""
    from treegrad.run.tasks import class_report

    a, b = class_report([[8, 2], [1, 9]], ["a", "b"])
    assert (a["precision"], a["recall"], a["support"]) == (8 / 9, 0.8, 10)
    assert a["f1"] == pytest.approx(2 * (8 / 9) * 0.8 / (8 / 9 + 0.8))
    assert b["precision"] == 9 / 11 and b["recall"] == 0.9
    empty = class_report([[5, 0], [0, 0]], ["a", "b"])[1]
    assert math.isnan(empty["precision"]) and math.isnan(empty["recall"]) and math.isnan(empty["f1"])


def test_set_changes_any_training_key(tmp_path: Any) -> None:
    import json

    from typer.testing import CliRunner

    from treegrad.cli import app

    spec = tmp_path / "m.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "m.model.json"
    args = ["train", str(spec), "-o", str(out), "-q", "--set", "training.lr_schedule={type: exponential, gamma: 0.5}"]
    result = CliRunner().invoke(app, [*args, "--set", "l1=0.01", "--epochs", "3"])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["history"]["learning_rates"] == [0.1, 0.05, 0.025] and doc["training"]["l1"] == 0.01
    bad = CliRunner().invoke(app, ["train", str(spec), "-q", "--set", "lr_schedule.gama=1"])
    # A misspelt key is a usage error (exit 2, issue 11) whose message names it.
    assert bad.exit_code == 2 and "'--set': training.lr_schedule.gama: unknown key 'gama'" in bad.output


@pytest.mark.parametrize("engine", ["compiled", "reference"])
def test_l1_stops_a_weight_at_zero(engine: str) -> None:
    """L1's proximal step: at x = 0 the data does not pull on w, so w = 0.01 moves lr * l1 =
    0.05 towards 0 and stops there, exactly 0, rather than crossing to -0.04."""
    model = line(0.01, 0.0)
    tg.fit(model, [[0.0]], [0.0], epochs=3, learning_rate=0.1, l1=0.5, engine=engine)
    assert params(model)["w"] == 0.0


def test_l1_sets_the_weights_of_useless_inputs_to_zero() -> None:
    """A linear model of 6 inputs of which only 2 matter: with l1 the other 4 weights end at
    exactly 0 (without, none does), and the two that matter stay."""
    rng = random.Random(0)
    X = [[rng.uniform(-1, 1) for _ in range(6)] for _ in range(200)]
    y = [3.0 * r[0] - 2.0 * r[1] + 0.05 * rng.gauss(0, 1) for r in X]

    def weights(**kw: Any) -> list[float]:
        model = tg.Linear([Input(f"x{j}") for j in range(6)])
        model.compile()
        tg.fit(model, X, y, epochs=30, learning_rate=0.01, batch_size=20, **kw)
        g = model.compiled_graph
        return [v for v, w in zip(g.param_values(), weight_mask(g)) if w]

    plain, sparse = weights(), weights(l1=0.5)
    assert all(w != 0.0 for w in plain)
    assert sparse[2:] == [0.0] * 4 and abs(sparse[0]) > 1 and abs(sparse[1]) > 1, sparse
