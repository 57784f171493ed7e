"""Reading a spec file: its text, read defensively, to plain data plus the position of every part.

This is the first of a spec's three stages (then `spec` validates the data's shape, and
`analysis` checks what a shape cannot show). The text is checked for size, encoding and NUL
bytes, then composed by PyYAML's safe composer with YAML 1.2 scalars; anchors, aliases and
tags are refused, so nothing but plain data comes out. JSON is read by the json module (for
its own messages) and composed the same way for positions. The result is plain Python data
and a `Source`: a map from each path in the spec to its line and column, so that every later
stage can say `file:line:col: path.in[0].spec: what is wrong`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from .errors import SpecError
from .errors import clip as _clip
from .files import note_read

MAX_BYTES = 1024 * 1024  # a spec is a page of text; anything bigger is not one
MAX_NESTING = 100  # deeper than this, pydantic's own recursion guard would trip: name parts in nodes:

SpecPath = tuple[str | int, ...]


# ----------------------------------------------------------------- source positions


def format_path(path: Iterable[str | int]) -> str:
    """A spec path as written in messages: `output.add[0].mul[1]`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class Source:
    """Where a spec came from: its file name, and the line/column of every path in it."""

    filename: str
    values: dict[SpecPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[SpecPath, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: SpecPath, key: bool = False) -> tuple[int, int] | None:
        """(line, column), 1-based, of `path` (of its key with `key`), else of its nearest ancestor."""
        if key and path in self.keys:
            return self.keys[path]
        for n in range(len(path), -1, -1):
            if path[:n] in self.values:
                return self.values[path[:n]]
        return None

    def where(self, path: SpecPath, key: bool = False) -> str:
        """`file:line:col` of `path`, or just `file` when positions are unknown."""
        pos = self.position(path, key)
        return f"{self.filename}:{pos[0]}:{pos[1]}" if pos else self.filename

    def message(self, path: SpecPath, text: str, key: bool = False) -> str:
        """`file:line:col: path: text`."""
        shown = format_path(path)
        return f"{self.where(path, key)}: {shown + ': ' if shown else ''}{text}"

    def error(self, path: SpecPath, text: str, key: bool = False) -> SpecError:
        """A SpecError located at `path`."""
        return SpecError(self.message(path, text, key))


# ----------------------------------------------------------------- composing YAML


class _NotYaml(SpecError):
    """Text the YAML parser cannot read (a syntax error, not a refused feature)."""


class _Refused(Exception):
    """A YAML feature a spec may not use, found at a mark while composing."""

    def __init__(self, mark: Any, text: str) -> None:
        super().__init__(text)
        self.mark, self.text = mark, text


_STR, _INT, _FLOAT, _BOOL, _NULL, _SEQ, _MAP = (
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")
)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe composer, with YAML 1.2 scalars and no anchors, aliases or deep nesting.

    YAML 1.2 scalars mean `1e-3` is a number (PyYAML's YAML 1.1 reads it as text) and `on`,
    `no`, `y` are text, not booleans. Anchors are refused before anything is composed:
    aliases to aliases are how "billion laughs" files blow up.
    """

    # A fresh table, not a copy: PyYAML's add_implicit_resolver would append to lists
    # shared with SafeLoader.
    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {}  # type: ignore[misc]

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(
                event.start_mark,
                f"alias '*{event.anchor}': anchors and aliases are not supported "
                "in spec files (they allow exponential 'billion laughs' blow-ups); "
                "to reuse a part of the model, name it under nodes: and refer to it by name",
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _Refused(
                event.start_mark,
                f"anchor '&{anchor}': anchors and aliases are not supported in "
                "spec files; to reuse a part of the model, name it under nodes: and refer to it by name",
            )
        nested = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if nested:
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise _Refused(
                    event.start_mark,
                    f"nested more than {MAX_NESTING} levels deep; give intermediate "
                    "results names under nodes: and refer to them by name",
                )
        node = super().compose_node(parent, index)
        if nested:
            self.depth -= 1
        return node


_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Loader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
# Plain nan/inf spellings resolve to floats too, so that they are refused as non-finite
# rather than read as names.
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.?(?:inf|Inf|INF|infinity|Infinity|INFINITY)|\.?(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789.iInN"),
)
_Loader.add_implicit_resolver(_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])


def _at(filename: str, mark: Any) -> str:
    return f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark is not None else filename


def describe(v: Any) -> str:
    """A value as named in messages: `the text 'x'`, `a list of 2`, ..."""
    if v is None:
        return "nothing (an empty value)"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)):
        return f"the number {v}"
    if isinstance(v, str):
        return f"the text '{v}'" if len(v) <= 40 else f"the text '{v[:37]}...'"
    if isinstance(v, list):
        return f"a list of {len(v)}"
    if isinstance(v, dict):
        keys = ", ".join(str(k) for k in list(v)[:4])
        return f"a mapping with keys {keys}" if v else "an empty mapping {}"
    return type(v).__name__


def _scalar(node: yaml.ScalarNode, filename: str) -> Any:
    """A scalar node's value, for the plain-data tags only."""
    tag, text = node.tag, node.value
    where = _at(filename, node.start_mark)
    if tag == _STR:
        if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            # \ud83d\ude00 escapes arrive as two surrogates; join them into one character.
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return text
    if tag == _NULL:
        return None
    if tag == _BOOL:
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise SpecError(f"{where}: '{_clip(text)}' is not a boolean; write true or false")
    if tag == _INT:
        # No float has more than 309 digits before the point, and int() refuses to read
        # more than 4300 (a ValueError that would read as "not a whole number").
        if len(text) > 400:
            raise SpecError(f"{where}: {_clip(text)} ({len(text)} digits) is too large to be a number here")
        try:
            value: int | float = int(text, 10)
            float(value)
        except ValueError:
            raise SpecError(f"{where}: '{_clip(text)}' is not a whole number") from None
        except OverflowError:
            raise SpecError(f"{where}: {_clip(text)} is too large to be a number here") from None
        return value
    if tag == _FLOAT:
        try:
            value = float(re.sub(r"^([-+]?)\.(?=[a-zA-Z])", r"\1", text))  # YAML's .inf is Python's inf
        except ValueError:
            raise SpecError(f"{where}: '{_clip(text)}' is not a number") from None
        if not math.isfinite(value):
            raise SpecError(
                f"{where}: {_clip(text)} is not a finite number; spec files take finite numbers only "
                "(no NaN or infinity)"
            )
        return value
    raise _tag_error(tag, where)


def _tag_error(tag: str, where: str) -> SpecError:
    if "python/" in tag or tag.startswith("!python"):
        return SpecError(
            f"{where}: the tag '{_short_tag(tag)}' is not allowed: spec files cannot create "
            "Python objects; write plain YAML (numbers, text, lists, mappings)"
        )
    return SpecError(
        f"{where}: the tag '{_short_tag(tag)}' is not supported: spec files are plain YAML "
        "without !tags; remove it (quote the value if it should be text)"
    )


def _short_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag


def _prefix(path: SpecPath) -> str:
    return f"{format_path(path)}: " if path else ""


def _to_data(root: yaml.Node, filename: str) -> tuple[Any, Source]:
    """Plain data and the positions of every path in it, from a composed YAML tree (iteratively)."""
    source = Source(filename)
    box: dict[str, Any] = {}
    # (node, its path, the container to put its value in, the key/index there)
    stack: list[tuple[yaml.Node, SpecPath, Any, Any]] = [(root, (), box, "root")]
    while stack:
        node, path, into, slot = stack.pop()
        source.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        where = _at(filename, node.start_mark)
        if isinstance(node, yaml.ScalarNode):
            into[slot] = _scalar(node, filename)
        elif isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                raise _tag_error(node.tag, where)
            items: list[Any] = [None] * len(node.value)
            into[slot] = items
            stack.extend((child, path + (i,), items, i) for i, child in reversed(list(enumerate(node.value))))
        elif isinstance(node, yaml.MappingNode):
            if node.tag != _MAP:
                raise _tag_error(node.tag, where)
            mapping: dict[str, Any] = {}
            into[slot] = mapping
            pending = []
            for key_node, value_node in node.value:
                kwhere = _at(filename, key_node.start_mark)
                if not isinstance(key_node, yaml.ScalarNode):
                    raise SpecError(f"{kwhere}: {_prefix(path)}a key must be a plain name, not a list or mapping")
                key = _scalar(key_node, filename)
                if not isinstance(key, str):
                    raise SpecError(
                        f"{kwhere}: {_prefix(path)}the key {key!r} is not a name; keys are names "
                        "such as inputs or epochs (quote it to make it text)"
                    )
                if key in mapping:
                    first = source.keys[path + (key,)]
                    raise SpecError(
                        f"{kwhere}: {format_path(path + (key,))}: the key '{key}' is defined twice in "
                        f"this mapping (first at line {first[0]}); keep one"
                    )
                source.keys[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                mapping[key] = None  # keeps the file's key order
                pending.append((value_node, path + (key,), mapping, key))
            stack.extend(reversed(pending))
        else:  # pragma: no cover - the composer makes only these three kinds
            raise SpecError(f"{where}: unexpected YAML node {type(node).__name__}")
    return box.get("root"), source


def _compose(text: str, filename: str) -> yaml.Node | None:
    loader = None
    try:
        loader = _Loader(text)  # the reader checks for unprintable characters right here
        return loader.get_single_node()
    except _Refused as e:
        raise SpecError(f"{_at(filename, e.mark)}: {e.text}") from None
    except yaml.MarkedYAMLError as e:
        what = e.problem or "cannot be read"
        if "another document" in what:
            what = "a spec file holds one YAML document; remove the second '---' and what follows it"
        elif "'\\t'" in what:
            what = "a tab character; YAML indents with spaces only: replace the tab with spaces"
        elif "mapping values are not allowed" in what:
            what = (
                "a second ':' on this line: put a nested mapping on its own, further indented line, "
                "or quote a value that contains ': '"
            )
        elif "expected <block end>" in what:
            where = f" (the block that starts at line {e.context_mark.line + 1})" if e.context_mark else ""
            what = (
                f"the indentation does not line up{where}: items of one list or mapping must start in "
                f"the same column, and what belongs to a key goes below it, indented further ({what})"
            )
        elif e.context and e.context_mark:
            what += f" ({e.context} at line {e.context_mark.line + 1})"
        raise _NotYaml(f"{_at(filename, e.problem_mark)}: invalid YAML: {what}") from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        col = e.position - (text.rfind("\n", 0, e.position) + 1) + 1
        raise SpecError(
            f"{filename}:{line}:{col}: the control character #x{e.character:04x} is not allowed in a "
            "spec file; remove it"
        ) from None
    except yaml.YAMLError as e:
        raise _NotYaml(f"{filename}: invalid YAML: {e}") from None
    except RecursionError:
        raise SpecError(
            f"{filename}: the spec is nested too deeply to read; name intermediate results under nodes:"
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def _is_json(text: str, filename: str) -> bool:
    suffix = Path(filename).suffix.lower()
    return suffix == ".json" or (suffix not in (".yaml", ".yml") and text.lstrip().startswith("{"))


class _DuplicateKey(ValueError):
    """A key defined twice in one JSON object (located later, by the composer)."""


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(f"the key '{k}' is defined twice in one object; keep one")
        out[k] = v
    return out


def _read_json(text: str, filename: str) -> tuple[Any, Source]:
    """JSON is checked by the json module (for JSON's own error messages), then composed as
    YAML (JSON is YAML's flow style) for positions."""
    problem: str | None = None  # found by the json module, located by the composer below
    data: Any = None
    try:
        data = json.loads(text, object_pairs_hook=_json_pairs)
    except json.JSONDecodeError as e:
        raise SpecError(f"{filename}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    except _DuplicateKey as e:
        problem = str(e)
    except ValueError:  # int() refuses a number of more than 4300 digits
        problem = "a number has thousands of digits, too large to be a number here"
    except RecursionError:
        raise SpecError(f"{filename}: the spec is nested too deeply to read") from None
    composed = _try_compose(text, filename)  # reports a duplicate key with its position
    if composed is not None:
        return composed
    if problem is not None:
        raise SpecError(f"{filename}: {problem}")
    # Valid JSON that PyYAML cannot compose (rare escapes): the data, without positions.
    return data, Source(filename)


def _try_compose(text: str, filename: str) -> tuple[Any, Source] | None:
    # Raw tabs in valid JSON are whitespace (JSON strings cannot hold them), and YAML's
    # flow style refuses them; a space instead keeps every column where it was.
    try:
        root = _compose(text.replace("\t", " "), filename)
    except _NotYaml:
        return None
    return _to_data(root, filename) if root is not None else (None, Source(filename))


def _check_text(text: str, filename: str) -> None:
    if "\x00" in text:
        raise SpecError(f"{filename}: contains NUL bytes: this is a binary file, not a YAML or JSON spec")
    if len(text) > MAX_BYTES:
        raise SpecError(
            f"{filename}: {len(text):,} characters is too large for a spec file (the limit is "
            f"{MAX_BYTES // 1024 // 1024} MB); a spec describes a model, the data goes in a CSV file"
        )
    if not text.strip():
        raise SpecError(
            f"{filename}: the file is empty; a spec needs at least `inputs:` and `output:` (see models/f2c.yaml)"
        )


def _read_yaml(text: str, filename: str) -> tuple[Any, Source]:
    root = _compose(text, filename)
    if root is None:
        raise SpecError(
            f"{filename}: the file holds only comments; a spec needs at least `inputs:` and "
            "`output:` (see models/f2c.yaml)"
        )
    return _to_data(root, filename)


def read_text(path: Path) -> str:
    """The text of the spec file at `path`, after checking it is a readable UTF-8 text file of sane size."""
    name = str(path)
    if not path.exists():
        raise SpecError(f"{name}: no such file; check the path (relative paths start from the current folder)")
    if path.is_dir():
        found = sorted(p.name for p in path.iterdir() if p.suffix.lower() in (".yaml", ".yml", ".json"))[:5]
        hint = f" such as {path / found[0]}" if found else ""
        raise SpecError(f"{name}: is a folder, not a spec file; pass one .yaml or .json file{hint}")
    if not path.is_file():
        raise SpecError(f"{name}: is not a regular file; pass a .yaml or .json spec file")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise SpecError(
            f"{name}: {size:,} bytes is too large for a spec file (the limit is "
            f"{MAX_BYTES // 1024 // 1024} MB); a spec describes a model, the data goes in a CSV file"
        )
    try:
        with path.open("rb") as f:
            note_read(f.fileno())
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise SpecError(f"{name}: cannot be read: {e.strerror or e}") from None
    if b"\x00" in raw:
        raise SpecError(f"{name}: contains NUL bytes: this is a binary file, not a YAML or JSON spec")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise SpecError(
            f"{name}:{line}: is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); save the spec as UTF-8"
        ) from None


def read_data(text: str, filename: str) -> tuple[Any, Source]:
    """Plain data and its positions from a spec's text; `filename` is used in messages and tells JSON from YAML."""
    text = text.removeprefix("\ufeff")
    _check_text(text, filename)
    return _read_json(text, filename) if _is_json(text, filename) else _read_yaml(text, filename)
