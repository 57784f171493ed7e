"""Spec keys given on the command line as `KEY=VALUE`: `train --set` assigns one value, `sweep
--grid` a comma-separated list of them.

KEY is a dotted path to any key of a spec, as the file would nest it: `training.epochs`,
`training.early_stopping.patience`, `layers.0.linear` (a number picks an item of a list),
`inputs`, `target`, `data`. A training setting may leave out its `training.` (`epochs=50`): a
key is read from the spec's top level when its first part is a top-level key of a spec
(`inputs`, `data`, `training`, ...), else under `training:` when it is a training setting, and
is otherwise refused with a did-you-mean. No training setting shares a name with a top-level
key, so both readings never apply.

Values are read as a spec file reads them (YAML 1.2 flow style: `1e-3` a number, `adam` a
word, `null`, `[a, b]`, `{type: cosine}`). The changed spec is then checked by the spec's own
models and analysis, so a misspelt key or a bad value gets the same pointed error, with a
did-you-mean, as in a spec file, placed at the option (`--set: training.epochs: ...`) rather
than at a line: a `SettingError`, which the commands treat as a usage error. Setting a key
that the file does not have creates it (and the mappings above it); a list item must exist.
A relative `data:` path set this way is, as in the file, relative to the spec's folder.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..engine.settings import Training
from ..errors import SettingError, SpecError, clip, describe, did_you_mean
from .models import Spec, validate_spec, validate_training
from .reading import Source, dump_data, format_path, read_data, read_text, read_value

__all__ = ["KeyPath", "SettingError", "apply", "clashes", "load", "override", "parse_assignment", "parse_key"]

KeyPath = tuple[str, ...]  # a key from the spec's top level, as typed: ("layers", "0", "linear")


def parse_key(text: str, where: str) -> KeyPath:
    """The path of a KEY from the spec's top level (`training.` added to a bare training setting),
    or a SettingError saying what a key looks like and which one was meant."""
    parts = tuple(text.strip().split("."))
    if any(not p or any(c.isspace() for c in p) for p in parts):
        raise SettingError(
            f"{where}: '{clip(text)}' is not a key; write a dotted path such as training.learning_rate "
            "or layers.0.linear"
        )
    top, training = list(Spec.model_fields), list(Training.model_fields)
    if parts[0] in top:
        return parts
    if parts[0] in training:
        return ("training", *parts)
    raise SettingError(
        f"{where}: unknown key '{clip(parts[0])}'{did_you_mean(parts[0], top + training)} A key is a spec's "
        f"({', '.join(top)}) or a training setting (training.epochs, or epochs alone)"
    )


def parse_value(text: str, where: str, key: KeyPath = ()) -> Any:
    """A value as a spec file reads it: 0.1 a number, adam a word, {type: step} a mapping."""
    try:
        return read_value(text, where)
    except SpecError:
        raise SettingError(
            f"{where}: {'.'.join(key) + ': ' if key else ''}cannot read the value '{clip(text)}' (write a "
            "number, a word, [a, list] or {key: value}, quoted for the shell)"
        ) from None


def split_values(text: str) -> list[str]:
    """The comma-separated values of a list, keeping commas inside {...}, [...] and quotes together."""
    out, depth, cur, quote, i = [], 0, [], "", 0
    while i < len(text):
        ch = text[i]
        if quote:  # inside '...' ('' is a quote) or "..." (\" is one): nothing splits or nests
            if quote == '"' and ch == "\\":
                cur.append(text[i : i + 2])
                i += 2
                continue
            if ch == quote and quote == "'" and text[i + 1 : i + 2] == "'":
                cur.append("''")
                i += 2
                continue
            quote = "" if ch == quote else quote
        elif ch in "'\"" and _opens_scalar("".join(cur)):
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return [v.strip() for v in out]


def _opens_scalar(before: str) -> bool:
    """True if a quote after `before` starts a quoted value, as YAML reads one: at the start of a
    value, a list item or a mapping's key or value (in `don't` it is a letter)."""
    before = before.rstrip()
    return not before or before[-1] in "[{,:"


def parse_assignment(text: str, where: str, many: bool = False) -> tuple[KeyPath, list[Any]]:
    """`KEY=VALUE` (or with `many`, `KEY=V1,V2,...`) as (path from the top level, values)."""
    key, eq, rest = text.partition("=")
    if not eq or not rest.strip():
        example = "training.learning_rate=0.1,0.01" if many else "training.learning_rate=0.1"
        raise SettingError(f"{where}: '{clip(text)}' is not KEY=VALUE{'S' if many else ''}; e.g. {example}")
    path = parse_key(key, where)
    values = split_values(rest) if many else [rest]
    return path, [parse_value(v, where, path) for v in values]


def apply(data: dict[str, Any], changes: Iterable[tuple[KeyPath, Any]], source: Source, where: str) -> dict[str, Any]:
    """A copy of a spec's plain data with each path set to its value, in order; each set path is
    recorded in `source.given` as given by `where`, so that problems there are placed at it."""
    out = copy.deepcopy(data)
    for path, value in changes:
        node: Any = out
        at: list[str | int] = []
        created: tuple[str | int, ...] | None = None  # the first key the change adds to the spec
        for k, part in enumerate(path):
            key: str | int = part
            if isinstance(node, list):
                if not part.isdigit():
                    raise SettingError(
                        f"{where}: {format_path(at)} is a list: pick an item by its index, e.g. "
                        f"{'.'.join((*path[:k], '0', *path[k + 1 :]))}"
                    )
                key = int(part)
                if key >= len(node):
                    items = f"items 0 to {len(node) - 1}" if node else "no items"
                    raise SettingError(
                        f"{where}: {format_path(at)} has {items}; there is no item {key} "
                        f"(to change the list's length, set all of it: {format_path(at)}=[...])"
                    )
            elif not isinstance(node, dict):
                raise SettingError(
                    f"{where}: {format_path(at)} is a single value ({describe(node)}), not a group of "
                    f"keys: it has no '{clip(part)}'"
                )
            if k == len(path) - 1:
                node[key] = value
            else:
                if isinstance(node, dict) and node.get(key) is None:
                    node[key] = {}  # a missing list is a mapping too: validation says what it should be
                    created = created or (*at, key)
                node = node[key]
            at.append(key)
        source.given[created or tuple(at)] = where
    return out


def _shown(path: KeyPath, value: Any) -> str:
    """A change as it would be typed, on one line: layers.0.linear=16, description="two\\nlines"."""
    plain = isinstance(value, str) and value.isprintable()
    return f"{'.'.join(path)}={value if plain else json.dumps(value)}"


def load(spec_path: Path, changes: Iterable[tuple[KeyPath, Any]], where: str = "--set") -> tuple[Spec, str]:
    """The spec file at `spec_path` with `changes` applied, checked as a spec file is, and its text.

    The text is the changed spec written out, under a comment line saying which changes made it,
    as the model file's spec must describe the run that was trained: its training settings too
    (a training-only change left the file's own text, whose old value then read as the run's)."""
    changes = list(changes)
    text = read_text(spec_path)
    data, source = read_data(text, str(spec_path))
    if isinstance(data, dict):
        data = apply(data, changes, source, where)
    said = " ".join(f"{where} {_shown(p, v)}" for p, v in changes)
    try:
        spec = validate_spec(data, source, default_name=spec_path.stem)
    except SettingError:
        raise
    except SpecError as e:
        # Located in the file, but the file alone may be fine: say what changed it.
        raise SpecError(f"{e} (in the spec as changed by {said})") from None
    if changes:
        # One comment line whatever was set: a line break in it (YAML counts \r, NEL and the
        # Unicode separators too) would start a line of the spec, which then no longer reads back.
        name = spec_path.name if spec_path.name.isprintable() else json.dumps(spec_path.name)
        text = f"# {name} with {said}\n" + dump_data(data)
    return spec, text


def override(training: Training, changes: Iterable[tuple[KeyPath, Any]], where: str) -> Training:
    """`training` with each path (from the top level, so training.KEY...) set, checked as the spec checks it."""
    source = Source(where)
    data = apply({"training": training.model_dump()}, changes, source, where)
    if set(data) != {"training"}:
        other = next(k for k in data if k != "training")
        raise SettingError(f"{where}: {other} is not a training setting")
    try:
        return validate_training(data["training"], where)
    except SpecError as e:
        raise SettingError(str(e)) from None


def clashes(options: Iterable[str], changes: Iterable[tuple[KeyPath, Any]]) -> None:
    """Refuse a training setting given both by its own option (--epochs) and by --set."""
    set_keys = {path[1] for path, _ in changes if len(path) == 2 and path[0] == "training"}
    for key in options:
        if key in set_keys:
            raise SettingError(f"--set: training.{key} is also given by --{key.replace('_', '-')}; give it once")
