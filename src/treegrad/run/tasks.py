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


def accuracy(task: str, outputs: Sequence[Any], y: Sequence[Any]) -> float:
    """Fraction of samples classified right (binary: output >= 0.5 means class 1)."""
    if not y:
        return math.nan
    if task == "binary":
        right = sum((float(o) >= 0.5) == (t >= 0.5) for o, t in zip(outputs, y))
    else:
        right = sum(max(range(len(o)), key=o.__getitem__) == t for o, t in zip(outputs, y))
    return right / len(y)


def evaluate_rows(
    root: Any,
    task: str,
    loss: str,
    X: Sequence[Sequence[float]],
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
    outs = part.agree(lambda: predict_many(root, X, describe_row))
    if not part.alone:  # the rows of every part, as one process would score them (fsum: in any order)
        outs, y = part.concat(list(outs)), part.concat(list(y))
        weights = None if weights is None else part.concat(list(weights))
    k = len(root.compiled_graph.elements)
    fn = LOSSES[loss].fn(k)
    losses = [fn(o if isinstance(o, list) else [o], t)[0] for o, t in zip(outs, y)]
    result: dict[str, Any] = {"loss": math.fsum(losses) / len(y) if y else math.nan, "rows": len(y)}
    if weights is not None and y:
        result["weighted_loss"] = math.fsum(w * v for w, v in zip(weights, losses, strict=True)) / math.fsum(weights)
    if task == "regression":
        errs = [float(o) - t for o, t in zip(outs, y)]
        mean_y = math.fsum(y) / len(y)
        ss_tot = math.fsum((t - mean_y) ** 2 for t in y)
        sse = math.fsum(e * e for e in errs)
        result["mse"] = sse / len(y)
        result["mae"] = math.fsum(abs(e) for e in errs) / len(y)
        result["r2"] = 1.0 - sse / ss_tot if ss_tot > 0 else math.nan
    else:
        result["accuracy"] = accuracy(task, outs, y)
        n = 2 if task == "binary" else k
        matrix = [[0] * n for _ in range(n)]
        for o, t in zip(outs, y):
            pred = int(float(o) >= 0.5) if task == "binary" else max(range(k), key=o.__getitem__)
            matrix[int(t)][pred] += 1
        result["confusion"] = matrix
        if weights is not None and y:
            right = [
                int(float(o) >= 0.5) == int(t) if task == "binary" else max(range(k), key=o.__getitem__) == t
                for o, t in zip(outs, y)
            ]
            result["weighted_accuracy"] = math.fsum(w for w, r in zip(weights, right) if r) / math.fsum(weights)
        result["per_class"] = class_report(matrix, list(labels or [str(c) for c in range(n)]))
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
