"""Shorten a trained model to a formula a person can read, measuring what each cut costs.

The model is first rewritten, exactly, into a canonical form: every sum of weighted parts is
folded into one sum c1·a1 + c2·a2 + … + c0 over distinct *atoms* (an input, or a nonlinear
unit such as tanh(…), relu(…), a product of two non-constant parts), so chains of affine maps
collapse (w2·(w1·x + b1) + b2 is one weight and one constant) and a unit whose argument is
constant (a dead or saturated unit) folds into the constant. Then, greedily, one cut at a time:

- drop a term (it is replaced by its mean over the training rows, which goes into the constant);
- drop a unit (replaced everywhere by its mean);
- make a unit linear (f(z) replaced by its least-squares line a·z + b over the training rows,
  whose terms then merge into the sums that used the unit);

each cut scored by the training loss right after it, the least harmful one taken, and the
remaining parameters refitted on the training rows with the model's own training settings
(`fit`). Every step is a real model, built from a spec of ordinary nodes and saved in an
ordinary model file, so show, predict, eval and export take it.

A formula's length is counted two ways: *terms*, the summands of each output's top-level sum
after this folding, in the user's units (a model trained with normalize counts the constant it
has once its inputs are folded back; products of sums are not multiplied out; a softmax counts
the terms of all its logits), and *nodes*, the nodes of the compiled graph (what `train`
reports). The folding is treegrad's own exact rewrite; it needs no sympy.

The chosen model is the shortest one (fewest terms, then nodes) whose validation score (the
training score when there is no validation split) is within the tolerance of the full model's:
for a regression, a loss at most (1 + tolerance) times the full model's; for a classifier, an
accuracy at most `tolerance` below it (0.01: one point). With `max_terms`, only models of at
most that many terms are chosen from.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.graph import Graph
from ..core.nodes import Constant, Input, Node, Output, Parameter
from ..core.ops import OPS
from ..errors import DataError, TreegradError
from ..run.modelfile import ModelRecord
from ..run.provenance import derived

# ----------------------------------------------------------------- canonical form


@dataclass(eq=False)
class Atom:
    """A part of the formula that is not affine: an input, or an op over canonical arguments."""

    key: int  # identity: atoms with the same key are the same part
    op: str  # "input", or an op of the op table
    args: list[Aff] = field(default_factory=list)
    name: str = ""  # the input's name


@dataclass(eq=False)
class Aff:
    """c1·a1 + … + cn·an + const over distinct atoms (by key), in order of first appearance."""

    terms: dict[int, tuple[Atom, float]] = field(default_factory=dict)
    const: float = 0.0

    def add(self, other: Aff, scale: float = 1.0) -> None:
        """self += scale · other."""
        for k, (atom, c) in other.terms.items():
            old = self.terms.get(k, (atom, 0.0))[1]
            self.terms[k] = (atom, old + scale * c)
        self.const += scale * other.const

    def constant(self) -> bool:
        return not self.terms


def _copy(a: Aff) -> Aff:
    out = Aff()
    out.add(a)
    return out


def _scaled(a: Aff, s: float) -> Aff:
    out = Aff()
    out.add(a, s)
    return out


@dataclass
class Form:
    """A model in canonical form: one Aff per output element."""

    outputs: list[Aff]
    kind: str  # "one", "list" or "softmax"


def _standardized(n: Node) -> str | None:
    from ..core.printers import _standardized as standardized

    found = standardized(n)
    return found[0] if found else None


def canonical(graph: Graph, normalized: bool) -> Form:
    """The graph rewritten exactly into canonical form (see the module's docstring).

    With `normalized`, a standardised input (x - mean) / std, as build.py writes it, is the atom
    of the input x: the rebuilt model standardises its inputs again.
    """
    forms: dict[int, Aff] = {}
    inputs: dict[str, Atom] = {}

    def input_atom(name: str) -> Aff:
        atom = inputs.setdefault(name, Atom(key=-1 - len(inputs), op="input", name=name))
        return Aff({atom.key: (atom, 1.0)}, 0.0)

    for n in graph.order:
        if isinstance(n, Output):
            continue
        std = _standardized(n) if normalized else None
        if std is not None:
            forms[id(n)] = input_atom(std)
        elif isinstance(n, Input):
            forms[id(n)] = input_atom(n.name or "")
        elif isinstance(n, (Parameter, Constant)):
            forms[id(n)] = Aff({}, float(n.value))
        else:
            assert n.op is not None
            forms[id(n)] = _op_form(n, n.op.name, [forms[id(c)] for c in n.children])
    if graph.is_softmax:
        kind = "softmax"
    elif graph.is_list:
        kind = "list"
    else:
        kind = "one"
    return Form([forms[id(e)] for e in graph.elements], kind)


def _op_form(n: Node, op: str, args: list[Aff]) -> Aff:
    """The canonical form of op(args): folded if affine or constant, else a new atom."""
    if op == "add":
        out = Aff()
        for a in args:
            out.add(a)
        return out
    if op == "sub":
        out = _copy(args[0])
        out.add(args[1], -1.0)
        return out
    if op == "neg":
        return _scaled(args[0], -1.0)
    varying = [a for a in args if not a.constant()]
    if op == "mul" and len(varying) <= 1:
        scale = math.prod(a.const for a in args if a.constant())
        return _scaled(varying[0], scale) if varying else Aff({}, scale)
    if op == "div" and args[1].constant() and args[1].const != 0.0:
        return _scaled(args[0], 1.0 / args[1].const)
    if not varying:
        try:
            return Aff({}, float(OPS[op].value_fn(len(args))(*[a.const for a in args])))
        except (ArithmeticError, ValueError):
            pass  # kept as an atom of constants: the model fails there, as before
    atom = Atom(key=id(n), op=op, args=args)
    return Aff({atom.key: (atom, 1.0)}, 0.0)


def atoms(form: Form) -> list[Atom]:
    """Every atom of the form, each once, arguments before the atoms that use them."""
    seen: set[int] = set()
    order: list[Atom] = []
    stack: list[tuple[Atom, bool]] = [(a, False) for aff in reversed(form.outputs) for a, _ in aff.terms.values()]
    while stack:
        atom, ready = stack.pop()
        if ready:
            if atom.key not in seen:
                seen.add(atom.key)
                order.append(atom)
            continue
        if atom.key in seen:
            continue
        stack.append((atom, True))
        stack.extend((a, False) for arg in reversed(atom.args) for a, _ in arg.terms.values() if a.key not in seen)
    return order


def affs(form: Form) -> list[Aff]:
    """Every sum of the form: the outputs' and those inside atoms' arguments."""
    return list(form.outputs) + [arg for atom in atoms(form) for arg in atom.args]


def term_count(form: Form, stats: dict[str, tuple[float, float]] | None = None) -> int:
    """Summands of each output's top-level sum in the user's units, added over the outputs.

    With `stats` the inputs are standardised inside the model: c·(x − m)/s counts as one term,
    and the constant as one if the constant in raw units, const − Σ c·m/s, is not zero.
    """
    total = 0
    for a in form.outputs:
        const = a.const
        for atom, c in a.terms.values():
            if stats is not None and atom.op == "input":
                mean, std = stats[atom.name]
                const -= c * mean / std
        total += len(a.terms) + (const != 0.0)
    return total


# ----------------------------------------------------------------- values over the data


class Values:
    """Each atom's and each sum's values over rows of data (NumPy arrays), for scoring cuts."""

    def __init__(self, X: Sequence[Sequence[float]], inputs: list[str], stats: dict[str, tuple[float, float]] | None):
        import numpy as np

        from ..engine.vectorized import array_namespace

        self.np = np
        self.ns = array_namespace()
        cols = np.array(X, dtype=float).reshape(len(X), len(inputs))
        self.columns = {}
        for j, name in enumerate(inputs):
            col = cols[:, j]
            if stats is not None:
                mean, std = stats[name]
                col = (col - mean) / std
            self.columns[name] = col
        self.rows = len(X)
        self._fns: dict[tuple[str, int], Callable[..., Any]] = {}

    def _fn(self, op: str, n: int) -> Callable[..., Any]:
        if (op, n) not in self._fns:
            args = [f"a{i}" for i in range(n)]
            self._fns[(op, n)] = eval(f"lambda {', '.join(args)}: {OPS[op].array_value(args)}", self.ns)  # noqa: S307
        return self._fns[(op, n)]

    def of(self, form: Form) -> tuple[list[Any], dict[int, Any]]:
        """(one array per output element, atom key -> array)."""
        np = self.np
        vals: dict[int, Any] = {}
        with np.errstate(all="ignore"):
            for atom in atoms(form):
                if atom.op == "input":
                    vals[atom.key] = self.columns[atom.name]
                else:
                    args = [self.aff(a, vals) for a in atom.args]
                    vals[atom.key] = np.asarray(self._fn(atom.op, len(args))(*args), dtype=float) * np.ones(self.rows)
            return [self.aff(a, vals) for a in form.outputs], vals

    def aff(self, a: Aff, vals: dict[int, Any]) -> Any:
        total = self.np.full(self.rows, a.const)
        for k, (_, c) in a.terms.items():
            total = total + c * vals[k]
        return total


def _loss(form: Form, values: Values, loss: str, y: Sequence[Any]) -> float:
    """The mean loss of a form on the rows of `values`, by the loss table's own functions."""
    from ..core.ops import softmax_fns
    from ..engine.losses import LOSSES

    outs, _ = values.of(form)
    k = len(outs)
    fn = LOSSES[loss].fn(k)
    smax = softmax_fns(k)[0] if form.kind == "softmax" else None
    total = 0.0
    try:
        for i, t in enumerate(y):
            row = [float(o[i]) for o in outs]
            if not all(math.isfinite(v) for v in row):
                return math.inf
            total += fn(smax(*row) if smax else row, t)[0]
    except (ArithmeticError, ValueError):
        return math.inf
    return total / len(y) if y else math.inf


# ----------------------------------------------------------------- cuts


@dataclass
class Cut:
    """One way to shorten a form: what it does, and the form after it."""

    what: str
    form: Form


def _clone(form: Form) -> tuple[Form, dict[int, Atom], dict[int, Aff]]:
    """A deep copy of the form, (copy, atom key -> copied atom, id of an original sum -> its copy)."""
    new_atoms: dict[int, Atom] = {}
    new_affs: dict[int, Aff] = {}

    def aff(a: Aff) -> Aff:
        out = Aff({k: (new_atoms[k], c) for k, (_, c) in a.terms.items()}, a.const)
        new_affs[id(a)] = out
        return out

    for atom in atoms(form):
        new_atoms[atom.key] = Atom(atom.key, atom.op, [aff(x) for x in atom.args], atom.name)
    return Form([aff(a) for a in form.outputs], form.kind), new_atoms, new_affs


def _replace(form: Form, key: int, by: Aff) -> None:
    """Replace the atom `key` by the sum `by` wherever it is used (in place)."""
    for a in affs(form):
        if key in a.terms:
            _, c = a.terms.pop(key)
            a.add(by, c)
            for k in [k for k, (_, v) in a.terms.items() if v == 0.0]:
                del a.terms[k]


def _describe(atom: Atom, inputs: dict[int, str]) -> str:
    if atom.op == "input":
        return atom.name
    return inputs.get(atom.key, f"a {atom.op} unit")


def cuts(form: Form, values: Values) -> list[Cut]:
    """Every single cut of the form (see the module's docstring)."""
    np = values.np
    _, vals = values.of(form)
    labels = {atom.key: f"{atom.op} unit {i + 1}" for i, atom in enumerate(a for a in atoms(form) if a.op != "input")}
    out: list[Cut] = []
    where = {id(a): i for i, a in enumerate(affs(form))}
    for a in affs(form):
        for k, (atom, c) in a.terms.items():
            new, _, copies = _clone(form)
            target = copies[id(a)]
            target.terms.pop(k)
            target.const += c * float(np.mean(vals[k]))
            out.append(Cut(f"drop {_describe(atom, labels)} from sum {where[id(a)] + 1}", new))
        if a.const != 0.0 and a.terms:
            new, _, copies = _clone(form)
            copies[id(a)].const = 0.0
            out.append(Cut(f"drop the constant of sum {where[id(a)] + 1}", new))
    for atom in atoms(form):
        if atom.op == "input":
            continue
        new, _, _ = _clone(form)
        _replace(new, atom.key, Aff({}, float(np.mean(vals[atom.key]))))
        out.append(Cut(f"drop {labels[atom.key]} (its mean stays)", new))
        varying = [i for i, x in enumerate(atom.args) if not x.constant()]
        if len(varying) == 1 and OPS[atom.op].arity == 1 or atom.op == "pow":
            line = _line(atom, varying[0], vals, values)
            if line is not None:
                new, _, _ = _clone(form)
                slope, intercept = line
                arg = _clone(Form([atom.args[varying[0]]], "one"))[0].outputs[0]
                by = _scaled(arg, slope)
                by.const += intercept
                _replace(new, atom.key, by)
                out.append(Cut(f"make {labels[atom.key]} linear", new))
    return out


def _line(atom: Atom, i: int, vals: dict[int, Any], values: Values) -> tuple[float, float] | None:
    """(slope, intercept) of the least-squares line of the atom's values on its argument's."""
    np = values.np
    z = values.aff(atom.args[i], vals)
    f = vals[atom.key]
    if not (np.all(np.isfinite(z)) and np.all(np.isfinite(f))):
        return None
    dz = z - z.mean()
    var = float(np.mean(dz * dz))
    slope = float(np.mean(dz * (f - f.mean()))) / var if var > 0 else 0.0
    return slope, float(f.mean()) - slope * float(z.mean())


# ----------------------------------------------------------------- forms as specs


class _Writer:
    """A form as a spec's `nodes:` and `output:`, every coefficient a named parameter."""

    def __init__(self, form: Form, taken: set[str]) -> None:
        self.slots: list[tuple[Aff, int | None]] = []
        self.params: dict[str, float] = {}
        self.nodes: dict[str, Any] = {}
        uses: dict[int, int] = {}
        for a in affs(form):
            for k in a.terms:
                uses[k] = uses.get(k, 0) + 1
        self.names: dict[int, str] = {}
        k = 0
        for atom in atoms(form):  # arguments first, so a node's own nodes are named before it
            if atom.op != "input" and uses.get(atom.key, 0) > 1:
                k += 1
                while f"u{k}" in taken:
                    k += 1
                self.names[atom.key] = f"u{k}"
                self.nodes[f"u{k}"] = self.atom(atom, inline=True)
        self.output = [self.aff(a) for a in form.outputs]

    def param(self, value: float, slot: tuple[Aff, int | None]) -> dict[str, Any]:
        name = f"p{len(self.params)}"
        self.params[name] = value
        self.slots.append(slot)
        return {"param": {"init": value, "name": name}}

    def atom(self, atom: Atom, inline: bool = False) -> Any:
        if atom.op == "input":
            return atom.name
        if not inline and atom.key in self.names:
            return self.names[atom.key]
        args = [(a.const if i in OPS[atom.op].constant_args else self.aff(a)) for i, a in enumerate(atom.args)]
        return {atom.op: args if len(args) > 1 else args[0]}

    def aff(self, a: Aff) -> Any:
        if len(a.terms) == 1 and a.const == 0.0:
            atom, c = next(iter(a.terms.values()))
            if c == 1.0:
                return self.atom(atom)  # a bare unit, as in sigmoid(...) at a binary model's top
        parts: list[Any] = [{"mul": [self.param(c, (a, k)), self.atom(atom)]} for k, (atom, c) in a.terms.items()]
        if a.const != 0.0 or not parts:
            parts.append(self.param(a.const, (a, None)))
        return parts[0] if len(parts) == 1 else {"add": parts}


def _spec(record: ModelRecord, writer: _Writer, form: Form, what: str) -> str:
    if form.kind == "softmax":
        output: Any = {"softmax": writer.output}
    elif form.kind == "list":
        output = writer.output
    else:
        output = writer.output[0]
    spec: dict[str, Any] = {
        "name": record.name,
        "description": f"simplified by treegrad simplify: {what}",
        "inputs": list(record.inputs),
    }
    if writer.nodes:
        spec["nodes"] = writer.nodes
    spec["output"] = output
    spec["loss"] = record.loss
    if record.classes is not None:
        spec["classes"] = list(record.classes)
    spec["target"] = record.data.target
    spec["training"] = record.training.model_dump(mode="json")
    return json.dumps(spec, indent=1) + "\n"


# ----------------------------------------------------------------- candidates


@dataclass
class Candidate:
    """One model on the way: what was cut, its size, its scores, its record (ready to save)."""

    step: str
    terms: int
    nodes: int
    parameters: int
    train: dict[str, Any]
    validation: dict[str, Any] | None
    record: ModelRecord
    root: Any = field(repr=False)
    form: Form | None = field(default=None, repr=False)
    writer: _Writer | None = field(default=None, repr=False)

    def score(self, task: str) -> tuple[str, float]:
        """(name, value) of the score candidates are compared by: validation if any, else training."""
        m = self.validation or self.train
        return ("accuracy", m["accuracy"]) if task != "regression" else ("loss", m["loss"])

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {
            "step": self.step,
            "terms": self.terms,
            "nodes": self.nodes,
            "parameters": self.parameters,
            "train": self.train,
            "validation": self.validation,
        }


@dataclass
class Simplified:
    """The outcome of `simplify`: every candidate, in the order they were made, and the chosen one."""

    candidates: list[Candidate]
    chosen: int
    criterion: str
    notes: list[str] = field(default_factory=list)
    rule: str = ""  # the criterion with what its tolerance means, e.g. "validation mse at most 1% above"

    def as_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {
            "criterion": self.criterion,
            "rule": self.rule,
            "chosen": self.chosen,
            "candidates": [c.as_dict() for c in self.candidates],
            "notes": self.notes,
        }


@dataclass
class _Context:
    record: ModelRecord
    stats: dict[str, tuple[float, float]] | None
    train: tuple[list[list[float]], list[Any]]
    validation: tuple[list[list[float]], list[Any]]
    epochs: int


def _scores(ctx: _Context, root: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    from ..run.tasks import evaluate_rows

    rec = ctx.record
    train = evaluate_rows(root, rec.task, rec.loss, *ctx.train)
    val = evaluate_rows(root, rec.task, rec.loss, *ctx.validation) if ctx.validation[0] else None
    return train, val


def _record(ctx: _Context, spec_text: str, root: Any, train: dict[str, Any], val: dict[str, Any] | None) -> ModelRecord:
    g = root.compiled_graph
    metrics = {"train": train, **({"validation": val} if val is not None else {})}
    return ctx.record.model_copy(
        update={
            "spec_text": spec_text,
            "parameters": dict(zip(g.param_names, g.param_values())),
            "metrics": metrics,
            "resume": None,  # another model: the run's optimizer state is not its own
            "provenance": derived(ctx.record.provenance, "treegrad simplify"),
        }
    )


def _realize(ctx: _Context, form: Form, what: str, refit: bool) -> Candidate:
    """The form as a real model: a spec of ordinary nodes, built, refitted if asked, scored."""
    from ..engine.fit import fit
    from ..spec.build import build_model
    from ..spec.models import parse_spec

    writer = _Writer(form, set(ctx.record.inputs))
    text = _spec(ctx.record, writer, form, what)
    spec = parse_spec(text, "simplified.json")
    root = build_model(spec, seed=ctx.record.training.seed, stats=ctx.stats)
    g = root.compiled_graph
    if refit and g.params:
        s = ctx.record.training
        before = g.param_values()
        start = _scores(ctx, root)[0]["loss"]
        try:
            fit(
                root,
                *ctx.train,
                loss=ctx.record.loss,
                epochs=ctx.epochs,
                learning_rate=s.learning_rate,
                batch_size=s.batch_size,
                optimizer=s.optimizer,
                shuffle=s.shuffle,
                seed=s.seed,
            )
            after = _scores(ctx, root)[0]["loss"]
        except TreegradError:
            after = math.inf
        if not after <= start:  # a refit that made it worse (or diverged) is not kept
            g.set_param_values(before)
    values = dict(zip(g.param_names, g.param_values()))
    for name, (aff, key) in zip(writer.params, writer.slots):
        if key is None:
            aff.const = values[name]
        else:
            atom, _ = aff.terms[key]
            aff.terms[key] = (atom, values[name])
    text = _spec(ctx.record, _Writer(form, set(ctx.record.inputs)), form, what)  # the refitted values as inits
    train, val = _scores(ctx, root)
    record = _record(ctx, text, root, train, val)
    return Candidate(
        what, term_count(form, ctx.stats), len(g.order), len(g.params), train, val, record, root, form, writer
    )


def parse_tolerance(text: str) -> float:
    """A tolerance as written on the command line: "1%" or "0.01"."""
    t = text.strip()
    try:
        value = float(t[:-1]) / 100.0 if t.endswith("%") else float(t)
    except ValueError:
        raise DataError(f"--tolerance is {text!r}: give a percentage such as 1% or a fraction such as 0.01") from None
    check_tolerance(value)
    return value


def check_tolerance(value: float) -> None:
    """A DataError unless `value` is a finite number >= 0."""
    if not (math.isfinite(value) and value >= 0.0):
        raise DataError(
            f"the tolerance is {value:g}; it must be 0 or more: how much worse than the full model "
            "the shorter one may be, e.g. 1% (0.01)"
        )


def _within(task: str, full: tuple[str, float], c: tuple[str, float], tolerance: float) -> bool:
    if task == "regression":
        return c[1] <= full[1] * (1.0 + tolerance) + 1e-12
    return c[1] >= full[1] - tolerance - 1e-12


def _round(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}")


def simplify(
    loaded: Any,
    *,
    data: str | None = None,
    tolerance: float = 0.01,
    max_terms: int | None = None,
    digits: int | None = None,
    epochs: int | None = None,
    patience: int = 3,
    log: Callable[[str], None] | None = None,
) -> Simplified:
    """Shorten a saved model step by step (see the module's docstring) and choose one.

    `data` replaces the model's training data (the same split is made from it); `epochs` is
    the length of each refit (default: the model's own epochs). The search stops when no cut
    is left, or `patience` steps after the first model outside the tolerance (once the models
    are at most `max_terms` long).
    """
    from ..run.datasource import recorded_split

    check_tolerance(tolerance)
    if max_terms is not None and max_terms < 1:
        raise DataError(f"--max-terms is {max_terms}; give 1 or more")
    if digits is not None and not 1 <= digits <= 17:
        raise DataError(f"--digits is {digits}; give a number of significant digits from 1 to 17")
    if epochs is not None and epochs < 0:
        raise DataError(f"--epochs is {epochs}; give 0 or more")
    rec: ModelRecord = loaded.record
    train, validation = recorded_split(rec, data)
    if not train[0]:
        raise DataError("there are no training rows to refit on")
    stats = {k: (float(v[0]), float(v[1])) for k, v in rec.normalization.items()} if rec.normalization else None
    ctx = _Context(rec, stats, train, validation, rec.training.epochs if epochs is None else epochs)
    say = log or (lambda _: None)

    full_form = canonical(loaded.root.compiled_graph, stats is not None)
    t, v = _scores(ctx, loaded.root)
    g = loaded.root.compiled_graph
    full = Candidate("trained", term_count(full_form, stats), len(g.order), len(g.params), t, v, rec, loaded.root)
    found = [full]
    current = _realize(ctx, full_form, "fold constants and affine chains", refit=False)
    if (current.terms, current.nodes) < (full.terms, full.nodes):
        found.append(current)
    task, base = rec.task, full.score(rec.task)
    values = Values(train[0], list(rec.inputs), stats)
    outside = 0
    while True:
        assert current.form is not None
        options = cuts(current.form, values)
        if not options:
            break
        scored = sorted(((_loss(c.form, values, rec.loss, train[1]), i) for i, c in enumerate(options)))
        made = None
        for loss, i in scored[:5]:
            if not math.isfinite(loss):
                break  # the remaining cuts leave a model that cannot be evaluated on the training rows
            try:
                made = _realize(ctx, options[i].form, options[i].what, refit=True)
            except (TreegradError, ArithmeticError, ValueError):
                continue  # e.g. a validation row outside the shortened model's domain: the next best cut
            say(f"step {len(found)}: {options[i].what}")
            break
        if made is None:
            break
        current = made
        found.append(current)
        if _within(task, base, current.score(task), tolerance):
            outside = 0
        elif max_terms is None or current.terms <= max_terms:
            outside += 1
            if outside >= patience:
                break
    notes: list[str] = []
    chosen = _choose(found, task, base, tolerance, max_terms, notes)
    if digits is not None:
        found.append(_rounded(ctx, found[chosen], digits))
        if not _within(task, base, found[-1].score(task), tolerance):
            notes.append(f"rounding to {digits} significant digits costs more than the tolerance")
        chosen = len(found) - 1
    criterion = ("validation " if validation[0] else "training ") + ("accuracy" if task != "regression" else rec.loss)
    return Simplified(found, chosen, criterion, notes, tolerance_rule(task, criterion, tolerance))


def tolerance_rule(task: str, criterion: str, tolerance: float) -> str:
    """What `_within` allows, in words: a loss relatively higher, an accuracy absolutely lower."""
    if task == "regression":
        return f"{criterion} at most {tolerance * 100:.4g}% above the full model's"
    points = tolerance * 100
    return f"{criterion} at most {points:.4g} percentage point{'' if points == 1 else 's'} below the full model's"


def _choose(
    found: list[Candidate],
    task: str,
    base: tuple[str, float],
    tolerance: float,
    max_terms: int | None,
    notes: list[str],
) -> int:
    allowed = [i for i, c in enumerate(found) if max_terms is None or c.terms <= max_terms]
    good = [i for i in allowed if _within(task, base, found[i].score(task), tolerance)]
    if good:
        return min(good, key=lambda i: (found[i].terms, found[i].nodes, i))
    if not allowed:
        notes.append(f"no model of at most {max_terms} terms was found: the shortest one is chosen")
        return min(range(len(found)), key=lambda i: (found[i].terms, found[i].nodes))
    notes.append(f"no model of at most {max_terms} terms is within the tolerance: the best of them is chosen")
    sign = -1.0 if task != "regression" else 1.0
    return min(allowed, key=lambda i: sign * found[i].score(task)[1])


def _rounded(ctx: _Context, c: Candidate, digits: int) -> Candidate:
    """The candidate with every parameter rounded to `digits` significant digits (no refit)."""
    from ..spec.build import build_model
    from ..spec.models import parse_spec

    form = canonical(c.root.compiled_graph, ctx.stats is not None)
    for a in affs(form):
        a.const = _round(a.const, digits)
        for k, (atom, v) in list(a.terms.items()):
            a.terms[k] = (atom, _round(v, digits))
    what = f"round to {digits} digits"
    writer = _Writer(form, set(ctx.record.inputs))
    text = _spec(ctx.record, writer, form, what)
    root = build_model(parse_spec(text, "simplified.json"), seed=ctx.record.training.seed, stats=ctx.stats)
    g = root.compiled_graph
    train, val = _scores(ctx, root)
    return Candidate(
        what,
        term_count(form, ctx.stats),
        len(g.order),
        len(g.params),
        train,
        val,
        _record(ctx, text, root, train, val),
        root,
        form,
    )


def save_front(result: Simplified, folder: Path, stem: str, *, force: bool = False) -> list[Path]:
    """Write every candidate to `folder` as STEM.K.model.json (K its row in the table), over an
    existing file only if it is a model of the same name (files.check_replace), or with `force`."""
    from ..files import check_output
    from ..run.modelfile import output_kind, save

    paths = [folder / f"{stem}.{k}.model.json" for k in range(len(result.candidates))]
    for p, c in zip(paths, result.candidates):
        check_output(p, force=force, kind=output_kind(c.record.name), option="--front")
    for p, c in zip(paths, result.candidates):
        save(p, c.record, force=force)
    return paths
