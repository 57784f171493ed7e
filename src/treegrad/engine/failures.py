"""Why training stopped: a divergence (values overflowed or became NaN), or an op evaluated (or
differentiated) outside its domain at a sample, found and named by rerunning that sample through
the reference evaluator."""

from __future__ import annotations

import math
from collections.abc import Callable

from ..core.nodes import Graph, Leaf, Output
from ..core.ops import OPS
from ..errors import ModelError, TrainingError
from .compiled import SampleFailure

# The advice that ends a divergence message; the caller, which knows what was standardised,
# may replace it (run/train.py) with advice that is true of the run.
DIVERGED_ADVICE = "Try a smaller learning rate, or normalize the inputs (training.normalize: true)."


def diverged(epoch: int, what: str, sample: int | None = None) -> TrainingError:
    """Divergence: values grew until they overflowed or became NaN, in this epoch."""
    return TrainingError(f"training diverged in epoch {epoch}: {what}. {DIVERGED_ADVICE}", sample=sample)


def failure_error(
    graph: Graph,
    epoch: int,
    failure: SampleFailure,
    row: list[float],
    describe_sample: Callable[[int], str] | None = None,
) -> TrainingError:
    """The error for an epoch stopped by a math error at a sample: divergence if a value
    overflowed or was infinite already, else the op evaluated outside its domain, named."""
    error = failure.error
    # The reference evaluator reports the math error as a ModelError raised while handling it.
    cause = error.__context__ if isinstance(error, ModelError) and error.__context__ is not None else error
    found = find_failing_op(graph, failure.params, row)
    where = describe_sample(failure.index) if describe_sample else f"sample {failure.index}"
    detail = found[0] if found else str(cause)
    finite = all(math.isfinite(v) for v in failure.params + (found[2] if found else []))
    if isinstance(cause, OverflowError) or not finite:
        return diverged(epoch, f"a value became infinite at {where} ({detail})", sample=failure.index)
    if found is None:
        message = f"epoch {epoch}, {where}: the model cannot be evaluated there ({detail})"
    else:
        text, op, args, slope = found
        message = f"epoch {epoch}, {where}: {text} — {OPS[op].domain_advice(args, slope)}"
    return TrainingError(message, sample=failure.index)


def find_failing_op(graph: Graph, params: list[float], row: list[float]) -> tuple[str, str, list[float], bool] | None:
    """(what failed, op name, its arguments, True if it was the op's slope) for the first op that
    cannot be evaluated, or differentiated, at this sample with these parameters; None if all can.

    Runs the reference evaluator, whose ModelError names the op and its arguments; the graph's
    parameters are put back afterwards.
    """
    saved = graph.param_values()
    graph.set_param_values(params)
    try:
        try:
            graph.predict(row)
        except ModelError as e:
            # predict computes stale nodes in order and stops at the failing one, which stays stale.
            node = next((n for n in graph.order if n._dirty and n.op is not None), None)
            if node is None or node.op is None:
                return None
            return str(e), node.op.name, [float(c._value) for c in node.children], False  # type: ignore[arg-type]
        for node in graph.order:
            if isinstance(node, (Leaf, Output)) or node.op is None:
                continue
            args = [float(c._value) for c in node.children]  # type: ignore[arg-type]
            try:
                node.op.derivs_fn(len(args))(node._value, *args)
            except (ArithmeticError, ValueError) as e:
                return f"cannot differentiate '{node.op.name}' at {args}: {e}", node.op.name, args, True
        return None
    finally:
        graph.set_param_values(saved)
