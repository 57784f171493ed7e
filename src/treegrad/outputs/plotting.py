"""Pictures of a trained model with matplotlib: its learning curve and, for one or two
inputs, what it learned over the data (a fitted curve, a decision boundary, a surface).

matplotlib is optional (`pip install 'treegrad[plot]'`). Figures are drawn with the Agg
canvas directly, never through pyplot, so nothing global (backend, open windows) changes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.targets import encode_targets, input_rows, select
from ..engine.compiled import predict_many
from ..errors import DataError, TreegradError
from ..files import IMAGE, IMAGE_MARK, write_atomic
from ..run.datasource import model_table
from ..run.modelfile import load
from ..run.tasks import accuracy

PLOT_FORMATS = ("png", "svg", "pdf")
GRID = 200  # grid points per axis for boundaries and surfaces
MAX_POINTS = 3000  # more data points than this are thinned out: a cloud hides the boundary
CLASS_COLORS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


@dataclass
class PlotData:
    """The points to draw over: input rows, and targets when the table has the target column."""

    source: str
    X: list[list[float]]
    y: list[Any] | None


@dataclass
class PlotResult:
    """What was drawn, for the CLI to report."""

    panels: list[str]
    notes: list[str] = field(default_factory=list)


def _matplotlib() -> Any:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise TreegradError(
            "plotting needs matplotlib, which is not installed: pip install matplotlib "
            "(or pip install 'treegrad[plot]')"
        ) from None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return Figure, FigureCanvasAgg


def plot_format(out: Path) -> str:
    """The image format named by the file's suffix, or a TreegradError."""
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in PLOT_FORMATS:
        raise TreegradError(
            f"cannot tell the image format of {out}: end the file name in " + ", ".join(f".{f}" for f in PLOT_FORMATS)
        )
    return fmt


def load_points(record: Any, data: str | None) -> tuple[PlotData | None, list[str]]:
    """The data to draw (from `data`, else the model's training source), and notes on what failed.

    A model with more than two inputs is drawn without points, so then no data is read.
    """
    if data is None and len(record.inputs) > 2:
        return None, []
    try:
        table = model_table(record, data)
    except DataError as e:
        if data is not None:
            raise
        return None, [f"the training data could not be read again ({e}); pass --data to draw the points"]
    if record.data.target in table.columns:
        X, raw, _ = select(table, list(record.inputs), record.data.target)
        y, _ = encode_targets(raw, record.task, record.classes, source=table.source, training=False, place=table.place)
        return PlotData(table.source, X, list(y)), []
    return PlotData(table.source, input_rows(table, list(record.inputs)), None), []


def draw(root: Any, record: Any, points: PlotData | None) -> tuple[Any, PlotResult]:
    """A matplotlib Figure: the learning curve, and the model over the data for one or two inputs."""
    Figure, Canvas = _matplotlib()
    n_inputs = len(record.inputs)
    fit_panel = points is not None and bool(points.X) and n_inputs in (1, 2)
    fig = Figure(figsize=(12.0 if fit_panel else 6.5, 5.0), layout="constrained")
    Canvas(fig)
    result = PlotResult([])
    axes = fig.subplots(1, 2 if fit_panel else 1, squeeze=False)[0]
    if not _learning_curve(axes[0], record):
        result.notes.append(
            f"the loss history holds values beyond ±{DRAWABLE:g}, too large to draw: they are left out of the "
            "learning curve"
        )
    result.panels.append("learning curve")
    if fit_panel:
        assert points is not None
        if n_inputs == 1:
            result.panels.append(_one_input(fig, axes[1], root, record, points))
        else:
            result.panels.append(_two_inputs(fig, axes[1], root, record, points))
    elif n_inputs > 2:
        result.notes.append(
            f"the model has {n_inputs} inputs: only the learning curve is drawn "
            "(boundaries and surfaces need one or two inputs)"
        )
    fig.suptitle(f"treegrad model {record.name}", fontsize=13)
    return fig, result


def plot_model(root: Any, record: Any, points: PlotData | None, out: Path, *, force: bool = False) -> PlotResult:
    """Draw the model (see `draw`) and write the image to `out` (.png, .svg, .pdf), atomically;
    an existing `out` is replaced only if treegrad drew it, or with `force`."""
    fmt = plot_format(out)
    fig, result = draw(root, record, points)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110, metadata={"Creator": IMAGE_MARK})
    write_atomic(out, buf.getvalue(), kind=IMAGE, force=force)
    return result


# Matplotlib's axis margins overflow for values near the largest float: larger ones are not drawn.
DRAWABLE = 1e300


def _drawable(values: list[float]) -> list[float]:
    return [math.nan if abs(v) > DRAWABLE else v for v in values]


def _learning_curve(ax: Any, record: Any) -> bool:
    """Draw the loss history; False if some of its values were too large to draw."""
    hist = record.history
    train, validation = _drawable(hist.train), _drawable(hist.validation)
    epochs = list(range(1, len(train) + 1))
    if train:
        ax.plot(epochs, train, color="#1f77b4", lw=1.8, label="training")
    if validation:
        ax.plot(list(range(1, len(validation) + 1)), validation, color="#ff7f0e", lw=1.8, label="validation")
    if hist.best_epoch is not None and hist.validation and _kept_best_epoch(record):
        label = f"best epoch ({hist.best_epoch}), parameters kept"
        ax.axvline(hist.best_epoch, color="#777777", ls=":", lw=1.2, label=label)
    values = [v for v in train + validation if math.isfinite(v)]
    if values and min(values) > 0 and max(values) / min(values) > 100:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    # Each point is the running mean over an epoch, not the final model's loss (eval's).
    ax.set_ylabel(f"mean loss over each epoch ({record.loss})")
    final = f"last epoch's mean {hist.train[-1]:.4g}" if hist.train else "no epochs"
    ax.set_title(f"Learning curve ({final})")
    ax.grid(True, alpha=0.3)
    if hist.train:
        ax.legend(loc="upper right")
    return not any(abs(v) > DRAWABLE for v in hist.train + hist.validation)


def _kept_best_epoch(record: Any) -> bool:
    """True if training kept the parameters of the best validation epoch: with early stopping
    (a patience) it restores them; without, the saved parameters are the last epoch's."""
    return record.training.early_stopping is not None


def _predict(root: Any, rows: Sequence[Sequence[float]]) -> list[Any]:
    return predict_many(root, rows)


def _span(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    pad = 0.08 * (hi - lo) if hi > lo else 1.0
    return lo - pad, hi + pad


def _thin(points: PlotData, most: int = MAX_POINTS) -> tuple[list[list[float]], list[Any] | None]:
    step = max(1, math.ceil(len(points.X) / most))
    return points.X[::step], points.y[::step] if points.y is not None else None


def _labels(record: Any, k: int) -> list[str]:
    if record.classes:
        return list(record.classes)
    return ["0", "1"] if record.task == "binary" else [str(i) for i in range(k)]


def _one_input(fig: Any, ax: Any, root: Any, record: Any, points: PlotData) -> str:
    X, y = _thin(points, MAX_POINTS // 10)  # along one axis, a few hundred points already cover the curve
    name, lo, hi = record.inputs[0], *_span([r[0] for r in points.X])
    grid = [lo + (hi - lo) * i / (GRID * 2 - 1) for i in range(GRID * 2)]
    out = _predict(root, [[v] for v in grid])
    if record.task == "classes":
        k = len(out[0])
        labels = _labels(record, k)
        for j in range(k):
            ax.plot(grid, [o[j] for o in out], color=CLASS_COLORS[j % 10], lw=2, label=f"P({labels[j]})")
        if y is not None:
            ax.scatter([r[0] for r in X], [-0.04] * len(X), c=[CLASS_COLORS[int(t) % 10] for t in y], s=12, marker="|")
        ax.set_ylabel("probability")
        ax.set_title("Class probabilities")
    else:
        fitted = "P(" + _labels(record, 2)[1] + ")" if record.task == "binary" else "model"
        ax.plot(grid, [float(o) for o in out], color="#d62728", lw=1.6, label=fitted, zorder=2)
        if y is not None:  # on top of the curve: a perfect fit must not hide the data
            ax.scatter(
                [r[0] for r in X],
                y,
                s=12,
                facecolors="none",
                edgecolors="#333333",
                linewidths=0.6,
                alpha=0.6,
                label=f"data ({points.source})",
                zorder=3,
            )
        ax.set_ylabel(record.data.target if record.task == "regression" else "probability")
        ax.set_title("Fitted curve" if record.task == "regression" else "Probability of the second class")
    ax.set_xlabel(name)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    return "fitted curve" if record.task == "regression" else "class probabilities"


def _two_inputs(fig: Any, ax: Any, root: Any, record: Any, points: PlotData) -> str:
    import numpy as np

    X, y = _thin(points)
    (x0, x1), (y0, y1) = _span([r[0] for r in points.X]), _span([r[1] for r in points.X])
    gx, gy = np.linspace(x0, x1, GRID), np.linspace(y0, y1, GRID)
    mx, my = np.meshgrid(gx, gy)
    rows = np.column_stack([mx.ravel(), my.ravel()]).tolist()
    out = _predict(root, rows)
    xs, ys = [r[0] for r in X], [r[1] for r in X]
    ax.set_xlabel(record.inputs[0])
    ax.set_ylabel(record.inputs[1])
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    if max(x1 - x0, y1 - y0) <= 1.5 * min(x1 - x0, y1 - y0):
        ax.set_aspect("equal", adjustable="box")  # a circle in the data stays a circle
    if record.task == "regression":
        z = np.array([float(o) for o in out]).reshape(mx.shape)
        cs = ax.contourf(mx, my, z, levels=20, cmap="viridis")
        fig.colorbar(cs, ax=ax, label=f"prediction of {record.data.target}")
        if y is not None:
            ax.scatter(xs, ys, c=y, cmap="viridis", norm=cs.norm, s=14, edgecolors="black", linewidths=0.4)
        ax.set_title("Fitted surface; points coloured by their target")
        return "fitted surface"
    from matplotlib.lines import Line2D

    if record.task == "binary":
        k, labels = 2, _labels(record, 2)
        p = np.array([float(o) for o in out]).reshape(mx.shape)
        cs = ax.contourf(mx, my, p, levels=np.linspace(0.0, 1.0, 11), cmap="RdBu_r", alpha=0.55)
        fig.colorbar(cs, ax=ax, label=f"P({labels[1]})")
        ax.contour(mx, my, p, levels=[0.5], colors="black", linewidths=1.8)
        colors = ["#2166ac", "#b2182b"]
    else:
        k = len(out[0])
        labels = _labels(record, k)
        cls = np.array([max(range(k), key=o.__getitem__) for o in out]).reshape(mx.shape)
        colors = [CLASS_COLORS[j % 10] for j in range(k)]
        ax.contourf(mx, my, cls, levels=np.arange(k + 1) - 0.5, colors=colors, alpha=0.3)
        ax.contour(mx, my, cls, levels=np.arange(k) + 0.5, colors="black", linewidths=1.2)
    handles = [Line2D([], [], color="black", lw=1.8, label="decision boundary")]
    if y is not None:
        ax.scatter(xs, ys, c=[colors[int(t)] for t in y], s=16, edgecolors="white", linewidths=0.5)
        handles += [
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                markersize=7,
                markerfacecolor=colors[j],
                markeredgecolor="white",
                label=f"{labels[j]}",
            )
            for j in range(k)
        ]
    else:
        ax.scatter(xs, ys, color="#333333", s=10)
    # Below the axes: inside, the legend would hide points and the boundary.
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncol=len(handles),
        frameon=False,
        title=f"{record.data.target} ({points.source})",
    )
    accuracy = _accuracy(root, record, points)
    ax.set_title(
        "Decision boundary" + (f": accuracy {accuracy:.1%} on {len(points.X)} points" if accuracy is not None else "")
    )
    return "decision boundary"


def _accuracy(root: Any, record: Any, points: PlotData) -> float | None:
    if points.y is None:
        return None
    return accuracy(record.task, _predict(root, points.X), points.y)


def importance_chart(
    names: Sequence[str], values: Sequence[float], title: str, out: Path, *, force: bool = False
) -> None:
    """A horizontal bar chart of each input's mean |contribution| (largest on top), written to `out`
    (over an existing file only if treegrad drew it, or with `force`)."""
    fmt = plot_format(out)
    Figure, Canvas = _matplotlib()
    fig = Figure(figsize=(6.5, 1.2 + 0.35 * len(names)), layout="constrained")
    Canvas(fig)
    ax = fig.subplots()
    ax.barh(list(reversed(names)), list(reversed(values)), color=CLASS_COLORS[0])
    ax.set_xlabel("mean |contribution|")
    ax.set_title(title)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=110, metadata={"Creator": IMAGE_MARK})
    write_atomic(out, buf.getvalue(), kind=IMAGE, force=force)


def plot_file(model: Path, out: Path, data: str | None = None, *, force: bool = False) -> PlotResult:
    """`treegrad plot`: the model file drawn (see `draw`) over `data` (else its training data) and
    written to `out`; the notes say what could not be drawn."""
    plot_format(out)
    loaded = load(model)
    points, notes = load_points(loaded.record, data)
    result = plot_model(loaded.root, loaded.record, points, out, force=force)
    result.notes[:0] = notes
    return result
