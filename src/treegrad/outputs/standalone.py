"""A model as a standalone Python module (`export --format python`): `predict` takes the columns of
the CSV the model was trained on, as `treegrad predict` does (numbers in their own units, text as
written there), and gives what `treegrad predict` gives; the module standardises and one-hot
encodes them itself. `predict_row` takes a row as a dict by column name (as `csv.DictReader` reads
it). It needs nothing but the standard library, and imports nothing but math.

Safety, as in export.py: what a user wrote (column, input, parameter, class and model names, text
values) reaches the module only as `repr()` literals, or as argument names when it is a plain ASCII
identifier that shadows nothing the module uses; the docstrings that name them are literals too
when they hold a quote, a backslash or a character that is not printable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .. import __version__
from ..core.ops import NAMESPACE
from ..data.columns import Source
from ..data.table import MISSING_VALUES
from ..errors import ModelError
from ..run.datasource import recorded_missing_values
from ..run.modelfile import Opened
from .export import column_arguments, columns, model_labels, python_body

MAX_VALUES_NAMED = 12  # text values a docstring lists; more are in VALUES


def _math_imports() -> list[str]:
    """`from math import ...` lines binding every name the op expressions may use."""
    plain, renamed = [], []
    for name, fn in sorted(NAMESPACE.items()):
        real = getattr(fn, "__name__", "")
        if getattr(math, real, None) is not fn:
            raise ModelError(
                f"the op table's function '{name}' is not from the math module, so a standalone "
                "Python module cannot import it; this is a bug in treegrad"
            )
        if real == name:
            plain.append(name)
        else:
            renamed.append(f"from math import {real} as {name}")
    return ([f"from math import {', '.join(plain)}"] if plain else []) + renamed


def docstring(text: str, indent: str) -> list[str]:
    """`text` as a docstring's source lines: triple-quoted where that reads it back as it is, else
    one string literal (repr), so that no name or value in it can end it early."""
    if all(line.isprintable() for line in text.split("\n")) and '"' not in text and "\\" not in text:
        lines = text.split("\n")
        body = [f"{indent}{line}" if line else "" for line in lines[1:]]
        return [f'{indent}"""{lines[0]}', *body, f'{indent}"""'] if len(lines) > 1 else [f'{indent}"""{text}"""']
    return [f"{indent}{text!r}"]


def _about(source: Source, argument: str) -> str:
    """How a docstring names an argument: its column, and what it holds."""
    if source.values is None:
        return f"{argument}: the column {source.column!r}, a number in its own units"
    values = source.values
    if len(values) > MAX_VALUES_NAMED:
        return f"{argument}: the column {source.column!r}, text: one of the {len(values)} in VALUES[{source.column!r}]"
    return f"{argument}: the column {source.column!r}, text: one of {', '.join(repr(v) for v in values)}"


def _reading(found: Sequence[Source], arguments: list[str], filled: bool) -> list[str]:
    """predict's first statements: each argument as the model's inputs (_x0, _x1, ...); in a model
    that fills missing cells (`filled`), a missing cell first takes its fill value (`_cell`)."""
    out, j = [], 0
    for k, (source, argument) in enumerate(zip(found, arguments)):
        cell = f"_cell({argument}, {source.column!r})" if filled else argument
        if source.values is None:
            out.append(f"_x{j} = float({cell})")
            j += 1
            continue
        out.append(f"_t{k} = _text({cell}, {source.column!r})")
        for value in source.values:
            out.append(f"_x{j} = 1.0 if _t{k} == {value!r} else 0.0")
            j += 1
    return out


_CELL_HELPER = [
    "def _cell(value, column):",
    '    """A cell as treegrad reads it: None, an empty text or one read as missing (MISSING) takes the',
    '    value the model fills that column with (FILL, from training.missing: fill), as `treegrad predict` does."""',
    "    text = None if value is None else str(value).strip()",
    "    if text and text not in MISSING:",
    "        return value",
    "    if column in FILL:",
    "        return FILL[column]",
    '    raise ValueError("column %r is missing, and the model fills no missing cell of it: give a value" % column)',
]

_TEXT_HELPER = [
    "def _text(value, column):",
    '    """A text cell as treegrad reads it (spaces around it dropped), one the model was trained on."""',
    "    text = str(value).strip()",
    "    if text not in VALUES[column]:",
    '        known = "column %r: %r is not one of the values the model was trained on: %r"',
    "        raise ValueError(known % (column, text, VALUES[column]))",
    "    return text",
]


def python_module(model: Opened) -> str:
    """A dependency-free Python module whose `predict(...)` returns what `treegrad predict` returns."""
    g = model.root.compiled_graph
    found = columns(model)
    args = column_arguments(found)
    signature = ", ".join(args)
    labels = model_labels(model)
    body, result = python_body(g)
    returns = (
        "a list of probabilities, one per class in CLASSES"
        if g.is_softmax
        else "a list of values"
        if g.is_list
        else "the probability of CLASSES[1]"
        if model.task == "binary"
        else "the predicted value"
    )
    text_columns = {s.column: s.values for s in found if s.values is not None}
    out = [
        '"""A treegrad model as plain Python: `predict` gives the numbers `treegrad predict` gives.',
        "",
        f"Written by treegrad {__version__}; it needs nothing but the standard library. The",
        "arguments are the columns of the model's data, in the order of COLUMNS, as `treegrad predict`",
        "takes them: numbers in their own units, text as written (this module encodes both as the",
        "model's INPUTS). predict_row takes a row as a dict by column name, as csv.DictReader reads it.",
        "Where the model fills missing cells, a missing one (None, empty, or in MISSING) takes FILL's value.",
        "Import it and call predict, e.g. from a shell: python3 -c 'import THIS_MODULE as m;",
        "print(m.predict(...))'. It runs nothing when run as a script, and imports nothing but math.",
        '"""',
        "",
        *_math_imports(),
        "",
        f"NAME = {model.name!r}",
        "# The columns predict takes, in the order of its arguments.",
        f"COLUMNS = {[s.column for s in found]!r}",
    ]
    if text_columns:
        out += [
            "# The values each text column may hold (each is one 0/1 input of the model).",
            f"VALUES = {text_columns!r}",
        ]
    out += ["# The model's inputs, the columns encoded as numbers.", f"INPUTS = {list(g.input_names)!r}"]
    if labels is not None:
        out.append(f"CLASSES = {labels!r}")
    out.append("# The learned values by name, for reading (predict has them written in).")
    out.append(f"PARAMETERS = {dict((p.name, float(p.value)) for p in g.params)!r}")
    missing = _missing_constants(model, found)
    out += missing
    if missing:
        out += ["", "", *_CELL_HELPER]
    if text_columns:
        out += ["", "", *_TEXT_HELPER]
    about = "\n".join(_about(s, a) for s, a in zip(found, args))
    out += ["", "", f"def predict({signature}):", *docstring(f"The model's output: {returns}.\n\n{about}", "    ")]
    out += [f"    {line}" for line in _reading(found, args, bool(missing))]
    out += [f"    {line}" for line in body]
    out.append(f"    return {result}")
    out += _row_function(found)
    if labels is not None and (g.is_softmax or model.task == "binary"):
        out += _label_function(signature, g.is_softmax)
    return "\n".join(out) + "\n"


def _missing_constants(model: Opened, found: Sequence[Source]) -> list[str]:
    """MISSING (the texts read as a missing cell) and FILL (each column's fill value), as the model
    file records them; none for a model that fills nothing (a missing cell is then refused, as a
    text that is not a number)."""
    record = model.loaded.record if model.loaded is not None else None
    markers = sorted(recorded_missing_values(record)) if record is not None else sorted(MISSING_VALUES)
    wanted = {s.column for s in found}
    fill = {c: v for c, v in (record.fill or {}).items() if c in wanted} if record is not None else {}
    if not fill:
        return []
    return [
        "# The texts read as a missing cell, and the value a column's missing cell takes (training.missing:",
        "# fill; a column not here must be given).",
        f"MISSING = {markers!r}",
        f"FILL = {fill!r}",
    ]


def _row_function(found: Sequence[Source]) -> list[str]:
    """predict_row: predict of a row given by column name."""
    call = ", ".join(f"row[{s.column!r}]" for s in found)
    return [
        "",
        "",
        "def predict_row(row):",
        '    """predict() of one row given as a dict by column name, as csv.DictReader reads a file of the',
        '    data: numbers may be text; columns the model does not read are left alone."""',
        f"    return predict({call})",
    ]


def _label_function(signature: str, softmax: bool) -> list[str]:
    """predict_label: the class `treegrad predict` prints."""
    out = [
        "",
        "",
        f"def predict_label({signature}):",
        '    """The predicted class, as printed by `treegrad predict`."""',
        f"    p = predict({signature})",
    ]
    if softmax:
        return out + [
            "    best = 0",
            "    for k in range(1, len(p)):",
            "        if p[k] > p[best]:",
            "            best = k",
            "    return CLASSES[best]",
        ]
    return out + ["    return CLASSES[1] if p >= 0.5 else CLASSES[0]"]
