"""Graph algorithms over nodes: macro expansion, topological order, naming, and the
reference forward and backward passes.

Every walk here is iterative (an explicit stack), so a chain of 100,000 nodes is no
deeper for Python than a chain of 3. The reference passes go node by node through the op
table's functions; `compiled.py` produces the fast evaluator from the same table.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..errors import ModelError
from .nodes import Constant, Input, Leaf, Macro, Node, Output, Parameter
from .ops import softmax_fns


def _cycle_error(node: Node) -> ModelError:
    return ModelError(f"the model has a cycle: {node.label()} depends on itself")


def expand_macros(root: Node) -> list[Node]:
    """Replace every macro below `root` by its elementary nodes; return root's expansion.

    Children are expanded before their parents (post-order), so a macro always expands
    over elementary children; a macro expanding to several nodes (a layer) is spliced
    into its parent's list of children.
    """
    if isinstance(root, Macro) and root.expansion is not None:
        return root.expansion
    on_path: set[int] = {id(root)}
    done: set[int] = set()
    stack: list[tuple[Node, int]] = [(root, 0)]
    while stack:
        node, i = stack.pop()
        if i < len(node.children):
            child = node.children[i]
            if isinstance(child, Macro) and child.expansion is not None:
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
        if isinstance(node, Macro):
            node.expansion = node.expand()
            if stack:  # splice into the parent that is waiting for it
                parent, j = stack.pop()
                parent.children[j - 1 : j] = node.expansion
                for e in node.expansion:
                    e.parents.append(parent)
                stack.append((parent, j - 1 + len(node.expansion)))
    return root.expansion if isinstance(root, Macro) and root.expansion is not None else [root]


def topological_order(roots: Sequence[Node], only_dirty: bool = False) -> list[Node]:
    """Nodes below `roots`, children before parents, left to right (post-order).

    With `only_dirty`, clean nodes are neither listed nor descended into: their
    values are still valid, and so are the values of everything below them.
    """
    order: list[Node] = []
    on_path: set[int] = set()
    done: set[int] = set()
    for root in roots:
        if id(root) in done or (only_dirty and not root._dirty):
            continue
        stack: list[tuple[Node, Iterator[Node]]] = [(root, iter(root.children))]
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


def _compute(node: Node) -> None:
    """Set `node._value` from its children's values (the reference evaluator, one node)."""
    if isinstance(node, Leaf):
        if node._value is None:
            raise ModelError(f"input '{node.name}' has no value; pass it to predict() or set .value")
    elif isinstance(node, Macro):
        raise ModelError("a Linear (or other macro) must be compiled before it is evaluated: call .compile()")
    else:
        args = [c._value for c in node.children]
        if node.kind == "softmax":
            node._value = softmax_fns(len(args))[0](*args)
        elif isinstance(node, Output):
            node._value = list(args)  # type: ignore[arg-type]
        else:
            assert node.op is not None
            try:
                node._value = node.op.value_fn(len(args))(*args)
            except (ArithmeticError, ValueError) as e:
                raise ModelError(f"cannot evaluate '{node.op.name}' at {args}: {e}") from None
    node._dirty = False


def _target(node: Node) -> Node:
    """The node that stands for `node` once compiled (a macro stands for its expansion)."""
    return node.graph.output if node.graph is not None else node


def evaluate(node: Node) -> Any:
    """`node`'s value, recomputing only stale nodes (children first)."""
    node = _target(node)
    if node.graph is None:
        roots = expand_macros(node)
        if roots != [node]:
            raise ModelError("this model contains a Linear (a macro): call .compile() before evaluating it")
    for n in topological_order([node], only_dirty=True):
        _compute(n)
    return node._value


def backward(root: Node, seed: Any = 1.0) -> None:
    """Reverse-mode differentiation: every node below `root` gets `.grad` = d root / d node.

    In reverse topological order each node passes its gradient times its local
    derivative to each child; contributions add up (`+=`), so a node reached along
    several paths receives their sum. Gradients are reset first, so calling backward
    twice does not double-count.
    """
    root = _target(root)
    evaluate(root)
    order = topological_order([root])
    for n in order:
        n.grad = [0.0] * len(n.children) if isinstance(n, Output) else 0.0
    if isinstance(root, Output):
        if not isinstance(seed, (list, tuple)) or len(seed) != len(root.children):
            raise ModelError(f"backward() on a list output needs a list of {len(root.children)} seeds")
        root.grad = [float(s) for s in seed]
    else:
        root.grad = float(seed)
    for node in reversed(order):
        if isinstance(node, Leaf):
            continue
        for child, g in zip(node.children, local_gradients(node), strict=True):
            child.grad += g


def local_gradients(node: Node) -> list[float]:
    """What an evaluated node sends each child in the backward pass: its `.grad` times
    d node / d child (the chain rule, one step); `trace` shows these numbers."""
    if node.kind == "softmax":
        return softmax_fns(len(node.children))[1](*node._value, *node.grad)  # type: ignore[misc,no-any-return]
    if isinstance(node, Output):
        return list(node.grad)
    assert node.op is not None
    args = [c._value for c in node.children]
    derivs = node.op.derivs_fn(len(args))(node._value, *args)
    return [0.0 if d is None else node.grad * d for d in derivs]


class Graph:
    """A compiled model: macros expanded, inputs and parameters found and named, an order fixed."""

    def __init__(self, root: Node, inputs: Sequence[str] | None = None) -> None:
        self.root = root
        elements = expand_macros(root)
        if isinstance(root, Macro) and len(elements) > 1:
            self.output: Node = Output(elements)  # a layer at the top is a list output
        elif isinstance(root, Macro):
            self.output = elements[0]
        else:
            self.output = root
        if isinstance(self.output, Output):
            self.elements = list(self.output.children)
        else:
            self.elements = [self.output]
        self.output.graph = self
        self.is_list = isinstance(self.output, Output)
        # The one way to ask whether the model ends in a softmax (it can stand only there).
        self.is_softmax = self.output.kind == "softmax"
        self.order = topological_order([self.output])
        if any(isinstance(n, Output) for n in self.order[:-1]):
            raise ModelError("a Softmax or Output can only be the model's output, not inside it")
        self.input_names, self.inputs_by_name = self._find_inputs(inputs)
        self.params = self._name_params()
        self.param_names = [p.name or "" for p in self.params]
        self.index = {id(n): i for i, n in enumerate(self.order)}

    def _preorder(self) -> Iterator[Node]:
        """Nodes in order of first appearance, left to right, depth first."""
        seen: set[int] = set()
        stack = [self.output]
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            yield n
            stack.extend(reversed(n.children))

    def _find_inputs(self, declared: Sequence[str] | None) -> tuple[list[str], dict[str, list[Input]]]:
        found = [n for n in self._preorder() if isinstance(n, Input)]
        taken = {n.name for n in found if n.name}
        k = 0
        for n in found:
            if not n.name:
                while f"x{k}" in taken:
                    k += 1
                n.name = f"x{k}"
                taken.add(n.name)
        by_name: dict[str, list[Input]] = {}
        for n in found:
            assert n.name is not None
            by_name.setdefault(n.name, []).append(n)
        if declared is None:
            return list(by_name), by_name
        unknown = [name for name in by_name if name not in declared]
        if unknown:
            raise ModelError(
                f"the model uses input(s) {', '.join(unknown)} that are not among the declared "
                f"inputs {', '.join(declared)}"
            )
        return list(declared), by_name

    def _name_params(self) -> list[Parameter]:
        params = [n for n in self._preorder() if isinstance(n, Parameter)]
        names: dict[str, Parameter] = {}
        for p in params:
            if p.name:
                if p.name in names and names[p.name] is not p:
                    raise ModelError(f"two different parameters are both named '{p.name}'")
                names[p.name] = p
        k = 0
        for p in params:
            if not p.name:
                while f"p{k}" in names:
                    k += 1
                p.name = f"p{k}"
                names[p.name] = p
        return params

    @property
    def constants(self) -> list[Constant]:
        """The constants of the model, in evaluation order."""
        return [n for n in self.order if isinstance(n, Constant)]

    def param_values(self) -> list[float]:
        """Current parameter values, in parameter order."""
        return [float(p._value) for p in self.params]  # type: ignore[arg-type]

    def set_param_values(self, values: Sequence[float]) -> None:
        """Assign all parameter values (marks what depends on them stale)."""
        for p, v in zip(self.params, values, strict=True):
            p.value = v

    def row(self, values: Sequence[float] | Mapping[str, float]) -> list[float]:
        """One sample as a list in input order, from a list or a mapping by name."""
        if isinstance(values, Mapping):
            missing = [n for n in self.input_names if n not in values]
            extra = [n for n in values if n not in self.input_names]
            if missing or extra:
                raise ModelError(
                    f"predict() needs values for inputs {', '.join(self.input_names)}"
                    + (f"; missing {', '.join(missing)}" if missing else "")
                    + (f"; unknown {', '.join(extra)}" if extra else "")
                )
            row = [values[n] for n in self.input_names]
        else:
            row = list(values)
            if len(row) != len(self.input_names):
                raise ModelError(
                    f"predict() needs {len(self.input_names)} value(s), for "
                    f"{', '.join(self.input_names) or 'no inputs'}; got {len(row)}"
                )
        out = [float(v) for v in row]
        if not all(math.isfinite(v) for v in out):
            raise ModelError(f"predict() needs finite numbers, got {row}")
        return out

    def set_inputs(self, row: Sequence[float]) -> None:
        """Assign one sample to the input nodes (marks what depends on them stale)."""
        for name, v in zip(self.input_names, row):
            for node in self.inputs_by_name.get(name, ()):
                if node._value != v:
                    node.value = v

    def predict(self, values: Sequence[float] | Mapping[str, float]) -> Any:
        """The output for one sample (a float, or a list for a list output)."""
        self.set_inputs(self.row(values))
        for n in self.order:
            if n._dirty:
                _compute(n)
        return self.output._value
