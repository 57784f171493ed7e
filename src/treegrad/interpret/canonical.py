"""A model's canonical form, exact, and back: every sum of weighted parts folded into one sum
c1·a1 + c2·a2 + … + c0 over distinct *atoms* (an input, or a nonlinear unit such as tanh(…),
relu(…), a product of two non-constant parts), so chains of affine maps collapse (w2·(w1·x + b1) +
b2 is one weight and one constant) and a unit whose argument is constant (a dead or saturated
unit) folds into the constant. `canonical` reads a compiled graph into that form; `SpecWriter`
writes a form as a spec's nodes again. The folding is treegrad's own exact rewrite; it needs no
sympy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..core.nodes import Constant, Graph, Input, Node, Output, Parameter
from ..core.ops import OPS
from ..core.printers import _standardized as standardized


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


def copied(a: Aff) -> Aff:
    out = Aff()
    out.add(a)
    return out


def scaled(a: Aff, s: float) -> Aff:
    out = Aff()
    out.add(a, s)
    return out


@dataclass
class Form:
    """A model in canonical form: one Aff per output element."""

    outputs: list[Aff]
    kind: str  # "one", "list" or "softmax"


def _standardized(n: Node) -> str | None:
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
        out = copied(args[0])
        out.add(args[1], -1.0)
        return out
    if op == "neg":
        return scaled(args[0], -1.0)
    varying = [a for a in args if not a.constant()]
    if op == "mul" and len(varying) <= 1:
        scale = math.prod(a.const for a in args if a.constant())
        return scaled(varying[0], scale) if varying else Aff({}, scale)
    if op == "div" and args[1].constant() and args[1].const != 0.0:
        return scaled(args[0], 1.0 / args[1].const)
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


def term_count(
    form: Form, stats: dict[str, tuple[float, float]] | None = None, target: tuple[float, float] | None = None
) -> int:
    """Summands of each output's top-level sum in the user's units, added over the outputs.

    With `stats` the inputs are standardised inside the model: c·(x − m)/s counts as one term,
    and the constant as one if the constant in raw units, const − Σ c·m/s, is not zero. With
    `target` (mean, std) the form is in standardised target units and the model answers
    mean + std × the form: the constant in the target's units is mean + std × that.
    """
    total = 0
    for a in form.outputs:
        const = a.const
        for atom, c in a.terms.values():
            if stats is not None and atom.op == "input":
                mean, std = stats[atom.name]
                const -= c * mean / std
        if target is not None:
            const = target[0] + target[1] * const
        total += len(a.terms) + (const != 0.0)
    return total


class SpecWriter:
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
