"""Pictures in plain text: a learning curve drawn with characters (no dependencies)."""

from __future__ import annotations

import math

LABEL_WIDTH = 10  # the axis labels, right-aligned, before " |"
MIN_COLUMNS = 20  # a narrower chart says too little: it is left out, with a line that says so


def text_curve(
    train: list[float],
    validation: list[float] | None = None,
    *,
    width: int = 60,
    height: int = 8,
    max_width: int | None = None,
) -> list[str]:
    """Lines of a small chart of the loss per epoch (log scale when it spans decades).

    Training loss is drawn with '*', validation loss with 'o', and '#' where both fall in
    the same cell (so neither hides the other). The axis is labelled at its top, middle
    and bottom. With `max_width` (a terminal's width) no line is longer: the chart narrows
    and the legend wraps; where even the narrowest chart does not fit, the one line returned
    says so (a wrapped chart would be garbage).
    """
    if max_width is not None:
        needed = LABEL_WIDTH + 2 + MIN_COLUMNS
        if max_width < needed:
            return [f"(loss curve left out: it needs {needed} columns, the terminal has {max_width})"]
        width = min(width, max_width - LABEL_WIDTH - 2)
    series = [("*", train)] + ([("o", validation)] if validation else [])
    values = [v for _, s in series for v in s if math.isfinite(v)]
    if not values:
        return []
    use_log = min(values) > 0 and max(values) / min(values) > 100

    def f(v: float) -> float:
        return math.log10(v) if use_log else v

    lo, hi = f(min(values)), f(max(values))
    span = (hi - lo) or 1.0
    n = max(len(s) for _, s in series)
    cols = min(width, n)
    grid = [[" "] * cols for _ in range(height)]
    for mark, s in series:
        for c in range(cols):
            i = min(len(s) - 1, round(c * (n - 1) / max(1, cols - 1)))
            if i < 0 or not math.isfinite(s[i]):
                continue
            r = round((f(s[i]) - lo) / span * (height - 1))
            cell = grid[height - 1 - r][c]
            grid[height - 1 - r][c] = mark if cell in (" ", mark) else "#"
    top, bottom = max(values), min(values)
    label_w = LABEL_WIDTH
    lines = []
    middle_row = (height - 1) // 2 if height >= 5 else -1
    # The value at the middle row: on a log scale the geometric mean, not the arithmetic one.
    mid_f = hi - span * middle_row / max(1, height - 1)
    middle = 10**mid_f if use_log else mid_f
    for r, row in enumerate(grid):
        label = (
            f"{top:.3g}"
            if r == 0
            else f"{bottom:.3g}"
            if r == height - 1
            else f"{middle:.3g}"
            if r == middle_row
            else ""
        )
        lines.append(f"{label:>{label_w}} |" + "".join(row))
    lines.append(" " * label_w + " +" + "-" * cols)
    head = "mean loss over each epoch" + (" (log scale)" if use_log else "") + ":"
    keys = ["* training"] + (["o validation", "# both"] if validation else [])
    lines.append(" " * label_w + f"  1{' ' * max(1, cols - len(str(n)) - 1)}{n}")
    # The legend wraps between words, never inside a key ("* training" stays whole).
    words = head.split() + [k + ("," if i < len(keys) - 1 else "") for i, k in enumerate(keys)]
    indent = " " * label_w + "  "
    legend = [indent]
    for word in words:
        if max_width is not None and legend[-1] != indent and len(legend[-1]) + 1 + len(word) > max_width:
            legend.append(indent)
        legend[-1] += ("" if legend[-1] == indent else " ") + word
    lines += legend
    return lines
