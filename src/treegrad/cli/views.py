"""Each command's result drawn for the terminal: training's progress bar and summary, the sweep's
leaderboard, eval's metrics and confusion matrix, the node tree, a trace step, the tables of
simplify, explain and check. Each view takes the library's result and prints it; none computes.
"""

# No `from __future__ import annotations` in the cli: Typer reads the commands' annotations on
# every run, and evaluating them from strings cost about 0.1 s of each command's start-up.

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from .render import NARROW, err, escape, interrupted, metric, num, out, print_table, table

T = TypeVar("T")

# ----------------------------------------------------------------- train


# Where stderr is no terminal (a pipe, a log, CI), progress is plain lines, at most one every this
# many seconds: a short run prints none, a long one shows it is alive.
PLAIN_EVERY = 2.0


class _Plain:
    """Plain progress lines on stderr, at most one every PLAIN_EVERY seconds (the first after as long)."""

    def __init__(self) -> None:
        import time

        self.clock = time.monotonic
        self.last = self.clock()

    def line(self, text: str, *, due: bool = False) -> None:
        """Print `text` if PLAIN_EVERY seconds have passed since the last line (or `due`: now)."""
        now = self.clock()
        if due or now - self.last >= PLAIN_EVERY:
            err.print(escape(text), soft_wrap=True)
            self.last = now


@contextlib.contextmanager
def reading() -> Iterator[Callable[[str, int], None]]:
    """A callback `(source, rows)` that shows the rows of the data read so far: on a terminal a
    line that goes when reading ends ("reading big.csv: 40,960 rows…"), elsewhere a plain line
    every few seconds."""
    if not err.is_terminal:
        plain = _Plain()
        yield lambda source, rows: plain.line(f"reading {source}: {rows:,} rows...")
        return
    status: list[Any] = []

    def show(source: str, rows: int) -> None:
        text = f"reading {escape(source)}: {rows:,} rows…"
        if not status:
            status.append(err.status(text))
            status[0].start()
        status[0].update(text)

    try:
        yield show
    finally:
        if status:
            status[0].stop()


def with_progress(total: int, done: int, train: Callable[[Any, Any], T]) -> T:
    """`train(progress, stage)` under a progress bar of `total` epochs starting at `done` (a resumed
    run's bar starts where it stopped) and, after the epochs, a line saying what comes (`stage`);
    on a narrow terminal no bar, and where stderr is no terminal plain lines every few seconds."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if not err.is_terminal:
        return _plain_progress(total, train)
    if err.width < NARROW:  # a bar cut to a sliver says nothing: the summary comes at the end
        return train(None, None)
    columns = [
        TextColumn("[bold]training[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    ]
    # The bar appears only once training starts, so an error in the spec or the data
    # is not preceded by an empty bar.
    bar = Progress(*columns, console=err, refresh_per_second=8)
    task = bar.add_task("train", total=total, completed=done, status="", start=False)

    def progress(epoch: int, train_loss: float, val_loss: float | None, extra: dict[str, float]) -> None:
        if not bar.live.is_started:
            bar.start()
            bar.start_task(task)
        if epoch == 0:
            return
        bar.update(task, completed=epoch, status=_epoch_status(train_loss, val_loss, extra))

    status: list[Any] = []

    def stage(name: str) -> None:
        if bar.live.is_started:
            bar.stop()
        status.append(err.status(STAGES.get(name, name)))
        status[-1].start()

    try:
        return train(progress, stage)
    finally:
        if bar.live.is_started:
            bar.stop()
        for s in status:
            s.stop()


STAGES = {"metrics": "computing the final model's metrics on every row…"}


def _epoch_status(train_loss: float, val_loss: float | None, extra: dict[str, float]) -> str:
    """An epoch's numbers in a few words: its mean loss, validation loss, accuracy, penalty, rate."""
    # The running mean over the epoch, taken while the parameters move: labelled so,
    # because the summary's loss (the final model on the training rows) differs.
    status = f"epoch mean loss {train_loss:.4g}"
    if val_loss is not None:
        status += f"  val {val_loss:.4g}"
    if "accuracy" in extra:
        status += f"  acc {extra['accuracy']:.1%}"
    if "penalty" in extra:
        status += f"  penalty {extra['penalty']:.4g}"
    if "lr" in extra:
        status += f"  lr {extra['lr']:.3g}"
    return status


def _plain_progress(total: int, train: Callable[[Any, Any], T]) -> T:
    """`train` with a plain line per epoch on stderr, at most one every few seconds (a pipe, a log, CI)."""
    plain = _Plain()

    def progress(epoch: int, train_loss: float, val_loss: float | None, extra: dict[str, float]) -> None:
        if epoch:
            plain.line(f"epoch {epoch}/{total}: {_epoch_status(train_loss, val_loss, extra)}")

    return train(progress, lambda name: None)


def summary(result: Any, hint: str) -> None:
    """After training: the learning curve, the final model's losses and metrics, and what to run next."""
    from ..outputs.textplot import text_curve

    rec = result.record
    hist = rec.history
    if hist.train:
        # Narrowed to the terminal, or one line saying why it is left out (a wrapped chart is garbage).
        out.print(
            "\n".join(text_curve(hist.train, hist.validation or None, width=60, height=8, max_width=out.width)),
            soft_wrap=True,
        )
    t = table(title=f"trained {escape(rec.name)}", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row(
        "epochs",
        f"{len(hist.train)}"
        + (" (stopped early)" if hist.stopped_early else "")
        + (" (interrupted)" if result.interrupted else ""),
    )
    # Losses and metrics of the final model (what `eval` reports), not the running mean of
    # the last epoch, which was taken while the parameters were still moving.
    for part, m in rec.metrics.items():
        t.add_row(f"{'training' if part == 'train' else part} loss of the final model", f"{m['loss']:.6g}")
        for key in ("accuracy", "r2", "mae"):
            if key in m and not (isinstance(m[key], float) and math.isnan(m[key])):
                value = f"{m[key]:.1%}" if key == "accuracy" else f"{m[key]:.4g}"
                t.add_row(f"{part} {key}", value)
    if hist.penalty:
        t.add_row("final penalty", f"{hist.penalty[-1]:.6g} (apart from the loss)")
    if hist.learning_rates:
        t.add_row("learning rate", f"{hist.learning_rates[0]:.4g} -> {hist.learning_rates[-1]:.4g}")
    t.add_row("parameters", str(result.parameter_count))
    t.add_row("nodes", str(result.node_count))
    t.add_row(
        "data",
        f"{escape(rec.data.source)} ({rec.data.train_rows} training rows"
        + (f", {rec.data.validation_rows} validation" if rec.data.validation_rows else "")
        + ")",
    )
    t.add_row("time", f"{result.seconds:.2f} s")
    t.add_row("model written to", escape(str(result.out)))
    print_table(t)
    out.print(f"next: {escape(hint)}")


# ----------------------------------------------------------------- sweep


def sweep_run(done: int, total: int, names: list[str], run: Any) -> None:
    """One line on stderr per finished run of a sweep."""
    from ..run.sweep import cell

    what = f"failed: {escape(run.error)}" if run.error else f"loss {run.loss:.4g}"
    values = ", ".join(f"{k}={cell(v)}" for k, v in zip(names, run.values))
    err.print(f"[dim]{done}/{total}[/] {escape(values) or 'spec'} seed {run.seed}: {what}")


def sweep_stopped(written: Any) -> None:
    """A sweep that ended before its last run: what it kept, where, and what it did not write."""
    kept = f"after {len(written.result.runs)} of {written.planned} runs: those finished are in {written.csv}"
    if written.stopped == "interrupted":
        err.print(interrupted(f"interrupted {kept}; no best model was saved."))
    else:
        err.print(f"[bold red]error:[/] {escape(f'{written.stopped}. Stopped {kept}.')}")


def leaderboard(result: Any) -> None:
    """The sweep's combinations ranked: mean ± deviation over seeds, time, dead units, failures."""
    from ..run.sweep import cell

    def pm(mean: float, sd: float, fmt: str) -> str:
        if math.isnan(mean):
            return "-"
        return format(mean, fmt) + ("" if math.isnan(sd) else f" ± {format(sd, fmt)}")

    t = table(title=f"leaderboard ({result.loss_kind} loss, lower is better)", title_justify="left")
    t.add_column("#", justify="right")
    for name in result.grid.names():
        t.add_column(escape(name.removeprefix("training.")))
    for head in ("runs", f"{result.loss_kind} loss", result.metric_name, "formula", "time", "dead", "failed"):
        t.add_column(head, justify="right")
    for rank, row in enumerate(result.board, 1):
        metric_fmt = ".2%" if result.metric_name == "accuracy" else ".4g"
        t.add_row(
            str(rank),
            *[escape(cell(v)) for v in row.values],
            str(row.runs),
            "failed" if math.isinf(row.loss_mean) else pm(row.loss_mean, row.loss_sd, ".4g"),
            pm(row.metric_mean, row.metric_sd, metric_fmt),
            "-" if math.isnan(row.formula_length) else f"{row.formula_length:.0f} chars",
            "-" if math.isnan(row.seconds) else f"{row.seconds:.2f} s",
            f"{row.died}/{row.runs}",
            f"{row.failed}/{row.runs}",
        )
    print_table(t)


# ----------------------------------------------------------------- predict, eval


def prediction(result: dict[str, Any]) -> None:
    """One sample's prediction: a label and its probability, or a number."""
    if "label" in result:
        out.print(f"{escape(result['label'])}  (probability {result['probability']:.4f})")
    else:
        out.print(f"{result['prediction']:.6g}")


def evaluation(title: str, loss: str, m: dict[str, Any], labels: list[str]) -> None:
    """eval's loss and metrics, and for a classifier its confusion matrix with per-class scores."""
    t = table(title=escape(title), show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("rows", str(m["rows"]))
    t.add_row(f"loss ({loss})", metric(m["loss"]))
    if "weighted_loss" in m:
        t.add_row("weighted loss", metric(m["weighted_loss"]))
    for key in ("accuracy", "weighted_accuracy", "mse", "mae", "r2"):
        if key in m:
            t.add_row(key.replace("_", " "), metric(m[key], "accuracy" in key))
    print_table(t)
    if "confusion" not in m:
        return
    c = table(title="confusion (rows: true, columns: predicted)", title_justify="left")
    c.add_column("")
    for lab in labels:
        c.add_column(escape(lab), justify="right")
    for head in ("precision", "recall", "F1"):
        c.add_column(head, justify="right", style="dim")
    per_class = m.get("per_class") or [{}] * len(labels)
    for lab, row, pc in zip(labels, m["confusion"], per_class):
        scores = ["-" if math.isnan(pc.get(k, math.nan)) else f"{pc[k]:.3f}" for k in ("precision", "recall", "f1")]
        c.add_row(escape(lab), *[str(v) for v in row], *scores)
    print_table(c)


# ----------------------------------------------------------------- explain, simplify


def ranking(name: str, data: str, baseline: str, ranked: Any) -> None:
    """explain --data: the inputs ranked by mean |contribution|, with bars."""
    top = max((v for _, v in ranked.ranked), default=0.0) or 1.0
    t = table(
        title=f"{escape(name)}: mean |contribution| to the {escape(ranked.explained)} over "
        f"{ranked.rows} rows of {escape(data)} (baseline {baseline})",
        title_justify="left",
    )
    for head, justify in (("#", "right"), ("input", "left"), ("mean |contribution|", "right"), ("", "left")):
        t.add_column(head, justify=justify)  # type: ignore[arg-type]
    for k, (input_name, v) in enumerate(ranked.ranked, 1):
        t.add_row(str(k), escape(input_name), f"{v:.6g}", "█" * round(20 * v / top))
    print_table(t)
    out.print(f"method: {', '.join(ranked.methods)}; largest completeness error {ranked.worst_completeness_error:.2g}")


def explanation(name: str, baseline: str, e: Any) -> None:
    """explain of one sample: each input's value, gradient and contribution, and how they add up."""
    t = table(title=f"{escape(name)}: why the {escape(e.explained)} is {e.output:.6g}", title_justify="left")
    for head in ("input", "value", "baseline", "∂f/∂x", "gradient × (x − b)", "contribution"):
        t.add_column(head, justify="left" if head == "input" else "right")
    for i, input_name in enumerate(e.inputs):
        t.add_row(
            escape(input_name),
            f"{e.values[i]:.6g}",
            f"{e.baseline[i]:.6g}",
            f"{e.gradient[i]:.6g}",
            f"{e.gradient_x_input[i]:.6g}",
            f"{e.contributions[i]:.6g}",
        )
    print_table(t)
    out.print(
        f"f(x) = {e.output:.10g}, f(baseline) = {e.baseline_output:.10g} (baseline: {baseline}); "
        f"the contributions add up to f(x) − f(baseline) within {e.completeness_error:.2g} "
        f"({e.method}"
        + (f", {e.intervals} quadrature interval{'s' if e.intervals > 1 else ''})" if e.intervals else ")")
    )


def simplified(name: str, regression: bool, result: Any, formula: str) -> None:
    """simplify's table of shorter models and what each costs, the chosen one marked, and its formula."""
    t = table(title=f"{escape(name)}: shorter formulas and what they cost", title_justify="left")
    for head in ("#", "", "terms", "nodes", "params", "train loss", "val loss", "metric", "step"):
        t.add_column(head, justify="left" if head in ("", "step") else "right")
    for k, c in enumerate(result.candidates):
        m = c.validation or c.train
        score = f"R² {m['r2']:.4f}" if regression else f"acc {m['accuracy']:.1%}"
        t.add_row(
            str(k),
            "[bold green]→[/]" if k == result.chosen else "",
            str(c.terms),
            str(c.nodes),
            str(c.parameters),
            f"{c.train['loss']:.4g}",
            f"{c.validation['loss']:.4g}" if c.validation else "-",
            score,
            escape(c.step),
        )
    out.print(t)
    for note in result.notes:
        err.print(f"[yellow]note:[/] {escape(note)}")
    out.print(f"chosen by {escape(result.rule)}: #{result.chosen}")
    out.print(escape(formula))


# ----------------------------------------------------------------- show, trace


def formula(text: str, shown: int | None, hint: str) -> None:
    """A formula, or its first `shown` characters (cut at a space) and on stderr how to see it whole."""
    if shown is None or len(text) <= shown:
        out.print(escape(text))
        return
    cut = text.rfind(" ", 0, shown)
    out.print(escape(text[: cut if cut > 0 else shown]) + " ...")
    err.print(f"(the formula is {len(text):,} characters; the first {shown:,} are shown: {escape(hint)})")


def tree(root: Any, precision: int, limit: int | None, hint: str) -> None:
    """The node graph as a tree; with `limit`, its lines until their text reaches `limit` characters,
    and on stderr how to see it whole."""
    drawn_tree, drawn, lines = _tree(root, precision, limit)
    out.print(drawn_tree)
    if drawn < lines:
        err.print(
            f"(the tree has {lines:,} lines; the first {drawn:,} ({limit:,} characters) are shown: {escape(hint)})"
        )


def _tree(root: Any, precision: int, limit: int | None = None) -> tuple[Any, int, int]:
    """The node graph as a rich Tree: children in argument order, a node used twice drawn in full
    once (where it is met first) and named by its number elsewhere. With `limit`, lines are drawn
    in the order they print until their text reaches `limit` characters, then `...`.
    Returns (the tree, lines drawn, lines the whole tree has)."""
    from rich.text import Text
    from rich.tree import Tree

    g = root.compiled_graph
    uses: dict[int, int] = {}
    for n in g.order:
        for c in n.children:
            uses[id(c)] = uses.get(id(c), 0) + 1
    label = _node_label(precision)
    names = {id(n): f"#{i}" for i, n in enumerate(g.order)}
    top = Tree(label(g.output))
    size = len(Text.from_markup(label(g.output)).plain) + 1  # characters printed so far, newlines included
    drawn = lines = 1
    cut = False
    shown: set[int] = set()
    # Preorder, iteratively (a deep chain must not recurse): each entry is a node, the branch it
    # hangs from and its depth. Once the limit is reached, lines are only counted.
    stack: list[tuple[Any, Any, int]] = [(c, top, 1) for c in reversed(g.output.children)]
    while stack:
        node, parent, depth = stack.pop()
        lines += 1
        text = label(node)
        expand = bool(node.children)
        if uses.get(id(node), 0) > 1 and node.children:
            text += f" [dim]{names[id(node)]}[/]"
            if id(node) in shown:
                text += " [dim](shared: drawn once, elsewhere in this tree)[/]"
                expand = False
            shown.add(id(node))
        branch = None
        if parent is not None and not cut:
            width = 4 * depth + len(Text.from_markup(text).plain) + 1  # rich's guides are 4 wide
            if limit is not None and size + width > limit:
                parent.add("[dim]...[/]")
                cut = True
            else:
                size += width
                drawn += 1
                branch = parent.add(text)
        if expand:
            stack.extend((c, branch, depth + 1) for c in reversed(node.children))
    return top, drawn, lines


def _node_label(precision: int) -> Callable[[Any], str]:
    """How a node is labelled in the tree: inputs green, parameters cyan with their value, ops bold."""
    from ..core.nodes import Constant, Input, Output, Parameter
    from ..core.printers import number

    def label(n: Any) -> str:
        if isinstance(n, Input):
            return f"[green]{escape(n.name or '')}[/]"
        if isinstance(n, Parameter):
            return f"[cyan]{escape(n.name or '')} = {number(n.value, precision)}[/]"
        if isinstance(n, Constant):
            return number(n.value, precision)
        if isinstance(n, Output):
            return f"[bold]{n.kind}[/]"
        return f"[bold]{n.op.name}[/]"

    return label


def trace_step(step: Any, loss: str, lr: float, precision: int) -> None:
    """One SGD step of a trace: the sample, every node forward and backward, and the update."""

    def cut(s: str, n: int = 48) -> str:
        return escape(s if len(s) <= n else s[: n - 1] + "…")

    sample = ", ".join(f"{escape(k)}={num(v, precision)}" for k, v in step.inputs.items())
    out.print(f"\n[bold]step {step.step}[/]: sample {step.sample + 1} ({sample}), target {num(step.target, precision)}")
    t = table(title="forward (children first), then backward: dL/dnode from each parent", title_justify="left")
    for head, justify in (
        ("#", "right"),
        ("node", "left"),
        ("computes", "left"),
        ("formula", "left"),
        ("value", "right"),
        ("dL/dnode arriving", "left"),
        ("dL/dnode", "right"),
    ):
        t.add_column(head, justify=justify)  # type: ignore[arg-type]
    for n in step.nodes:
        arriving = "  ".join(f"from #{p}: {num(g, precision)}" for p, g in n.arrivals) or (
            "seed from the loss" if n.index == len(step.nodes) - 1 else "-"
        )
        t.add_row(
            str(n.index),
            cut(n.label, 16),
            cut(n.expr),
            cut(n.formula) if n.kind in ("op", "softmax", "output") else "",
            num(n.value, precision),
            arriving,
            num(n.grad, precision),
        )
    print_table(t)
    out.print(f"loss ({loss}) = {num(step.loss, precision)};  dL/doutput = {num(step.loss_grad, precision)}")
    p = table(title=f"update: new = old - {num(lr, precision)} * gradient", title_justify="left")
    for head in ("parameter", "old", "gradient", "new"):
        p.add_column(head, justify="left" if head == "parameter" else "right")
    for u in step.params:
        p.add_row(escape(u.name), num(u.old, precision), num(u.grad, precision), num(u.new, precision))
    print_table(p)


# ----------------------------------------------------------------- check, datasets


def checked(title: str, rows: list[tuple[str, str]], check: Any, on_data: bool) -> None:
    """check's summary of a spec, and its gradient check against finite differences."""
    from ..engine.gradcheck import TOLERANCE

    t = table(title=escape(title), show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    for key, value in rows:
        t.add_row(key, escape(value))
    at = "rows of the data" if on_data else "random inputs in [-1, 1]"
    skipped = f", {check.skipped} skipped where the model cannot be evaluated" if check.skipped else ""
    which = (
        f"{check.params} of {check.total} parameter gradients (a seeded sample) and 1 random direction over all"
        if check.sampled
        else f"{check.params} parameter gradients"
    )
    t.add_row(
        "gradient check",
        f"{which} vs finite differences at {check.points} {at}{skipped}: "
        f"max error {check.worst:.2g} relative to the gradient's norm "
        + ("[green]ok[/]" if check.ok else f"[red]MISMATCH[/] (tolerance {TOLERANCE:g})"),
    )
    print_table(t)


def datasets(generators: Any) -> None:
    """The built-in datasets: name, columns, kind, default rows, description."""
    t = table(title="built-in datasets (--data NAME, or NAME:N for N samples)", title_justify="left")
    t.add_column("name", style="bold")
    t.add_column("columns")
    t.add_column("kind")
    t.add_column("rows", justify="right")
    t.add_column("description")
    for g in generators:
        t.add_row(g.name, ", ".join(g.columns), g.kind, str(g.default_n), g.description)
    print_table(t)
