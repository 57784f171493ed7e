"""Spec files: loading, validation with located errors, building, and the example models."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from treegrad import fit
from treegrad.core.nodes import Input, Node, Output, Parameter, Softmax
from treegrad.engine.optim import OPTIMIZERS
from treegrad.errors import SpecError
from treegrad.spec import reading as specfile
from treegrad.spec.build import build_model, loss_name, output_count, task_kind
from treegrad.spec.expressions import CALLS
from treegrad.spec.models import load_spec, parse_spec, spec_schema

MODELS = Path(__file__).resolve().parent.parent / "models"

F2C = """\
inputs: [f]
output:
  add:
    - mul: [param, f]
    - param
"""

ARTICLE_CLASSIFIER = """\
inputs: [x, y]
output:
  sigmoid:
    add:
      - mul: [param, {relu: {add: [{mul: [param, x]}, {mul: [param, y]}, param]}}]
      - param
loss: bce
"""


def shape(node: Node) -> object:
    """A node tree as nested (ClassName, children...) tuples, leaves by name."""
    if isinstance(node, Input):
        return node.name
    if not node.children:
        return type(node).__name__
    return (type(node).__name__, *[shape(c) for c in node.children])


def error_of(text: str, filename: str = "models/x.yaml") -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, filename)
    return str(info.value)


# ----------------------------------------------------------------- the example models


def test_there_are_example_models() -> None:
    names = {p.stem for p in MODELS.glob("*.yaml")}
    assert {"f2c", "line", "xor", "circles", "iris", "regression", "dag"} <= names


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.yaml")) + sorted(MODELS.glob("*.json")), ids=lambda p: p.name)
def test_every_example_loads_builds_and_prints(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#") and f"treegrad train models/{path.name}" in text, "header comment says how to run"
    root = build_model(spec)
    assert root.graph is not None
    assert list(root.graph.input_names) == spec.inputs
    formula = root.funcify()
    assert formula and all(name in formula for name in spec.inputs)
    out = root.predict([0.5] * len(spec.inputs))
    values = out if isinstance(out, list) else [out]
    assert len(values) == output_count(spec)
    assert all(math.isfinite(v) for v in values)


@pytest.mark.parametrize(
    ("name", "kind", "loss", "count"),
    [
        ("f2c", "regression", "mse", 1),
        ("line", "binary", "bce", 1),
        ("xor", "binary", "bce", 1),
        ("circles", "binary", "bce", 1),
        ("iris", "classes", "cross_entropy", 3),
        ("regression", "regression", "mse", 1),
        ("dag", "regression", "mse", 1),
    ],
)
def test_example_kinds(name: str, kind: str, loss: str, count: int) -> None:
    spec = load_spec(MODELS / f"{name}.yaml")
    assert (task_kind(spec), loss_name(spec), output_count(spec)) == (kind, loss, count)


@pytest.mark.parametrize(
    ("name", "split", "metric", "least"),
    [
        ("f2c", "train", "r2", 0.9999),
        ("line", "train", "accuracy", 0.97),
        ("xor", "validation", "accuracy", 0.93),
        ("circles", "validation", "accuracy", 0.97),
        ("iris", "validation", "accuracy", 0.95),
        ("regression", "validation", "r2", 0.4),
        ("dag", "validation", "r2", 0.97),
    ],
)
def test_every_example_trains(name: str, split: str, metric: str, least: float) -> None:
    from treegrad.run.train import train

    trained = train(MODELS / f"{name}.yaml")
    assert trained.record.metrics[split][metric] >= least, trained.record.metrics


def test_f2c_is_the_articles_linear_model() -> None:
    spec = load_spec(MODELS / "f2c.yaml")
    assert spec.data == "f2c" and spec.target == "c"
    t = spec.training
    assert (t.epochs, t.learning_rate, t.batch_size, t.optimizer, t.shuffle) == (1000, 0.01, 1, "sgd", False)
    assert shape(build_model(spec)) == ("Add", ("Multiply", "Parameter", "f"), "Parameter")


def test_line_is_the_articles_classifier_verbatim() -> None:
    spec = load_spec(MODELS / "line.yaml")
    assert spec.output == parse_spec(ARTICLE_CLASSIFIER).output
    assert spec.loss == "bce" and spec.data == "line"


def test_iris_holds_out_a_fifth_and_normalizes() -> None:
    spec = load_spec(MODELS / "iris.yaml")
    assert spec.data == "../datasets/iris.csv" and spec.target == "species"
    assert spec.training.normalize and spec.training.validation_split == 0.2
    assert spec.classes == ["setosa", "versicolor", "virginica"]


# ----------------------------------------------------------------- the article's models


def test_f2c_parses_to_the_expected_nodes() -> None:
    spec = parse_spec(F2C, "f2c.yaml")
    root = build_model(spec)
    assert shape(root) == ("Add", ("Multiply", "Parameter", "f"), "Parameter")
    assert spec.name == "f2c" and spec.loss is None and loss_name(spec) == "mse"
    assert spec.training.epochs == 100 and spec.training.learning_rate == 0.01 and spec.training.shuffle


def test_article_classifier_parses_to_the_expected_nodes() -> None:
    root = build_model(parse_spec(ARTICLE_CLASSIFIER, "line.yaml"))
    hidden = ("ReLU", ("Add", ("Multiply", "Parameter", "x"), ("Multiply", "Parameter", "y"), "Parameter"))
    assert shape(root) == ("Sigmoid", ("Add", ("Multiply", "Parameter", hidden), "Parameter"))
    assert [p.name for p in root.graph.params] == ["p0", "p1", "p2", "p3", "p4"]


def test_f2c_trains_to_the_conversion() -> None:
    root = build_model(parse_spec(F2C, "f2c.yaml"))
    rng = random.Random(1)
    xs = [rng.uniform(-1, 1) for _ in range(100)]
    fit(root, [[f] for f in xs], [(f - 32) * 5 / 9 for f in xs], loss="mse", epochs=300, learning_rate=0.05)
    w, b = sorted(root.graph.param_values())
    assert b == pytest.approx(5 / 9, abs=1e-3) and w == pytest.approx(-160 / 9, abs=1e-3)


def test_article_classifier_trains_on_a_line() -> None:
    spec = parse_spec(ARTICLE_CLASSIFIER + "training: {seed: 3}\n", "line.yaml")
    root = build_model(spec)
    rng = random.Random(0)
    pts = [(rng.uniform(-1, 1), rng.uniform(-1, 1)) for _ in range(300)]
    labels = [1.0 if y > x else 0.0 for x, y in pts]
    fit(root, [list(p) for p in pts], labels, loss="bce", epochs=60, learning_rate=0.1, shuffle=True)
    right = sum((root.predict(list(p)) > 0.5) == (t == 1.0) for p, t in zip(pts, labels, strict=True))
    assert right / len(pts) > 0.95


# ----------------------------------------------------------------- building


def test_a_named_node_used_twice_is_one_node() -> None:
    spec = parse_spec("""\
inputs: [x]
nodes:
  h: {tanh: {mul: [param, x]}}
output: {add: [{mul: [param, h]}, {mul: [param, h]}]}
""")
    root = build_model(spec)
    a, b = root.children
    assert a.children[1] is b.children[1]
    assert len(root.graph.params) == 3
    assert "h1 = tanh(" in root.funcify()


def test_a_shared_layer_is_expanded_once() -> None:
    spec = load_spec(MODELS / "dag.yaml")
    root = build_model(spec)
    tanh_nodes = [n for n in root.graph.order if type(n).__name__ == "Tanh"]
    assert len(tanh_nodes) == 8  # one hidden layer, used by three neurons


def test_same_seed_same_model_other_seed_other_model() -> None:
    spec = load_spec(MODELS / "xor.yaml")
    first = build_model(spec).graph.param_values()
    assert build_model(spec).graph.param_values() == first
    assert build_model(spec, seed=spec.training.seed).graph.param_values() == first
    assert build_model(spec, seed=spec.training.seed + 1).graph.param_values() != first


def test_param_values_and_names() -> None:
    spec = parse_spec("inputs: [x]\noutput: {add: [{mul: [{param: 2}, x]}, {param: {init: 0.5, name: bias}}]}\n")
    root = build_model(spec)
    assert root.predict([3.0]) == 6.5
    assert [p.name for p in root.graph.params] == ["p0", "bias"]
    named_random = parse_spec("inputs: [x]\noutput: {add: [x, {param: {name: b}}]}\n")
    p = build_model(named_random).graph.params[0]
    assert p.name == "b" and -1 <= p.value <= 1


def test_stats_standardize_inside_the_graph() -> None:
    spec = parse_spec("inputs: [a, b]\noutput: {add: [a, {mul: [2, b]}]}\n")
    root = build_model(spec, stats={"a": (10.0, 2.0), "b": (-1.0, 4.0)})
    assert root.predict([14.0, 7.0]) == pytest.approx((14 - 10) / 2 + 2 * (7 + 1) / 4)
    assert "(a - 10) / 2" in root.funcify()


def test_layers_with_softmax() -> None:
    spec = parse_spec(
        "inputs: [x, y]\nlayers:\n  - {linear: 5, activation: relu}\n  - {linear: 3}\n  - {softmax: true}\n"
    )
    root = build_model(spec)
    assert isinstance(root, Softmax) and len(root.children) == 3
    assert sum(root.predict([0.3, -0.2])) == pytest.approx(1.0)
    assert (task_kind(spec), loss_name(spec), output_count(spec)) == ("classes", "cross_entropy", 3)


def test_softmax_over_a_named_layer_and_list_outputs() -> None:
    spec = parse_spec("""\
inputs: [x]
nodes:
  z: {linear: {inputs: [x], units: 4}}
output: {softmax: z}
""")
    assert output_count(spec) == 4 and isinstance(build_model(spec), Softmax)
    listed = parse_spec("inputs: [x]\noutput: [x, {linear: {inputs: x, units: 2}}, {mul: [param, x]}]\n")
    root = build_model(listed)
    assert isinstance(root, Output) and output_count(listed) == 4 and len(root.predict([1.0])) == 4


def test_a_long_chain_of_nodes_builds_without_recursion() -> None:
    n = 3000
    lines = ["inputs: [x]", "nodes:", "  n0: {add: [x, 1]}"]
    lines += [f"  n{i}: {{add: [n{i - 1}, 1]}}" for i in range(1, n)]
    spec = parse_spec("\n".join(lines) + f"\noutput: n{n - 1}\n")
    assert build_model(spec).predict([0.0]) == n


def test_nodes_may_be_listed_in_any_order() -> None:
    spec = parse_spec("inputs: [x]\nnodes:\n  b: {relu: a}\n  a: {mul: [param, x]}\noutput: b\n")
    assert spec.analysis.order == ["a", "b"]
    assert shape(build_model(spec)) == ("ReLU", ("Multiply", "Parameter", "x"))


# ----------------------------------------------------------------- JSON and schema


def test_json_spec_equals_the_yaml_spec(tmp_path: Path) -> None:
    doc = {
        "inputs": ["x", "y"],
        "output": {
            "sigmoid": {
                "add": [
                    {"mul": ["param", {"relu": {"add": [{"mul": ["param", "x"]}, {"mul": ["param", "y"]}, "param"]}}]},
                    "param",
                ]
            }
        },
        "loss": "bce",
        "training": {"learning_rate": 1e-2},
    }
    path = tmp_path / "line.json"
    path.write_text(json.dumps(doc, indent="\t"), encoding="utf-8")
    from_json = load_spec(path)
    from_yaml = parse_spec(ARTICLE_CLASSIFIER, "line.yaml")
    assert from_json.model_dump() == from_yaml.model_dump()
    assert build_model(from_json).funcify() == build_model(from_yaml).funcify()


def test_json_errors_are_located(tmp_path: Path) -> None:
    msg = error_of('{"inputs": ["f"],\n "output": {"add": ["f", ]}}', "m.json")
    assert msg.startswith("m.json:2:") and "invalid JSON" in msg
    msg = error_of('{"inputs": ["f"],\n "output": {"add": ["f", "fo"]}}', "m.json")
    assert msg.startswith("m.json:2:26: output.add[1]: unknown name 'fo'")
    msg = error_of('{"inputs": ["f"],\n "output": {"add": ["f", NaN]}}', "m.json")
    assert msg.startswith("m.json:2:26:") and "finite" in msg
    msg = error_of('{"inputs": ["f"],\n "inputs": ["g"], "output": "f"}', "m.json")
    assert msg.startswith("m.json:2:2: inputs:") and "twice" in msg


def test_schema_is_json_with_the_expression_union() -> None:
    schema = json.loads(json.dumps(spec_schema()))
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert {"inputs", "output", "layers", "nodes", "training"} <= set(schema["properties"])
    branches = schema["$defs"]["Expr"]["oneOf"]
    refs = {b["$ref"].rsplit("/", 1)[1] for b in branches if "$ref" in b}
    assert len(refs) == len(CALLS) and {"AddOp", "ReLUOp", "ParamCall", "LinearCall", "SoftmaxCall"} <= refs
    assert {"type": "number"} in branches and {"type": "string"} in branches
    relu = schema["$defs"]["ReLUOp"]
    assert relu["required"] == ["relu"] and relu["additionalProperties"] is False


def test_schema_describes_each_field_with_the_docstring_under_it() -> None:
    schema = spec_schema()
    assert schema["properties"]["target"]["description"] == "The CSV column to learn."
    training = schema["$defs"]["Training"]["properties"]
    assert training["epochs"]["description"] == "Passes over the training data."
    assert all("description" in field for field in training.values())


def test_example_models_match_the_schema() -> None:
    # jsonschema is in the test extra: a plain import, so that a missing one fails rather
    # than skipping this test unseen (it was skipped everywhere until it was listed).
    import jsonschema
    import yaml

    schema = spec_schema()
    paths = sorted(MODELS.glob("*.yaml"))
    assert len(paths) >= 5, f"no example models found in {MODELS}"
    for path in paths:
        jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), schema)
    # and the schema is no rubber stamp: a typo in a key or an op, or a negative epoch count, fails it
    for bad in (
        {"inputs": ["x"], "output": "x", "ouput": "x"},
        {"inputs": ["x"], "output": {"reul": "x"}},
        {"inputs": ["x"], "output": "x", "training": {"epochs": -1}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


# ----------------------------------------------------------------- errors that point

# (spec text, expected start of the message "file:line:col: path", words the message must contain)
ERRORS = {
    "unknown name": (
        "inputs: [f]\nnodes:\n  hidden: {relu: f}\noutput:\n  add:\n    - mul: [param, fo]\n    - hidden\n",
        "models/x.yaml:6:20: output.add[0].mul[1]: unknown name 'fo'",
        ["did you mean 'f'", "f, hidden"],
    ),
    "unknown op": (
        "inputs: [x]\noutput:\n  add:\n    - {reul: x}\n    - 1\n",
        "models/x.yaml:4:7: output.add[0]: unknown op 'reul'",
        ["did you mean 'relu'", "sigmoid"],
    ),
    "unknown key": (
        "inputs: [x]\noutput: x\ntraining:\n  epoch: 3\n",
        "models/x.yaml:4:3: training.epoch: unknown key 'epoch'",
        ["did you mean 'epochs'", "learning_rate"],
    ),
    "unknown top-level key": (
        "inputz: [x]\noutput: x\n",
        "models/x.yaml:1:1: inputz: unknown key 'inputz'",
        ["did you mean 'inputs'"],
    ),
    "node named like an input": (
        "inputs: [x, y]\nnodes:\n  y: {relu: x}\noutput: y\n",
        "models/x.yaml:3:3: nodes.y:",
        ["same name as the input"],
    ),
    "duplicate key": (
        "inputs: [x]\noutput: x\ninputs: [y]\n",
        "models/x.yaml:3:1: inputs:",
        ["defined twice", "line 1"],
    ),
    "duplicate node": (
        "inputs: [x]\nnodes:\n  h: {relu: x}\n  h: {tanh: x}\noutput: h\n",
        "models/x.yaml:4:3: nodes.h:",
        ["defined twice"],
    ),
    "cycle": (
        "inputs: [x]\nnodes:\n  a: {relu: b}\n  b: {tanh: {add: [x, a]}}\noutput: a\n",
        "models/x.yaml:4:23: nodes.b.tanh.add[1]:",
        ["a -> b -> a"],
    ),
    "self cycle": (
        "inputs: [x]\nnodes:\n  a: {add: [x, a]}\noutput: a\n",
        "models/x.yaml:3:16: nodes.a.add[1]:",
        ["a -> a"],
    ),
    "relu with two arguments": (
        "inputs: [x]\noutput:\n  relu: [x, x]\n",
        "models/x.yaml:3:9: output.relu:",
        ["one expression", "list of 2"],
    ),
    "add with one argument": (
        "inputs: [x]\noutput:\n  add: [x]\n",
        "models/x.yaml:3:8: output.add:",
        ["at least 2", "got 1"],
    ),
    "sub with three arguments": (
        "inputs: [x]\noutput: {sub: [x, 1, 2]}\n",
        "models/x.yaml:2:15: output.sub:",
        ["2 arguments", "got 3"],
    ),
    "pow without a numeric exponent": (
        "inputs: [x]\noutput: {pow: [x, x]}\n",
        "models/x.yaml:2:19: output.pow[1]:",
        ["constant number"],
    ),
    "softmax not at the output": (
        "inputs: [x]\noutput:\n  relu:\n    softmax: [x, 1]\n",
        "models/x.yaml:4:5: output.relu:",
        ["softmax", "whole model output"],
    ),
    "softmax in a node": (
        "inputs: [x]\nnodes:\n  s: {softmax: [x, 1]}\noutput: s\n",
        "models/x.yaml:3:6: nodes.s:",
        ["softmax"],
    ),
    "bce on a softmax": (
        "inputs: [x]\noutput: {softmax: [x, param]}\nloss: bce\n",
        "models/x.yaml:3:7: loss:",
        ["cross_entropy"],
    ),
    "mse on softmax layers": (
        "inputs: [x]\nlayers: [{linear: 2}, {softmax: true}]\nloss: mse\n",
        "models/x.yaml:3:7: loss:",
        ["does not fit a softmax"],
    ),
    "cross_entropy without softmax": (
        "inputs: [x]\noutput: x\nloss: cross_entropy\n",
        "models/x.yaml:3:7: loss:",
        ["needs a softmax"],
    ),
    "unknown loss": ("inputs: [x]\noutput: x\nloss: bec\n", "models/x.yaml:3:7: loss:", ["did you mean 'bce'"]),
    "empty model": ("inputs: [x]\n", "models/x.yaml:1:1:", ["no model", "output:", "layers:"]),
    "empty output list": ("inputs: [x]\noutput: []\n", "models/x.yaml:2:9: output:", ["empty"]),
    "empty layers": ("inputs: [x]\nlayers: []\n", "models/x.yaml:2:9: layers:", ["no layers"]),
    "both output and layers": (
        "inputs: [x]\noutput: x\nlayers: [{linear: 1}]\n",
        "models/x.yaml:3:1: layers:",
        ["both"],
    ),
    "inputs empty": ("inputs: []\noutput: 1\n", "models/x.yaml:1:9: inputs:", ["no inputs"]),
    "inputs missing": ("output: 1\n", "models/x.yaml:1:1:", ["'inputs' is missing"]),
    "inputs duplicated": ("inputs: [x, y, x]\noutput: x\n", "models/x.yaml:1:16: inputs[2]:", ["listed twice"]),
    "epochs below zero": (
        "inputs: [x]\noutput: x\ntraining:\n  epochs: -1\n",
        "models/x.yaml:4:11: training.epochs:",
        ["greater than or equal to 0", "-1"],
    ),
    "learning rate zero": (
        "inputs: [x]\noutput: x\ntraining: {learning_rate: 0}\n",
        "models/x.yaml:3:27: training.learning_rate:",
        ["greater than 0"],
    ),
    "batch size zero": (
        "inputs: [x]\noutput: x\ntraining: {batch_size: 0}\n",
        "models/x.yaml:3:24: training.batch_size:",
        ["greater than or equal to 1"],
    ),
    "validation split one": (
        "inputs: [x]\noutput: x\ntraining: {validation_split: 1.0}\n",
        "models/x.yaml:3:30: training.validation_split:",
        ["less than 1"],
    ),
    "unknown optimizer": (
        "inputs: [x]\noutput: x\ntraining: {optimizer: adma}\n",
        "models/x.yaml:3:23: training.optimizer:",
        ["did you mean 'adam'", ", ".join(OPTIMIZERS)],
    ),
    "epochs not a whole number": (
        "inputs: [x]\noutput: x\ntraining: {epochs: 1.5}\n",
        "models/x.yaml:3:20: training.epochs:",
        ["whole number"],
    ),
    "early stopping without validation": (
        "inputs: [x]\noutput: x\ntraining: {early_stopping: {patience: 5}}\n",
        "models/x.yaml:3:12: training.early_stopping:",
        ["validation_split"],
    ),
    "a layer where one value is needed": (
        "inputs: [x]\nnodes:\n  h: {linear: {inputs: [x], units: 4}}\noutput: {relu: h}\n",
        "models/x.yaml:4:16: output.relu:",
        ["layer of 4 values"],
    ),
    "layer syntax in an expression": (
        "inputs: [x]\noutput: {linear: 8, activation: relu}\n",
        "models/x.yaml:2:9: output:",
        ["exactly one key"],
    ),
    "softmax as an activation": (
        "inputs: [x]\nlayers:\n  - {linear: 3, activation: softmax}\n",
        "models/x.yaml:3:29: layers[0].activation:",
        ["{softmax: true}"],
    ),
    "softmax of one value": (
        "inputs: [x]\noutput: {softmax: [x]}\n",
        "models/x.yaml:2:19: output.softmax:",
        ["at least 2"],
    ),
    "classes that do not fit": (
        "inputs: [x]\noutput: {softmax: [x, 1, param]}\nclasses: [a, b]\n",
        "models/x.yaml:3:10: classes:",
        ["3 outputs"],
    ),
    "parameter name used twice": (
        "inputs: [x]\noutput:\n  add:\n    - {param: {name: b}}\n    - {param: {init: 1, name: b}}\n",
        "models/x.yaml:5:31: output.add[1].param.name:",
        ["used twice", "models/x.yaml:4:22"],
    ),
    "target is an input": ("inputs: [x]\noutput: x\ntarget: x\n", "models/x.yaml:3:9: target:", ["also an input"]),
    "reserved name": ("inputs: [param]\noutput: 1\n", "models/x.yaml:1:10: inputs[0]:", ["fresh parameter"]),
    "null expression": ("inputs: [x]\noutput:\n  relu:\n", "models/x.yaml:3:8: output.relu:", ["empty expression"]),
    "anchor": ("inputs: &ins [x]\noutput: x\n", "models/x.yaml:1:9:", ["anchors", "not supported"]),
    "alias": ("inputs: [x]\nnodes:\n  a: {relu: x}\noutput: *a\n", "models/x.yaml:4:9:", ["not supported"]),
    "python tag": (
        "inputs: [x]\noutput: !!python/object/apply:os.system [echo]\n",
        "models/x.yaml:2:9:",
        ["cannot create Python objects"],
    ),
    "custom tag": ("inputs: [x]\noutput: !thing x\n", "models/x.yaml:2:9:", ["!thing", "not supported"]),
    "nan": ("inputs: [x]\noutput: {add: [x, .nan]}\n", "models/x.yaml:2:19:", ["not a finite number"]),
    "infinity": (
        "inputs: [x]\noutput: x\ntraining: {learning_rate: .inf}\n",
        "models/x.yaml:3:27:",
        ["not a finite number"],
    ),
    "invalid yaml": ("inputs: [x\noutput: x\n", "models/x.yaml:2:", ["invalid YAML"]),
    "two documents": ("inputs: [x]\noutput: x\n---\ninputs: [y]\n", "models/x.yaml:3:1:", ["one YAML document"]),
    "not a mapping": ("- inputs\n- output\n", "models/x.yaml:1:1:", ["mapping", "a list of 2"]),
    "too deep": (
        "inputs: [x]\noutput: " + "{relu: " * 120 + "x" + "}" * 120 + "\n",
        "models/x.yaml:2:",
        ["nested more than", "nodes:"],
    ),
}


@pytest.mark.parametrize("case", list(ERRORS), ids=list(ERRORS))
def test_errors_point_at_the_source(case: str) -> None:
    text, where, words = ERRORS[case]
    msg = error_of(text)
    assert msg.startswith(where), msg
    for w in words:
        assert w in msg, msg
    assert "\n" not in msg, "one problem, one paragraph"


def test_several_pydantic_problems_are_bullets_in_file_order() -> None:
    msg = error_of(
        "inputs: [x]\noutput: x\ntraining:\n  epochs: -1\n  learning_rate: 0\n  batch_size: 0\n"
        "  validation_split: 2\n  optimizer: sdg\n"
    )
    lines = msg.splitlines()
    assert lines[0] == "models/x.yaml: 5 problems in the spec:"
    assert lines[1].startswith("  - models/x.yaml:4:11: training.epochs:")
    assert lines[2].startswith("  - models/x.yaml:5:18: training.learning_rate:")
    assert lines[3].startswith("  - models/x.yaml:6:15: training.batch_size:")
    assert lines[4] == "  (and 2 more)"


def test_a_bad_expression_is_one_message_not_a_union_wall() -> None:
    msg = error_of("inputs: [x]\noutput: {sigmoid: {add: [{mul: [param, x]}, {reul: x}]}}\n")
    assert msg.count("models/x.yaml") == 1
    assert "unknown op 'reul' — did you mean 'relu'?" in msg


def test_nested_errors_in_nodes_name_the_node_path() -> None:
    msg = error_of("inputs: [x]\nnodes:\n  h:\n    tanh:\n      mul: [param, {sigmod: x}]\noutput: h\n")
    assert msg.startswith("models/x.yaml:5:20: nodes.h.tanh.mul[1]: unknown op 'sigmod' — did you mean 'sigmoid'?")


def test_errors_without_a_file_still_name_the_path() -> None:
    msg = error_of("inputs: [x]\noutput: {add: [x, y]}\n", "<spec>")
    assert msg.startswith("<spec>:2:19: output.add[1]: unknown name 'y'")


# ----------------------------------------------------------------- files


def test_file_problems(tmp_path: Path) -> None:
    cases = {
        "missing.yaml": (None, "no such file"),
        "empty.yaml": (b"", "empty"),
        "blank.yaml": (b"  \n\n", "empty"),
        "comments.yaml": (b"# just a comment\n", "only comments"),
        "nul.yaml": (b"inputs: [x]\x00\noutput: x\n", "NUL"),
        "latin1.yaml": (b"inputs: [x]\ndescription: caf\xe9\noutput: x\n", "not UTF-8"),
        "garbage.yaml": (bytes(range(1, 256)) * 4, "not UTF-8"),
        "control.yaml": (b"inputs: [x]\noutput: \x07x\n", "control character"),
        "big.yaml": (b"# " + b"x" * (1024 * 1024) + b"\n", "too large"),
    }
    for name, (content, words) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(SpecError) as info:
            load_spec(path)
        assert str(info.value).startswith(str(path)), name
        assert words in str(info.value), (name, str(info.value))
    with pytest.raises(SpecError, match="is a folder"):
        load_spec(tmp_path)


def test_load_reports_the_line_of_undecodable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"inputs: [x]\noutput: x\n# \xff\n")
    with pytest.raises(SpecError, match=r"bad\.yaml:3: is not UTF-8"):
        load_spec(path)


def test_yaml_1_2_scalars() -> None:
    spec = parse_spec("inputs: [x, y, on, no]\noutput: x\ntraining: {learning_rate: 1e-3, epochs: 10}\n")
    assert spec.inputs == ["x", "y", "on", "no"]  # YAML 1.1 would make these booleans
    assert spec.training.learning_rate == 0.001
    assert parse_spec("inputs: [x]\noutput: {add: [x, 1.5e2]}\n").output.add[1] == 150.0  # type: ignore[union-attr]


def test_utf8_bom_and_name_default(tmp_path: Path) -> None:
    path = tmp_path / "bom_model.yaml"
    path.write_bytes("\ufeffinputs: [x]\noutput: x\n".encode())
    spec = load_spec(path)
    assert spec.name == "bom_model" and spec.source.filename == str(path)
    assert parse_spec("name: given\ninputs: [x]\noutput: x\n", "models/other.yaml").name == "given"


def test_positions_of_keys_and_values() -> None:
    spec = parse_spec("inputs: [x]\ntraining:\n  epochs: 5\noutput: x\n", "a.yaml")
    assert spec.source.where(("training", "epochs")) == "a.yaml:3:11"
    assert spec.source.where(("training", "epochs"), key=True) == "a.yaml:3:3"
    assert spec.source.where(("training", "nothing")) == "a.yaml:3:3"  # the nearest ancestor: training's mapping
    assert spec.source.where(()) == "a.yaml:1:1"


def test_validated_specs_are_plain_data_again() -> None:
    spec = parse_spec(ARTICLE_CLASSIFIER)
    again = parse_spec(json.dumps(spec.model_dump(exclude_none=True)), "again")
    assert again.model_dump() == spec.model_dump()


def test_parameters_of_a_built_model_are_fresh_objects() -> None:
    spec = parse_spec(F2C)
    a, b = build_model(spec), build_model(spec)
    assert all(isinstance(p, Parameter) for p in a.graph.params)
    assert not set(map(id, a.graph.params)) & set(map(id, b.graph.params))


@pytest.fixture(params=["libyaml", "pure-python"])
def yaml_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each YAML parser a spec may be read with: libyaml's (when PyYAML has it) and PyYAML's own."""
    if request.param == "libyaml":
        pytest.importorskip("yaml._yaml")
    else:
        monkeypatch.setattr(specfile, "_CParser", None)
    return str(request.param)


@pytest.mark.parametrize(
    "text, where, words",
    [
        ("inputs: [x]\noutput:\n\tadd: [x, 1]\n", "m.yaml:3:1:", "replace the tab with spaces"),
        ("inputs: [x]\noutput:\n  add:\n    - x\n   - 1\n", "m.yaml:5:4:", "indentation does not line up"),
        ("inputs: [x]\noutput:\n  add: [x, 1]\n bad: 2\n", "m.yaml:4:2:", "indentation does not line up"),
        ("- x\noutput: x\n", "m.yaml:2:1:", "indentation does not line up"),
        ("inputs: [x]\noutput: x\nloss: mse: 2\n", "m.yaml:3:10:", "a second ':' on this line"),
        ("inputs: [x]\noutput: x\n---\ninputs: [y]\n", "m.yaml:3:1:", "holds one YAML document"),
        ('inputs: [x]\nname: "\\q"\n', "m.yaml:2:9:", "unknown escape character 'q'"),
        ("name: caf\u00e9\x07\ninputs: [x]\n", "m.yaml:1:11:", "control character #x0007"),
    ],
)
def test_yaml_layout_mistakes_say_what_to_do(yaml_parser: str, text: str, where: str, words: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_spec(text, "m.yaml")
    assert str(e.value).startswith(where) and words in str(e.value)


# Texts both YAML parsers must read alike: the same data and positions, or an error at the
# same place saying the same thing (the parsers word a bare syntax error differently).
SAME_WITH_EITHER_PARSER = [
    "inputs: [x, y]\noutput: {add: [x, {mul: [param, y]}]}\ntraining: {learning_rate: 1e-3, shuffle: on}\n",
    'name: "\\ud83d\\ude00 caf\u00e9"\ninputs: [x]\noutput: x\n',
    "%YAML 1.2\n---\ninputs:\n  - x\n? output\n: x\ndescription: |\n  two\n  lines\n...\n",
    "inputs: [x\noutput: x\n",
    "inputs: [x]\noutput: &a x\n",
    "inputs: [x]\noutput: *a\n",
    "inputs: !!python/object:os.system [x]\n",
    "inputs: [x]\n[a]: 1\n",
    "inputs: [x]\n1: 1\n",
    "inputs: [x]\noutput: {add: [x, x], add: [x]}\n",
    "inputs: [x]\nloss: !!set {x}\n",
    "inputs: [x]\nweight: -.inf\n",
    "inputs: 'unterminated\n",
    "# only a comment\n",
    "inputs: " + "[" * 100 + "]" * 100 + "\n",
    "inputs: " + "[" * 101 + "]" * 101 + "\n",
]


def _read_or_refuse(text: str) -> object:
    try:
        data, source = specfile.read_data(text, "m.yaml")
    except SpecError as e:
        return str(e).split("invalid YAML:")[0]
    return data, source.values, source.keys


@pytest.mark.parametrize("text", SAME_WITH_EITHER_PARSER)
def test_both_yaml_parsers_read_a_spec_alike(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("yaml._yaml")
    fast = _read_or_refuse(text)
    monkeypatch.setattr(specfile, "_CParser", None)
    assert fast == _read_or_refuse(text)


def test_a_large_spec_is_read_by_libyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyYAML's own parser spent 9 s (89 s on a loaded machine) on a 600 KB spec; libyaml's
    reads it in under a second. With libyaml at hand, the slow one is not used at all."""
    pytest.importorskip("yaml._yaml")
    lines = ["inputs: [x]", "nodes:"]
    for i in range(9000):
        lines += [f"  n{i}:", "    add:", f"      - mul: [param, {f'n{i - 1}' if i else 'x'}]", "      - param"]
    text = "\n".join([*lines, "output: n8999", ""])
    assert 500_000 < len(text) < specfile.MAX_BYTES

    def refuse(stream: str) -> None:
        raise AssertionError("PyYAML's pure-Python parser was used")

    monkeypatch.setattr(specfile, "_PyParser", refuse)
    data, source = specfile.read_data(text, "big.yaml")
    assert len(data["nodes"]) == 9000 and data["nodes"]["n8999"]["add"][0] == {"mul": ["param", "n8998"]}
    assert source.where(("nodes", "n8999", "add", 1)) == f"big.yaml:{2 + 4 * 8999 + 4}:9"


def test_classes_and_file_names_that_cannot_be_printed_are_refused(tmp_path: Path) -> None:
    text = 'inputs: [x]\noutput: {softmax: [x, x]}\nclasses: ["a", "\\u001b[31mb"]\n'
    with pytest.raises(SpecError, match=r"m.yaml:3:.*classes\[1\].*control character U\+001B"):
        parse_spec(text, "m.yaml")
    path = tmp_path / "bad\x1bname.yaml"
    path.write_text("inputs: [x]\noutput: {mul: [param, x]}\n")
    with pytest.raises(SpecError, match="add a name: key"):
        load_spec(path)
