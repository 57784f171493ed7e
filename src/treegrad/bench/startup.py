"""The CLI row: `treegrad train` in a fresh process, start-up included, beside the same training
by hand in a fresh `python`, and the share of each process's time that went to imports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .workloads import LR

# The python peer of the CLI row, run as `python -c`: read the same CSV, take its rows in the
# order `treegrad train` does (its seeded split shuffles them once), train the same line with the
# same float operations in the same order (treegrad takes every gradient before it updates),
# print the last epoch's mean loss.
_CLI_PYTHON = """
import csv, sys
path, epochs, lr, w, b = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
with open(path, newline="") as fh:
    rows = [(float(r["f"]), float(r["c"])) for r in csv.DictReader(fh)]
rows = [rows[int(i)] for i in sys.argv[6].split(",")]
total = 0.0
for _ in range(epochs):
    total = 0.0
    for f, c in rows:
        d = w * f + b - c
        total += d * d
        g = 2.0 * d
        w, b = w - lr * (g * f), b - lr * g
print(repr(total / len(rows)))
"""


def import_seconds(importtime: str) -> float:
    """Seconds spent importing, from `python -X importtime` output: the sum of the top-level
    modules' cumulative times (a nested import is inside its importer's)."""
    return sum(int(m[1]) for m in re.finditer(r"^import time:\s+\d+ \|\s+(\d+) \| (?! )", importtime, re.M)) / 1e6


def _in_fresh_process(args: list[str], imports: list[float]) -> str:
    """Run `python -X importtime ARGS`; note its seconds of imports in `imports`, return its stdout."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the CLI row's process failed ({' '.join(args[:3])} ...): {proc.stderr[-2000:]}")
    imports.append(import_seconds(proc.stderr))
    return proc.stdout


def _cli_files(folder: Path, init: tuple[float, float], data: list[Any], epochs: int) -> tuple[Path, Path]:
    """The CLI row's CSV and spec, written into `folder`."""
    csv_path, spec = folder / "line.csv", folder / "line.yaml"
    csv_path.write_text("f,c\n" + "".join(f"{x[0]!r},{c!r}\n" for x, c in data), encoding="utf-8")
    w, b = init
    spec.write_text(
        f"inputs: [f]\noutput: {{add: [{{mul: [{{param: {w!r}}}, f]}}, {{param: {b!r}}}]}}\nloss: mse\n"
        f"data: {json.dumps(str(csv_path))}\ntarget: c\n"
        f"training: {{epochs: {epochs}, learning_rate: {LR}, batch_size: 1, optimizer: sgd, shuffle: false}}\n",
        encoding="utf-8",
    )
    return csv_path, spec


def cli_row(peer: str, init: Any, data: list[Any], epochs: int, imports: list[float]) -> Callable[[], float] | None:
    """The CLI row's training in a fresh process (treegrad: the command; python: by hand), or None."""
    if peer not in ("treegrad", "python"):
        return None
    from ..data.split import split_indices

    order, _ = split_indices(len(data), 0.0, 0)  # the rows' order in `treegrad train` (seed 0, no validation)

    def train() -> float:
        with tempfile.TemporaryDirectory(prefix="treegrad-bench-") as folder:
            csv_path, spec = _cli_files(Path(folder), init, data, epochs)
            if peer == "python":
                args = [str(csv_path), str(epochs), repr(LR), *(repr(v) for v in init), ",".join(map(str, order))]
                return float(_in_fresh_process(["-c", _CLI_PYTHON, *args], imports))
            model = Path(folder) / "line.json"
            _in_fresh_process(["-m", "treegrad", "train", str(spec), "--out", str(model), "--quiet"], imports)
            return float(json.loads(model.read_text(encoding="utf-8"))["history"]["train"][-1])

    return train
