"""One sample typed on the command line (`predict MODEL 3 4`, `explain MODEL x=3 y=4`): its values
read into a row of the model's inputs, and the hints that show how to type them."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from ..data.columns import sources
from ..errors import MAX_LISTED, DataError, clip, did_you_mean, escaped, listed
from .provenance import column_names, range_warnings

MAX_HINTED_INPUTS = 8  # inputs named one by one in a hint; more are no hint: a CSV of them is


def all_listed(inputs: Sequence[str]) -> str:
    """Where to see all of a model's inputs, after a hint that lists only some (errors.listed)."""
    return "" if len(inputs) <= MAX_LISTED else '; the model file lists all the inputs under "inputs"'


def values_hint(columns: Sequence[str]) -> str:
    """How to give a model the values of its CSV columns after `predict MODEL`: `x=... y=...`, or a
    CSV when they are many."""
    if len(columns) <= MAX_HINTED_INPUTS:
        return " ".join(f"{n}=..." for n in columns)
    return f"--data FILE.csv   (a CSV with the columns {listed(columns)})"


def next_commands(model: Path | None, record: Any) -> str:
    """What to run after training wrote `model` (of `record`): predict with it, by the CSV's own
    columns (a one-hot column by its text, a renamed one by its name in the CSV), show it."""
    from .datasource import recorded_recoding

    return f"treegrad predict {model} {values_hint(recorded_recoding(record).columns())}   |   treegrad show {model}"


def one_value_per_input(inputs: Sequence[str]) -> str:
    """What predict and explain given no values ask for."""
    return f"give one value per input ({listed(inputs)}), or --data FILE.csv{all_listed(inputs)}"


def read_sample(record: Any, values: Sequence[str], warn: Callable[[str], None]) -> list[float]:
    """The row of values typed after MODEL for a model file's `record` (parse_values), each input
    far outside its training range, and each missing value filled, said through `warn`."""
    inputs = list(record.inputs)
    row = parse_values(inputs, values, record, warn)
    for warning in range_warnings(record.input_ranges, inputs, [row], shown=column_names(record)):
        warn(warning)
    return row


def parse_values(
    inputs: list[str], values: Sequence[str], rec: Any = None, warn: Callable[[str], None] = lambda _: None
) -> list[float]:
    """Values typed after `predict MODEL`, in input order or all as name=value, as one row.

    Named, a column the model's record (`rec`) one-hot encodes takes its text (`island=Dream`,
    for the inputs island_Biscoe, island_Dream, ...), and a renamed column its name in the CSV;
    in order, a model with text columns takes one value per column of its CSV. A value left
    empty (or a text its data reads as missing) is filled as the model fills a missing cell."""
    named = [v for v in values if "=" in v]
    if named and len(named) != len(values):
        raise DataError("give the values either all in input order or all as name=value, not mixed")
    encodings: dict[str, dict[str, str]] = dict(rec.encodings or {}) if rec is not None else {}
    renamed: dict[str, str] = dict(rec.renamed or {}) if rec is not None else {}
    if named:
        known = {*inputs, *encodings, *renamed}
        return _named_values(inputs, [_split(v, known) for v in values], rec, warn)
    columns = [s.column for s in sources(inputs, renamed, encodings)]
    if encodings and len(values) == len(columns):  # a text column's value as written, the others numbers
        return _named_values(inputs, list(zip(columns, values)), rec, warn)
    if len(values) != len(inputs):
        shown = columns  # the CSV's (its inputs' own names when nothing is renamed or one-hot)
        example = (
            "treegrad predict MODEL.json " + " ".join(f"{n}=..." for n in shown)
            if len(shown) <= MAX_HINTED_INPUTS
            else "treegrad predict MODEL.json --data FILE.csv, a CSV with these columns"
        )
        raise DataError(
            f"the model takes {len(shown)} value(s), for {listed(shown)}; got {len(values)}. "
            f"Example: {example}{all_listed(shown)}"
        )
    return _named_values(inputs, list(zip(inputs, values)), rec, warn)


def _named_values(
    inputs: list[str], values: list[tuple[str, str]], rec: Any, warn: Callable[[str], None]
) -> list[float]:
    """The row of values given as (name, text) pairs (see parse_values)."""
    row: dict[str, float] = {}
    given: set[str] = set()  # the names as typed: a one-hot column's sets several inputs
    encodings: dict[str, dict[str, str]] = dict(rec.encodings or {}) if rec is not None else {}
    renamed: dict[str, str] = dict(rec.renamed or {}) if rec is not None else {}
    for name, text in values:
        if name in given:  # color=red color=blue: the last won, silently
            raise DataError(f"input '{clip(escaped(name))}' is given twice; give each input once")
        given.add(name)
        text = _filled(name, text, rec, warn)
        if name in encodings:  # a text column, one-hot: its value sets its inputs to 1 and 0
            code, value = encodings[name], text.strip()
            if value not in code:
                raise DataError(
                    f"the value for '{name}' is '{clip(escaped(value))}', not one the model was trained on "
                    f"({listed(list(code))})"
                )
            for v, input_name in code.items():
                row[input_name] = 1.0 if v == value else 0.0
            continue
        name = renamed.get(name, name)
        if name not in inputs:
            raise DataError(
                f"unknown input '{clip(escaped(name))}'{did_you_mean(name, inputs)} The model's inputs are "
                f"{listed(inputs)}{all_listed(inputs)}"
            )
        if name in row:
            raise DataError(f"input '{name}' is given twice")
        row[name] = _number(text, name)
    missing = [n for n in inputs if n not in row]
    if missing:
        # Named as the user names them: by the CSV's column, unless one of its inputs was given apart.
        source = {n: s.column for s in sources(inputs, renamed, encodings) for n in s.inputs}
        apart = {source[n] for n in row}
        missing = list(dict.fromkeys(n if source[n] in apart else source[n] for n in missing))
        columns = data_columns(rec) if rec is not None else inputs
        raise DataError(
            f"missing value(s) for {listed(missing)}; the model's inputs are {listed(columns)}{all_listed(columns)}"
        )
    return [row[n] for n in inputs]


def data_columns(record: Any) -> list[str]:
    """The columns of a model's data that its inputs are read from, in order: what a user types values for."""
    inputs = list(record.inputs)
    return [s.column for s in sources(inputs, dict(record.renamed or {}), dict(record.encodings or {}))]


def _filled(name: str, text: str, rec: Any, warn: Callable[[str], None]) -> str:
    """`text` typed for `name`, or, when it says no value (empty, or a text the model's data reads
    as missing other than nan), the value the model's `training.missing: fill` gives that column, said through
    `warn`; a DataError saying what to give when the model fills none."""
    from ..data.table import is_number

    typed = text.strip()
    # nan spells a number that is not finite, refused as such (`_number`), not filled.
    if rec is None or (typed and (typed not in _missing_texts(rec) or is_number(typed))):
        return text
    column = column_names(rec).get(name, name)
    fill = dict(rec.fill or {})
    if column not in fill:
        policy = rec.training.missing
        why = "" if policy == "fill" else f": the model was trained with training.missing: {policy}, which fills none"
        raise DataError(f"the value for '{clip(escaped(name))}' is missing{why}; give a value for it")
    value = fill[column]
    if isinstance(value, str):
        warn(f"the value for '{name}' is missing: filled with '{value}' (the training rows' most frequent value)")
        return value
    warn(f"the value for '{name}' is missing: filled with {value:.6g} (the training rows' mean)")
    return repr(value)


def _missing_texts(rec: Any) -> Collection[str]:
    """The texts the model's data reads as a missing cell."""
    from .datasource import recorded_missing_values

    return recorded_missing_values(rec)


def _split(item: str, known: set[str]) -> tuple[str, str]:
    """`name=value` as (name, value), cut at the first '=' whose left side is a name the model knows
    (a column of the CSV may be called `a=b`), else at the first."""
    cuts = [i for i, c in enumerate(item) if c == "="]
    at = next((i for i in cuts if item[:i].strip() in known), cuts[0])
    return item[:at].strip(), item[at + 1 :]


def _number(text: str, name: str) -> float:
    from ..data.table import number

    v = number(text.strip())
    if v is None:
        raise DataError(f"the value for '{name}' is '{clip(escaped(text))}', not a number")
    if not math.isfinite(v):
        raise DataError(f"the value for '{name}' is {clip(text.strip())}: give a finite number")
    return v
