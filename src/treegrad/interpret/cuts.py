"""The cuts that shorten a form, and what they cost: each atom's and sum's values over the
training rows, a form's loss on them, and every single cut (drop a term, drop a unit, make a unit
linear) as a new form."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.ops import OPS, softmax_array_code
from ..engine.losses import LOSSES
from .canonical import Aff, Atom, Form, affs, atoms, scaled


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

    def losses(self, loss: str, outs: list[Any], y: Sequence[Any], *, softmax: bool) -> Any:
        """Each row's loss `loss` of the outputs `outs` (one array per output element) against `y`."""
        k = len(outs)
        key = (f"loss {loss}", k)
        if key not in self._fns:
            p, t = [f"p{i}" for i in range(k)], "t"
            body = [f"{', '.join(p)}, = P"]
            if softmax:
                body += softmax_array_code("stack(P, 1)", "_sm", "_s") + [f"{', '.join(p)}, = _sm.T"]
            body += LOSSES[loss].code(p, t, "L", [f"g{i}" for i in range(k)], "_", vectorized=True)
            exec("def loss(P, t):\n " + "\n ".join([*body, "return L"]), self.ns)  # noqa: S102 - treegrad's own text
            self._fns[key] = self.ns.pop("loss")  # type: ignore[assignment]
        fn = self._fns[key]
        np = self.np
        if softmax:
            t = np.asarray(y, dtype=int)
        elif k > 1:
            t = np.asarray(y, dtype=float).T  # t[i]: the i-th target element of every row
        else:
            t = np.asarray(y, dtype=float).reshape(-1)
        return np.asarray(fn(outs, t), dtype=float) * np.ones(self.rows)

    def aff(self, a: Aff, vals: dict[int, Any]) -> Any:
        total = self.np.full(self.rows, a.const)
        for k, (_, c) in a.terms.items():
            total = total + c * vals[k]
        return total


def form_loss(form: Form, values: Values, loss: str, y: Sequence[Any]) -> float:
    """The mean loss of a form on the rows of `values`, by the loss table's array statements over
    every row at once (a row at a time in Python was most of simplify's time); inf where a row's
    output or loss is not finite."""
    if not y:
        return math.inf
    outs, _ = values.of(form)
    np = values.np
    with np.errstate(all="ignore"):
        if not all(np.isfinite(o).all() for o in outs):
            return math.inf
        losses = values.losses(loss, outs, y, softmax=form.kind == "softmax")
        if not np.isfinite(losses).all():
            return math.inf
    return math.fsum(losses.tolist()) / len(y)


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
                by = scaled(arg, slope)
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
