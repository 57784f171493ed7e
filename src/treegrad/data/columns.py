"""From a CSV's columns to a model's inputs: selections, names, missing cells and text columns.

A spec may list its inputs, or select them from the data's header: `inputs: all` (every
column but the target), or a list mixing names, `{match: "pixel_*"}` (a glob, in header
order) and `{range: [first, last]}` (the columns from first to last, both included). The
selection is resolved when the data is read, and the model file records the resolved list,
so predict and show never need the CSV again.

A column name that is not usable as an input name (`mean radius`) becomes one
(`mean_radius`); with `text_inputs: one_hot` a text column becomes one 0/1 column per value
(`color` -> `color_red`, `color_blue`). Both are recorded as a `Recoding` in the model file,
and `recode` applies it to any table, so predict takes the raw CSV.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import DataError, did_you_mean, escaped, listed
from ..errors import clip as _clip
from .missing import Fill, fill, fill_values
from .parts import WHOLE, Part
from .split import split_indices
from .table import Column, Table
from .targets import label_counts, label_text, select

ALL = "all"
MAX_CATEGORIES = 100  # distinct values of a one-hot column: more is an identifier or free text
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


def resolve(selection: Any, columns: list[str], target: str | None, source: str) -> list[str]:
    """The CSV columns a selection names, in the order given (a match or range in header order).

    `all` needs the target to be known (it is every other column); a column selected twice is
    an error, as is a pattern that selects nothing or the target.
    """
    where = f"inputs (resolved against {source})"
    if selection == ALL:
        if target is None:
            raise DataError(
                f"{where}: `inputs: all` is every column but the target, so the target must be named: "
                "add `target: COLUMN` to the spec or pass --target COLUMN"
            )
        if target not in columns:
            raise DataError(
                f"target column '{target}' is not in {source}{did_you_mean(target, columns)} "
                f"Its columns are: {listed(columns)}."
            )
        return [c for c in columns if c != target]
    chosen: list[str] = []
    for item in selection:
        if isinstance(item, str):
            found = [item] if item in columns else []
            if not found:
                raise DataError(
                    f"{where}: input column '{item}' is not in {source}{did_you_mean(item, columns)} "
                    f"Its columns are: {listed(columns)}."
                )
        elif "match" in item:
            found = [c for c in columns if fnmatch.fnmatchcase(c, item["match"])]
            if not found:
                raise DataError(f"{where}: no column of {source} matches '{_clip(item['match'])}'")
        else:
            first, last = item["range"]
            for end in (first, last):
                if end not in columns:
                    raise DataError(
                        f"{where}: range end '{end}' is not a column of {source}{did_you_mean(end, columns)}"
                    )
            a, b = columns.index(first), columns.index(last)
            if a > b:
                raise DataError(f"{where}: range [{first}, {last}] runs backwards; '{first}' comes after '{last}'")
            found = columns[a : b + 1]
        for c in found:
            if c in chosen:
                raise DataError(f"{where}: column '{c}' is selected twice; select each input once")
            if c == target:
                raise DataError(f"{where}: column '{c}' is the target, so it cannot be an input too")
        chosen += found
    return chosen


def input_name(column: str) -> str:
    """A usable input name for a column: itself when it is one, else its runs of other
    characters as `_` (`mean radius` -> `mean_radius`), with `_` before a leading digit."""
    if _NAME.match(column) and column != "param":
        return column
    name = _UNSAFE.sub("_", column).strip("_") or "column"
    return name if _NAME.match(name) and name != "param" else f"_{name}"


@dataclass
class Recoding:
    """How a CSV's columns become a model's inputs: renamed columns and one-hot text columns."""

    renamed: dict[str, str] = field(default_factory=dict)  # CSV column -> input name
    encodings: dict[str, dict[str, str]] = field(default_factory=dict)  # CSV column -> {value: input name}
    inputs: list[str] = field(default_factory=list)  # the model's inputs, in order
    # training.missing: fill: CSV column -> the value its missing cells take (missing.py), applied first
    fill: Fill = field(default_factory=dict)
    dropped: int = 0  # rows left out for a missing cell (training.missing: drop, or a missing target)
    filled: int = 0  # cells filled (training.missing: fill)

    def __bool__(self) -> bool:
        return bool(self.renamed or self.encodings)

    def columns(self) -> list[str]:
        """The CSV columns the model's inputs are read from, in input order."""
        source = {name: c for c, name in self.renamed.items()}
        for c, code in self.encodings.items():
            source.update((name, c) for name in code.values())
        return list(dict.fromkeys(source.get(name, name) for name in self.inputs))


@dataclass(frozen=True)
class Source:
    """One CSV column a model reads: its name there, and the inputs it becomes: itself as a number
    (perhaps renamed), or with `values` (text) one 0/1 input per value, in the same order."""

    column: str
    inputs: list[str]
    values: list[str] | None = None


def sources(inputs: list[str], renamed: dict[str, str], encodings: dict[str, dict[str, str]]) -> list[Source]:
    """The CSV columns behind a model's `inputs` (a recoding's renamed and one-hot columns undone),
    in the order of the inputs they become."""
    back = {name: (column, value) for column, code in encodings.items() for value, name in code.items()}
    original = {name: column for column, name in renamed.items()}
    out: list[Source] = []
    for name in inputs:
        column, value = back.get(name, (original.get(name, name), None))
        last = out[-1].values if out and out[-1].column == column else None
        if value is not None and last is not None:  # the next value of the text column before it
            out[-1].inputs.append(name)
            last.append(value)
        else:
            out.append(Source(column, [name], None if value is None else [value]))
    return out


def cell_kinds(table: Table, j: int) -> tuple[int, int]:
    """(number cells, filled text cells) of column j."""
    return table.column(j).kinds()


def is_text(numbers: int, texts: int) -> bool:
    """A text column (one-hot inputs) is one whose filled cells are mostly text. A column of
    numbers with a few text cells is numbers with mistakes (`11O`, `NA`): its text cells are
    reported where they are, not taken for categories of a column of prices."""
    return texts > numbers


def plan(table: Table, columns: list[str], one_hot: bool, part: Part = WHOLE) -> Recoding:
    """The recoding of `columns` of `table`: names made usable, and with `one_hot` each column
    of text (`is_text`) split into one 0/1 input per distinct value (sorted). With `part`, of
    every process's part of the table together."""
    rec = Recoding()
    used: set[str] = set(c for c in table.columns if c not in columns)

    def fresh(name: str) -> str:
        base, k = name, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        return name

    text = text_columns(table, columns, part)
    if text and not one_hot:
        first = next(c for c in columns if c in text)  # every part knows it: the counts are of all parts
        part.agree(functools.partial(_no_text, table, table.columns.index(first), first))
    mine = {c: _values(table.column(table.columns.index(c))) for c in text}
    found: dict[str, set[str]] = {c: set() for c in text}
    for values_of in part.gather(mine):
        for c, values in values_of.items():
            found[c] |= values

    for c in columns:
        j = table.columns.index(c)
        if c in text:
            values = sorted(found[c])
            if "" in values:
                part.agree(functools.partial(_no_empty_text, table, j, c))
            if len(values) > MAX_CATEGORIES:  # of every part: each process finds it (parts.py)
                part.fail(
                    DataError(
                        f"column '{c}' of {table.source} has {len(values)} distinct text values (more than "
                        f"{MAX_CATEGORIES}): too many for one-hot inputs; leave it out of inputs"
                    )
                )
            rec.encodings[c] = {v: fresh(input_name(f"{c}_{v}")) for v in values}
            rec.inputs += list(rec.encodings[c].values())
            continue
        name = fresh(input_name(c))
        if name != c:
            rec.renamed[c] = name
        rec.inputs.append(name)
    return rec


ONE_HOT_HINT = (
    "to give the model a text column as one 0/1 input per value, set training.text_inputs: one_hot in the "
    "spec (treegrad init sets it for text columns); else leave the column out of inputs"
)


def _no_text(table: Table, j: int, c: str) -> None:
    """Refuse the first text cell of column `c` (column j), a text column the run does not one-hot."""
    import numpy as np

    column = table.column(j)
    texts = np.flatnonzero(column.text_mask() & ~column.missing())
    if len(texts):
        i = int(texts[0])
        raise DataError(
            f"{table.place(i)}, column '{c}': the input is '{_clip(escaped(str(column.cell(i))))}', "
            f"not a number; the column holds text: {ONE_HOT_HINT}"
        )


def text_columns(table: Table, columns: list[str], part: Part = WHOLE) -> set[str]:
    """Those of `columns` that hold text (`is_text`), counted over every part's rows."""
    kinds = [cell_kinds(table, table.columns.index(c)) for c in columns]
    totals = [tuple(map(sum, zip(*each))) for each in zip(*part.gather(kinds))]
    return {c for c, (numbers, texts) in zip(columns, totals) if is_text(numbers, texts)}


def _values(column: Column) -> set[str]:
    """The distinct values of a column, as label texts (`label_text`; a missing cell is "")."""
    return set(label_counts(column))


def _no_empty_text(table: Table, j: int, c: str) -> None:
    """Refuse the first row whose text input `c` (column j) is empty."""
    import numpy as np

    empty = np.flatnonzero(table.column(j).missing())
    if len(empty):
        i = int(empty[0])
        raise DataError(
            f"{table.place(i)}, column '{c}': the text input is empty; fill it in, "
            "or set training.missing: fill (the most frequent value) or drop (leave such rows out)"
        )


def recode(table: Table, rec: Recoding) -> Table:
    """`table` with the recoding applied: renamed columns, text columns as 0/1 columns.
    A text value the recoding does not know is an error naming its row."""
    import numpy as np

    if not rec:
        return table
    missing = [c for c in rec.encodings if c not in table.columns]
    if missing:
        raise DataError(
            f"{table.source} has no column '{missing[0]}', a text input of the model"
            f"{did_you_mean(missing[0], table.columns)}"
        )
    names: list[str] = []
    data: list[Column] = []
    for j, c in enumerate(table.columns):
        column = table.column(j)
        code = rec.encodings.get(c)
        if code is None:
            names.append(rec.renamed.get(c, c))
            data.append(column)
            continue
        texts = np.array([label_text(v) for v in column.cells()], dtype=object)
        empty = texts == ""  # left empty, so that missing: drop drops the row, else select names it
        unknown = np.flatnonzero(~empty & ~np.isin(texts, list(code)))
        if len(unknown):
            i = int(unknown[0])
            shown = ", ".join(list(code)[:10]) + (", ..." if len(code) > 10 else "")
            raise DataError(
                f"{table.place(i)}, column '{c}': '{_clip(escaped(str(texts[i])))}' is not "
                f"one of the values the model was trained on ({shown})"
            )
        for value, name in code.items():
            names.append(name)
            ones = np.where(texts == value, 1.0, 0.0)
            if empty.any():
                ones[empty] = np.nan
                blanks = np.full(len(texts), None, dtype=object)
                blanks[empty] = ""
                data.append(Column(ones, blanks))
            else:
                data.append(Column(ones))
    return table.derived(names, data=data)


def drop_missing(table: Table, columns: list[str], part: Part = WHOLE) -> tuple[Table, int]:
    """(`table` without the rows that have an empty cell in `columns`, how many were dropped);
    the rows kept are placed where they were read. With `part`, rows must be left in some part."""
    import numpy as np

    idx = [table.columns.index(c) for c in columns if c in table.columns]
    dropped = np.zeros(table.size, bool)
    for j in idx:
        dropped |= table.column(j).missing()
    keep = np.flatnonzero(~dropped)
    if not part.any(bool(len(keep))):
        part.fail(
            DataError(f"every row of {table.source} has an empty cell in the columns the model reads; nothing is left")
        )
    if not dropped.any():
        return table, 0
    return table.taken(keep), int(dropped.sum())


def model_inputs(
    spec: Any, table: Table, target: str | None, settings: Any, part: Part = WHOLE
) -> tuple[Any, Table, Recoding]:
    """(the spec with its inputs resolved, the table as the model reads it, the recoding that made it).

    The spec's input selection (`all`, match, range) is resolved against the header, less the
    weight column; with `settings.missing == "drop"` rows with an empty cell in a column the
    model reads are dropped; column names that are not input names are made into ones, and with
    `settings.text_inputs == "one_hot"` text columns become 0/1 columns (`columns.plan`).
    """
    weight = settings.weight_column
    header = [c for c in table.columns if c != weight]
    # The header is every part's: a mistake here is every process's, reported by rank 0 (parts.py).
    if spec.selection is not None:
        raw = part.agree(lambda: resolve(spec.selection, header, target, table.source))
    else:
        raw = list(spec.inputs)
    others = ([target] if target else [c for c in header if c not in raw]) + ([weight] if weight else [])
    dropped, filled, values = 0, 0, Fill()
    if settings.missing == "drop":
        table, dropped = drop_missing(table, raw + others, part)
    missing = [c for c in raw if c not in table.columns]
    if missing:
        part.agree(lambda: select(table, raw, target))  # raises the usual message naming the column
    if settings.missing == "fill":  # a row without its target or weight cannot be filled in
        table, dropped = drop_missing(table, others, part)
        table, values, filled = _filled(table, raw, settings, part)
    recoding = plan(table, raw, settings.text_inputs == "one_hot", part)
    recoding.fill, recoding.dropped, recoding.filled = values, sum(part.gather(dropped)), filled
    table = recode(table, recoding)
    if spec.selection is not None or recoding.inputs != list(spec.inputs):
        spec = spec.with_inputs(recoding.inputs)
    return spec, table, recoding


def _filled(table: Table, columns: list[str], settings: Any, part: Part) -> tuple[Table, Fill, int]:
    """(`table` with the missing cells of `columns` filled, the values, how many cells of every part):
    the values are those of the training rows, split as training will split them (split.py)."""
    first, count = part.offset(table.size)
    train, _ = split_indices(count, settings.validation_split, settings.seed)
    mine = [r - first for r in train if first <= r < first + table.size]
    values = fill_values(table, columns, text_columns(table, columns, part), mine, part)
    table, filled = fill(table, values)
    return table, values, sum(part.gather(filled))
