"""funcify: a model as a human-readable formula (text, LaTeX, or a Python expression).

Driven by the op table's printed forms (`Op.text`, `Op.latex`, `Op.python`, and
`OUTPUT_FORMS` for list outputs), which put parentheses only where precedence needs them.
The Python form calls only what `ops.python_namespace()` defines, so it can be run. A subexpression
used more than once (the graph is a DAG) is printed once, as a line `h1 = ...`, and
referred to by name, so shared layers do not blow the text up exponentially.

A node is printed by what it declares (its kind, and for an op its entry in the op table),
not by its class: the nodes call `funcify` from their method of that name.
"""

from __future__ import annotations

from typing import Any

from ..errors import ModelError
from .graph import LEAVES, LISTS, Vertex, expand_macros, topological_order
from .ops import ATOM, OPS, OUTPUT_FORMS, UNARY, Printed, pick

NUMBERS = ("parameter", "constant")  # the leaves that are numbers


def _is(n: Vertex, *ops: str) -> bool:
    """Whether `n` computes one of the ops named (`add`, `mul`, ...)."""
    return n.op is not None and n.op.name in ops


FORMATS = ("text", "latex", "python")


def show_full(model: str, format: str = "text") -> str:
    """The command that prints a model's whole formula (or `--format tree`), however long."""
    import shlex

    return f"treegrad show {shlex.quote(model)}{'' if format == 'text' else f' --format {format}'} --full"


def full_formula_hint(model: str, format: str = "text") -> str:
    """The commands that print a formula (or tree) too long to show by default, for hints."""
    return f"{show_full(model, format)} prints all of it, --format python writes it as code"


def number(v: float, precision: int) -> str:
    """A number at `precision` significant digits, without a trailing '.0'."""
    s = f"{v:.{precision}g}"
    return "0" if s == "-0" else s


# Characters that mean something to LaTeX, as they are written inside math.
_LATEX_ESCAPES = {
    "\\": r"\backslash ",
    "{": r"\{",
    "}": r"\}",
    "_": r"\_",
    "^": r"\wedge ",
    "~": r"\sim ",
    "#": r"\#",
    "$": r"\$",
    "%": r"\%",
    "&": r"\&",
    " ": r"\ ",
}


def latex_name(name: str) -> str:
    """An input name in LaTeX math: `x` and `x_{1}` as they are, a longer name escaped in \\mathit{}."""
    if len(name) == 1 and name.isascii() and name.isalpha():
        return name
    if len(name) > 1 and name.isascii() and name[0].isalpha() and name[1:].isdigit():
        return f"{name[0]}_{{{name[1:]}}}"
    return r"\mathit{" + "".join(_LATEX_ESCAPES.get(ch, ch if ch.isprintable() else "?") for ch in name) + "}"


def _order(root: Vertex) -> list[Vertex]:
    if root.graph is not None:
        return root.graph.order
    if expand_macros(root) != [root] or root.kind == "macro":
        raise ModelError("this model contains a Linear (a macro): call .compile() before printing it")
    return topological_order([root])


def funcify(root: Vertex, precision: int = 4, format: str = "text") -> str:
    """The model below `root` as a formula; shared subexpressions become `h1 = ...` lines."""
    if format not in FORMATS:
        raise ModelError(f"unknown format '{format}'; use one of {', '.join(FORMATS)}")
    order = _order(root)
    folded = {id(n): f for n in order if (f := _affine(n)) is not None}
    zero = _zeros(order, folded)
    live = _live(order[-1], folded, zero) if folded or zero else None  # None: every node is printed
    uses: dict[int, int] = {}
    for n in order:
        if live is None or id(n) in live:
            for c in _shown(n, folded, zero):
                uses[id(c)] = uses.get(id(c), 0) + 1
    text: dict[int, Printed] = {}
    lines: list[str] = []
    waiting = dict(uses)  # uses not printed yet: a text is dropped after its last one
    for n in order:
        if live is not None and id(n) not in live:
            continue
        shown, alias = _shown(n, folded, zero), False
        if id(n) in folded:
            s = _print_affine(*folded[id(n)], precision, format)
        elif id(n) in zero:
            s = ("0", ATOM)
        elif _is(n, "add", "sub") and len(shown) == 1:
            # The others are zero: a + 0 is a, a - 0 is a, 0 - b is -b.
            c = shown[0]
            if _is(n, "sub") and c is n.children[1]:
                s = _negated(text[id(c)], format)
            else:
                s = text[id(c)]
                alias = c.kind in LEAVES or uses.get(id(c), 0) > 1  # no `h2 = h1` or `h1 = x`
        else:
            s = _print(n, [text[id(c)] for c in shown], precision, format)
        for c in shown:
            # Without this, a chain of n nodes keeps n ever longer texts: O(n^2) memory.
            waiting[id(c)] -= 1
            if not waiting[id(c)]:
                del text[id(c)]
        if uses.get(id(n), 0) > 1 and n.kind not in LEAVES and id(n) not in zero and not alias:
            name = f"h_{{{len(lines) + 1}}}" if format == "latex" else f"h{len(lines) + 1}"
            lines.append(f"{name} = {s[0]}")
            s = (name, ATOM)
        text[id(n)] = s
    final = text[id(order[-1])][0]
    if format == "latex" and lines:
        return " \\\\\n".join(lines + [final])
    return "\n".join(lines + [final])


# ----------------------------------------------------------------- exact zeros
# A weight that is exactly 0 (L1 drives weights there) prints nothing rather than `0 * x`:
# a product with a factor of exactly 0 is 0, and so is 0 to a constant power p > 0 (0 ^ 0 is 1
# and 0 ^ p for p < 0 infinite, so those print as they are); a sum or difference leaves out its
# terms that are 0 (all of them: it is 0). So a model whose weights are all 0 prints its bias, or
# 0. (Where a dropped factor is infinite or NaN, the model gives NaN and the formula 0.)


def _zeros(order: list[Vertex], folded: dict[int, Any]) -> set[int]:
    """The nodes that are exactly 0 whatever the inputs: a parameter or constant at 0, a
    product with such a factor, its negation, a quotient of it, it to a constant power > 0,
    a sum or difference of nothing else."""
    zero: set[int] = set()
    for n in order:
        if id(n) in folded:
            continue
        if n.kind in NUMBERS:
            is_zero = float(n._value) == 0.0
        elif _is(n, "mul", "neg"):
            is_zero = any(id(c) in zero for c in n.children)
        elif _is(n, "div"):
            is_zero = id(n.children[0]) in zero
        elif _is(n, "pow"):
            base, p = n.children
            is_zero = id(base) in zero and p.kind == "constant" and float(p._value) > 0.0
        elif _is(n, "add", "sub"):
            is_zero = all(id(c) in zero for c in n.children)
        else:
            is_zero = False
        if is_zero:
            zero.add(id(n))
    return zero


def _shown(n: Vertex, folded: dict[int, Any], zero: set[int]) -> list[Vertex]:
    """The children whose text the text of `n` uses: none for a folded sum or a zero, the
    terms that are not zero for a sum or difference, else all."""
    if id(n) in folded or id(n) in zero:
        return []
    if _is(n, "add", "sub"):
        return [c for c in n.children if id(c) not in zero]
    return list(n.children)


def _negated(s: Printed, fmt: str) -> Printed:
    """-s, printed as the neg op prints it."""
    return OPS["neg"].form(fmt)([s])


def _live(root: Vertex, folded: dict[int, Any], zero: set[int]) -> set[int]:
    """The nodes whose text the formula uses: all below `root` that some shown text needs."""
    live, stack = {id(root)}, [root]
    while stack:
        n = stack.pop()
        for c in _shown(n, folded, zero):
            if id(c) not in live:
                live.add(id(c))
                stack.append(c)
    return live


# ----------------------------------------------------------------- standardised inputs, folded
# A model trained with `normalize: true` sees each input as (x - mean) / std (build.py). A sum
# of weighted such inputs prints folded back into the user's raw units: w * (x - m) / s + b
# is (w / s) * x + (b - w * m / s). Only sums that involve a standardised input are folded,
# so every other formula prints exactly as it is built.


def _standardized(n: Vertex) -> tuple[str, float, float] | None:
    """(input name, mean, std) when `n` is (x - mean) / std, as build.py writes it."""
    if not _is(n, "div") or n.children[1].kind != "constant":
        return None
    sub = n.children[0]
    if not _is(sub, "sub") or sub.children[1].kind != "constant":
        return None
    x = sub.children[0]
    if x.kind != "input":
        return None
    return (x.name or "x", float(sub.children[1]._value), float(n.children[1]._value))


def _affine(n: Vertex) -> tuple[dict[str, float], float] | None:
    """An add of weighted (standardised) inputs and numbers, as raw-input coefficients and a constant;
    also such a sum scaled back to a standardised target's units, mean + std * sum (build.py)."""
    if not _is(n, "add"):
        return None
    scaled = _target_scaled(n)
    if scaled is not None:
        inner, std, mean = scaled
        folded = _affine(inner) if _is(inner, "add") and _target_scaled(inner) is None else None
        if folded is None:
            return None
        return {x: c * std for x, c in folded[0].items()}, folded[1] * std + mean
    coefs: dict[str, float] = {}
    const, standardized = 0.0, False
    for t in n.children:
        if t.kind in NUMBERS:
            const += float(t._value)
            continue
        if not _is(t, "mul") or len(t.children) != 2:
            return None
        w, x = t.children
        if w.kind not in NUMBERS:
            w, x = x, w
        if w.kind not in NUMBERS:
            return None
        wv = float(w._value)
        norm = _standardized(x)
        if norm is not None:
            name, mean, std = norm
            coefs[name] = coefs.get(name, 0.0) + wv / std
            const -= wv * mean / std
            standardized = True
        elif x.kind == "input":
            coefs[x.name or "x"] = coefs.get(x.name or "x", 0.0) + wv
        else:
            return None
    return (coefs, const) if standardized else None


def _target_scaled(n: Vertex) -> tuple[Vertex, float, float] | None:
    """(inner, std, mean) when `n` is inner * std + mean with numbers std and mean."""
    if len(n.children) != 2:
        return None
    mul, mean = n.children
    if not _is(mul, "mul") or mean.kind != "constant" or len(mul.children) != 2:
        return None
    inner, std = mul.children
    if std.kind != "constant":
        return None
    return inner, float(std._value), float(mean._value)


def _print_affine(coefs: dict[str, float], const: float, precision: int, fmt: str) -> Printed:
    latex = fmt == "latex"
    times = r" \cdot " if latex else " * "
    parts = [(number(c, precision), latex_name(x) if latex else x) for x, c in coefs.items()]
    parts.append((number(const, precision), ""))
    out = ""
    for c, x in parts:
        if c == "0" and (x == "" or len(parts) > 1):
            continue  # a zero constant, or a weight that rounds to zero, says nothing
        term = f"{c.lstrip('-')}{times}{x}" if x else c.lstrip("-")
        if not out:
            out = ("-" if c.startswith("-") else "") + term
        else:
            out += (" - " if c.startswith("-") else " + ") + term
    return (out or "0", 1)


def _print(n: Vertex, args: list[Printed], precision: int, fmt: str) -> Printed:
    latex = fmt == "latex"
    if n.kind == "input":
        return (latex_name(n.name or "x") if latex else n.name or "x", ATOM)
    if n.kind in NUMBERS:
        s = number(float(n._value), precision)
        return (s, UNARY if s.startswith("-") else ATOM)
    if n.kind in LISTS:
        return pick(OUTPUT_FORMS[n.kind], fmt)(args)
    assert n.op is not None
    return n.op.form(fmt)(args)
