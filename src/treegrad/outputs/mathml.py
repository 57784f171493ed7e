"""Mathematics for the report page, as MathML: funcify's LaTeX (the formula) and each op's
local derivative, printed from the op table's own derivative expression by its printed forms.

funcify's LaTeX is a small language: \\frac{}{}, \\left( \\right), ^{}, _{}, \\operatorname{},
\\mathit{}, a few symbols and escapes, and \\\\ between lines. It is turned into MathML Core,
which browsers render with no script or font to fetch. A derivative is an op entry's Python
expression (what the engines compile); it is read with `ast` and printed with the entries'
LaTeX forms, so `(1.0 if a0 > 0.0 else 0.0)`, relu's, reads as a step function and no second
list of derivative texts is kept. The page gets it as a template: a MathML tree (JSON) whose
argument slots the page fills with names or with a step's numbers, as text.
"""

from __future__ import annotations

import ast
import html
import re
import xml.etree.ElementTree as ET
from typing import Any

from ..core.ops import ATOM, OPS, Op, Printed, latex_call

# funcify's LaTeX is a small language: \frac{}{}, \left( \right), ^{}, _{}, \operatorname{},
# \mathit{}, a few symbols and escapes, and \\ between lines. It is turned into MathML Core,
# which browsers render with no script or font to fetch.

_SYMBOLS = {
    "cdot": ("mo", "·"),
    "sigma": ("mi", "σ"),
    "tanh": ("mi", "tanh"),
    "exp": ("mi", "exp"),
    "log": ("mi", "log"),
    "backslash": ("mi", "\\"),
    "wedge": ("mo", "∧"),
    "sim": ("mo", "∼"),
    "gt": ("mo", ">"),
    "lt": ("mo", "<"),
    "geq": ("mo", "≥"),
    "leq": ("mo", "≤"),
}
_TOKEN = re.compile(r"\\\\|\\[A-Za-z]+|\\.|[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|\s+|.", re.S)


def latex_to_mathml(latex: str) -> str:
    """funcify's LaTeX as MathML: one `<math>` element per line (`h1 = ...`, then the output)."""
    return "".join(f'<math display="block">{_MathParser(line).row()}</math>' for line in latex.split("\\\\"))


class _MathParser:
    """Reads one line of funcify's LaTeX, left to right, into MathML (no recursion on depth:
    groups are kept on an explicit stack)."""

    def __init__(self, text: str) -> None:
        self.tokens = [t for t in _TOKEN.findall(text) if not t.isspace()]

    def row(self) -> str:
        # Each frame: (closing token, parts, how to wrap them when it closes).
        stack: list[tuple[str, list[str], str]] = [("", [], "mrow")]
        i = 0
        toks = self.tokens
        while i < len(toks):
            t = toks[i]
            i += 1
            parts = stack[-1][1]
            if t in ("\\frac", "\\ifelse"):
                stack.append(("}", [], "frac-num" if t == "\\frac" else "if-then"))
                i += 1  # the "{"
            elif t in ("^", "_"):
                stack.append(("}", [], "sup" if t == "^" else "sub"))
                i += 1
            elif t == "\\left":
                opener = toks[i]
                i += 1
                fence = {"\\{": "{", "\\|": "‖"}.get(opener, opener)
                stack.append(("\\right", [f"<mo>{html.escape(fence)}</mo>"], "fenced"))
            elif t == "\\right":
                closer = toks[i]
                i += 1
                fence = {"\\}": "}"}.get(closer, closer)
                closing, inner, _ = stack.pop()
                assert closing == "\\right"
                stack[-1][1].append(f"<mrow>{''.join(inner)}<mo>{html.escape(fence)}</mo></mrow>")
            elif t in ("\\operatorname", "\\mathit"):
                j = toks.index("}", i)
                name = "".join(_unescape(x) for x in toks[i + 1 : j])
                i = j + 1
                parts.append(
                    f"<mi>{html.escape(name)}</mi>"
                    if t == "\\mathit"
                    else f'<mi mathvariant="normal">{html.escape(name)}</mi>'
                )
            elif t == "{":
                stack.append(("}", [], "mrow"))
            elif t == "}":
                closing, inner, kind = stack.pop()
                group = f"<mrow>{''.join(inner)}</mrow>"
                target = stack[-1][1]
                if kind == "frac-num":
                    stack.append(("}", [group], "frac-den"))
                    i += 1  # the "{" of the denominator
                elif kind == "frac-den":
                    target.append(f"<mfrac>{inner[0]}<mrow>{''.join(inner[1:])}</mrow></mfrac>")
                elif kind in ("if-then", "if-test"):
                    kept = [group] if kind == "if-then" else [inner[0], f"<mrow>{''.join(inner[1:])}</mrow>"]
                    stack.append(("}", kept, "if-test" if kind == "if-then" else "if-else"))
                    i += 1
                elif kind == "if-else":
                    target.append(_cases(inner[0], inner[1], f"<mrow>{''.join(inner[2:])}</mrow>"))
                elif kind in ("sup", "sub"):
                    base = target.pop() if target else "<mrow></mrow>"
                    target.append(f"<m{kind}>{base}{group}</m{kind}>")
                else:
                    target.append(group)
            elif t.startswith("\\") and t[1:] in _SYMBOLS:
                tag, text = _SYMBOLS[t[1:]]
                parts.append(f"<{tag}>{html.escape(text)}</{tag}>")
            elif t[0].isdigit():
                parts.append(f"<mn>{t}</mn>")
            elif t[0].isalpha():
                parts.append(f"<mi>{html.escape(t)}</mi>")
            else:
                parts.append(f"<mo>{html.escape(_unescape(t))}</mo>")
        while len(stack) > 1:  # unbalanced input: keep what was read
            _, inner, _ = stack.pop()
            stack[-1][1].append(f"<mrow>{''.join(inner)}</mrow>")
        return f"<mrow>{''.join(stack[0][1])}</mrow>"


def _unescape(t: str) -> str:
    if t == "\\ ":
        return " "
    if t.startswith("\\") and len(t) == 2:
        return t[1]
    if t.startswith("\\") and t[1:] in _SYMBOLS:
        return _SYMBOLS[t[1:]][1]
    return t


def _cases(then: str, test: str, otherwise: str) -> str:
    """A function defined by cases: `then` where `test` holds, else `otherwise`."""
    row = "<mtr><mtd>{}</mtd><mtd>{}</mtd></mtr>"
    return (
        '<mrow><mo stretchy="true">{</mo><mtable columnalign="left">'
        + row.format(then, f"<mtext>if&#160;</mtext>{test}")
        + row.format(otherwise, "<mtext>otherwise</mtext>")
        + "</mtable></mrow>"
    )


# ----------------------------------------------------------------- derivatives

_BINARY = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}
_CALLS = {"fpow": "pow"}  # NAMESPACE's names that print as another op
_COMPARE = {ast.Gt: "\\gt", ast.Lt: "\\lt", ast.GtE: "\\geq", ast.LtE: "\\leq"}
SLOT = "@"  # an argument's slot in a template: @0, @1, ... and @o for the op's output


def derivative_latex(op: Op, n: int, i: int) -> str | None:
    """d out / d argument i of `op` over n arguments, in LaTeX with slots; None if it cannot be printed."""
    code = op.deriv([f"a{k}" for k in range(n)], "out", i)
    try:
        return _latex(ast.parse(code, mode="eval").body)[0]
    except (KeyError, SyntaxError, TypeError):
        return None


def _latex(e: ast.expr) -> Printed:
    """One node of a derivative's expression in LaTeX (depth bounded by the op entry's own expression)."""
    if isinstance(e, ast.Constant) and isinstance(e.value, (int, float)):
        return (format(float(e.value), "g"), ATOM)
    if isinstance(e, ast.Name):
        slot = "o" if e.id == "out" else str(int(e.id[1:]))
        return (f"\\mathit{{{SLOT}{slot}}}", ATOM)
    if isinstance(e, ast.BinOp):
        return OPS[_BINARY[type(e.op)]].latex([_latex(e.left), _latex(e.right)])
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub):
        return OPS["neg"].latex([_latex(e.operand)])
    if isinstance(e, ast.Call) and isinstance(e.func, ast.Name):
        name = _CALLS.get(e.func.id, e.func.id)
        form = OPS[name].latex if name in OPS else latex_call(f"\\operatorname{{{name}}}")
        return form([_latex(a) for a in e.args])
    if isinstance(e, ast.IfExp):
        parts = [_latex(e.body)[0], _latex(e.test)[0], _latex(e.orelse)[0]]
        return ("\\ifelse{{{}}}{{{}}}{{{}}}".format(*parts), ATOM)
    if isinstance(e, ast.Compare) and len(e.ops) == 1:
        return (f"{_latex(e.left)[0]} {_COMPARE[type(e.ops[0])]} {_latex(e.comparators[0])[0]}", 0)
    raise TypeError(f"no printed form for {ast.dump(e)}")


def template(latex: str) -> Any:
    """A derivative's MathML as the page's template: [tag, attributes, child, ...], a child being
    text, a tree, or a slot's number (-1: the op's output)."""
    root = ET.fromstring(latex_to_mathml(latex))
    return _tree(root[0])  # the row inside <math>: the page makes the <math> element


def _tree(el: ET.Element) -> Any:
    out: list[Any] = [el.tag, dict(el.attrib)]
    text = (el.text or "").strip()
    if text.startswith(SLOT) and el.tag == "mi":
        out.append(-1 if text == SLOT + "o" else int(text[1:]))
    elif el.text:
        out.append(el.text)
    for child in el:
        out.append(_tree(child))
        if child.tail:
            out.append(child.tail)
    return out


def fill(tree: Any, slots: list[str], out: str) -> str:
    """A template's text with its slots filled (what the page shows as the element's text)."""
    if isinstance(tree, str):
        return tree
    if isinstance(tree, int):
        return out if tree == -1 else slots[tree]
    return "".join(fill(c, slots, out) for c in tree[2:])
