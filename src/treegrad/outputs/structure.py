"""A compiled model as its spec wrote it, for the report page's graph: the inputs, each layer
and named node by its name (a layer opening into its units, a unit into its nodes), the output.

The compiled graph has only elementary nodes; the structure is read back from what built
them. A `Linear` macro (a layer, or a neuron of an expression) stays a parent of its inputs
after it expanded, and keeps its expansion and its name (`spec.build` names each layer and
each node of `nodes:`), so walking down from its expansion to its inputs finds its nodes.
A named node of `nodes:` that is not a layer owns what lies below it down to the other
groups. What no group owns belongs to the output. Everything here walks iteratively.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.nodes import Graph, Node


@dataclass
class Group:
    """A box of the page's graph that opens: the inputs, an input with its scaling, a layer, a
    unit of a layer, a named node, or the output."""

    name: str
    kind: str  # inputs | input | layer | unit | node | output
    parent: int  # the enclosing group, -1 at the top
    tops: list[int]  # the nodes whose values leave the group (a layer's units, an input's scaled value)
    units: int | None = None  # a layer's width
    activation: str | None = None  # a layer's units' activation ("none" for plain sums)
    params: list[int] = field(default_factory=list)  # the parameters inside it, at any depth


@dataclass
class Structure:
    """The groups, and per node the innermost group that holds it."""

    groups: list[Group]
    owner: list[int]


def _walk(tops: list[int], order: list[Node], index: dict[int, int], stop: set[int], owner: list[int]) -> list[int]:
    """The unowned nodes reached from `tops` going down, not through `stop`, owned nodes or inputs."""
    found: list[int] = []
    seen: set[int] = set()
    stack = list(tops)
    while stack:
        i = stack.pop()
        if i in seen or i in stop or owner[i] != -1:
            continue
        seen.add(i)
        found.append(i)
        stack.extend(index[id(c)] for c in order[i].children)
    return found


def _input_chains(order: list[Node], index: dict[int, int]) -> list[int]:
    """Per node, the input it is a scaling of (an unnamed op of one input and constants: the
    standardisation (x - mean) / std), else -1; an input is its own."""
    source = [-1] * len(order)
    for i, n in enumerate(order):
        if n.kind == "input":
            source[i] = i
        elif n.kind == "op" and n.name is None and n.children:
            found = {source[index[id(c)]] for c in n.children if c.kind != "constant"}
            if len(found) == 1 and -1 not in found:
                source[i] = found.pop()
    return source


def _macros(order: list[Node]) -> list[Node]:
    """The macros the graph was expanded from, lowest first (each is still a parent of its inputs)."""
    found: dict[int, Node] = {}
    for n in order:
        for p in n.parents:
            if p.kind == "macro" and p.expansion is not None:
                found.setdefault(id(p), p)
    return list(found.values())


def structure(g: Graph) -> Structure:
    """The groups of a compiled graph, top level first: inputs, layers and named nodes, output."""
    order, index = g.order, g.index
    owner = [-1] * len(order)
    groups: list[Group] = []

    def add(group: Group, members: list[int]) -> int:
        groups.append(group)
        for i in members:
            owner[i] = len(groups) - 1
        return len(groups) - 1

    _inputs(g, add, groups, owner)
    # Anchors, lowest first: each layer (a macro) and each named node claims what it reaches.
    anchors: list[tuple[int, list[int], set[int], Node]] = []
    for m in _macros(order):
        tops = [index[id(e)] for e in m.expansion or [] if id(e) in index]
        if tops:
            anchors.append((min(tops), tops, {index[id(c)] for c in m.children if id(c) in index}, m))
    for i, n in enumerate(order):
        if n.name is not None and n.kind in ("op", "output", "softmax"):
            anchors.append((i, [i], set(), n))
    anchors.sort(key=lambda a: a[0])
    unnamed: set[int] = set()
    for _, tops, stop, node in anchors:
        if owner[tops[0]] != -1:
            continue  # a named node that is a layer's own unit: the layer holds it
        members = _walk(tops, order, index, stop, owner)
        if node.kind == "macro":
            name = node.name or f"linear {len(unnamed) + 1}"
            k = add(Group(name, "layer", -1, tops, len(tops), getattr(node, "activation", None)), members)
            if node.name is None:
                unnamed.add(k)
            if len(tops) > 1:
                inside = set(members)
                for u, top in enumerate(tops):
                    unit = _walk([top], order, index, set(), [-1 if i in inside else k for i in range(len(order))])
                    add(Group(f"unit {u + 1}", "unit", k, [top]), unit)
        else:
            k = add(Group(str(node.name), "node", -1, tops), members)
            # The unnamed neurons its expression uses are inside it (dag's `gated` holds two).
            for j in {owner[index[id(c)]] for i in members for c in order[i].children}:
                if j in unnamed and groups[j].parent == -1:
                    groups[j].parent = k
    last = len(order) - 1
    if owner[last] == -1:
        k = add(Group("output", "output", -1, [last]), _walk([last], order, index, set(), owner))
        for i in range(len(order)):  # what only the output's groups reach (an input of an unnamed neuron)
            if owner[i] == -1:
                owner[i] = k
    for i, n in enumerate(order):
        k = owner[i]
        while n.kind == "parameter" and k != -1:
            groups[k].params.append(i)
            k = groups[k].parent
    return Structure(groups, owner)


def _inputs(g: Graph, add: Any, groups: list[Group], owner: list[int]) -> None:
    """The inputs' group: each input, in a group of its own with its scaling if it has one."""
    order, index = g.order, g.index
    source = _input_chains(order, index)
    k = add(Group("inputs", "inputs", -1, []), [])
    for name in g.input_names:
        for x in g.inputs_by_name.get(name, []):
            chain = [i for i, s in enumerate(source) if s == index[id(x)]]
            inside = set(chain)
            consts = [index[id(c)] for i in chain for c in order[i].children if c.kind == "constant"]
            # Its top: the scaled value that leaves the chain (the input itself if unscaled).
            top = [i for i in chain if any(index[id(p)] not in inside for p in _users(order[i], index))]
            groups[k].tops += top[-1:] or chain[-1:]
            if len(chain) == 1:
                owner[chain[0]] = k
            else:
                add(Group(name, "input", k, top[-1:] or chain[-1:]), list(dict.fromkeys(chain + consts)))


def _users(n: Node, index: dict[int, int]) -> list[Node]:
    """A node's parents in the compiled graph (not the macros it was an input of)."""
    return [p for p in n.parents if id(p) in index]


def as_data(s: Structure) -> dict[str, Any]:
    """The structure as the page's JSON: one list per field."""
    return {
        "name": [g.name for g in s.groups],
        "kind": [g.kind for g in s.groups],
        "parent": [g.parent for g in s.groups],
        "tops": [g.tops for g in s.groups],
        "units": [g.units for g in s.groups],
        "activation": [g.activation for g in s.groups],
        "owner": s.owner,
    }
