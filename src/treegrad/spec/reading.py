"""Reading a spec file: its text, read defensively, to plain data plus the position of every part.

This is the first of a spec's three stages (then `spec` validates the data's shape, and
`analysis` checks what a shape cannot show). The text is checked for size, encoding and NUL
bytes, then parsed by libyaml (PyYAML's pure-Python parser where libyaml is missing) and read
from the parser's events with YAML 1.2 scalars; anchors, aliases and tags are refused, so
nothing but plain data comes out. JSON is read by the json module (for its own messages) and
parsed the same way for positions. The result is plain Python data
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

from ..errors import SettingError, SpecError
from ..errors import clip as _clip
from ..files import note_read

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
    """Where a spec came from: its file name, and the line/column of every path in it.

    `given` holds the paths whose values were given elsewhere (`--set` on the command line):
    a problem at or below one is placed there, not at a line of the file."""

    filename: str
    values: dict[SpecPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[SpecPath, tuple[int, int]] = field(default_factory=dict)
    given: dict[SpecPath, str] = field(default_factory=dict)

    def given_by(self, path: SpecPath) -> str | None:
        """Where the value at `path` (or at an ancestor) was given instead of the file, if it was."""
        for n in range(len(path), 0, -1):
            if path[:n] in self.given:
                return self.given[path[:n]]
        return None

    def position(self, path: SpecPath, key: bool = False) -> tuple[int, int] | None:
        """(line, column), 1-based, of `path` (of its key with `key`), else of its nearest ancestor."""
        if self.given_by(path) is not None:
            return None
        if key and path in self.keys:
            return self.keys[path]
        for n in range(len(path), -1, -1):
            if path[:n] in self.values:
                return self.values[path[:n]]
        return None

    def where(self, path: SpecPath, key: bool = False) -> str:
        """`file:line:col` of `path`, just `file` when positions are unknown, or the option that gave it."""
        given = self.given_by(path)
        if given is not None:
            return given
        pos = self.position(path, key)
        return f"{self.filename}:{pos[0]}:{pos[1]}" if pos else self.filename

    def message(self, path: SpecPath, text: str, key: bool = False) -> str:
        """`file:line:col: path: text`."""
        shown = format_path(path)
        return f"{self.where(path, key)}: {shown + ': ' if shown else ''}{text}"

    def error(self, path: SpecPath, text: str, key: bool = False) -> SpecError:
        """A SpecError located at `path` (a SettingError if the value there was given by an option)."""
        cls = SettingError if self.given_by(path) is not None else SpecError
        return cls(self.message(path, text, key))


# ----------------------------------------------------------------- reading YAML


class _NotYaml(SpecError):
    """Text the YAML parser cannot read (a syntax error, not a refused feature)."""


_STR, _INT, _FLOAT, _BOOL, _NULL, _SEQ, _MAP = (
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "seq", "map")
)


class _Resolver(yaml.resolver.BaseResolver):
    """YAML 1.2 scalars: `1e-3` is a number (PyYAML's YAML 1.1 reads it as text) and `on`,
    `no`, `y` are text, not booleans."""

    # A fresh table, not a copy: PyYAML's add_implicit_resolver would append to lists
    # shared with its own resolvers.
    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {}  # type: ignore[misc]


_Resolver.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Resolver.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
# Plain nan/inf spellings resolve to floats too, so that they are refused as non-finite
# rather than read as names.
_Resolver.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.?(?:inf|Inf|INF|infinity|Infinity|INFINITY)|\.?(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789.iInN"),
)
_Resolver.add_implicit_resolver(_NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])


_RESOLVER = _Resolver()


class _PyParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """PyYAML's pure-Python reader, scanner and parser: events, nothing constructed."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)


# libyaml's parser, when PyYAML was built with it: the same events, made in C. PyYAML's own
# parser took most of a second per 100 KB of spec (about 9 s for 600 KB, and 89 s on a
# loaded machine); libyaml's takes a tenth of that.
_CParser: Any
try:
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML's wheels include libyaml
    _CParser = None


def _position(event: Any) -> tuple[int, int]:
    """(line, column), 1-based, where an event starts."""
    return event.start_mark.line + 1, event.start_mark.column + 1


def _at(filename: str, mark: Any) -> str:
    return f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark is not None else filename


def _scalar(event: yaml.ScalarEvent, filename: str) -> Any:
    """A scalar's value, for the plain-data tags only."""
    text = event.value
    tag = _RESOLVER.resolve(yaml.ScalarNode, text, event.implicit) if event.tag in (None, "!") else event.tag
    where = _at(filename, event.start_mark)
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


def _refuse_reuse(event: yaml.Event, filename: str) -> None:
    """Anchors and aliases are refused where they appear: aliases to aliases are how
    "billion laughs" files blow up."""
    where = _at(filename, event.start_mark)
    if isinstance(event, yaml.AliasEvent):
        raise SpecError(
            f"{where}: alias '*{event.anchor}': anchors and aliases are not supported "
            "in spec files (they allow exponential 'billion laughs' blow-ups); "
            "to reuse a part of the model, name it under nodes: and refer to it by name"
        )
    anchor = getattr(event, "anchor", None)
    if anchor is not None:
        raise SpecError(
            f"{where}: anchor '&{anchor}': anchors and aliases are not supported in "
            "spec files; to reuse a part of the model, name it under nodes: and refer to it by name"
        )


def _collection(event: yaml.CollectionStartEvent, kind: type[yaml.Node], tag: str, filename: str) -> None:
    """Refuse a list or mapping with a tag other than its plain one."""
    resolved = _RESOLVER.resolve(kind, None, event.implicit) if event.tag in (None, "!") else event.tag
    if resolved != tag:
        raise _tag_error(resolved, _at(filename, event.start_mark))


@dataclass
class _Open:
    """A list or mapping being read: its path, and for a mapping the key awaiting its value."""

    path: SpecPath
    items: list[Any] | dict[str, Any]
    key: str | None = None


def _read_events(parser: Any, filename: str) -> tuple[Any, Source] | None:
    """Plain data and the position of every path in it, from the parser's events in one
    pass with an explicit stack of open lists and mappings (None for a file of comments)."""
    source = Source(filename)
    parser.get_event()  # the stream's start
    if isinstance(parser.peek_event(), yaml.StreamEndEvent):
        return None
    parser.get_event()  # the document's start
    root: Any = None
    stack: list[_Open] = []
    while True:
        event = parser.get_event()
        if isinstance(event, yaml.CollectionEndEvent):
            stack.pop()
            if not stack:
                break
            continue
        _refuse_reuse(event, filename)
        top = stack[-1] if stack else None
        if isinstance(top, _Open) and isinstance(top.items, dict) and top.key is None:
            top.key = _key(event, top, source, filename)
            continue
        if top is None:
            path: SpecPath = ()
        elif isinstance(top.items, list):
            path = top.path + (len(top.items),)
        else:
            assert top.key is not None
            path = top.path + (top.key,)
        source.values[path] = _position(event)
        value: Any
        if isinstance(event, yaml.ScalarEvent):
            value = _scalar(event, filename)
        elif isinstance(event, yaml.SequenceStartEvent):
            _collection(event, yaml.SequenceNode, _SEQ, filename)
            value = []
        else:
            assert isinstance(event, yaml.MappingStartEvent), event
            _collection(event, yaml.MappingNode, _MAP, filename)
            value = {}
        if top is None:
            root = value
        elif isinstance(top.items, list):
            top.items.append(value)
        else:
            assert top.key is not None
            top.items[top.key], top.key = value, None
        if isinstance(value, (list, dict)):
            if len(stack) == MAX_NESTING:
                raise SpecError(
                    f"{_at(filename, event.start_mark)}: nested more than {MAX_NESTING} levels deep; give "
                    "intermediate results names under nodes: and refer to them by name"
                )
            stack.append(_Open(path, value))
        elif not stack:
            break
    parser.get_event()  # the document's end
    event = parser.get_event()
    if not isinstance(event, yaml.StreamEndEvent):
        raise SpecError(
            f"{_at(filename, event.start_mark)}: a spec file holds one YAML document; remove the "
            "second '---' and what follows it"
        )
    return root, source


def _key(event: yaml.Event, mapping: _Open, source: Source, filename: str) -> str:
    """The key `event` starts in `mapping`, checked to be a new plain name and recorded with its position."""
    where = _at(filename, event.start_mark)
    if not isinstance(event, yaml.ScalarEvent):
        raise SpecError(f"{where}: {_prefix(mapping.path)}a key must be a plain name, not a list or mapping")
    key = _scalar(event, filename)
    if not isinstance(key, str):
        raise SpecError(
            f"{where}: {_prefix(mapping.path)}the key {key!r} is not a name; keys are names "
            "such as inputs or epochs (quote it to make it text)"
        )
    path = mapping.path + (key,)
    if key in mapping.items:
        first = source.keys[path]
        raise SpecError(
            f"{where}: {format_path(path)}: the key '{key}' is defined twice in "
            f"this mapping (first at line {first[0]}); keep one"
        )
    source.keys[path] = _position(event)
    return key


class _LibyamlRefused(Exception):
    """An escape libyaml refuses: PyYAML reads surrogate pairs written as two escapes, and names a wrong escape."""


def _read_yaml_data(text: str, filename: str) -> tuple[Any, Source] | None:
    """Plain data and positions from YAML text, by libyaml's parser when PyYAML has it, else
    by PyYAML's own (None for a file of comments)."""
    if _CParser is not None:
        try:
            return _read_with(_CParser, text, filename)
        except _LibyamlRefused:
            pass  # rare, and read the slow way
    return _read_with(_PyParser, text, filename)


def _read_with(parser_class: Any, text: str, filename: str) -> tuple[Any, Source] | None:
    parser = None
    try:
        parser = parser_class(text)  # the reader checks for unprintable characters right here
        return _read_events(parser, filename)
    except yaml.MarkedYAMLError as e:
        raise _NotYaml(_syntax_message(e, text, filename, parser_class)) from None
    except yaml.reader.ReaderError as e:
        position = e.position
        if parser_class is not _PyParser:  # libyaml counts UTF-8 bytes
            position = len(text.encode("utf-8")[:position].decode("utf-8", "ignore"))
        line = text.count("\n", 0, position) + 1
        col = position - (text.rfind("\n", 0, position) + 1) + 1
        raise SpecError(
            f"{filename}:{line}:{col}: the control character #x{e.character:04x} is not allowed in a "
            "spec file; remove it"
        ) from None
    except yaml.YAMLError as e:
        raise _NotYaml(f"{filename}: invalid YAML: {e}") from None
    finally:
        if parser is not None:
            parser.dispose()


def _syntax_message(e: yaml.MarkedYAMLError, text: str, filename: str, parser_class: Any) -> str:
    """`file:line:col: invalid YAML: ...`, saying what to do, from either parser's problem text."""
    what = e.problem or "cannot be read"
    mark = e.problem_mark
    if parser_class is not _PyParser and "escape" in what:
        raise _LibyamlRefused(what)
    if "'\\t'" in what or (
        "cannot start any token" in what and mark is not None and text[mark.index : mark.index + 1] == "\t"
    ):
        what = "a tab character; YAML indents with spaces only: replace the tab with spaces"
    elif "mapping values are not allowed" in what:
        what = (
            "a second ':' on this line: put a nested mapping on its own, further indented line, "
            "or quote a value that contains ': '"
        )
    # PyYAML's words, then libyaml's, for a block that ends where it should not
    elif "expected <block end>" in what or what in ("did not find expected key", "did not find expected '-' indicator"):
        where = f" (the block that starts at line {e.context_mark.line + 1})" if e.context_mark else ""
        what = (
            f"the indentation does not line up{where}: items of one list or mapping must start in "
            f"the same column, and what belongs to a key goes below it, indented further ({what})"
        )
    elif e.context and e.context_mark:
        what += f" ({e.context} at line {e.context_mark.line + 1})"
    return f"{_at(filename, mark)}: invalid YAML: {what}"


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
    composed = _try_yaml(text, filename)  # reports a duplicate key with its position
    if composed is not None:
        return composed
    if problem is not None:
        raise SpecError(f"{filename}: {problem}")
    # Valid JSON that PyYAML cannot compose (rare escapes): the data, without positions.
    return data, Source(filename)


def _try_yaml(text: str, filename: str) -> tuple[Any, Source] | None:
    # Raw tabs in valid JSON are whitespace (JSON strings cannot hold them), and YAML's
    # flow style refuses them; a space instead keeps every column where it was.
    try:
        read = _read_yaml_data(text.replace("\t", " "), filename)
    except _NotYaml:
        return None
    return read if read is not None else (None, Source(filename))


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
    read = _read_yaml_data(text, filename)
    if read is None:
        raise SpecError(
            f"{filename}: the file holds only comments; a spec needs at least `inputs:` and "
            "`output:` (see models/f2c.yaml)"
        )
    return read


SPEC_SUFFIXES = ("", ".yaml", ".yml", ".json")  # a spec file's name ends so (none: the user left it out)


def read_text(path: Path) -> str:
    """The text of the spec file at `path`, after checking it is a readable UTF-8 text file of sane size."""
    name = str(path)
    if not path.exists():
        hint = "check the path (relative paths start from the current folder)"
        if path.suffix.lower() in SPEC_SUFFIXES:  # f2c.yml for f2c.yaml: the file the user meant
            others = [path.with_suffix(s) for s in SPEC_SUFFIXES if s not in (path.suffix.lower(), "")]
            hint = next((f"did you mean {p}?" for p in others if p.is_file()), hint)
        raise SpecError(f"{name}: no such file; {hint}")
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


def read_value(text: str, where: str) -> Any:
    """One value in YAML flow style, as typed on a command line (`1e-3`, `adam`, `[a, b]`,
    `{type: cosine}`), read by a spec file's rules: YAML 1.2 scalars, plain data only."""
    read = _read_yaml_data(text, where)
    return None if read is None else read[0]


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting by the reader's YAML 1.2 rules: a text that this module would
    read as something else (`1e5`, `nan`) is quoted, and one with a line break or another
    unprintable character is written in double quotes, where each is an escape."""

    yaml_implicit_resolvers = _Resolver.yaml_implicit_resolvers


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    # PyYAML writes a NEL or a Unicode line separator raw inside single quotes, where reading
    # folds it into a space; in double quotes it is an escape, read back as itself.
    return dumper.represent_scalar(_STR, text, style=None if text.isprintable() else '"')


_Dumper.add_representer(str, _represent_text)


def dump_data(data: Any) -> str:
    """Plain data as YAML text, keys in their order, that `read_data` reads back as the same data."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def read_data(text: str, filename: str) -> tuple[Any, Source]:
    """Plain data and its positions from a spec's text; `filename` is used in messages and tells JSON from YAML."""
    text = text.removeprefix("\ufeff")
    _check_text(text, filename)
    return _read_json(text, filename) if _is_json(text, filename) else _read_yaml(text, filename)
