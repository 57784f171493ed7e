"""The vectorized trainer's epoch function, written as source from a graph's units (`lowering.py`):
per batch the forward pass (a matmul per dense layer, an array op per map or node), the loss and
its gradient from the loss table, the backward pass in reverse unit order, the step rules and the
optimizer's update, all on NumPy arrays.

Safety, as in compiled.py: the text holds only names made here, the expressions of the
op/loss/optimizer tables and integer literals; parameter values and the index arrays that place
them go in as arrays, never as text.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core.nodes import Graph, Node, Parameter
from ..core.ops import softmax_array_code, softmax_grad_array_code, wide_sum
from .compiled import gather, times
from .losses import Loss
from .lowering import Lowering, Unit, cols_of
from .optim import Optimizer
from .penalties import StepRules

# A block of the flat parameter array F: its variable, the parameter indices it holds in
# row-major order, and its shape (a dense layer's weights W, or its biases B).
Block = tuple[str, list[int], tuple[int, ...]]


def write_epoch(
    low: Lowering,
    order: list[Unit],
    graph: Graph,
    loss: Loss,
    opt: Optimizer,
    rules: StepRules | None = None,
    weighted: bool = False,
) -> tuple[str, int]:
    """The source of `epoch(P, C, S, STEP, Xp, Tp, bounds, lr, H, Wp)` (Xp, Tp, Wp: the data and
    the sample weights as arrays, in the epoch's order; bounds: each batch's (start, end) in
    them), and the number of statements run per batch.

    All parameters live in one flat array F, the dense layers' W and b as views into it, the
    other parameters at its end; their gradients likewise in G, so the optimizer updates F (and
    its state, arrays of the same layout) in one set of statements per batch.
    """
    blocks, scalars = _layout(low, order, graph)
    start = sum(len(ks) for _, ks, _ in blocks)  # where the other parameters begin in F
    head = _head(blocks, graph, opt, rules)
    tail = ["Pa = np.empty(len(F))", "Pa[perm] = F", "P[:] = Pa.tolist()"]
    for j, s in enumerate(opt.state):
        tail += [f"Pa[perm] = {s}_F", f"S[{j}][:] = Pa.tolist()"]
    tail += ["STEP[0] = step", "return float(total)"]

    body = ["nb = e - s"]
    if scalars:  # the other parameters as numbers, as the scalar code has them
        body.append(f"{''.join(f'p{k}, ' for k in scalars)}= as_numbers(F[{start}:])")
    if graph.input_names:
        body.append("Xb = Xp[s:e]")
    body.append("Tb = Tp[s:e].T" if graph.is_list and not graph.is_softmax else "Tb = Tp[s:e]")
    if weighted:
        body.append("Wb = Wp[s:e]")
    back = Backward(low)
    forward, inputs, reads = _forward(low, order)
    body += forward
    body += _loss(low, graph, loss, weighted, back)
    # backward, units in reverse order, then each parameter's gradient summed over the batch
    for u in reversed(order):
        if u.needs_grad:
            body += back.unit(u, inputs.get(u.name, ""), reads.get(u.name))
    body += _gradients(back, blocks, scalars, start, rules)
    body += _update(opt, blocks, scalars, start, rules)

    lines = head + ["for s, e in bounds:"] + [f"    {line}" for line in body] + tail
    src = "def epoch(P, C, S, STEP, Xp, Tp, bounds, lr, H, Wp):\n" + "\n".join(f"    {line}" for line in lines) + "\n"
    return src, len(body)


def write_rows(low: Lowering, order: list[Unit], graph: Graph, loss: Loss | None, watched: Sequence[Node]) -> str:
    """The source of `array_rows(P, C, Xp, Tp, bounds)`: the model on every row of `Xp` (in chunks,
    `bounds`), no training: (each row's output, a (rows,) or (rows, k) array; each row's loss
    `loss` against `Tp`, or None without a loss; for each of the `watched` nodes, whether it is
    above 0 on some row). Parameters and constants as the epoch function has them."""
    blocks, scalars = _layout(low, order, graph)
    start = sum(len(ks) for _, ks, _ in blocks)
    head = ["F = np.array(P, dtype=DT)[perm]", "G = np.zeros(len(F), DT)"]  # G: the loss code's views need it
    at = 0
    for v, ks, shape in blocks:
        view = f"[{at}:{at + len(ks)}]" + (f".reshape{shape}" if len(shape) > 1 else "")
        head += [f"{v} = F{view}", f"g{v} = G{view}"]
        at += len(ks)
    if graph.constants:
        head.append(f"{', '.join(f'c{k}' for k in range(len(graph.constants)))}, = as_numbers(C)")
    head += ["total = np.float64(0.0)", "outs, losses = [], []", f"alive = np.zeros({len(watched)}, bool)"]
    body = ["nb = e - s"]
    if scalars:
        body.append(f"{''.join(f'p{k}, ' for k in scalars)}= as_numbers(F[{start}:])")
    if graph.input_names:
        body.append("Xb = Xp[s:e]")
    forward, _, _ = _forward(low, order)
    body += forward
    k = len(graph.elements)
    if graph.is_softmax:
        lines, z, _ = low.columns(graph.elements, "Zo")
        body += lines + softmax_array_code(z, "Out", "_so")
    else:
        cols = [low.expr(e) if low.batched(e) else f"np.full(nb, {low.expr(e)}, DT)" for e in graph.elements]
        body.append(f"Out = np.stack(({', '.join(cols)},), axis=1)" if graph.is_list else f"Out = {cols[0]} + 0.0")
    body.append("outs.append(Out)")
    if loss is not None:
        body.append("Tb = Tp[s:e].T" if graph.is_list and not graph.is_softmax else "Tb = Tp[s:e]")
        body += _loss(low, graph, loss, False, Backward(low))
        body.append("losses.append(L + np.zeros(nb))")
    body += _alive(low, watched)
    tail = [
        f"Outs = np.concatenate(outs) if outs else np.zeros((0, {k}) if {graph.is_list} else 0)",
        "return Outs, (np.concatenate(losses) if losses else np.zeros(0)) if Tp is not None else None, alive",
    ]
    lines = head + ["for s, e in bounds:"] + [f"    {line}" for line in body] + tail
    return "def array_rows(P, C, Xp, Tp, bounds):\n" + "\n".join(f"    {line}" for line in lines) + "\n"


def _alive(low: Lowering, watched: Sequence[Node]) -> list[str]:
    """Statements marking each watched node seen above 0 in the batch: the nodes that are columns
    of one unit's array in one statement (index arrays in `low.arrays`), any other node alone."""
    by_unit: dict[str, tuple[list[int], list[int]]] = {}
    lines = []
    for j, n in enumerate(watched):
        if id(n) in low.where:
            unit, col = low.where[id(n)]
            slots, cols = by_unit.setdefault(unit.name, ([], []))
            slots.append(j)
            cols.append(col)
        else:
            lines.append(f"alive[{j}] |= bool(np.any({low.expr(n)} > 0.0))")
    for name, (slots, cols) in by_unit.items():
        low.arrays[f"ix_alive{name}"], low.arrays[f"ix_cols{name}"] = slots, cols
        lines.append(f"alive[ix_alive{name}] |= ({name}[:, ix_cols{name}] > 0.0).any(axis=0)")
    return lines


def _layout(low: Lowering, order: list[Unit], graph: Graph) -> tuple[list[Block], list[int]]:
    """The blocks of F (each dense layer's weights, then its biases) and the indices of the other
    parameters, which follow them in F; `perm` (F's order of the parameters) joins the arrays."""
    blocks: list[Block] = []
    for u in order:
        if u.kind != "dense":
            continue
        tag = u.name[1:]
        rows = [[low.param_index[id(ws[a])] for ws in u.weights] for a in range(len(u.acts))]
        blocks.append((f"W{tag}", [k for row in rows for k in row], (len(u.acts), u.width)))
        if u.biases:
            blocks.append((f"B{tag}", [low.param_index[id(b)] for b in u.biases], (u.width,)))
    scalars = [k for k, p in enumerate(graph.params) if id(p) not in low.owned]
    low.arrays["perm"] = [k for _, ks, _ in blocks for k in ks] + scalars
    return blocks, scalars


def _head(blocks: list[Block], graph: Graph, opt: Optimizer, rules: StepRules | None) -> list[str]:
    """The statements once per epoch: F and G with each block's views, the optimizer's state in
    F's layout, the constants, the step count and the loss's running total."""
    # DT, the arrays' float type, is bound when the source is built: one source for each precision.
    head: list[str] = ["F = np.array(P, dtype=DT)[perm]", "G = np.zeros(len(F), DT)"]
    start = 0
    for v, ks, shape in blocks:
        view = f"[{start}:{start + len(ks)}]" + (f".reshape{shape}" if len(shape) > 1 else "")
        head += [f"{v} = F{view}", f"g{v} = G{view}"]
        start += len(ks)
    for j, s in enumerate(opt.state):
        head.append(f"{s}_F = np.array(S[{j}], dtype=DT)[perm]")
    if graph.constants:
        head.append(f"{', '.join(f'c{k}' for k in range(len(graph.constants)))}, = as_numbers(C)")
    # the loss is summed in float64 whatever DT (a NumPy float64, which a float32 sum joins as float64)
    return [*head, "step = STEP[0]", "total = np.float64(0.0)", *(rules.unpack() if rules else [])]


def _forward(low: Lowering, order: list[Unit]) -> tuple[list[str], dict[str, str], dict[str, str | None]]:
    """The forward statements of a batch, unit by unit; and per dense or map unit the expression
    of its input array and how that input gets its gradient (as `Lowering.columns` says)."""
    body: list[str] = []
    reads: dict[str, str | None] = {}
    inputs: dict[str, str] = {}
    for u in order:
        if u.kind == "dense":
            tag = u.name[1:]
            lines, a, how = low.columns(u.acts, f"A{tag}")
            body += lines
            inputs[u.name], reads[u.name] = a, how
            body.append(f"{u.name} = {a} @ W{tag}" + (f" + B{tag}" if u.biases else ""))
        elif u.kind == "map":
            assert u.op is not None and u.source is not None
            lines, a, how = low.columns(cols_of(u), f"S{u.name[1:]}")
            body += lines
            inputs[u.name], reads[u.name] = a, how
            body.append(f"{u.name} = {u.op.array_value([a])}")
        elif u.kind == "vec":
            n = u.members[0]
            assert n.op is not None
            body.append(f"{u.name} = {n.op.array_value([low.expr(c) for c in n.children])}")
    return body, inputs, reads


def _loss(low: Lowering, graph: Graph, loss: Loss, weighted: bool, back: Backward) -> list[str]:
    """The loss's statements, its gradient sent to the output elements through `back`.

    The batch's gradient is the mean of its samples': dividing d loss / d output by the batch
    size here makes every sum over the batch below that mean, with one division in all.
    """
    body: list[str] = []
    gouts = [f"go{j}" for j in range(len(graph.elements))]
    if graph.is_softmax:
        lines, z, how = low.columns(graph.elements, "Zs")
        body += lines + softmax_array_code(z, "Pm", "_sm")
        if loss.softmax_array is not None:  # loss and d loss / d logits at once
            body += loss.softmax_array("Pm", "Tb", "L", "GZ", "_l")
            body += ["L = L * Wb", "GZ = GZ * Wb[:, None]"] if weighted else []
            body.append("total += L.sum()")
        else:
            outs = [f"Pm[:, {j}]" for j in range(len(graph.elements))]
            body += loss.code(outs, "Tb", "L", gouts, "_l", vectorized=True)
            body += ["L = L * Wb", *[f"{g} = {g} * Wb" for g in gouts]] if weighted else []
            body.append("total += L.sum()")
            body.append(f"_smg = np.stack(({', '.join(gouts)},), axis=1)")
            body += softmax_grad_array_code("Pm", "_smg", "GZ", "_sm")
        body.append("GZ = GZ / nb")
        back.send_array(graph.elements, "GZ", how)
        return body
    body += loss.code([low.expr(e) for e in graph.elements], "Tb", "L", gouts, "_l", vectorized=True)
    body += ["L = L * Wb", *[f"{g} = {g} * Wb" for g in gouts]] if weighted else []
    body.append("total += L.sum()")
    body += [f"{g} = {g} / nb" for g in gouts]
    for e, gname in zip(graph.elements, gouts, strict=True):
        back.send(e, gname)
    return body


def _gradients(
    back: Backward, blocks: list[Block], scalars: list[int], start: int, rules: StepRules | None
) -> list[str]:
    """The other parameters' gradients summed over the batch, the step rules on every gradient,
    and the other parameters' gradients into G."""
    body = [f"gp{k} = ({wide_sum(back.params.pop(k))}).sum()" if k in back.params else f"gp{k} = 0.0" for k in scalars]
    if rules is not None and rules.active:
        # The rules rebind the gradient variables they are given: they get copies of the names
        # of G's views, and what they leave is copied into the views.
        body += [f"_r{v} = g{v}" for v, _, _ in blocks]
        body += rules.code(
            [(v, f"_r{v}", ks, True) for v, ks, _ in blocks] + [(f"p{k}", f"gp{k}", [k], False) for k in scalars]
        )
        body += [f"g{v}[...] = _r{v}" for v, _, _ in blocks]
    if scalars:
        body.append(f"G[{start}:] = {''.join(f'gp{k}, ' for k in scalars)}")
    return body


def _update(opt: Optimizer, blocks: list[Block], scalars: list[int], start: int, rules: StepRules | None) -> list[str]:
    """The optimizer's statements once, on the flat arrays (F changes in place, so its views
    follow), then the rules' steps on the updated parameters."""
    body = list(opt.prelude)
    update = opt.update("F", "G", [f"{s}_F" for s in opt.state])
    assert not any(line.startswith("F = ") for line in update), "an update must change F in place"
    body += update
    blockwise = [(f"_q{v}", f"g{v}", ks, True) for v, ks, _ in blocks]
    after = rules.after(blockwise + [(f"p{k}", f"gp{k}", [k], False) for k in scalars]) if rules else []
    if after:  # steps on the updated parameters (L1's): on copies of the names, copied back into F
        body += [f"_q{v} = {v}" for v, _, _ in blocks]
        body += [f"{''.join(f'p{k}, ' for k in scalars)}= as_numbers(F[{start}:])"] if scalars else []
        body += after + [f"{v}[...] = _q{v}" for v, _, _ in blocks]
        body += [f"F[{start}:] = {''.join(f'p{k}, ' for k in scalars)}"] if scalars else []
    return body


class Backward:
    """Gradient bookkeeping: what each unit, node and parameter has been sent so far."""

    def __init__(self, low: Lowering) -> None:
        self.low = low
        self.full: dict[str, list[str]] = {}  # (batch, width) arrays for a whole unit
        self.scatter: dict[str, list[tuple[str, str]]] = {}  # (index array, (batch, k) array)
        self.column: dict[str, dict[int, list[str]]] = {}  # per column, (batch,) arrays
        self.node: dict[int, list[str]] = {}  # per vec node
        self.params: dict[int, list[str]] = {}  # per parameter outside dense layers

    def send(self, node: Node, expr: str) -> None:
        """Add d loss / d node (a (batch,) array) to what `node` has received."""
        low = self.low
        if id(node) not in low.needs:
            return
        if id(node) in low.where:
            unit, col = low.where[id(node)]
            self.column.setdefault(unit.name, {}).setdefault(col, []).append(expr)
        elif id(node) in low.vec_name:
            self.node.setdefault(id(node), []).append(expr)
        elif isinstance(node, Parameter):
            self.params.setdefault(low.param_index[id(node)], []).append(expr)

    def send_array(self, nodes: Sequence[Node], grad: str, how: str | None) -> None:
        """Send the columns of a (batch, n) gradient to `nodes`, as `columns()` made them."""
        if not any(id(n) in self.low.needs for n in nodes):
            return
        unit = self.low.where[id(nodes[0])][0] if how is not None else None
        if how == "full":
            assert unit is not None
            self.full.setdefault(unit.name, []).append(grad)
        elif how is not None:
            assert unit is not None
            self.scatter.setdefault(unit.name, []).append((how, grad))
        else:
            for k, n in enumerate(nodes):
                self.send(n, f"{grad}[:, {k}]")

    def _gather(self, u: Unit) -> tuple[list[str], str]:
        """Statements summing what unit `u` was sent into d{name}, and that name."""
        name = f"d{u.name}"
        full = self.full.pop(u.name, [])
        scatter = self.scatter.pop(u.name, [])
        cols = self.column.pop(u.name, {})
        if not scatter and not cols:
            if len(full) == 1:
                return [], full[0]
            return [f"{name} = {wide_sum(full) if full else f'np.zeros((nb, {u.width}), DT)'}"], name
        if not full and not scatter and len(cols) == u.width:
            sums = [wide_sum(cols[j]) for j in range(u.width)]
            if u.width == 1:
                return [f"{name} = ({sums[0]})[:, None]"], name
            return [f"{name} = np.stack(({', '.join(sums)},), axis=1)"], name
        if full:
            start = wide_sum(full) if len(full) > 1 else f"{full[0]}.copy()"
        else:
            start = f"np.zeros((nb, {u.width}), DT)"
        lines = [f"{name} = {start}"]
        lines += [f"{name}[:, {ix}] += {g}" for ix, g in scatter]
        lines += [f"{name}[:, {j}] += {wide_sum(parts)}" for j, parts in sorted(cols.items())]
        return lines, name

    def unit(self, u: Unit, a: str, how: str | None) -> list[str]:
        """Backward statements of one unit (`a`: its input array, `how`: as columns() said)."""
        low = self.low
        if u.kind == "vec":
            n = u.members[0]
            parts = self.node.pop(id(n), [])
            if not parts:
                return []
            g, lines = gather(parts, f"g{u.name[1:]}")
            assert n.op is not None
            args = [low.expr(c) for c in n.children]
            for k, c in enumerate(n.children):
                if id(c) not in low.needs:
                    continue
                self.send(c, times(g, n.op.array_deriv(args, u.name, k)))
            return lines
        lines, d = self._gather(u)
        tag = u.name[1:]
        if u.kind == "map":
            assert u.op is not None and u.source is not None
            if u.source.needs_grad:
                lines.append(f"dS{tag} = {times(d, u.op.array_deriv([a], u.name, 0))}")
                self.send_array(cols_of(u), f"dS{tag}", how)
            return lines
        # dense: Z = A @ W + b, summed over the batch
        lines.append(f"np.matmul({a}.T, {d}, gW{tag})")
        if u.biases:
            lines.append(f"{d}.sum(axis=0, out=gB{tag})")
        if any(id(x) in low.needs for x in u.acts):
            lines.append(f"dA{tag} = {d} @ W{tag}.T")
            self.send_array(u.acts, f"dA{tag}", how)
        return lines
