"""The op table: every elementary operation, defined once.

An entry holds an op's arity, its value and the local derivative with respect to each
argument, as small Python expressions over argument *variables*, and its printed forms.
Everything else is driven from this table: the reference evaluator turns the expressions
into functions (`Op.value_fn`, `Op.deriv_fns`), the compiled evaluator pastes them into
straight-line code, and the printers and exporters read the printed forms.

The expressions are written by treegrad, here, and only ever receive variable names that
treegrad generates; nothing from a user's spec or model file becomes part of them.
Derivatives may use the op's own output (`out`), so that no subtree is evaluated twice.

The vectorized evaluator (`vectorized.py`) evaluates the same expressions on NumPy arrays
(one element per sample of a batch), with the names of NAMESPACE bound to NumPy's
functions. Where an expression branches with `if`, which arrays cannot do, the entry also
gives its array form (`np_value`, `np_deriv`), which may also use `where`, `sign`,
`minimum` and `maximum`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypedDict

# Names the op expressions may use; the compiled evaluator binds the same names.
NAMESPACE: dict[str, object] = {
    "exp": math.exp,
    "log": math.log,
    "tanh": math.tanh,
    "sqrt": math.sqrt,
    "fpow": math.pow,  # math.pow raises on a negative base with a fractional exponent, `**` gives a complex
}

# The sigmoid's input below which exp(-x) would overflow; there the sigmoid is exp(x).
SIGMOID_FLOOR = -700.0

Code = Callable[[Sequence[str]], str]
Deriv = Callable[[Sequence[str], str, int], str]
# (argument values, whether it was the derivative that failed) -> what that means and what to do
Advice = Callable[[Sequence[float], bool], str]


# ----------------------------------------------------------------- printed forms
# A printed form turns the printed arguments, each (text, precedence of its outermost
# operation), into the op's own (text, precedence); the printers wrap an argument in
# parentheses only where its precedence is lower than the place it stands in needs.
Printed = tuple[str, int]
Form = Callable[[Sequence[Printed]], Printed]
# (sympy module, sympy arguments) -> the sympy expression of the op
SympyForm = Callable[[Any, list[Any]], Any]

ATOM = 9  # a name, a number, a call: never needs parentheses
UNARY = 3  # a leading minus (-x, or a negative number)


def wrap(s: Printed, prec: int, latex: bool, strict: bool = False) -> str:
    """`s` as an argument of an operation of precedence `prec`, in parentheses if it needs them.

    `strict`: parentheses at equal precedence too (the right side of a - b, a / b; a base).
    """
    if s[1] < prec or (strict and s[1] == prec):
        return f"\\left({s[0]}\\right)" if latex else f"({s[0]})"
    return s[0]


def infix(symbol: str, prec: int, latex: bool = False, strict: bool = False) -> Form:
    """`a symbol b symbol c`; `strict` for an op that is not associative (a - (b - c))."""

    def form(args: Sequence[Printed]) -> Printed:
        # A sign right after an operator gets parentheses, a - (-3), as in (-2)^2.
        rest = [
            wrap(a, UNARY, latex, strict=True) if a[1] == UNARY else wrap(a, prec, latex, strict=strict)
            for a in args[1:]
        ]
        return (symbol.join([wrap(args[0], prec, latex), *rest]), prec)

    return form


def signed_sum(prec: int, latex: bool = False) -> Form:
    """`a + b + c`, where a negative term prints as `a - b` rather than `a + -b`."""

    def form(args: Sequence[Printed]) -> Printed:
        out = wrap(args[0], prec, latex)
        for a in args[1:]:
            s = wrap(a, prec, latex)
            out += f" - {s[1:]}" if s.startswith("-") and a[1] >= prec else f" + {s}"
        return (out, prec)

    return form


def prefix(symbol: str, latex: bool = False) -> Form:
    """`-x`; a sign after the symbol gets parentheses, -(-x)."""
    return lambda args: (symbol + wrap(args[0], UNARY, latex, strict=True), UNARY)


def power(symbol: str, prec: int) -> Form:
    """`base symbol exponent` with the base in parentheses unless it is an atom: (a^b)^c."""
    return lambda args: (f"{wrap(args[0], prec, False, strict=True)}{symbol}{wrap(args[1], prec, False)}", prec)


def latex_power(prec: int) -> Form:
    """`base^{exponent}` in LaTeX: the exponent is raised, so it needs no parentheses."""
    return lambda args: (f"{wrap(args[0], prec, True, strict=True)}^{{{args[1][0]}}}", prec)


def call(name: str) -> Form:
    """`name(a, b)`, in text and Python."""
    return lambda args: (f"{name}({', '.join(a[0] for a in args)})", ATOM)


def latex_call(name: str) -> Form:
    """`name\\left(a, b\\right)`: `\\tanh`, or `\\operatorname{relu}` for a name LaTeX lacks."""
    return lambda args: (f"{name}\\left({', '.join(a[0] for a in args)}\\right)", ATOM)


def template(pattern: str) -> Form:
    """A form that reads as an atom, from a pattern over the argument texts: `\\frac{{{0}}}{{{1}}}`."""
    return lambda args: (pattern.format(*(a[0] for a in args)), ATOM)


@dataclass(frozen=True, kw_only=True)
class Op:
    """One elementary operation: arity, value, local derivatives and printed forms.

    `value(args)` is an expression for the output given argument variable names;
    `deriv(args, out, i)` an expression for d out / d args[i] (`out` names the output).
    `deriv` is None where an argument must be a constant (the exponent of `pow`).
    `text`, `latex` and `python` are its printed forms (see `Form`); a `python` form may
    call a function named after an op of fixed arity, which `python_namespace()` defines.
    `sympy` builds it in sympy, `onnx` names its ONNX operator (None: there is none).
    `kink` says whether it is piecewise smooth with a corner at 0, and `activation` whether a
    layer may name it as its units' activation (`activation: relu`); every entry states both.
    """

    name: str
    cls: str  # the name of its node class (nodes.py makes one per entry)
    arity: int | None  # None: any number >= 2
    value: Code
    deriv: Deriv
    doc: str
    text: Form
    latex: Form
    python: Form
    sympy: SympyForm
    onnx: str | None
    kink: bool  # its slope jumps where its one argument crosses 0 (relu, abs): explain splits paths there
    activation: bool  # a layer's `activation:` may name it (a unary op applied to each unit's sum)
    constant_args: tuple[int, ...] = field(default=())
    np_value: Code | None = None  # None: `value` works on arrays as it is
    np_deriv: Deriv | None = None  # None: `deriv` works on arrays as it is
    domain: Advice | None = None  # for an op defined on part of the numbers: why it failed, what to do
    max_args: int | None = None  # a variadic op whose derivative code grows with the square of its width

    def form(self, fmt: str) -> Form:
        """The printed form for `fmt`: text, latex or python."""
        return self.latex if fmt == "latex" else self.python if fmt == "python" else self.text

    def check_arity(self, n: int) -> str | None:
        """None if `n` arguments fit this op, else a sentence saying what fits."""
        if self.arity is None:
            if n < 2:
                return f"'{self.name}' takes a list of at least 2 arguments, got {n}"
            if self.max_args is not None and n > self.max_args:
                return (
                    f"'{self.name}' takes at most {self.max_args} arguments, got {n} (each argument's "
                    f"derivative is the product of all the others, so the work grows with the square "
                    f"of the count); nest it instead, e.g. {{{self.name}: [{{{self.name}: [...]}}, "
                    f"{{{self.name}: [...]}}]}}"
                )
            return None
        if n != self.arity:
            what = "one argument" if self.arity == 1 else f"{self.arity} arguments"
            return f"'{self.name}' takes {what}, got {n}"
        return None

    def domain_advice(self, args: Sequence[float], slope: bool = False) -> str:
        """What evaluating this op at `args` failing means, and how to guard against it."""
        if self.domain is not None:
            return self.domain(args, slope)
        return f"'{self.name}' is not defined there; check the data or guard its argument"

    def array_value(self, args: Sequence[str]) -> str:
        """The value as an expression over NumPy arrays (elementwise)."""
        return (self.np_value or self.value)(args)

    def array_deriv(self, args: Sequence[str], out: str, i: int) -> str:
        """d out / d args[i] as an expression over NumPy arrays (elementwise)."""
        return (self.np_deriv or self.deriv)(args, out, i)

    def value_fn(self, n: int) -> Callable[..., float]:
        """The value as a Python function of `n` floats (compiled once per arity)."""
        return _value_fn(self.name, n)

    def deriv_fns(self, n: int) -> tuple[Callable[..., float] | None, ...]:
        """Per argument, d out/d arg as a function of (out, *args); None for constant args."""
        return _deriv_fns(self.name, n)

    def derivs_fn(self, n: int) -> Callable[..., list[float | None]]:
        """All n local derivatives from one call of (out, *args); None for constant args.

        One function per arity: n per-argument functions of n arguments each would cost
        n^2 to compile and call for a wide node (an add over thousands of terms).
        """
        return _derivs_fn(self.name, n)


def _args(n: int) -> list[str]:
    return [f"a{i}" for i in range(n)]


# Past this many arguments an add is written `sum((a1, ...), a0)`, the same left-to-right
# sum: a long `a0 + a1 + ...` nests as deep as it is long, and Python's compiler gives up
# at a depth of a few thousand (an add over the rows of a CSV).
WIDE = 100


def wide_sum(args: Sequence[str]) -> str:
    """The expression adding `args` left to right, flat however many there are (see WIDE)."""
    return " + ".join(args) if len(args) <= WIDE else f"sum(({', '.join(args[1:])},), {args[0]})"


# The widest product: its n derivatives are written as n products of n - 1 factors, so a mul
# of 3,000 arguments meant 9 million factors of generated code (minutes and gigabytes).
MAX_PRODUCT_ARGS = 256


def _product_except(args: Sequence[str], i: int) -> str:
    rest = [a for j, a in enumerate(args) if j != i]
    return " * ".join(rest) if len(rest) > 1 else rest[0]


class Forms(TypedDict):
    """The three printed forms of an op, to pass to `Op` as `**forms`."""

    text: Form
    latex: Form
    python: Form


def _function(name: str, latex: str | None = None) -> Forms:
    """The printed forms of an op written as a call: `name(x)`, in LaTeX `latex(x)`."""
    return Forms(text=call(name), latex=latex_call(latex or f"\\operatorname{{{name}}}"), python=call(name))


_OPS = [
    Op(
        name="add",
        cls="Add",
        arity=None,
        value=wide_sum,
        deriv=lambda a, o, i: "1.0",
        doc="sum of its arguments",
        text=signed_sum(1),
        latex=signed_sum(1, latex=True),
        python=signed_sum(1),
        sympy=lambda sp, a: sp.Add(*a),
        onnx="Add",  # ops of any arity become chains of binary ones, left to right
        kink=False,
        activation=False,
    ),
    Op(
        name="sub",
        cls="Subtract",
        arity=2,
        value=lambda a: f"{a[0]} - {a[1]}",
        deriv=lambda a, o, i: "1.0" if i == 0 else "-1.0",
        doc="first argument minus the second",
        text=infix(" - ", 1, strict=True),
        latex=infix(" - ", 1, latex=True, strict=True),
        python=infix(" - ", 1, strict=True),
        sympy=lambda sp, a: a[0] - a[1],
        onnx="Sub",
        kink=False,
        activation=False,
    ),
    Op(
        name="mul",
        cls="Multiply",
        arity=None,
        value=lambda a: " * ".join(a),
        deriv=lambda a, o, i: _product_except(a, i),
        doc="product of its arguments",
        max_args=MAX_PRODUCT_ARGS,
        text=infix(" * ", 2),
        latex=infix(r" \cdot ", 2, latex=True),
        python=infix(" * ", 2),
        sympy=lambda sp, a: sp.Mul(*a),
        onnx="Mul",
        kink=False,
        activation=False,
    ),
    Op(
        name="div",
        cls="Divide",
        arity=2,
        value=lambda a: f"{a[0]} / {a[1]}",
        deriv=lambda a, o, i: f"1.0 / {a[1]}" if i == 0 else f"-{o} / {a[1]}",
        doc="first argument divided by the second",
        text=infix(" / ", 2, strict=True),
        latex=template(r"\frac{{{0}}}{{{1}}}"),
        python=infix(" / ", 2, strict=True),
        sympy=lambda sp, a: a[0] / a[1],
        onnx="Div",
        kink=False,
        activation=False,
        domain=lambda v, slope: (
            "the model divides by zero; check the data or guard the divisor (e.g. x / (abs(d) + 1))"
        ),
    ),
    Op(
        name="neg",
        cls="Negate",
        arity=1,
        value=lambda a: f"-{a[0]}",
        deriv=lambda a, o, i: "-1.0",
        doc="minus its argument",
        text=prefix("-"),
        latex=prefix("-", latex=True),
        python=prefix("-"),
        sympy=lambda sp, a: -a[0],
        onnx="Neg",
        kink=False,
        activation=False,
    ),
    Op(
        name="pow",
        cls="Power",
        arity=2,
        value=lambda a: f"fpow({a[0]}, {a[1]})",
        deriv=lambda a, o, i: f"{a[1]} * fpow({a[0]}, {a[1]} - 1.0)",
        doc="base to a constant exponent",
        text=power("^", 4),
        latex=latex_power(4),
        python=power(" ** ", 4),
        sympy=lambda sp, a: a[0] ** a[1],
        onnx="Pow",
        kink=False,
        activation=False,
        constant_args=(1,),
        domain=lambda v, slope: (
            "the model raises a negative number to a fractional power; check the data or guard the base (e.g. abs(x))"
            if v[0] < 0.0
            else ("the slope of a fractional power is infinite" if slope else "a negative power is infinite")
            + " at zero; keep the base away from zero (e.g. abs(x) + 1)"
        ),
    ),
    Op(
        name="relu",
        cls="ReLU",
        arity=1,
        value=lambda a: f"({a[0]} if {a[0]} > 0.0 else 0.0)",
        deriv=lambda a, o, i: f"(1.0 if {a[0]} > 0.0 else 0.0)",
        doc="max(0, x)",
        **_function("relu"),
        sympy=lambda sp, a: sp.Function("relu")(a[0]),  # kept whole: max(0, x) reads better than a Piecewise
        onnx="Relu",
        kink=True,
        activation=True,
        np_value=lambda a: f"maximum({a[0]}, 0.0)",
        np_deriv=lambda a, o, i: f"({a[0]} > 0.0)",
    ),
    Op(
        name="sigmoid",
        cls="Sigmoid",
        arity=1,
        value=lambda a: f"(1.0 / (1.0 + exp(-{a[0]})) if {a[0]} > {SIGMOID_FLOOR} else exp({a[0]}))",
        deriv=lambda a, o, i: f"({o} * (1.0 - {o}))",
        doc="1 / (1 + exp(-x))",
        **_function("sigmoid", r"\sigma"),
        sympy=lambda sp, a: sp.Function("sigmoid")(a[0]),  # kept whole: 1/(1 + exp(-x)) expanded is unreadable
        onnx="Sigmoid",
        kink=False,
        activation=True,
        np_value=lambda a: f"where({a[0]} > {SIGMOID_FLOOR}, 1.0 / (1.0 + exp(-{a[0]})), exp({a[0]}))",
    ),
    Op(
        name="tanh",
        cls="Tanh",
        arity=1,
        value=lambda a: f"tanh({a[0]})",
        deriv=lambda a, o, i: f"(1.0 - {o} * {o})",
        doc="hyperbolic tangent",
        **_function("tanh", r"\tanh"),
        sympy=lambda sp, a: sp.tanh(a[0]),
        onnx="Tanh",
        kink=False,
        activation=True,
    ),
    Op(
        name="exp",
        cls="Exp",
        arity=1,
        value=lambda a: f"exp({a[0]})",
        deriv=lambda a, o, i: o,
        doc="e to the x",
        **_function("exp", r"\exp"),
        sympy=lambda sp, a: sp.exp(a[0]),
        onnx="Exp",
        kink=False,
        activation=False,
    ),
    Op(
        name="log",
        cls="Log",
        arity=1,
        value=lambda a: f"log({a[0]})",
        deriv=lambda a, o, i: f"(1.0 / {a[0]})",
        doc="natural logarithm (x > 0)",
        **_function("log", r"\log"),
        sympy=lambda sp, a: sp.log(a[0]),
        onnx="Log",
        kink=False,
        activation=False,
        domain=lambda v, slope: (
            f"the model takes the log of {'zero' if v[0] == 0.0 else 'a negative number'}; "
            "check the data or guard the argument (e.g. log(abs(x) + 1))"
        ),
    ),
    Op(
        name="abs",
        cls="Abs",
        arity=1,
        value=lambda a: f"abs({a[0]})",
        deriv=lambda a, o, i: f"(1.0 if {a[0]} > 0.0 else (-1.0 if {a[0]} < 0.0 else 0.0))",
        doc="absolute value",
        text=call("abs"),
        latex=template(r"\left|{0}\right|"),
        python=call("abs"),
        sympy=lambda sp, a: sp.Abs(a[0]),
        onnx="Abs",
        kink=True,
        activation=False,
        np_deriv=lambda a, o, i: f"sign({a[0]})",
    ),
]

OPS: dict[str, Op] = {op.name: op for op in _OPS}


def python_namespace() -> dict[str, object]:
    """What the `python` printed forms call: NAMESPACE, `softmax`, and per op of fixed
    arity a function of that name computing its value (`relu(x)`, `sigmoid(x)`, ...)."""
    ns: dict[str, object] = dict(NAMESPACE)
    for op in OPS.values():
        if op.arity is not None:
            ns[op.name] = op.value_fn(op.arity)
    ns["softmax"] = lambda *z: softmax_fns(len(z))[0](*z)
    return ns


@cache
def _value_fn(name: str, n: int) -> Callable[..., float]:
    args = _args(n)
    return _lambda(args, OPS[name].value(args))


@cache
def _deriv_fns(name: str, n: int) -> tuple[Callable[..., float] | None, ...]:
    op, args = OPS[name], _args(n)
    return tuple(None if i in op.constant_args else _lambda(["out", *args], op.deriv(args, "out", i)) for i in range(n))


@cache
def _derivs_fn(name: str, n: int) -> Callable[..., list[float | None]]:
    op, args = OPS[name], _args(n)
    items = ["None" if i in op.constant_args else op.deriv(args, "out", i) for i in range(n)]
    return _lambda(["out", *args], f"[{', '.join(items)}]")  # type: ignore[return-value]


def _lambda(params: list[str], body: str) -> Callable[..., float]:
    fn = eval(f"lambda {', '.join(params)}: {body}", dict(NAMESPACE))  # noqa: S307 - treegrad's own text
    assert callable(fn)
    return fn  # type: ignore[no-any-return]


# ----------------------------------------------------------------- list ops (outputs)


def listed(left: str, right: str) -> Form:
    """`[a, b]`: a plain list output."""
    return lambda args: (f"{left}{', '.join(a[0] for a in args)}{right}", ATOM)


def pick(forms: Forms, fmt: str) -> Form:
    """The form for `fmt` (text, latex or python) out of `forms`."""
    return forms["latex"] if fmt == "latex" else forms["python"] if fmt == "python" else forms["text"]


# Per kind of list output (nodes.Output.kind): its printed forms, as for the ops.
OUTPUT_FORMS: dict[str, Forms] = {
    "output": Forms(text=listed("[", "]"), latex=listed(r"\left[", r"\right]"), python=listed("[", "]")),
    "softmax": _function("softmax"),
}


def softmax_code(z: Sequence[str], p: Sequence[str], tmp: str) -> list[str]:
    """Statements computing p = softmax(z), stable: the largest logit is subtracted first."""
    lines = [f"{tmp}m = max({', '.join(z)})"]
    lines += [f"{pi} = exp({zi} - {tmp}m)" for zi, pi in zip(z, p)]
    lines.append(f"{tmp}s = {wide_sum(p)}")
    lines += [f"{pi} = {pi} / {tmp}s" for pi in p]
    return lines


def softmax_grad_code(p: Sequence[str], gp: Sequence[str], gz: Sequence[str], tmp: str) -> list[str]:
    """Statements for the vector-Jacobian product: gz_i = p_i * (gp_i - sum_j gp_j p_j)."""
    dot = wide_sum([f"{g} * {q}" for g, q in zip(gp, p)])
    return [f"{tmp}d = {dot}"] + [f"{g} = {q} * ({gpi} - {tmp}d)" for g, q, gpi in zip(gz, p, gp)]


def softmax_array_code(z: str, p: str, tmp: str) -> list[str]:
    """The same for a (batch, k) array of logits `z`, one sample per row."""
    return [
        f"{tmp}m = {z}.max(axis=1, keepdims=True)",
        f"{p} = exp({z} - {tmp}m)",
        f"{p} = {p} / {p}.sum(axis=1, keepdims=True)",
    ]


def softmax_grad_array_code(p: str, gp: str, gz: str, tmp: str) -> list[str]:
    """The same vector-Jacobian product for (batch, k) arrays, one sample per row."""
    return [f"{tmp}d = ({gp} * {p}).sum(axis=1, keepdims=True)", f"{gz} = {p} * ({gp} - {tmp}d)"]


@cache
def softmax_fns(n: int) -> tuple[Callable[..., list[float]], Callable[..., list[float]]]:
    """(value, vjp) of an n-way softmax as functions, built from the code above."""
    z, p, gp, gz = _args(n), [f"p{i}" for i in range(n)], [f"g{i}" for i in range(n)], [f"h{i}" for i in range(n)]
    src_v = f"def value({', '.join(z)}):\n " + "\n ".join(softmax_code(z, p, "_")) + f"\n return [{', '.join(p)}]"
    src_g = (
        f"def vjp({', '.join(p + gp)}):\n "
        + "\n ".join(softmax_grad_code(p, gp, gz, "_"))
        + f"\n return [{', '.join(gz)}]"
    )
    ns: dict[str, object] = dict(NAMESPACE)
    exec(src_v + "\n" + src_g, ns)  # noqa: S102 - treegrad's own text
    return ns["value"], ns["vjp"]  # type: ignore[return-value]
