"""A pydantic validation error as located messages: `file:line:col: path.in[0].spec: what is
wrong — what to do`, one per problem, in the words of a spec (union tags left out of paths,
pydantic's wording replaced by what to write)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from ..errors import SettingError, SpecError, describe, did_you_mean
from .expressions import explain_expression
from .reading import Source, SpecPath

MAX_SHOWN = 3  # pydantic problems listed in one message

_FRIENDLY = {
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "string_type": "expected text",
    "bool_type": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping (key: value lines)",
    "model_type": "expected a mapping (key: value lines)",
    "model_attributes_type": "expected a mapping (key: value lines)",
}

_HINTS = {
    "inputs": " — list the model's input names, e.g. inputs: [x, y]",
    "patience": " — the number of epochs without improvement before stopping, e.g. patience: 20",
}


def _clean_loc(loc: tuple[Any, ...], data: Any) -> SpecPath:
    """The spec path of a pydantic error location: union tags dropped, following the data."""
    path: list[str | int] = []
    cur: Any = data
    for part in loc:
        if isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
        elif isinstance(cur, dict) and isinstance(part, str) and part in cur:
            cur = cur[part]
        elif isinstance(part, str) and part.startswith("<") and part.endswith(">"):
            continue  # a union tag, not a place in the file
        else:
            cur = None
        path.append(part)
    return tuple(path)


def problem(err: Any, data: Any, source: Source) -> tuple[tuple[int, int], str, bool]:
    """(position, located message, whether the value there was given by an option) for one pydantic error."""
    path = _clean_loc(err["loc"], data)
    kind, ctx = err["type"], err.get("ctx") or {}
    key = False
    if kind == "spec":
        path += tuple(ctx.get("at", ()))
        key = bool(ctx.get("on_key"))
        text = str(ctx["message"])
    elif kind == "missing":
        name = str(path[-1]) if path else "?"
        path = path[:-1]
        text = f"the key '{name}' is missing{_HINTS.get(name, '')}"
    elif kind == "expression":
        text = explain_expression(err.get("input"))
    elif kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        got = err.get("input")
        mean = did_you_mean(got, choices) if isinstance(got, str) else "."
        text = f"{describe(got)} is not allowed{mean} Allowed: {', '.join(choices)}"
    elif kind == "recursion_loop" or kind == "recursion_depth_exceeded":
        text = "nested too deeply; give intermediate results names under nodes:"
    elif kind in ("param_value", "linear_args", "layer"):
        text = f"{err['msg']}; found {describe(err.get('input'))}"
    elif kind in ("too_short", "too_long"):
        n = ctx.get("min_length", ctx.get("max_length"))
        text = f"needs {'at least' if kind == 'too_short' else 'at most'} {n} item{'s' if n != 1 else ''}"
    else:
        msg = _FRIENDLY.get(kind) or str(err["msg"]).replace("Input should", "must")
        text = f"{msg}, found {describe(err.get('input'))}"
    pos = source.position(path, key) or (0, 0)
    return pos, source.message(path, text, key), source.given_by(path) is not None


def render(e: ValidationError, data: Any, source: Source) -> SpecError:
    """One error for all the problems pydantic found in `data`, each located in `source`."""
    problems = sorted(set(problem(err, data, source) for err in e.errors()))
    # A problem in a value given on the command line is the command line's: a usage error.
    cls = SettingError if any(given for _, _, given in problems) else SpecError
    if len(problems) == 1:
        return cls(problems[0][1])
    shown = [f"  - {text}" for _, text, _ in problems[:MAX_SHOWN]]
    more = len(problems) - MAX_SHOWN
    tail = [f"  (and {more} more)"] if more > 0 else []
    return cls("\n".join([f"{source.filename}: {len(problems)} problems in the spec:", *shown, *tail]))
