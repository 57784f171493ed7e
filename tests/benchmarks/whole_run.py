"""The whole run of issue 26, side by side: `treegrad train` of the spec `treegrad init` writes for
a binary table (60,000 rows x 20 inputs, 3 epochs) beside pandas + scikit-learn's MLP with the same
layers (one hidden layer of 32 relu units), optimizer (Adam, rate 0.01), batch (32), epochs,
standardised inputs and 80/20 split; each in a fresh process, from reading the CSV to the model
written and its training and validation loss and accuracy computed, imports included.

    python tests/benchmarks/whole_run.py [--rows 60000] [--inputs 20] [--epochs 3] [--reps 3]

The two runs alternate (treegrad, peer, treegrad, peer, ...) so that the load of the machine
weighs on both alike; the report gives each one's median seconds and peak memory (RSS), and the
ratio peer / treegrad (above 1: treegrad is faster). pandas and scikit-learn are peers only
(`pip install pandas scikit-learn`), never treegrad's dependencies.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# The peer: what a practitioner writes with pandas and scikit-learn for the same run.
PEER = r"""
import pickle, sys, warnings
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

path, target, epochs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
frame = pd.read_csv(path)
X, y = frame.drop(columns=[target]).to_numpy(float), frame[target].to_numpy()
Xtr, Xva, ytr, yva = train_test_split(X, y, test_size=0.2, random_state=0)
scaler = StandardScaler().fit(Xtr)
mlp = MLPClassifier(
    hidden_layer_sizes=(32,), activation="relu", solver="adam", learning_rate_init=0.01, batch_size=32,
    max_iter=epochs, alpha=0.0, shuffle=True, random_state=0, tol=0.0, n_iter_no_change=epochs + 1,
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    mlp.fit(scaler.transform(Xtr), ytr)
for name, (A, b) in {"train": (Xtr, ytr), "validation": (Xva, yva)}.items():
    p = mlp.predict_proba(scaler.transform(A))
    print(name, log_loss(b, p, labels=mlp.classes_), accuracy_score(b, mlp.classes_[p.argmax(axis=1)]))
with open(out, "wb") as f:
    pickle.dump((scaler, mlp), f)
"""


def make_table(path: Path, rows: int, inputs: int, seed: int = 0) -> None:
    """A binary table: `inputs` columns of numbers at assorted scales and offsets, and a `label`
    (yes/no) that a linear function of the standardised inputs decides, with noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, inputs)) * rng.uniform(0.5, 20, size=inputs) + rng.uniform(-50, 50, size=inputs)
    z = ((X - X.mean(0)) / X.std(0)) @ rng.normal(size=inputs) + 0.5 * rng.normal(size=rows)
    labels = np.where(z > 0, "yes", "no")
    with open(path, "w", encoding="utf-8") as f:
        f.write(",".join([f"x{j}" for j in range(inputs)] + ["label"]) + "\n")
        for i in range(rows):
            f.write(",".join(f"{v:.6g}" for v in X[i]) + f",{labels[i]}\n")


@dataclass
class Timed:
    """One fresh process: its wall-clock seconds and peak resident memory (bytes)."""

    seconds: float
    peak: int


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> Timed:
    """Run `argv` in a fresh process (output discarded, as in a pipe); its time and peak RSS."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{err.decode(errors='replace')}")
    return Timed(seconds, usage.ru_maxrss * 1024)  # Linux reports kilobytes


def measure(rows: int, inputs: int, epochs: int, reps: int, folder: Path, baseline: Path | None = None) -> str:
    """Both runs `reps` times, alternating, and the report; with `baseline` (another checkout of
    treegrad), its `train` too, as a third run in the same alternation (before and after a change).

    The table is made in a process of its own: a process's peak memory counts that of the process
    it was forked from (Linux keeps the high-water mark across exec), so this one stays small."""
    data = folder / "table.csv"
    made = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import whole_run; "
    made += f"whole_run.make_table(__import__('pathlib').Path({str(data)!r}), {rows}, {inputs})"
    subprocess.run([sys.executable, "-c", made], check=True)
    treegrad = [sys.executable, "-m", "treegrad"]
    spec, model = str(folder / "table.yaml"), str(folder / "m.json")
    subprocess.run([*treegrad, "init", str(data), "-o", spec, "--force"], check=True, capture_output=True)
    ours = [*treegrad, "train", spec, "--epochs", str(epochs), "-o", model, "--force"]
    peer = [sys.executable, "-c", PEER, str(data), "label", str(epochs), str(folder / "m.pickle")]
    runs: dict[str, list[Timed]] = {"treegrad": [], "pandas+sklearn": []}
    if baseline is not None:
        runs["baseline"] = []
        older = {**os.environ, "PYTHONPATH": str(baseline.resolve() / "src")}  # ahead of the installed one
    for _ in range(reps):
        runs["treegrad"].append(timed(ours, folder))
        runs["pandas+sklearn"].append(timed(peer, folder))
        if baseline is not None:
            runs["baseline"].append(timed([*ours[:-3], "-o", str(folder / "b.json"), "--force"], folder, older))
    median = {name: statistics.median(t.seconds for t in ts) for name, ts in runs.items()}
    peak = {name: max(t.peak for t in ts) for name, ts in runs.items()}
    lines = [
        f"whole run: {rows:,} rows x {inputs} inputs, binary, init's spec (32 relu, adam, batch 32), "
        f"{epochs} epoch(s), {reps} rep(s) alternating; load average {os.getloadavg()[0]:.2f} at the end",
    ]
    for name in runs:
        each = ", ".join(f"{t.seconds:.2f}" for t in runs[name])
        memory = f"peak RSS {peak[name] / 2**20:6.1f} MB"
        lines.append(f"  {name:<15} median {median[name]:6.2f} s  (each: {each})  {memory}")
    ratio = median["pandas+sklearn"] / median["treegrad"]
    lines.append(f"  ratio: treegrad is {ratio:.2f}x pandas + scikit-learn (above 1: faster)")
    if baseline is not None:
        then = median["pandas+sklearn"] / median["baseline"]
        lines.append(
            f"  baseline ({baseline}): {then:.2f}x pandas + scikit-learn; treegrad is "
            f"{median['baseline'] / median['treegrad']:.2f}x the baseline"
        )
    return "\n".join(lines)


def main() -> None:
    """The command line: sizes, repetitions, and where to put the files (a temporary folder)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--inputs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another treegrad checkout to time too (e.g. before a change)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(measure(args.rows, args.inputs, args.epochs, args.reps, Path(folder), args.baseline))


if __name__ == "__main__":
    main()
