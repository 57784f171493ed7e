"""Spec files: a model described in YAML or JSON, checked with errors that point at the source.

A spec goes through three stages, and each reports a problem as one `SpecError` whose
message reads `file:line:col: path.in[0].spec: what is wrong — what to do`:

1. load: the text is read defensively (size, encoding, NUL bytes) and composed by PyYAML's
   safe composer with YAML 1.2 scalars; anchors, aliases and tags are refused, so nothing
   but plain data comes out. The result is plain Python data plus a `Source`, a map from
   each path in the spec to its line and column.
2. validate: the pydantic models below check the shape. An expression is a recursive union
   told apart by a callable discriminator (a number, a name, or a one-key mapping whose key
   is the op), so a bad expression gives one error, not one per union branch.
3. analyse: what pydantic cannot see: names in scope, cycles among `nodes:`, layer widths,
   where a softmax may stand, whether the loss fits the output.

The format (see models/*.yaml for examples):

    name: f2c                     # optional, default: the file's stem
    inputs: [f]                   # input names, in CSV-column / predict-argument order
    nodes: {h: {relu: f}}         # optional named expressions, usable any number of times
    output: {add: [{mul: [param, f]}, param]}   # or a list of expressions, or a softmax
    layers:                       # instead of output: a stack of linear layers, each over the
      - {linear: 8, activation: relu}   # previous one's outputs (the first over the inputs);
      - {linear: 3}                     # a softmax output is the last layer {softmax: true}
      - {softmax: true}
    loss: mse                     # mse | mae | bce | cross_entropy
    data: f2c                     # a built-in dataset or a CSV path relative to the spec
    target: c                     # the CSV column to learn
    classes: [a, b, c]            # label order, for classifiers
    training: {epochs: 100, learning_rate: 0.01, ...}
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from .errors import SpecError, describe_char, did_you_mean, escaped, unprintable
from .errors import clip as _clip
from .losses import LOSSES
from .nodes import ACTIVATIONS
from .ops import OPS
from .optim import OPTIMIZERS

MAX_BYTES = 1024 * 1024  # a spec is a page of text; anything bigger is not one
MAX_NESTING = 100  # deeper than this, pydantic's own recursion guard would trip: name parts in nodes:
MAX_SHOWN = 3  # pydantic problems listed in one message
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A model's name becomes the default file name NAME.model.json in the current folder, so it
# may not hold a path: `name: ../../x` must not write outside it.
MODEL_NAME = re.compile(r"\w[\w.-]{0,99}\Z")
RESERVED = ("param",)  # `param` in an expression makes a fresh parameter, so it cannot name anything

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


# ----------------------------------------------------------------- stage 1: load


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


def _describe(v: Any) -> str:
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


def load_spec(path: Path) -> Spec:
    """Read, validate and analyse the spec file at `path`; any problem is a located SpecError."""
    path = Path(path)
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
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise SpecError(f"{name}: cannot be read: {e.strerror or e}") from None
    if b"\x00" in raw:
        raise SpecError(f"{name}: contains NUL bytes: this is a binary file, not a YAML or JSON spec")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise SpecError(
            f"{name}:{line}: is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); save the spec as UTF-8"
        ) from None
    return parse_spec(text, name, default_name=path.stem)


def parse_spec(text: str, filename: str = "<spec>", *, default_name: str | None = None) -> Spec:
    """Validate and analyse a spec given as text; `filename` is used in messages (and for JSON detection)."""
    text = text.removeprefix("\ufeff")
    _check_text(text, filename)
    data, source = _read_json(text, filename) if _is_json(text, filename) else _read_yaml(text, filename)
    if default_name is None and Path(filename).suffix.lower() in (".yaml", ".yml", ".json"):
        default_name = Path(filename).stem
    return validate_spec(data, source, default_name=default_name)


def _read_yaml(text: str, filename: str) -> tuple[Any, Source]:
    root = _compose(text, filename)
    if root is None:
        raise SpecError(
            f"{filename}: the file holds only comments; a spec needs at least `inputs:` and "
            "`output:` (see models/f2c.yaml)"
        )
    return _to_data(root, filename)


# ----------------------------------------------------------------- stage 2: the models

if TYPE_CHECKING:
    Activation = str
    LossName = str
    OptimizerName = str
else:
    Activation = Literal[tuple(ACTIVATIONS)]
    LossName = Literal[tuple(LOSSES)]
    OptimizerName = Literal[tuple(OPTIMIZERS)]


def _custom(text: str, *at: str | int, on_key: bool = False) -> PydanticCustomError:
    """A validation error with our own message; `at` is its path below the validated value,
    `on_key` points at that path's key rather than its value."""
    # The text goes in through the context, so braces in it are not read as placeholders.
    return PydanticCustomError("spec", "{message}", {"message": text, "at": at, "on_key": on_key})


class _Strict(BaseModel):
    """Base of every spec model: unknown keys, NaN/inf and type coercions are all refused."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, use_attribute_docstrings=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        # Checked here rather than by extra='forbid' so the message can suggest the right key.
        if isinstance(data, dict):
            allowed = list(cls.model_fields)
            for key in data:
                if key not in allowed:
                    raise _custom(
                        f"unknown key '{key}'{did_you_mean(str(key), allowed)} Keys allowed here: {', '.join(allowed)}",
                        key,
                        on_key=True,
                    )
        return data


def _activation_hint(v: Any) -> Any:
    if v == "softmax":
        raise _custom(
            "'softmax' is not an activation of single units (it mixes a whole layer); "
            "under layers: end with the layer {softmax: true}; in an expression write "
            "{softmax: {linear: {...}}}"
        )
    return v


class _Call(_Strict):
    """A one-key mapping `{keyword: arguments}` inside an expression."""

    keyword: ClassVar[str] = ""


class ParamInit(_Strict):
    """`{param: {init: 0.5, name: bias}}`: a parameter's initial value (random if absent) and name."""

    init: float | None = None
    name: str | None = None


def _param_tag(v: Any) -> str | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return "<value>"
    if isinstance(v, (dict, ParamInit)):
        return "<init>"
    return None


class ParamCall(_Call):
    """`{param: 0.5}` or `{param: {init: 0.5, name: bias}}`: a trainable parameter."""

    keyword: ClassVar[str] = "param"
    param: Annotated[
        Annotated[float, Tag("<value>")] | Annotated[ParamInit, Tag("<init>")],
        Discriminator(
            _param_tag,
            custom_error_type="param_value",
            custom_error_message="param takes a number (its initial value) or {init: number, name: text}",
        ),
    ]


class OpCall(_Call):
    """`{op: arguments}` for an op of the op table: a list for several arguments, else one expression."""

    @model_validator(mode="before")
    @classmethod
    def _arity(cls, data: Any) -> Any:
        if not isinstance(data, dict) or cls.keyword not in data:
            return data
        op, args = OPS[cls.keyword], data[cls.keyword]
        if op.arity == 1:
            if isinstance(args, list):
                raise _custom(
                    f"'{op.name}' takes one expression, not a list of {len(args)}: write "
                    f"{{{op.name}: x}}" + (f" (for several, {{{op.name}: {{add: [...]}}}})" if len(args) > 1 else ""),
                    op.name,
                )
            return data
        if not isinstance(args, list):
            example = "[base, 2]" if op.constant_args else "[a, b]"
            raise _custom(
                f"'{op.name}' takes a list of {'at least 2' if op.arity is None else op.arity} "
                f"expressions, e.g. {{{op.name}: {example}}}; found {_describe(args)}",
                op.name,
            )
        problem = op.check_arity(len(args))
        if problem:
            raise _custom(problem, op.name)
        for i in op.constant_args:
            a = args[i]
            if isinstance(a, bool) or not isinstance(a, (int, float)):
                raise _custom(
                    f"argument {i + 1} of '{op.name}' must be a constant number, found {_describe(a)}"
                    + ("; for a learned exponent write {exp: {mul: [param, {log: x}]}}" if op.name == "pow" else ""),
                    op.name,
                    i,
                )
        return data


def _shape(v: Any) -> str:
    return "<list>" if isinstance(v, list) else "<one>"


def _list_or_one(item: Any) -> Any:
    """`list[item] | item`, told apart by shape so that errors come from one branch only."""
    return Annotated[
        Annotated[list[item], Tag("<list>")] | Annotated[item, Tag("<one>")],  # type: ignore[valid-type]
        Discriminator(_shape),
    ]


class LinearLayer(_Strict):
    """`{linear: {inputs: [...], units: k, activation: relu, bias: true}}`: k neurons over the inputs."""

    inputs: ExprList
    units: Annotated[int, Field(ge=1)] | None = None
    activation: Activation = "none"
    bias: bool = True

    _softmax_hint = field_validator("activation", mode="before")(_activation_hint)


def _linear_tag(v: Any) -> str | None:
    if isinstance(v, list):
        return "<neuron>"
    if isinstance(v, str):
        return "<over>"
    if isinstance(v, (dict, LinearLayer)):
        return "<layer>"
    return None


class LinearCall(_Call):
    """`{linear: [e1, ..., en]}` or `{linear: layer_name}`: one neuron w·e + b;
    `{linear: {inputs: ..., units: k, ...}}`: a layer of k neurons."""

    keyword: ClassVar[str] = "linear"
    linear: Annotated[
        Annotated[list[Expr], Tag("<neuron>"), Field(min_length=1)]
        | Annotated[str, Tag("<over>")]
        | Annotated[LinearLayer, Tag("<layer>")],
        Discriminator(
            _linear_tag,
            custom_error_type="linear_args",
            custom_error_message="linear takes a list of expressions or a node name (one neuron), or "
            "{inputs: [...], units: k, activation: relu} (a layer)",
        ),
    ]


class SoftmaxCall(_Call):
    """`{softmax: [e1, ...]}` or `{softmax: layer}`: probabilities; only as the model's output."""

    keyword: ClassVar[str] = "softmax"
    softmax: ExprList


def _op_model(name: str) -> type[OpCall]:
    op = OPS[name]
    annotation = "Expr" if op.arity == 1 else "list[Expr]"
    model: type[OpCall] = create_model(  # type: ignore[call-overload]
        f"{op.cls}Op",
        __base__=OpCall,
        __module__=__name__,
        __doc__=f"`{{{name}: {'x' if op.arity == 1 else '[...]'}}}`: {op.doc}.",
        **{name: (annotation, ...)},
    )
    model.keyword = name
    return model


OP_MODELS: dict[str, type[OpCall]] = {name: _op_model(name) for name in OPS}
CALLS: dict[str, type[_Call]] = {**OP_MODELS, "param": ParamCall, "linear": LinearCall, "softmax": SoftmaxCall}


def _expr_tag(v: Any) -> str | None:
    """The branch of the expression union for a value (None: not an expression)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return "<number>"
    if isinstance(v, str):
        return "<name>"
    if isinstance(v, dict):
        if len(v) == 1 and next(iter(v)) in CALLS:
            return f"<{next(iter(v))}>"
        return None
    if isinstance(v, _Call):
        return f"<{v.keyword}>"
    return None


if TYPE_CHECKING:
    Expr = float | str | _Call
    ExprList = list[Expr] | Expr
else:
    Expr = TypeAliasType(
        "Expr",
        Annotated[
            Union[  # noqa: UP007 - a union built at run time from the op table
                tuple(
                    [Annotated[float, Tag("<number>")], Annotated[str, Tag("<name>")]]
                    + [Annotated[m, Tag(f"<{k}>")] for k, m in CALLS.items()]
                )
            ],
            Discriminator(_expr_tag, custom_error_type="expression", custom_error_message="not an expression"),
        ],
    )
    ExprList = TypeAliasType("ExprList", _list_or_one(Expr))

_recursive: list[type[BaseModel]] = [LinearLayer, LinearCall, SoftmaxCall, *OP_MODELS.values()]
for _model in _recursive:
    _model.model_rebuild()


class EarlyStopping(_Strict):
    """Stop when the validation loss has not improved for `patience` epochs (keeping the best)."""

    patience: Annotated[int, Field(ge=1)]


class Training(_Strict):
    """How to train; every key has a default."""

    epochs: Annotated[int, Field(ge=0)] = 100
    """Passes over the training data."""
    learning_rate: Annotated[float, Field(gt=0)] = 0.01
    """Step size of the optimizer."""
    batch_size: Annotated[int, Field(ge=1)] = 1
    """Samples per step: 1 for per-sample SGD, more for mean-gradient mini-batches."""
    optimizer: OptimizerName = "sgd"
    """The update rule."""
    seed: int = 0
    """Seeds the initial weights, the shuffling and the validation split."""
    shuffle: bool = True
    """Shuffle the samples every epoch."""
    validation_split: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Fraction of the rows held out to measure the model on data it did not train on."""
    early_stopping: EarlyStopping | None = None
    """Stop when the validation loss stops improving (needs validation_split)."""
    normalize: bool = False
    """Standardise each input with the training rows' mean and deviation (built into the graph)."""


class DenseLayer(_Strict):
    """`{linear: 8, activation: relu}` under layers: k units over the previous layer's outputs."""

    linear: Annotated[int, Field(ge=1)]
    activation: Activation = "none"
    bias: bool = True

    _softmax_hint = field_validator("activation", mode="before")(_activation_hint)


class SoftmaxLayer(_Strict):
    """`{softmax: true}` as the last of layers: a softmax over the previous layer."""

    softmax: Literal[True]


def _layer_tag(v: Any) -> str | None:
    if isinstance(v, DenseLayer) or (isinstance(v, dict) and "linear" in v):
        return "<linear>"
    if isinstance(v, SoftmaxLayer) or (isinstance(v, dict) and "softmax" in v):
        return "<softmax>"
    return None


Layer = Annotated[
    Annotated[DenseLayer, Tag("<linear>")] | Annotated[SoftmaxLayer, Tag("<softmax>")],
    Discriminator(
        _layer_tag,
        custom_error_type="layer",
        custom_error_message="a layer is {linear: units, activation: relu} or, last, {softmax: true}",
    ),
]


class Spec(_Strict):
    """A whole spec file: the model, its loss, data and training settings."""

    name: str | None = None
    """The model's name (default: the file's stem)."""
    description: str | None = None
    """What the model is for."""
    inputs: list[str]
    """Input names, in CSV-column / predict-argument order."""
    nodes: dict[str, Expr] = Field(default_factory=dict)
    """Named expressions; a name used several times is one shared node."""
    output: ExprList | None = None
    """The model: an expression, a list of them, or {softmax: [...]}."""
    layers: list[Layer] | None = None
    """Instead of output: a stack of {linear: units, activation: ...}, optionally ending in {softmax: true}."""
    loss: LossName | None = None
    """Default: cross_entropy for a softmax output, else mse."""
    data: str | None = None
    """A built-in dataset name, or a CSV path relative to this file."""
    target: str | None = None
    """The CSV column to learn."""
    classes: list[str] | None = None
    """For classifiers: the labels, in output order."""
    training: Training = Field(default_factory=Training)
    """How to train; every key has a default."""

    _source: Source = PrivateAttr(default_factory=lambda: Source("<spec>"))
    _analysis: Analysis | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _name_is_a_file_name(cls, v: str | None) -> str | None:
        if v is not None and not MODEL_NAME.match(v):
            raise _custom(
                f"the name {v[:40]!r} cannot be used: it names the model file (NAME.model.json), so "
                "write letters, digits, _, - and . (not first; at most 100), e.g. name: f2c_v2"
            )
        return v

    @field_validator("classes", mode="before")
    @classmethod
    def _labels_as_text(cls, v: Any) -> Any:
        # `classes: [0, 1]` names labels that a CSV holds as text "0", "1".
        if isinstance(v, list):
            return [str(c) if isinstance(c, int) and not isinstance(c, bool) else c for c in v]
        return v

    @model_validator(mode="after")
    def _attach(self, info: ValidationInfo) -> Spec:
        if isinstance(info.context, dict) and isinstance(info.context.get("source"), Source):
            self._source = info.context["source"]
        return self

    @property
    def source(self) -> Source:
        """Where this spec came from (file name and positions), for located errors."""
        return self._source

    @property
    def analysis(self) -> Analysis:
        """The checked facts about the model: node order, widths, output kind (computed once)."""
        if self._analysis is None:
            self._analysis = analyse(self)
        return self._analysis

    def error(self, path: SpecPath, text: str, key: bool = False) -> SpecError:
        """A SpecError at `path` of this spec's source."""
        return self._source.error(path, text, key)


# ----------------------------------------------------------------- rendering pydantic errors

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


def explain_expression(v: Any) -> str:
    """Why `v` is not an expression, and what would be."""
    kinds = "a number, an input or node name, param, or a one-key mapping {op: arguments}"
    if v is None:
        return f"an empty expression; write {kinds}"
    if isinstance(v, bool):
        return f"{str(v).lower()} is not an expression; write {kinds}"
    if isinstance(v, list):
        return (
            f"a list ({len(v)} items) is not an expression here; lists go where several arguments are "
            "taken, as in {add: [a, b]}"
        )
    if isinstance(v, dict):
        keys = list(v)
        if not keys:
            return f"an empty mapping {{}} is not an expression; write {kinds}"
        if len(keys) > 1:
            ops = [k for k in keys if k in CALLS]
            hint = ""
            if "linear" in keys and not isinstance(v.get("linear"), (list, dict)):
                hint = (
                    " ({linear: 8, activation: relu} is a layer under layers:; in an expression a layer is "
                    "{linear: {inputs: [...], units: 8, activation: relu}})"
                )
            elif len(ops) > 1:
                hint = " (write one op per mapping and nest them, e.g. {add: [{mul: [a, b]}, c]})"
            return (
                f"an expression mapping has exactly one key, the op; found {len(keys)}: "
                f"{', '.join(str(k) for k in keys)}{hint}"
            )
        key = str(keys[0])
        return f"unknown op '{key}'{did_you_mean(key, CALLS)} Ops are: {', '.join(CALLS)}"
    return f"{_describe(v)} is not an expression; write {kinds}"


def _problem(err: Any, data: Any, source: Source) -> tuple[tuple[int, int], str]:
    """(position, located message) for one pydantic error."""
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
        text = f"{_describe(got)} is not allowed{mean} Allowed: {', '.join(choices)}"
    elif kind == "recursion_loop" or kind == "recursion_depth_exceeded":
        text = "nested too deeply; give intermediate results names under nodes:"
    elif kind in ("param_value", "linear_args", "layer"):
        text = f"{err['msg']}; found {_describe(err.get('input'))}"
    elif kind in ("too_short", "too_long"):
        n = ctx.get("min_length", ctx.get("max_length"))
        text = f"needs {'at least' if kind == 'too_short' else 'at most'} {n} item{'s' if n != 1 else ''}"
    else:
        msg = _FRIENDLY.get(kind) or str(err["msg"]).replace("Input should", "must")
        text = f"{msg}, found {_describe(err.get('input'))}"
    pos = source.position(path, key) or (0, 0)
    return pos, source.message(path, text, key)


def _render(e: ValidationError, data: Any, source: Source) -> SpecError:
    problems = sorted(set(_problem(err, data, source) for err in e.errors()))
    if len(problems) == 1:
        return SpecError(problems[0][1])
    shown = [f"  - {text}" for _, text in problems[:MAX_SHOWN]]
    more = len(problems) - MAX_SHOWN
    tail = [f"  (and {more} more)"] if more > 0 else []
    return SpecError("\n".join([f"{source.filename}: {len(problems)} problems in the spec:", *shown, *tail]))


def validate_spec(data: Any, source: Source | None = None, *, default_name: str | None = None) -> Spec:
    """A checked Spec from plain data (as loaded from YAML/JSON), with errors located via `source`."""
    source = source or Source("<spec>")
    if not isinstance(data, dict):
        raise source.error((), f"a spec is a mapping of keys such as inputs: and output:, found {_describe(data)}")
    try:
        spec = Spec.model_validate(data, context={"source": source})
    except ValidationError as e:
        raise _render(e, data, source) from None
    if spec.name is None and default_name:
        if not MODEL_NAME.match(default_name):
            raise source.error(
                (),
                f"the file name '{escaped(default_name)}' cannot name the model (it names the model file): "
                "add a name: key made of letters, digits, '.', '_' or '-'",
            )
        spec.name = default_name
    spec.analysis  # noqa: B018 - the semantic checks run now, so a bad spec fails at load time
    return spec


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of spec files (for editors' completion and checking)."""
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "treegrad model spec"
    schema["description"] = (Spec.__doc__ or "") + " Expressions are numbers, names, `param`, or one-key mappings."
    return schema


# ----------------------------------------------------------------- stage 3: analyse


@dataclass
class Analysis:
    """Facts about a checked spec that building and training need."""

    order: list[str]  # node names, each after the nodes it uses
    widths: dict[str, int]  # node name -> how many values it stands for (a layer: its units)
    output_kind: str  # "scalar" | "list" | "softmax"
    output_count: int


def arguments(e: Any) -> list[tuple[SpecPath, Any, bool]]:
    """An expression's sub-expressions: (path below it, sub-expression, may it be a layer?)."""
    if isinstance(e, OpCall):
        args = getattr(e, e.keyword)
        if isinstance(args, list):
            return [((e.keyword, i), a, False) for i, a in enumerate(args)]
        return [((e.keyword,), args, False)]
    if isinstance(e, LinearCall):
        if isinstance(e.linear, list):
            return [(("linear", i), a, True) for i, a in enumerate(e.linear)]
        if isinstance(e.linear, str):
            return [(("linear",), e.linear, True)]
        ins = e.linear.inputs
        if isinstance(ins, list):
            return [(("linear", "inputs", i), a, True) for i, a in enumerate(ins)]
        return [(("linear", "inputs"), ins, True)]
    if isinstance(e, SoftmaxCall):
        if isinstance(e.softmax, list):
            return [(("softmax", i), a, True) for i, a in enumerate(e.softmax)]
        return [(("softmax",), e.softmax, True)]
    return []


def walk(e: Any, path: SpecPath) -> Iterator[tuple[SpecPath, Any, bool]]:
    """Every sub-expression of `e` with its path, parents first (iterative)."""
    stack: list[tuple[SpecPath, Any, bool]] = [(path, e, True)]
    while stack:
        p, x, layer_ok = stack.pop()
        yield p, x, layer_ok
        stack.extend((p + rel, a, ok) for rel, a, ok in reversed(arguments(x)))


def _roots(spec: Spec) -> list[tuple[SpecPath, Any]]:
    """The top-level expressions: each node's definition, then the output (each list item)."""
    roots: list[tuple[SpecPath, Any]] = [(("nodes", n), e) for n, e in spec.nodes.items()]
    if isinstance(spec.output, list):
        roots += [(("output", i), e) for i, e in enumerate(spec.output)]
    elif spec.output is not None:
        roots.append((("output",), spec.output))
    return roots


def _check_name(spec: Spec, name: str, path: SpecPath, what: str, key: bool = False) -> None:
    if not NAME.match(name):
        raise spec.error(
            path,
            f"{what} '{name}' is not a usable name; use letters, digits and _ "
            "(not starting with a digit), e.g. sepal_length",
            key,
        )
    if name in RESERVED:
        raise spec.error(
            path, f"'{name}' cannot be {what}: in expressions `param` makes a fresh parameter; choose another name", key
        )


def _width(e: Any, widths: dict[str, int]) -> int:
    """How many values an expression stands for: a layer's units, a named layer's width, else 1."""
    if isinstance(e, LinearCall) and isinstance(e.linear, LinearLayer):
        return e.linear.units or 1
    if isinstance(e, str):
        return widths.get(e, 1)
    return 1


def _list_width(e: Any, widths: dict[str, int]) -> int:
    if isinstance(e, list):
        return sum(_width(x, widths) for x in e)
    return _width(e, widths)


def analyse(spec: Spec) -> Analysis:
    """The semantic checks of a validated spec; the first problem found is a located SpecError."""
    _check_inputs(spec)
    _check_model_present(spec)
    deps = _check_names(spec)
    order = _node_order(spec, deps)
    widths: dict[str, int] = {}
    for name in order:
        widths[name] = _width(spec.nodes[name], widths)
    _check_widths(spec, widths)
    kind, count = _output_shape(spec, widths)
    _check_loss_and_labels(spec, kind, count)
    return Analysis(order, widths, kind, count)


def _check_inputs(spec: Spec) -> None:
    if not spec.inputs:
        raise spec.error(
            ("inputs",), "no inputs; list the model's input names (the CSV columns it reads), e.g. inputs: [x, y]"
        )
    seen: dict[str, int] = {}
    for i, name in enumerate(spec.inputs):
        _check_name(spec, name, ("inputs", i), "the input name")
        if name in seen:
            raise spec.error(
                ("inputs", i), f"the input '{name}' is listed twice (also inputs[{seen[name]}]); list each input once"
            )
        seen[name] = i
    for name in spec.nodes:
        _check_name(spec, name, ("nodes", name), "the node name", key=True)
        if name in seen:
            raise spec.error(
                ("nodes", name),
                f"the node '{name}' has the same name as the input "
                f"inputs[{seen[name]}]; a name is defined once: rename the node",
                key=True,
            )
    if spec.target is not None and spec.target in seen:
        raise spec.error(
            ("target",), f"the target '{spec.target}' is also an input; a model cannot learn a column it is given"
        )


def _check_model_present(spec: Spec) -> None:
    if spec.output is not None and spec.layers is not None:
        raise spec.error(
            ("layers",),
            "both output: and layers: are given; a spec describes its model with one of them: remove the other",
            key=True,
        )
    if spec.output is None and spec.layers is None:
        raise spec.error(
            (),
            "the spec has no model: add output: (an expression, e.g. output: {add: [{mul: "
            "[param, x]}, param]}) or layers: (a stack, e.g. layers: [{linear: 1}])",
        )
    if isinstance(spec.output, list) and not spec.output:
        raise spec.error(("output",), "the output is an empty list; give at least one expression")
    if spec.layers is not None:
        if not spec.layers:
            raise spec.error(("layers",), "no layers; give at least one, e.g. layers: [{linear: 1}]")
        for i, layer in enumerate(spec.layers):
            if isinstance(layer, SoftmaxLayer):
                if i != len(spec.layers) - 1:
                    raise spec.error(("layers", i), "{softmax: true} can only be the last layer")
                prev = spec.layers[i - 1] if i else None
                if not isinstance(prev, DenseLayer) or prev.linear < 2:
                    raise spec.error(
                        ("layers", i),
                        "{softmax: true} needs a linear layer of at least 2 units "
                        "before it, one unit per class, e.g. {linear: 3}",
                    )


def _check_names(spec: Spec) -> dict[str, list[tuple[str, SpecPath]]]:
    """Check every name is in scope; return, per node, the nodes it uses (with where)."""
    scope = list(spec.inputs) + list(spec.nodes)
    deps: dict[str, list[tuple[str, SpecPath]]] = {n: [] for n in spec.nodes}
    params: dict[str, SpecPath] = {}
    for root_path, root in _roots(spec):
        owner = str(root_path[1]) if root_path[0] == "nodes" else None
        for path, e, _ in walk(root, root_path):
            if isinstance(e, str) and e != "param":
                if e not in spec.nodes and e not in spec.inputs:
                    raise spec.error(
                        path,
                        f"unknown name '{e}'{did_you_mean(e, scope)} Names in scope: {', '.join(scope)} (and param)",
                    )
                if owner is not None and e in spec.nodes:
                    deps[owner].append((e, path))
            elif isinstance(e, SoftmaxCall) and path != ("output",):
                raise spec.error(
                    path,
                    "softmax can only be the whole model output (output: {softmax: [...]}); "
                    "it gives a list of probabilities that nothing else can take",
                )
            elif isinstance(e, ParamCall) and isinstance(e.param, ParamInit) and e.param.name is not None:
                name = e.param.name
                _check_name(spec, name, path + ("param", "name"), "the parameter name")
                if name in params:
                    first = spec.source.where(params[name])
                    raise spec.error(
                        path + ("param", "name"),
                        f"the parameter name '{name}' is used twice "
                        f"(first at {first}); to use one parameter in two places, define it once "
                        f"under nodes: and refer to it by its node name",
                    )
                if name in spec.inputs:
                    raise spec.error(
                        path + ("param", "name"), f"the parameter name '{name}' is an input's name; choose another"
                    )
                params[name] = path + ("param", "name")
    return deps


def _node_order(spec: Spec, deps: dict[str, list[tuple[str, SpecPath]]]) -> list[str]:
    """Node names with every node after the nodes it uses; a cycle is a located error."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in spec.nodes:
        if state.get(start):
            continue
        state[start] = 1
        stack: list[tuple[str, Iterator[tuple[str, SpecPath]]]] = [(start, iter(deps[start]))]
        while stack:
            name, it = stack[-1]
            for dep, path in it:
                if state.get(dep) == 1:
                    names = [n for n, _ in stack]
                    cycle = " -> ".join(names[names.index(dep) :] + [dep])
                    raise spec.error(
                        path,
                        f"cycle among nodes: {cycle}; a node cannot depend on itself, directly or through other nodes",
                    )
                if not state.get(dep):
                    state[dep] = 1
                    stack.append((dep, iter(deps[dep])))
                    break
            else:
                stack.pop()
                state[name] = 2
                order.append(name)
    return order


def _check_widths(spec: Spec, widths: dict[str, int]) -> None:
    """A layer (several values) may only stand where a list is taken."""
    for root_path, root in _roots(spec):
        for path, e, layer_ok in walk(root, root_path):
            n = _width(e, widths)
            if n != 1 and not layer_ok:
                what = f"'{e}' is a layer of {n} values" if isinstance(e, str) else f"this layer has {n} units"
                raise spec.error(
                    path,
                    f"{what}, but '{path[-2] if isinstance(path[-1], int) else path[-1]}' "
                    "takes single values; a layer can go into linear inputs, softmax or "
                    "the output list (for one value, add a {linear: [...]} over it)",
                )


def _output_shape(spec: Spec, widths: dict[str, int]) -> tuple[str, int]:
    if spec.layers is not None:
        last = spec.layers[-1]
        if isinstance(last, SoftmaxLayer):
            prev = spec.layers[-2]
            assert isinstance(prev, DenseLayer)
            return "softmax", prev.linear
        assert isinstance(last, DenseLayer)
        return ("scalar" if last.linear == 1 else "list"), last.linear
    out = spec.output
    if isinstance(out, SoftmaxCall):
        n = _list_width(out.softmax, widths)
        if n < 2:
            raise spec.error(
                ("output", "softmax"),
                f"a softmax needs at least 2 values (one per class), got {n}; "
                "for one probability use {sigmoid: ...} with loss: bce",
            )
        return "softmax", n
    if isinstance(out, list):
        return "list", _list_width(out, widths)
    n = _width(out, widths)
    return ("scalar" if n == 1 else "list"), n


def _check_loss_and_labels(spec: Spec, kind: str, count: int) -> None:
    if spec.loss is not None:
        fits_softmax = LOSSES[spec.loss].on_softmax
        if kind == "softmax" and not fits_softmax:
            raise spec.error(
                ("loss",),
                f"the loss '{spec.loss}' does not fit a softmax output; use "
                "cross_entropy (the default for a softmax), or drop the softmax",
            )
        if kind != "softmax" and fits_softmax:
            raise spec.error(
                ("loss",),
                f"the loss '{spec.loss}' needs a softmax output (output: {{softmax: "
                "[...]} or a last layer {softmax: true}); for one probability use "
                "a sigmoid output with loss: bce",
            )
    if spec.classes is not None:
        seen: set[str] = set()
        for i, c in enumerate(spec.classes):
            if c in seen:
                raise spec.error(("classes", i), f"the class '{c}' is listed twice")
            bad = unprintable(c)
            if bad is not None:
                raise spec.error(("classes", i), f"the class holds {describe_char(bad)}; labels are printed, remove it")
            seen.add(c)
        if kind == "softmax" and len(spec.classes) != count:
            raise spec.error(
                ("classes",),
                f"{len(spec.classes)} classes are listed but the softmax has {count} "
                "outputs; give one class per output",
            )
        if kind != "softmax":
            if spec.loss != "bce":
                raise spec.error(
                    ("classes",),
                    "a list of classes is for classifiers (a softmax output, or loss: bce); remove it for a regression",
                    key=True,
                )
            if len(spec.classes) != 2:
                raise spec.error(
                    ("classes",),
                    f"a binary classifier (loss: bce) tells 2 classes apart, {len(spec.classes)} are listed",
                )
    t = spec.training
    if t.early_stopping is not None and t.validation_split <= 0:
        raise spec.error(
            ("training", "early_stopping"),
            "early stopping watches the validation loss: set validation_split too (e.g. validation_split: 0.2)",
            key=True,
        )
