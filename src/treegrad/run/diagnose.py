"""What a trained model shows about how training went: ReLU units that died.

A ReLU unit whose input is negative on every training row outputs 0 for all of them; its
gradient is then 0 too, so its weights never move again and it is lost to the model. The
article's classifier fails this way on about half of the seeds, and nothing else says so.
"""

from __future__ import annotations

from typing import Any

from ..core.nodes import Graph, Node
from ..core.printers import funcify
from ..data.parts import WHOLE, Part
from ..engine.compiled import _def, _indent, program
from ..engine.vectorized import array_rows_fn

MAX_SHOWN_CHARS = 80  # a dead unit is named by its formula, cut to this length


def relu_units(graph: Graph) -> list[Node]:
    """The ReLU nodes of a graph, in evaluation order."""
    return [n for n in graph.order if n.op is not None and n.op.name == "relu"]


def dead_units(graph: Graph, rows: Any, part: Part = WHOLE) -> list[Node]:
    """The ReLU units that output 0 on every one of `rows` (of every part; none if there are no rows)."""
    units = relu_units(graph)
    if not units:
        return []
    if not part.alone:
        alive = [any(seen) for seen in zip(*part.gather(_alive(graph, units, rows)))]
        return [u for u, a in zip(units, alive, strict=True) if not a]
    if not len(rows):
        return []
    return [u for u, a in zip(units, _alive(graph, units, rows), strict=True) if not a]


def _alive(graph: Graph, units: list[Node], rows: Any) -> list[bool]:
    """For each unit, whether it is above zero on some row (True for all where the model
    cannot be evaluated on the rows: that has other problems to report). Whole arrays where the
    model has dense layers, else one pass of its generated code."""
    if not len(rows):
        return [False] * len(units)
    arrays = array_rows_fn(graph, None, units)
    if arrays is not None:
        import numpy as np

        outs, _, alive = arrays(rows)
        # an output that is not finite: the scalar code would have met a math error there
        return [bool(a) for a in alive] if bool(np.isfinite(outs).all()) else [True] * len(units)
    rows = rows.tolist() if hasattr(rows, "tolist") else rows
    prog = program(graph)
    names = [prog.names[id(u)] for u in units]
    # One pass of the generated forward code, marking each unit seen above zero.
    body = [*prog.header(), f"alive = [False] * {len(units)}", "for row in X:"]
    checks = [f"if {v} > 0.0: alive[{j}] = True" for j, v in enumerate(names)]
    body += _indent(prog.unpack_row("row") + prog.forward() + checks)
    body.append("return alive")
    fn = prog._build(_def("alive_units", "P, C, X", body), "alive_units")
    try:
        return list(fn(graph.param_values(), prog.constant_values(), rows))
    except (ArithmeticError, ValueError):
        return [True] * len(units)


def describe_unit(graph: Graph, unit: Node) -> str:
    """A unit named so a reader finds it: its position among the ReLUs and its formula."""
    units = relu_units(graph)
    k = next(i for i, u in enumerate(units) if u is unit)
    formula = funcify(unit, precision=3)
    if len(formula) > MAX_SHOWN_CHARS:
        formula = formula[: MAX_SHOWN_CHARS - 1] + "…"
    return f"ReLU {k + 1} of {len(units)}, {formula}"


def dead_unit_warning(graph: Graph, rows: Any, part: Part = WHOLE, normalized: bool = False) -> str | None:
    """A warning naming the dead ReLU units after training, or None if every unit is alive; its advice
    leaves out standardising the inputs when the run did (`normalized`)."""
    dead = dead_units(graph, rows, part)
    if not dead:
        return None
    listed = "; ".join(describe_unit(graph, u) for u in dead[:5])
    more = f" and {len(dead) - 5} more" if len(dead) > 5 else ""
    advice = "Try another seed or a smaller learning rate"
    return (
        f"{len(dead)} ReLU unit(s) output 0 on every training row, so they learn nothing (dead): {listed}{more}. "
        + (advice if normalized else f"{advice.replace(' or ', ', ')}, or normalize the inputs")
    )
