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


@dataclass(frozen=True)
class Op:
    """One elementary operation: arity, value, local derivatives and printed forms.

    `value(args)` is an expression for the output given argument variable names;
    `deriv(args, out, i)` an expression for d out / d args[i] (`out` names the output).
    `deriv` is None where an argument must be a constant (the exponent of `pow`).
    `infix` ops print as `a + b`, others as `name(a)`; `prec` orders them for parentheses.
    """

    name: str
    cls: str
    arity: int | None  # None: any number >= 2
    value: Code
    deriv: Deriv
    doc: str
    infix: str | None = None
    latex: str | None = None
    prec: int = 9
    constant_args: tuple[int, ...] = field(default=())
    np_value: Code | None = None  # None: `value` works on arrays as it is
    np_deriv: Deriv | None = None  # None: `deriv` works on arrays as it is
    domain: Advice | None = None  # for an op defined on part of the numbers: why it failed, what to do

    def check_arity(self, n: int) -> str | None:
        """None if `n` arguments fit this op, else a sentence saying what fits."""
        if self.arity is None:
            return None if n >= 2 else f"'{self.name}' takes a list of at least 2 arguments, got {n}"
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


def _product_except(args: Sequence[str], i: int) -> str:
    rest = [a for j, a in enumerate(args) if j != i]
    return " * ".join(rest) if len(rest) > 1 else rest[0]


_OPS = [
    Op("add", "Add", None, wide_sum, lambda a, o, i: "1.0", "sum of its arguments", infix=" + ", latex=" + ", prec=1),
    Op(
        "sub",
        "Subtract",
        2,
        lambda a: f"{a[0]} - {a[1]}",
        lambda a, o, i: "1.0" if i == 0 else "-1.0",
        "first argument minus the second",
        infix=" - ",
        latex=" - ",
        prec=1,
    ),
    Op(
        "mul",
        "Multiply",
        None,
        lambda a: " * ".join(a),
        lambda a, o, i: _product_except(a, i),
        "product of its arguments",
        infix=" * ",
        latex=r" \cdot ",
        prec=2,
    ),
    Op(
        "div",
        "Divide",
        2,
        lambda a: f"{a[0]} / {a[1]}",
        lambda a, o, i: f"1.0 / {a[1]}" if i == 0 else f"-{o} / {a[1]}",
        "first argument divided by the second",
        infix=" / ",
        prec=2,
        domain=lambda v, slope: (
            "the model divides by zero; check the data or guard the divisor (e.g. x / (abs(d) + 1))"
        ),
    ),
    Op("neg", "Negate", 1, lambda a: f"-{a[0]}", lambda a, o, i: "-1.0", "minus its argument", prec=3),
    Op(
        "pow",
        "Power",
        2,
        lambda a: f"fpow({a[0]}, {a[1]})",
        lambda a, o, i: f"{a[1]} * fpow({a[0]}, {a[1]} - 1.0)",
        "base to a constant exponent",
        infix="^",
        prec=4,
        constant_args=(1,),
        domain=lambda v, slope: (
            "the model raises a negative number to a fractional power; check the data or guard the base (e.g. abs(x))"
            if v[0] < 0.0
            else ("the slope of a fractional power is infinite" if slope else "a negative power is infinite")
            + " at zero; keep the base away from zero (e.g. abs(x) + 1)"
        ),
    ),
    Op(
        "relu",
        "ReLU",
        1,
        lambda a: f"({a[0]} if {a[0]} > 0.0 else 0.0)",
        lambda a, o, i: f"(1.0 if {a[0]} > 0.0 else 0.0)",
        "max(0, x)",
        latex=r"\operatorname{relu}",
        np_value=lambda a: f"where({a[0]} > 0.0, {a[0]}, 0.0)",
        np_deriv=lambda a, o, i: f"({a[0]} > 0.0)",
    ),
    Op(
        "sigmoid",
        "Sigmoid",
        1,
        lambda a: f"(1.0 / (1.0 + exp(-{a[0]})) if {a[0]} > {SIGMOID_FLOOR} else exp({a[0]}))",
        lambda a, o, i: f"({o} * (1.0 - {o}))",
        "1 / (1 + exp(-x))",
        latex=r"\sigma",
        np_value=lambda a: f"where({a[0]} > {SIGMOID_FLOOR}, 1.0 / (1.0 + exp(-{a[0]})), exp({a[0]}))",
    ),
    Op(
        "tanh",
        "Tanh",
        1,
        lambda a: f"tanh({a[0]})",
        lambda a, o, i: f"(1.0 - {o} * {o})",
        "hyperbolic tangent",
        latex=r"\tanh",
    ),
    Op("exp", "Exp", 1, lambda a: f"exp({a[0]})", lambda a, o, i: o, "e to the x", latex=r"\exp"),
    Op(
        "log",
        "Log",
        1,
        lambda a: f"log({a[0]})",
        lambda a, o, i: f"(1.0 / {a[0]})",
        "natural logarithm (x > 0)",
        latex=r"\log",
        domain=lambda v, slope: (
            f"the model takes the log of {'zero' if v[0] == 0.0 else 'a negative number'}; "
            "check the data or guard the argument (e.g. log(abs(x) + 1))"
        ),
    ),
    Op(
        "abs",
        "Abs",
        1,
        lambda a: f"abs({a[0]})",
        lambda a, o, i: f"(1.0 if {a[0]} > 0.0 else (-1.0 if {a[0]} < 0.0 else 0.0))",
        "absolute value",
        np_deriv=lambda a, o, i: f"sign({a[0]})",
    ),
]

OPS: dict[str, Op] = {op.name: op for op in _OPS}


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


def softmax_code(z: Sequence[str], p: Sequence[str], tmp: str) -> list[str]:
    """Statements computing p = softmax(z), stable: the largest logit is subtracted first."""
    lines = [f"{tmp}m = max({', '.join(z)})"]
    lines += [f"{pi} = exp({zi} - {tmp}m)" for zi, pi in zip(z, p)]
    lines.append(f"{tmp}s = {' + '.join(p)}")
    lines += [f"{pi} = {pi} / {tmp}s" for pi in p]
    return lines


def softmax_grad_code(p: Sequence[str], gp: Sequence[str], gz: Sequence[str], tmp: str) -> list[str]:
    """Statements for the vector-Jacobian product: gz_i = p_i * (gp_i - sum_j gp_j p_j)."""
    dot = " + ".join(f"{g} * {q}" for g, q in zip(gp, p))
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
