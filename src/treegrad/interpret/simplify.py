"""Shorten a trained model to a formula a person can read, measuring what each cut costs.

The model is first rewritten, exactly, into a canonical form (`canonical`): every sum of
weighted parts is folded into one sum c1·a1 + c2·a2 + … + c0 over distinct *atoms* (an input, or
a nonlinear unit such as tanh(…), relu(…), a product of two non-constant parts), so chains of
affine maps collapse (w2·(w1·x + b1) + b2 is one weight and one constant) and a unit whose
argument is constant (a dead or saturated unit) folds into the constant. Then, greedily, one cut
at a time (`cuts`):

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

from ..engine.settings import Training, with_options
from ..errors import DataError, OptionError, TreegradError
from ..run.modelfile import ModelRecord
from ..run.provenance import derived
from .canonical import Form, SpecWriter, affs, canonical, term_count
from .cuts import Values, cuts, form_loss


def _spec(record: ModelRecord, writer: SpecWriter, form: Form, what: str) -> str:
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
    writer: SpecWriter | None = field(default=None, repr=False)

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
    """What every step reads: the model file's record, its standardisation, the rows split as in
    training, and the length of each refit.

    A regression trained on a standardised target (`target`: its mean and std) computes in those
    units and answers mean + std × that: the forms searched and the specs written are in the
    model's own units, the refits train on the standardised targets (`fit_y`) as train did, and
    every model is scored, saved and printed answering in the target's units, as train saves it."""

    record: ModelRecord
    stats: dict[str, tuple[float, float]] | None
    train: tuple[list[list[float]], list[Any]]
    validation: tuple[list[list[float]], list[Any]]
    epochs: int
    weights: list[float] | None = None  # each training row's weight, as the run had them (class, column)
    target: tuple[float, float] | None = None
    command: list[str] | None = None  # the command line simplifying, recorded in each model's provenance

    @property
    def fit_y(self) -> list[Any]:
        """The training targets in the model's own units (standardised when the run's were)."""
        if self.target is None:
            return self.train[1]
        mean, std = self.target
        return [(v - mean) / std for v in self.train[1]]


def _scores(ctx: _Context, root: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    from ..run.tasks import evaluate_rows

    rec = ctx.record
    train = evaluate_rows(root, rec.task, rec.loss, *ctx.train)
    val = evaluate_rows(root, rec.task, rec.loss, *ctx.validation) if ctx.validation[0] else None
    return train, val


def model_units(form: Form, target: tuple[float, float] | None) -> Form:
    """The form of a model that answers mean + std × f (a standardised target) as f: each output's
    sum minus the mean, over the std. `canonical` reads the answering graph; the search, the
    refits and the saved spec work in the units the model was trained in."""
    if target is None:
        return form
    mean, std = target
    for a in form.outputs:
        a.terms = {k: (atom, c / std) for k, (atom, c) in a.terms.items()}
        a.const = (a.const - mean) / std
    return form


def _built(ctx: _Context, text: str) -> tuple[Any, Any]:
    """(the model in its own units, the same parameters answering in the target's units) of a
    spec written by `_spec`; one node graph twice when the target is not standardised."""
    from ..spec.build import build_model
    from ..spec.models import parse_spec

    spec = parse_spec(text, "simplified.json")
    inner = build_model(spec, seed=ctx.record.training.seed, stats=ctx.stats)
    if ctx.target is None:
        return inner, inner
    return inner, build_model(spec, seed=ctx.record.training.seed, stats=ctx.stats, target=ctx.target)


def _answering(inner: Any, outer: Any) -> Any:
    """`outer` with the parameters of `inner` (the same spec, built with the target's scaling)."""
    if outer is not inner:
        learned = dict(zip(inner.compiled_graph.param_names, inner.compiled_graph.param_values()))
        outer.compiled_graph.set_param_values([learned[n] for n in outer.compiled_graph.param_names])
    return outer


def _record(ctx: _Context, spec_text: str, root: Any, train: dict[str, Any], val: dict[str, Any] | None) -> ModelRecord:
    g = root.compiled_graph
    metrics = {"train": train, **({"validation": val} if val is not None else {})}
    return ctx.record.model_copy(
        update={
            "spec_text": spec_text,
            "parameters": dict(zip(g.param_names, g.param_values())),
            "metrics": metrics,
            "resume": None,  # another model: the run's optimizer state is not its own
            "provenance": derived(ctx.record.provenance, "treegrad simplify", ctx.command),
        }
    )


def refit_settings(training: Training, epochs: int) -> Training:
    """The settings a shortened model is refitted with: the run's own (rate, batches, optimizer,
    order, schedule, clipping, penalties: what it minimised and how it stepped) for `epochs`, in
    float64. A shortened model is ordinary nodes, which float32 cannot train (it needs dense
    layers, engine/fit.py): asked to, every refit would fail and be dropped."""
    return training.model_copy(update={"epochs": epochs, "dtype": "float64", "early_stopping": None})


def _refit(ctx: _Context, root: Any) -> None:
    """Refit `root` (in its own units) on the training rows with `refit_settings`, weighted as the
    run was; a refit that made the training loss worse, or failed, is undone."""
    from ..engine.fit import fit
    from ..run.tasks import evaluate_rows

    g = root.compiled_graph
    rec = ctx.record

    def loss() -> float:
        return float(evaluate_rows(root, rec.task, rec.loss, ctx.train[0], ctx.fit_y)["loss"])

    before, start = g.param_values(), loss()
    try:
        hist = fit(
            root,
            ctx.train[0],
            ctx.fit_y,
            refit_settings(rec.training, ctx.epochs),
            loss=rec.loss,
            sample_weight=ctx.weights,
        )
        after = loss()
    except (TreegradError, ArithmeticError):
        after = math.inf
    else:
        if hist.interrupted:  # fit keeps the last complete epoch on Ctrl-C; simplify stops altogether
            raise KeyboardInterrupt
    if not after <= start:  # a refit that made it worse (or diverged) is not kept
        g.set_param_values(before)


def _realize(ctx: _Context, form: Form, what: str, refit: bool) -> Candidate:
    """The form (in the model's own units) as a real model: a spec of ordinary nodes, built,
    refitted if asked, scored answering in the target's units."""
    writer = SpecWriter(form, set(ctx.record.inputs))
    inner, outer = _built(ctx, _spec(ctx.record, writer, form, what))
    g = inner.compiled_graph
    if refit and g.params:
        _refit(ctx, inner)
    root = _answering(inner, outer)
    values = dict(zip(g.param_names, g.param_values()))
    for name, (aff, key) in zip(writer.params, writer.slots):
        if key is None:
            aff.const = values[name]
        else:
            atom, _ = aff.terms[key]
            aff.terms[key] = (atom, values[name])
    text = _spec(ctx.record, SpecWriter(form, set(ctx.record.inputs)), form, what)  # the refitted values as inits
    train, val = _scores(ctx, root)
    record = _record(ctx, text, root, train, val)
    shown = root.compiled_graph  # the nodes as saved, answering in the target's units
    return Candidate(
        what,
        term_count(form, ctx.stats, ctx.target),
        len(shown.order),
        len(shown.params),
        train,
        val,
        record,
        root,
        form,
        writer,
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
    command: Sequence[str] | None = None,
) -> Simplified:
    """Shorten a saved model step by step (see the module's docstring) and choose one.

    `data` replaces the model's training data (the same split is made from it); `epochs` is
    the length of each refit (default: the model's own epochs); `command` (argv), the command line
    recorded in each model's provenance. The search stops when no cut
    is left, or `patience` steps after the first model outside the tolerance (once the models
    are at most `max_terms` long).
    """
    from ..run.datasource import recorded_training

    rec: ModelRecord = loaded.record
    _check_options(tolerance, max_terms, digits)
    if epochs is not None:
        with_options(rec.training, {"epochs": epochs})  # train's bound and message (limits.MAX_EPOCHS)
    train, validation, weights = recorded_training(rec, data)
    if not train[0]:
        raise DataError("there are no training rows to refit on")
    stats = {k: (float(v[0]), float(v[1])) for k, v in rec.normalization.items()} if rec.normalization else None
    more = rec.training.epochs if epochs is None else epochs
    # The shortened models are refitted, and trainable, in float64 only (refit_settings): their
    # records and specs say so.
    own = rec.model_copy(update={"training": rec.training.model_copy(update={"dtype": "float64"})})
    ctx = _Context(own, stats, train, validation, more, weights, rec.target_normalization)
    ctx.command = list(command) if command is not None else None

    full_form = model_units(canonical(loaded.root.compiled_graph, stats is not None), ctx.target)
    t, v = _scores(ctx, loaded.root)
    g = loaded.root.compiled_graph
    terms = term_count(full_form, stats, ctx.target)
    full = Candidate("trained", terms, len(g.order), len(g.params), t, v, rec, loaded.root)
    found = [full]
    current = _realize(ctx, full_form, "fold constants and affine chains", refit=False)
    if (current.terms, current.nodes) < (full.terms, full.nodes):
        found.append(current)
    task, base = rec.task, full.score(rec.task)

    def within(c: Candidate) -> bool:
        return _within(task, base, c.score(task), tolerance)

    _search(ctx, found, current, within, max_terms, patience, log or (lambda _: None))
    notes: list[str] = []
    chosen = _choose(found, task, base, tolerance, max_terms, notes)
    if digits is not None:
        found.append(_rounded(ctx, found[chosen], digits))
        if not within(found[-1]):
            notes.append(f"rounding to {digits} significant digits costs more than the tolerance")
        chosen = len(found) - 1
    criterion = ("validation " if validation[0] else "training ") + ("accuracy" if task != "regression" else rec.loss)
    return Simplified(found, chosen, criterion, notes, tolerance_rule(task, criterion, tolerance))


def _check_options(tolerance: float, max_terms: int | None, digits: int | None) -> None:
    """A DataError naming the first of simplify's options that is out of its range."""
    check_tolerance(tolerance)
    if max_terms is not None and max_terms < 1:
        raise DataError(f"--max-terms is {max_terms}; give 1 or more")
    if digits is not None and not 1 <= digits <= 17:
        raise DataError(f"--digits is {digits}; give a number of significant digits from 1 to 17")


def _search(
    ctx: _Context,
    found: list[Candidate],
    current: Candidate,
    within: Callable[[Candidate], bool],
    max_terms: int | None,
    patience: int,
    say: Callable[[str], None],
) -> None:
    """Cut `current` greedily, one cut at a time, adding each model made to `found`, until no cut
    is left or `patience` models in a row (of at most `max_terms` terms) are outside the tolerance."""
    values = Values(ctx.train[0], list(ctx.record.inputs), ctx.stats)
    outside = 0
    while True:
        assert current.form is not None
        made = _best_cut(ctx, current.form, values, len(found), say)
        if made is None:
            return
        current = made
        found.append(current)
        if within(current):
            outside = 0
        elif max_terms is None or current.terms <= max_terms:
            outside += 1
            if outside >= patience:
                return


def _best_cut(ctx: _Context, form: Form, values: Values, step: int, say: Callable[[str], None]) -> Candidate | None:
    """The model after the least harmful cut of `form` that can be made (of the five that cost the
    least training loss), refitted; None when no cut is left or none of them works."""
    options = cuts(form, values)
    y = ctx.fit_y  # in the form's units: a standardised target's losses are scaled, in the same order
    scored = sorted(((form_loss(c.form, values, ctx.record.loss, y), i) for i, c in enumerate(options)))
    for loss, i in scored[:5]:
        if not math.isfinite(loss):
            return None  # the remaining cuts leave a model that cannot be evaluated on the training rows
        try:
            made = _realize(ctx, options[i].form, options[i].what, refit=True)
        except (TreegradError, ArithmeticError, ValueError):
            continue  # e.g. a validation row outside the shortened model's domain: the next best cut
        say(f"step {step}: {options[i].what}")
        return made
    return None


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
    """The candidate with every parameter rounded to `digits` significant digits (no refit), in the
    model's own units: its parameters, as the model file holds them."""
    form = model_units(canonical(c.root.compiled_graph, ctx.stats is not None), ctx.target)
    for a in affs(form):
        a.const = _round(a.const, digits)
        for k, (atom, v) in list(a.terms.items()):
            a.terms[k] = (atom, _round(v, digits))
    what = f"round to {digits} digits"
    writer = SpecWriter(form, set(ctx.record.inputs))
    text = _spec(ctx.record, writer, form, what)
    root = _answering(*_built(ctx, text))
    g = root.compiled_graph
    train, val = _scores(ctx, root)
    return Candidate(
        what,
        term_count(form, ctx.stats, ctx.target),
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


@dataclass
class Saved:
    """What `treegrad simplify` made: the models on the way, the chosen one's formula, and the files."""

    result: Simplified
    record: ModelRecord  # the model simplified
    formula: str  # the chosen model's, at the precision asked
    out: Path
    front: list[Path]  # every candidate, with --front


def simplify_file(
    model: Path,
    out: Path,
    *,
    tolerance: str = "1%",
    data: str | None = None,
    max_terms: int | None = None,
    digits: int | None = None,
    epochs: int | None = None,
    front: Path | None = None,
    precision: int = 4,
    log: Callable[[str], None] | None = None,
    force: bool = False,
    command: Sequence[str] | None = None,
) -> Saved:
    """`treegrad simplify`: the model file shortened (see `simplify`, whose options these are; the
    tolerance as written, 1% or 0.01), the chosen model saved to `out`, and with `front` every
    candidate to that folder. The outputs are checked before the refits, so that a wrong -o costs nothing."""
    from ..core.printers import funcify
    from ..files import check_output
    from ..run.modelfile import load, output_kind, save

    tol = parse_tolerance(tolerance)
    if front is not None and not front.is_dir():
        raise OptionError(f"{front} is not a folder", "--front")
    loaded = load(model)
    # After the model is read (it may not be written over); before the refits.
    check_output(out, force=force, kind=output_kind(loaded.record.name))
    result = simplify(
        loaded, data=data, tolerance=tol, max_terms=max_terms, digits=digits, epochs=epochs, log=log, command=command
    )
    chosen = result.candidates[result.chosen]
    save(out, chosen.record, force=force)
    paths = save_front(result, front, out.name.split(".")[0], force=force) if front is not None else []
    return Saved(result, loaded.record, funcify(chosen.root, precision=precision), out, paths)
