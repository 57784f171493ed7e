"""What a model's outputs mean for its task, and how well they match the targets.

A task is "regression" (one number), "binary" (one probability of the second class) or
"classes" (a softmax, one probability per class); the loss says which (`Loss.task`).
Here are the labels the outputs stand for, one output decoded as a result, and the
metrics of a model on rows: accuracy and a confusion matrix, or MSE/MAE/R².
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from ..data.parts import WHOLE, Part
from ..engine.compiled import predict_many
from ..engine.losses import LOSSES
from ..errors import TreegradError


def class_labels(task: str | None, classes: list[str] | None, outputs: int) -> list[str] | None:
    """The labels a classifier's outputs stand for: the known classes, else 0, 1, ...

    A binary model has one output and two labels; a softmax one label per output.
    Regression has none.
    """
    if task == "binary":
        return list(classes or ["0", "1"])
    if task == "classes":
        return list(classes or [str(i) for i in range(outputs)])
    return None


def decode(task: str, classes: list[str] | None, out: Any) -> dict[str, Any]:
    """One raw model output as a result: value, or class label with its probability."""
    if task == "binary":
        p = float(out)
        labels = class_labels("binary", classes, 1) or []
        return {"label": labels[1] if p >= 0.5 else labels[0], "probability": p if p >= 0.5 else 1.0 - p, "output": p}
    if task == "classes":
        probs = [float(v) for v in out]
        k = max(range(len(probs)), key=probs.__getitem__)
        labels = class_labels("classes", classes, len(probs)) or []
        return {"label": labels[k], "probability": probs[k], "probabilities": dict(zip(labels, probs))}
    return {"prediction": float(out)}


def check_finite(results: Sequence[dict[str, Any]], where: Callable[[int], str]) -> None:
    """Refuse predictions (decoded) whose value or probability is not a finite number, as a
    TreegradError naming the first such row by `where`; JSON, which has null for them, needs no check."""
    for i, r in enumerate(results):
        value = r.get("probability", r.get("prediction"))
        if isinstance(value, float) and not math.isfinite(value):
            raise TreegradError(
                f"{where(i)}: the model cannot give a finite answer there (its output is {value}); the inputs "
                "are too far from what it was trained on, or its parameters too large"
            )


def check_finite_metrics(metrics: dict[str, Any], source: str) -> None:
    """Refuse metrics of a model on data (`source`) that overflowed: an infinite loss or error, or no loss."""
    bad = [
        k
        for k in ("loss", "mse", "mae", "r2")
        if k in metrics and (math.isinf(metrics[k]) or k == "loss" and math.isnan(metrics[k]))
    ]
    if bad:
        raise TreegradError(
            f"the model cannot give a finite answer on {source} ({', '.join(bad)} not finite): "
            "the data is too far from what it was trained on, or its parameters too large"
        )


def accuracy(task: str, outputs: Any, y: Sequence[Any]) -> float:
    """Fraction of samples classified right (binary: output >= 0.5 means class 1); `outputs`: one
    per sample, or an array of them (rows, or rows by outputs)."""
    if not len(y):
        return math.nan
    if hasattr(outputs, "shape"):
        return int(_right(task, outputs, y).sum()) / len(y)
    if task == "binary":
        right = sum((float(o) >= 0.5) == (t >= 0.5) for o, t in zip(outputs, y))
    else:
        right = sum(max(range(len(o)), key=o.__getitem__) == t for o, t in zip(outputs, y))
    return right / len(y)


def _predicted(task: str, outputs: Any) -> Any:
    """Each row's predicted class index, from an array of outputs (the first largest for a softmax)."""
    return (outputs >= 0.5).astype(int) if task == "binary" else outputs.argmax(axis=1)


def _right(task: str, outputs: Any, y: Any) -> Any:
    """Whether each row is classified right, from an array of outputs (binary: target >= 0.5 is class 1)."""
    import numpy as np

    t = np.asarray(y, dtype=np.float64)
    return _predicted(task, outputs) == ((t >= 0.5).astype(int) if task == "binary" else t)


def scored_rows(
    root: Any, loss: str, X: Any, y: Sequence[Any] | None, describe_row: Callable[[int], str] | None = None
) -> tuple[Any, Any]:
    """(each row's output, each row's loss against `y` or None without it) as arrays, of a model on
    rows `X` (rows of numbers, or one array): whole arrays where the model has dense layers, else
    (and where an output is not finite, to name the row that cannot be evaluated) its generated code."""
    import numpy as np

    from ..engine.vectorized import array_rows_fn  # not on predict's path for one sample

    graph = root.compiled_graph
    k = len(graph.elements)
    lossobj = LOSSES[loss] if y is not None else None
    fn = array_rows_fn(graph, lossobj)
    if fn is not None and len(X):
        outs, losses, _ = fn(X, y)
        if np.isfinite(outs).all():
            return outs, losses
    rows = X.tolist() if hasattr(X, "tolist") else X
    scalar = predict_many(root, rows, describe_row)
    outs = np.array(scalar, dtype=np.float64).reshape(len(rows), k) if graph.is_list else np.array(scalar, float)
    if y is None:
        return outs, None
    fnl = LOSSES[loss].fn(k)
    return outs, np.array([fnl(o if isinstance(o, list) else [o], t)[0] for o, t in zip(scalar, y)], dtype=float)


def evaluate_rows(
    root: Any,
    task: str,
    loss: str,
    X: Any,
    y: Sequence[Any],
    describe_row: Callable[[int], str] | None = None,
    weights: Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
    part: Part = WHOLE,
) -> dict[str, Any]:
    """Loss and metrics of a model on rows: accuracy, a confusion matrix and per-class
    precision/recall/F1 (`labels`) for classifiers, MSE/MAE/R² for regression. With `weights`
    (one per row) the loss and accuracy are also given weighted.

    Sums are exact (`math.fsum`), so the result does not depend on the order of the rows:
    the training summary (rows in the split's shuffled order) and `eval` (rows in the
    file's order) report the same numbers for the same rows. With `part`, the rows of every
    part: each scores its own, and the outputs and targets are gathered (a few numbers a row).
    """
    import numpy as np

    outs, losses = part.agree(lambda: scored_rows(root, loss, X, y, describe_row))
    if not part.alone:  # the rows of every part, as one process would score them (fsum: in any order)
        k = outs.shape[1:]
        outs = np.array(part.concat(outs.tolist()), dtype=float).reshape(-1, *k)
        losses = np.array(part.concat(losses.tolist()), dtype=float)
        y = part.concat(list(y))
        weights = None if weights is None else part.concat(list(weights))
    n = len(y)
    t = np.asarray(y, dtype=np.float64)
    result: dict[str, Any] = {"loss": math.fsum(losses.tolist()) / n if n else math.nan, "rows": n}
    w = None if weights is None or not n else np.asarray(weights, dtype=np.float64)
    if w is not None:
        result["weighted_loss"] = math.fsum((w * losses).tolist()) / math.fsum(w.tolist())
    if task == "regression":
        errs = outs - t
        mean_y = math.fsum(t.tolist()) / n
        sse = math.fsum((errs * errs).tolist())
        result["mse"] = sse / n
        result["mae"] = math.fsum(np.abs(errs).tolist()) / n
        ss_tot = math.fsum(((t - mean_y) ** 2).tolist())
        result["r2"] = 1.0 - sse / ss_tot if ss_tot > 0 else math.nan
        return result
    k = 2 if task == "binary" else len(root.compiled_graph.elements)
    right = _right(task, outs, t) if n else np.zeros(0, bool)
    result["accuracy"] = int(right.sum()) / n if n else math.nan
    pred = _predicted(task, outs) if n else np.zeros(0, int)
    matrix = np.bincount(t.astype(int) * k + pred, minlength=k * k).reshape(k, k).tolist()
    result["confusion"] = matrix
    if w is not None:
        result["weighted_accuracy"] = math.fsum(w[right].tolist()) / math.fsum(w.tolist())
    result["per_class"] = class_report(matrix, list(labels or [str(c) for c in range(k)]))
    return result


def class_report(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> list[dict[str, Any]]:
    """Per class, from a confusion matrix (rows: true class, columns: predicted): its label,
    support, precision, recall and F1 (NaN where undefined: no row predicted or present)."""
    k = len(matrix)
    out = []
    for c in range(k):
        tp = matrix[c][c]
        predicted = sum(matrix[r][c] for r in range(k))
        actual = sum(matrix[c])
        precision = tp / predicted if predicted else math.nan
        recall = tp / actual if actual else math.nan
        if math.isnan(precision) or math.isnan(recall):
            f1 = math.nan
        else:
            f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        out.append({"label": labels[c], "support": actual, "precision": precision, "recall": recall, "f1": f1})
    return out
