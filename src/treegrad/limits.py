"""Bounds on the counts a user gives (epochs, steps, rows, depths), in one place.

Each is far above what a small tabular model needs and low enough that a typo (`--epochs
1000000000000`) fails at once with a message naming the limit, instead of running until it
is killed or memory runs out. The model's own size budget (nodes, parameters) is in analysis.
"""

from __future__ import annotations

MAX_EPOCHS = 1_000_000  # training.epochs and train --epochs
MAX_GENERATED = 100_000  # rows of a built-in dataset (--data NAME:N): one epoch in seconds
MAX_TRACE_STEPS = 10_000  # trace --steps: each step is printed in full
MAX_PAGE_STEPS = 1_000  # report --steps and trace --html: the page holds every step's numbers at once
MAX_BENCH_DEPTH = 16_384  # bench --depths: the longest W3 chain
MAX_SWEEP_RUNS = 10_000  # models a sweep trains (combinations x seeds): more is most likely a typo in a --grid list
MAX_WORKERS = 32  # processes of a sweep (-j), even when asked for more than the cores (each holds a run in memory)
MAX_CLASSES = 1_000  # classes of a softmax (its output, and the data's labels): a confusion matrix is this squared
MAX_SHOWN_FORMULA = 4000  # characters of a formula shown without asking (show prints more with --full)
