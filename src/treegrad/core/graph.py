"""Graph algorithms over nodes: macro expansion, topological order, and the reference forward
and backward passes.

Every walk here is iterative (an explicit stack), so a chain of 100,000 nodes is no
deeper for Python than a chain of 3. The reference passes go node by node through the op
table's functions; `compiled.py` produces the fast evaluator from the same table.

The walks ask a node what it is (`kind`, and for an op its entry in the op table), never its
class: the node classes (`nodes.py`) call these walks from their methods (`forward`, `backward`,
`compile`), so this module cannot know them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, TypeVar

from ..errors import ModelError
from .ops import Op, softmax_fns

# What a node is (`Node.kind`), as the walks and printers ask it:
LEAVES = ("input", "parameter", "constant")  # no children; the value is set from outside
LISTS = ("output", "softmax")  # a list of values, one per child; only at a model's top
# and "op" (an entry of the op table, `Node.op`) or "macro" (expanded at compile time).


class Vertex(Protocol):
    """What the walks read and write on a node (`nodes.Node` has it all)."""

    kind: str
    op: Op | None
    name: str | None
    children: list[Any]  # vertices, as are parents and a macro's expansion
    parents: list[Any]
    expansion: list[Any] | None  # a macro's elementary nodes, once expanded; None for any other node
    graph: Any  # the compiled graph the node is the output of, if any
    grad: Any
    _value: Any
    _dirty: bool

    def expand(self) -> list[Any]:
        """A macro's elementary nodes."""
        ...

    def label(self) -> str:
        """A short description for error messages."""
        ...


V = TypeVar("V", bound=Vertex)


def _cycle_error(node: Vertex) -> ModelError:
    return ModelError(f"the model has a cycle: {node.label()} depends on itself")


def expand_macros(root: V) -> list[V]:
    """Replace every macro below `root` by its elementary nodes; return root's expansion.

    Children are expanded before their parents (post-order), so a macro always expands
    over elementary children; a macro expanding to several nodes (a layer) is spliced
    into its parent's list of children.
    """
    if root.expansion is not None:
        return root.expansion
    on_path: set[int] = {id(root)}
    done: set[int] = set()
    stack: list[tuple[V, int]] = [(root, 0)]
    while stack:
        node, i = stack.pop()
        if i < len(node.children):
            child = node.children[i]
            if child.expansion is not None:
                node.children[i : i + 1] = child.expansion
                for e in child.expansion:
                    e.parents.append(node)
                stack.append((node, i + len(child.expansion)))
                continue
            stack.append((node, i + 1))
            if id(child) in on_path:
                raise _cycle_error(child)
            if id(child) not in done:
                on_path.add(id(child))
                stack.append((child, 0))
                continue
            continue
        on_path.discard(id(node))
        done.add(id(node))
        if node.kind == "macro":
            node.expansion = node.expand()
            if stack:  # splice into the parent that is waiting for it
                parent, j = stack.pop()
                parent.children[j - 1 : j] = node.expansion
                for e in node.expansion:
                    e.parents.append(parent)
                stack.append((parent, j - 1 + len(node.expansion)))
    return root.expansion if root.expansion is not None else [root]


def topological_order(roots: Sequence[V], only_dirty: bool = False) -> list[V]:
    """Nodes below `roots`, children before parents, left to right (post-order).

    With `only_dirty`, clean nodes are neither listed nor descended into: their
    values are still valid, and so are the values of everything below them.
    """
    order: list[V] = []
    on_path: set[int] = set()
    done: set[int] = set()
    for root in roots:
        if id(root) in done or (only_dirty and not root._dirty):
            continue
        stack: list[tuple[V, Iterator[V]]] = [(root, iter(root.children))]
        on_path.add(id(root))
        while stack:
            node, it = stack[-1]
            for child in it:
                if id(child) in done or (only_dirty and not child._dirty):
                    continue
                if id(child) in on_path:
                    raise _cycle_error(child)
                on_path.add(id(child))
                stack.append((child, iter(child.children)))
                break
            else:
                stack.pop()
                on_path.discard(id(node))
                done.add(id(node))
                order.append(node)
    return order


def _compute(node: Vertex) -> None:
    """Set `node._value` from its children's values (the reference evaluator, one node)."""
    if node.kind in LEAVES:
        if node._value is None:
            raise ModelError(f"input '{node.name}' has no value; pass it to predict() or set .value")
    elif node.kind == "macro":
        raise ModelError("a Linear (or other macro) must be compiled before it is evaluated: call .compile()")
    else:
        args = [c._value for c in node.children]
        if node.kind == "softmax":
            node._value = softmax_fns(len(args))[0](*args)
        elif node.kind in LISTS:
            node._value = list(args)
        else:
            assert node.op is not None
            try:
                node._value = node.op.value_fn(len(args))(*args)
            except (ArithmeticError, ValueError) as e:
                raise ModelError(f"cannot evaluate '{node.op.name}' at {args}: {e}") from None
    node._dirty = False


def refresh(order: Sequence[Vertex]) -> None:
    """Recompute the stale nodes of `order`, a topological order (children first)."""
    for n in order:
        if n._dirty:
            _compute(n)


def _target(node: V) -> V:
    """The node that stands for `node` once compiled (a macro stands for its expansion)."""
    return node.graph.output if node.graph is not None else node


def evaluate(node: Vertex) -> Any:
    """`node`'s value, recomputing only stale nodes (children first)."""
    node = _target(node)
    if node.graph is None:
        roots = expand_macros(node)
        if roots != [node]:
            raise ModelError("this model contains a Linear (a macro): call .compile() before evaluating it")
    for n in topological_order([node], only_dirty=True):
        _compute(n)
    return node._value


def backward(root: Vertex, seed: Any = 1.0) -> None:
    """Reverse-mode differentiation: every node below `root` gets `.grad` = d root / d node.

    In reverse topological order each node passes its gradient times its local
    derivative to each child; contributions add up (`+=`), so a node reached along
    several paths receives their sum. Gradients are reset first, so calling backward
    twice does not double-count.
    """
    root = _target(root)
    evaluate(root)
    # A compiled graph's order is this walk, done once: explain runs a backward pass per point.
    compiled = root.graph
    order = compiled.order if compiled is not None and compiled.output is root else topological_order([root])
    for n in order:
        n.grad = [0.0] * len(n.children) if n.kind in LISTS else 0.0
    if root.kind in LISTS:
        if not isinstance(seed, (list, tuple)) or len(seed) != len(root.children):
            raise ModelError(f"backward() on a list output needs a list of {len(root.children)} seeds")
        root.grad = [float(s) for s in seed]
    else:
        root.grad = float(seed)
    for node in reversed(order):
        if node.kind in LEAVES:
            continue
        for child, g in zip(node.children, local_gradients(node), strict=True):
            child.grad += g


def local_gradients(node: Vertex) -> list[float]:
    """What an evaluated node sends each child in the backward pass: its `.grad` times
    d node / d child (the chain rule, one step); `trace` shows these numbers."""
    if node.kind == "softmax":
        return softmax_fns(len(node.children))[1](*node._value, *node.grad)  # type: ignore[misc,no-any-return]
    if node.kind in LISTS:
        return list(node.grad)
    assert node.op is not None
    args = [c._value for c in node.children]
    derivs = node.op.derivs_fn(len(args))(node._value, *args)
    return [0.0 if d is None else node.grad * d for d in derivs]
