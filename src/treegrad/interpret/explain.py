"""Why the model predicts what it does: each input's contribution, from the model's own gradients.

For one sample x and a baseline b (the training mean, or zero) three numbers per input:

- the gradient ∂f/∂x_i at x, by the graph's backward pass (`graph.backward`);
- gradient × (input − baseline), a first-order estimate of the contribution;
- the contribution proper: integrated gradients, (x_i − b_i) · ∫₀¹ ∂f/∂x_i(b + α(x − b)) dα.
  Contributions add up to f(x) − f(b) ("completeness").

The integral is computed by Gauss–Legendre quadrature (8 points per interval, numpy's nodes)
on an adaptive partition of [0, 1]: completeness holds on every sub-interval as well, so an
interval whose contributions do not add up to f's change across it (within 1e-12, relative
to |f(x) − f(b)| when that is larger than 1) is split in two. Where the model has a kink (relu,
abs) the split is made at the kink itself, found by bisection on the sign of the kink's
argument, so each piece is smooth and the quadrature exact for piecewise-linear models. The
completeness error left is reported with every explanation.

When the formula is additive (a sum whose every term depends on at most one input, which
includes any model of one input) there is nothing to approximate: an input's contribution is
the change of its own terms, term(x) − term(b), exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.nodes import Graph, Input, Node, Output
from ..data.targets import input_rows
from ..errors import DataError, ModelError, OptionError
from ..run.tasks import class_labels

if TYPE_CHECKING:
    from ..data.table import Table

QUADRATURE_POINTS = 8
COMPLETENESS_TOLERANCE = 1e-12  # per interval, times max(1, |f(x) - f(b)|)
MAX_INTERVALS = 2048  # a guard: a model with thousands of kinks on one path stops refining here
BASELINES = ("mean", "zero")


@dataclass
class Explanation:
    """One sample's contributions, input by input (lists in the model's input order)."""

    inputs: list[str]
    values: list[float]
    baseline: list[float]
    baseline_kind: str
    explained: str  # what f is: "prediction", "probability of class 'setosa'"
    output: float  # f(x)
    baseline_output: float  # f(b)
    gradient: list[float]
    gradient_x_input: list[float]  # gradient × (input − baseline)
    contributions: list[float]
    method: str  # "additive terms (exact)" or "integrated gradients"
    completeness_error: float  # |sum(contributions) − (f(x) − f(b))|
    intervals: int  # quadrature intervals used (0 for the exact additive case)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return asdict(self)


@dataclass
class Importance:
    """Global importance: mean |contribution| per input over the rows of a table, largest first."""

    ranked: list[tuple[str, float]]
    rows: int
    baseline: list[float]
    baseline_kind: str
    explained: str
    methods: list[str]
    worst_completeness_error: float

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {
            "ranked": [{"input": name, "mean_abs_contribution": v} for name, v in self.ranked],
            "rows": self.rows,
            "baseline": self.baseline,
            "baseline_kind": self.baseline_kind,
            "explained": self.explained,
            "methods": self.methods,
            "worst_completeness_error": self.worst_completeness_error,
        }


class _Scalar:
    """The model as a scalar function of a row: one output element, its value and input gradient."""

    def __init__(self, root: Node, element: int | None) -> None:
        self.graph: Graph = root.compiled_graph
        self.element = element
        g = self.graph
        if g.is_list and element is None:
            raise DataError("this model has several outputs: say which one to explain")
        self.kinks = [n for n in g.order if n.op is not None and n.op.kink]

    def value(self, row: Sequence[float]) -> float:
        out = self.graph.predict(list(row))
        return float(out[self.element]) if self.element is not None else float(out)

    def gradient(self, row: Sequence[float]) -> list[float]:
        """∂f/∂x for every input, by one backward pass (an input used twice gets both parts)."""
        g = self.graph
        g.predict(list(row))
        if self.element is not None:
            seed: Any = [1.0 if k == self.element else 0.0 for k in range(len(g.elements))]
        else:
            seed = 1.0
        g.output.backward(seed)
        return [sum(float(n.grad) for n in g.inputs_by_name.get(name, ())) for name in g.input_names]

    def pattern(self, row: Sequence[float]) -> tuple[bool, ...]:
        """Which side of its kink each argument of a kinked op (relu, abs) is on at `row`."""
        self.graph.predict(list(row))
        return tuple(float(n.children[0]._value) > 0.0 for n in self.kinks)  # type: ignore[arg-type]


def _point(b: Sequence[float], x: Sequence[float], alpha: float) -> list[float]:
    return [bi + alpha * (xi - bi) for bi, xi in zip(b, x)]


def _dependencies(graph: Graph) -> dict[int, frozenset[str]]:
    """For every node, the names of the inputs it depends on."""
    deps: dict[int, frozenset[str]] = {}
    for n in graph.order:
        if isinstance(n, Input):
            deps[id(n)] = frozenset([n.name or ""])
        else:
            deps[id(n)] = frozenset().union(*(deps[id(c)] for c in n.children)) if n.children else frozenset()
    return deps


def additive_terms(root: Node, element: int | None = None) -> list[tuple[Node, str | None]] | None:
    """The terms of an additive formula, each with the one input it depends on (None: a constant);
    None if the formula is not additive (some term depends on two inputs or more)."""
    g = root.compiled_graph
    top = g.elements[element] if element is not None else g.output
    if g.is_softmax or isinstance(top, Output):
        return None  # a probability of a softmax mixes every logit
    deps = _dependencies(g)
    terms = top.children if top.op is not None and top.op.name == "add" else [top]
    out: list[tuple[Node, str | None]] = []
    for t in terms:
        d = deps[id(t)]
        if len(d) > 1:
            return None
        out.append((t, next(iter(d)) if d else None))
    return out


def _exact(scalar: _Scalar, terms: list[tuple[Node, str | None]], x: list[float], b: list[float]) -> list[float]:
    names = scalar.graph.input_names
    scalar.graph.predict(b)
    at_b = [float(t._value) for t, _ in terms]  # type: ignore[arg-type]
    scalar.graph.predict(x)
    contrib = dict.fromkeys(names, 0.0)
    for (t, name), vb in zip(terms, at_b):
        if name is not None:
            contrib[name] += float(t._value) - vb  # type: ignore[arg-type]
    return [contrib[n] for n in names]


def _kink_between(scalar: _Scalar, b: list[float], x: list[float], lo: float, hi: float) -> tuple[float, float] | None:
    """The first place in (lo, hi) where a relu/abs argument changes sign along the path, as a
    bracket of two neighbouring floats (left of it on lo's side, right of it past the kink); None
    if every such argument keeps its sign from lo to hi."""
    if not scalar.kinks:
        return None
    p_lo = scalar.pattern(_point(b, x, lo))
    if p_lo == scalar.pattern(_point(b, x, hi)):
        return None
    # Bisection on "same side as at lo": each argument is monotone along the path within a
    # piece, so this closes in on the first change, down to adjacent floats.
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:
            break
        if scalar.pattern(_point(b, x, mid)) == p_lo:
            lo = mid
        else:
            hi = mid
    return lo, hi


def integrated_gradients(scalar: _Scalar, x: list[float], b: list[float]) -> tuple[list[float], int]:
    """(per-input integrated gradients from b to x, quadrature intervals used)."""
    import numpy as np

    nodes, weights = np.polynomial.legendre.leggauss(QUADRATURE_POINTS)
    n = len(x)
    total = [0.0] * n
    f_b, f_x = scalar.value(b), scalar.value(x)
    tol = COMPLETENESS_TOLERANCE * max(1.0, abs(f_x - f_b))
    stack = [(0.0, 1.0, f_b, f_x)]
    used = 0
    while stack:
        lo, hi, f_lo, f_hi = stack.pop()
        half = 0.5 * (hi - lo)
        part = [0.0] * n
        for t, w in zip(nodes, weights):
            grad = scalar.gradient(_point(b, x, lo + half * (1.0 + float(t))))
            for i in range(n):
                part[i] += half * float(w) * grad[i]
        part = [p * (xi - bi) for p, xi, bi in zip(part, x, b)]
        error = abs(math.fsum(part) - (f_hi - f_lo))
        if error > tol and used + len(stack) < MAX_INTERVALS:
            # Split at the kink if there is one (the floats either side of it: what lies between
            # them is below rounding), else in the middle.
            left, right = _kink_between(scalar, b, x, lo, hi) or (lo + half, lo + half)
            if (left, right) != (lo, hi) and lo <= left <= right <= hi:
                f_left = scalar.value(_point(b, x, left))
                f_right = f_left if right == left else scalar.value(_point(b, x, right))
                stack += [(right, hi, f_right, f_hi), (lo, left, f_lo, f_left)]
                continue
        used += 1
        total = [s + p for s, p in zip(total, part)]
    return total, used


def explain_row(
    root: Node,
    row: Sequence[float],
    baseline: Sequence[float],
    *,
    element: int | None = None,
    explained: str = "prediction",
    baseline_kind: str = "given",
) -> Explanation:
    """Gradient, gradient × (input − baseline) and contributions of each input at `row`."""
    scalar = _Scalar(root, element)
    x, b = [float(v) for v in row], [float(v) for v in baseline]
    f_x, f_b = scalar.value(x), scalar.value(b)
    grad = scalar.gradient(x)
    terms = additive_terms(root, element)
    if terms is not None:
        contributions, method, intervals = _exact(scalar, terms, x, b), "additive terms (exact)", 0
    else:
        contributions, intervals = integrated_gradients(scalar, x, b)
        method = "integrated gradients"
    return Explanation(
        inputs=list(scalar.graph.input_names),
        values=x,
        baseline=b,
        baseline_kind=baseline_kind,
        explained=explained,
        output=f_x,
        baseline_output=f_b,
        gradient=grad,
        gradient_x_input=[g * (xi - bi) for g, xi, bi in zip(grad, x, b)],
        contributions=contributions,
        method=method,
        completeness_error=abs(math.fsum(contributions) - (f_x - f_b)),
        intervals=intervals,
    )


def check_finite(e: Explanation, where: str) -> None:
    """Refuse an explanation with a number that is not finite (an output or gradient that
    overflowed), as a ModelError placed at `where`: NaN contributions explain nothing."""
    named = [("its output", e.output), ("the baseline's output", e.baseline_output)]
    for kind, numbers in (("the gradient", e.gradient), ("the contribution", e.contributions)):
        named += [(f"{kind} of '{name}'", v) for name, v in zip(e.inputs, numbers)]
    bad = next(((what, v) for what, v in named if not math.isfinite(v)), None)
    if bad is not None:
        raise ModelError(
            f"{where}: the model cannot explain its answer there ({bad[0]} is {bad[1]}); the inputs are too far "
            "from what it was trained on, or its parameters too large"
        )


def importance(
    root: Node,
    rows: Sequence[Sequence[float]],
    baseline: Sequence[float],
    *,
    choose: Callable[[list[float]], tuple[int | None, str]] | None = None,
    baseline_kind: str = "given",
    place: Callable[[int], str] = lambda i: f"row {i + 1}",
) -> Importance:
    """Mean |contribution| of each input over `rows`, largest first.

    `choose(row)` says which output element to explain at a row and what it is (default:
    the one output, "prediction"); a row the model cannot explain is a ModelError at `place(i)`.
    """
    if not rows:
        raise DataError("there are no rows to explain")
    names = list(root.compiled_graph.input_names)
    sums = [0.0] * len(names)
    methods: set[str] = set()
    explained: set[str] = set()
    worst = 0.0
    for i, row in enumerate(rows):
        element, what = choose(list(row)) if choose is not None else (None, "prediction")
        e = explain_row(root, row, baseline, element=element, explained=what, baseline_kind=baseline_kind)
        check_finite(e, place(i))
        sums = [s + abs(c) for s, c in zip(sums, e.contributions)]
        methods.add(e.method)
        explained.add(what)
        worst = max(worst, e.completeness_error)
    ranked = sorted(zip(names, [s / len(rows) for s in sums]), key=lambda p: -p[1])
    what = explained.pop() if len(explained) == 1 else "probability of the predicted class"
    return Importance(ranked, len(rows), list(baseline), baseline_kind, what, sorted(methods), worst)


def baseline_values(
    kind: str, inputs: Sequence[str], normalization: dict[str, tuple[float, float]] | None, rows: Any
) -> list[float]:
    """The baseline row: zeros, or the mean of each input over the training rows.

    A model trained with normalize keeps its training means, so it needs no data for this;
    otherwise `rows` is called for the training rows (it raises if there are none).
    """
    if kind not in BASELINES:
        raise DataError(f"unknown baseline '{kind}'; use one of {', '.join(BASELINES)}")
    if kind == "zero":
        return [0.0] * len(inputs)
    if normalization is not None:
        return [float(normalization[name][0]) for name in inputs]
    X = rows()
    return [math.fsum(r[j] for r in X) / len(X) for j in range(len(inputs))]


# ----------------------------------------------------------------- saved models


def _what(loaded: Any, out: Any, class_label: str | None) -> tuple[int | None, str]:
    """(output element to explain, what it is) for a saved model's output `out` at a sample."""
    rec = loaded.record
    if rec.task == "binary":
        labels = class_labels("binary", rec.classes, 1) or []
        if class_label is not None:
            raise DataError("--class is for a softmax classifier; a binary model has one output")
        return None, f"probability of class '{labels[1]}'"
    if rec.task == "classes":
        labels = class_labels("classes", rec.classes, len(out)) or []
        if class_label is None:
            k = max(range(len(out)), key=lambda i: float(out[i]))
        elif class_label in labels:
            k = labels.index(class_label)
        else:
            raise DataError(f"unknown class '{class_label}'; the model's classes are {', '.join(labels)}")
        return k, f"probability of class '{labels[k]}'"
    if class_label is not None:
        raise DataError("--class is for a softmax classifier; this model predicts a number")
    return None, "prediction"


def _baseline(loaded: Any, kind: str, data: str | None) -> list[float]:
    from ..run.datasource import model_table, recorded_split

    rec = loaded.record

    def rows() -> list[list[float]]:
        try:
            return recorded_split(rec)[0][0]
        except DataError:
            if data is None:
                raise DataError(
                    f"the mean baseline needs the training data, and {rec.data.source} cannot be read: "
                    "pass --data FILE.csv, or use --baseline zero"
                ) from None
            return input_rows(model_table(rec, data), list(rec.inputs))

    stats = {k: (float(v[0]), float(v[1])) for k, v in rec.normalization.items()} if rec.normalization else None
    return baseline_values(kind, list(rec.inputs), stats, rows)


def explain_model(
    loaded: Any, values: Sequence[float], *, baseline: str = "mean", class_label: str | None = None
) -> Explanation:
    """Explain a saved model's output at one sample (raw input values, in input order)."""
    b = _baseline(loaded, baseline, None)
    element, explained = _what(loaded, loaded.root.compiled_graph.predict(list(values)), class_label)
    e = explain_row(loaded.root, values, b, element=element, explained=explained, baseline_kind=baseline)
    check_finite(e, "the sample")
    return e


def explain_data(
    loaded: Any, data: str, *, baseline: str = "mean", class_label: str | None = None, table: Table | None = None
) -> Importance:
    """Global importance of a saved model's inputs: mean |contribution| over the rows of `data`
    (`table`: the table `data` names, as `datasource.model_table` read it, when the caller has it).

    A classifier's contribution at a row is to the probability of the class it predicts
    there (or of `class_label`).
    """
    from ..run.datasource import model_table

    rec = loaded.record
    b = _baseline(loaded, baseline, data)
    table = table if table is not None else model_table(rec, data)
    rows = input_rows(table, list(rec.inputs))
    if not rows:
        raise DataError(f"{data} has no rows to explain")

    def choose(row: list[float]) -> tuple[int | None, str]:
        return _what(loaded, loaded.root.compiled_graph.predict(row), class_label)

    return importance(loaded.root, rows, b, choose=choose, baseline_kind=baseline, place=table.place)


@dataclass
class Explained:
    """What `treegrad explain` found for a model file: contributions at one sample, or the
    inputs ranked over the rows of `data` (then drawn to `plot`, if asked)."""

    name: str  # the model's
    sample: Explanation | None
    ranking: Importance | None
    plot: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json: the sample's explanation, or the ranking."""
        found = self.sample or self.ranking
        assert found is not None
        return found.as_dict()


def explain_file(
    model: Path,
    values: Sequence[str],
    *,
    data: str | None = None,
    baseline: str = "mean",
    class_label: str | None = None,
    plot: Path | None = None,
    warn: Callable[[str], None] = lambda _: None,
    force: bool = False,
) -> Explained:
    """`treegrad explain`: a model file explained at the sample of `values` (as typed after MODEL),
    or over the rows of `data` and drawn as a bar chart to `plot`; inputs far outside their
    training ranges are said through `warn`."""
    from ..outputs.plotting import importance_chart, plot_format
    from ..run.datasource import model_table
    from ..run.modelfile import load
    from ..run.provenance import table_range_warnings
    from ..run.values import data_columns, one_value_per_input, read_sample

    if values and data:
        raise OptionError("give either VALUES (one sample) or --data (every row), not both", "VALUES")
    if plot is not None and not data:
        raise OptionError("--plot draws the ranking of --data", "--plot")
    if plot is not None:
        plot_format(plot)
    loaded = load(model)
    rec = loaded.record
    if not data:
        if not values:
            raise OptionError(one_value_per_input(data_columns(rec)), "VALUES")
        row = read_sample(rec, values, warn)
        return Explained(rec.name, explain_model(loaded, row, baseline=baseline, class_label=class_label), None)
    table = model_table(rec, data)
    ranking = explain_data(loaded, data, baseline=baseline, class_label=class_label, table=table)
    for warning in table_range_warnings(rec, table):  # after explain_data has read its cells as numbers
        warn(warning)
    if plot is not None:
        names, means = [n for n, _ in ranking.ranked], [v for _, v in ranking.ranked]
        importance_chart(names, means, f"{rec.name}: {ranking.explained}", plot, force=force)
    return Explained(rec.name, None, ranking, plot)
