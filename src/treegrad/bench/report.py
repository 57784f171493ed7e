"""The results as one plain-text table: per workload a row per peer (steps/s, samples/s, the final
loss, how many times faster treegrad is), and for W3 and W6 a row per depth or width with the
log-log slope; then notes, versions and threads."""

from __future__ import annotations

import math
import platform
import statistics
import sys
from collections.abc import Sequence

from .measuring import Result
from .workloads import CLI_ROWS, LABELS, N_SAMPLES, SLOPE_RANGE, TITLES, WIDE, WIDTHS


def slope(points: Sequence[tuple[int, float]]) -> float | None:
    """Least-squares slope of log(time) against log(depth); None with fewer than 2 depths."""
    if len(points) < 2:
        return None
    xs = [math.log(d) for d, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def _ratio(a: float, b: float) -> str:
    r = a / b
    return f"{r:,.0f}x" if r >= 100 else f"{r:.3g}x"


def _grid(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    # the first column (names) to the left, the numbers to the right
    return [
        "  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]


def table(results: Sequence[Result], notes: Sequence[str] = (), reps: int = 1) -> str:
    """The results as plain text: per workload one row per peer, W3 one row per depth."""
    lines: list[str] = []
    by_workload: dict[str, list[Result]] = {}
    for r in results:
        by_workload.setdefault(r.workload, []).append(r)
    for w, rs in by_workload.items():
        epochs = rs[0].samples // (WIDE[w][4] if w in WIDE else CLI_ROWS if w == "CLI" else N_SAMPLES)
        title = TITLES[w].format(e=f"{epochs} epoch" + "s" * (epochs != 1))
        lines.append(title + ("" if reps == 1 else f" (medians of {reps} rounds)"))
        if w == "W3":
            lines += _chain_table(rs)
        elif w == "W6":
            lines += _chain_table(rs, "width", (WIDTHS[0], WIDTHS[-1]), per_sample=True)
        else:
            tg = next((r for r in rs if r.peer == "treegrad"), None)
            rows = [["peer", "steps/s", "samples/s", "final loss", "treegrad is"]]
            for r in rs:
                vs = "-" if tg is None or r is tg else _ratio(tg.samples_per_s, r.samples_per_s)
                speeds = [f"{r.steps_per_s:,.0f}", f"{r.samples_per_s:,.0f}"]
                rows.append([_label(r.peer), *speeds, f"{r.final_loss:.10g}", vs])
            lines += _grid(rows)
            lines += [
                f"  {r.peer}: {r.time:.3g} s a process, {statistics.median(r.imports):.3g} s of it in imports"
                f" ({statistics.median(r.imports) / r.time:.0%})"
                for r in rs
                if r.imports
            ]
        lines.append("")
    if "CLI" in by_workload and sys.dont_write_bytecode:
        notes = [*notes, "PYTHONDONTWRITEBYTECODE is set: the CLI row's processes compile every module not yet cached"]
    if notes:
        lines += [f"note: {n}" for n in notes]
    lines.append(f"Python {platform.python_version()}, {_versions()}")
    if "numpy" in sys.modules:
        from ..engine.vectorized import blas_threads

        lines.append(f"BLAS: {blas_threads()}; treegrad trains on arrays with 1 thread, the peers with the default")
    if "torch" in sys.modules:
        import torch

        lines.append(f"PyTorch: torch with its default {torch.get_num_threads()} threads, torch1 with 1")
    return "\n".join(lines)


def _label(peer: str) -> str:
    return LABELS.get(peer, peer)


def _chain_table(
    rs: list[Result], label: str = "depth", span: tuple[int, int] = SLOPE_RANGE, per_sample: bool = False
) -> list[str]:
    """Time per step (per sample) against the depth (width) of the model, one row each, and the
    log-log slope over `span`."""
    peers = list(dict.fromkeys(r.peer for r in rs))
    depths = sorted({r.depth for r in rs if r.depth is not None})
    cell = {(r.peer, r.depth): r for r in rs}
    others = [p for p in peers if p != "treegrad"]
    head = [label, *[f"{_label(p)} us" for p in peers]]

    def us(r: Result) -> float:
        return 1e6 * r.time / r.samples if per_sample else r.us_per_step

    if "treegrad" in peers:
        head += [f"treegrad vs {_label(p)}" for p in others]
    rows = [head]
    for d in depths:
        row = [str(d)] + [f"{us(cell[p, d]):,.1f}" if (p, d) in cell else "-" for p in peers]
        if "treegrad" in peers:
            row += [
                _ratio(cell["treegrad", d].steps_per_s, cell[p, d].steps_per_s)
                if (p, d) in cell and ("treegrad", d) in cell
                else "-"
                for p in others
            ]
        rows.append(row)
    lo, hi = span
    srow = [f"slope {lo}-{hi}"]
    for p in peers:
        s = slope([(d, us(cell[p, d])) for d in depths if lo <= d <= hi and (p, d) in cell])
        srow.append("-" if s is None else f"{s:.2f}")
    rows.append(srow + ["" for _ in others] * ("treegrad" in peers))
    losses = [
        f"final loss at {label} {depths[-1]}: "
        + ", ".join(f"{p} {cell[p, depths[-1]].final_loss:.10g}" for p in peers if (p, depths[-1]) in cell)
    ]
    return _grid(rows) + ["  " + losses[0]]


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("numpy", "torch", "micrograd"):
        if name in sys.modules:
            try:
                found.append(f"{name} {version(name)}")
            except PackageNotFoundError:
                found.append(name)
    return ", ".join(found) or "no peer packages imported"
