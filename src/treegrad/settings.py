"""Training settings given on the command line as `KEY=VALUE`, KEY a dotted path under
`training:` (`training.learning_rate=0.1`, `training.lr_schedule.type=cosine`; the leading
`training.` may be left out). Values are read as YAML scalars or flow collections (`0.1`,
`adam`, `true`, `null`, `{type: cosine}`), and the result is checked by the spec's own models,
so a misspelt key gets the same pointed error, with a did-you-mean, as in a spec file.
`train --set` assigns one value; `sweep --grid` gives a comma-separated list of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from .errors import SpecError
from .spec import Training, validate_training


class SettingError(SpecError):
    """A `KEY=VALUE` setting that is malformed or names no setting: a usage error (exit 2)."""


Path = tuple[str, ...]  # a dotted key below training:, e.g. ("lr_schedule", "type")


def parse_key(text: str, where: str) -> Path:
    """The path of a KEY (`training.` optional), or a SpecError saying what a key looks like."""
    parts = tuple(text.strip().split("."))
    if parts and parts[0] == "training":
        parts = parts[1:]
    if not parts or any(not p.isidentifier() for p in parts):
        raise SettingError(
            f"{where}: '{text}' is not a setting; write a key under training:, e.g. training.learning_rate"
        )
    return parts


def parse_value(text: str, where: str) -> Any:
    """A value as YAML reads it: 0.1 a number, adam a word, {type: step} a mapping."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise SettingError(
            f"{where}: cannot read the value '{text}' (write a number, a word, or {{key: value}})"
        ) from None


def split_values(text: str) -> list[str]:
    """The comma-separated values of a list, keeping commas inside {...} and [...] together."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [v.strip() for v in out]


def parse_assignment(text: str, where: str, many: bool = False) -> tuple[Path, list[Any]]:
    """`KEY=VALUE` (or with `many`, `KEY=V1,V2,...`) as (path, values)."""
    key, eq, rest = text.partition("=")
    if not eq or not rest.strip():
        example = "training.learning_rate=0.1,0.01" if many else "training.learning_rate=0.1"
        raise SettingError(f"{where}: '{text}' is not KEY=VALUE{'S' if many else ''}; e.g. {example}")
    values = split_values(rest) if many else [rest]
    return parse_key(key, where), [parse_value(v, where) for v in values]


def override(training: Training, changes: Mapping[Path, Any] | Sequence[tuple[Path, Any]], where: str) -> Training:
    """`training` with each path set to its value, checked as the spec checks it."""
    data: dict[str, Any] = training.model_dump()
    items = changes.items() if isinstance(changes, Mapping) else changes
    for path, value in items:
        node = data
        for k, part in enumerate(path[:-1]):
            if node.get(part) is None:
                node[part] = {}
            if not isinstance(node[part], dict):
                shown = "training." + ".".join(path[: k + 1])
                raise SettingError(
                    f"{where}: {shown} is a single value, not a group of settings: it has no '{path[k + 1]}'"
                )
            node = node[part]
        node[path[-1]] = value
    try:
        return validate_training(data, where)
    except SpecError as e:
        raise SettingError(str(e)) from None
