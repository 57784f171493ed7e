"""Shared test helpers: a builder of random DAGs over every elementary op.

The builder knows each node's value as it builds (leaves get values first), so it can
keep every op on the smooth part of its domain without rejecting examples: a log, a
division or a fractional power gets a guarded argument (x*x + 0.5) when its plain
argument is too close to the edge, relu/abs get their argument shifted away from the
kink, and a value that grows past 10 is squashed by a tanh. Nodes are drawn from the
whole pool, so they are shared (the graph is a DAG, not a tree).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from treegrad import Add, Constant, Input, Multiply, Node, Parameter, Tanh
from treegrad.core.nodes import OPERATIONS
from treegrad.core.ops import OPS

# pytest started in the background of a shell without job control (`cmd &`, as a script runs it)
# inherits SIGINT ignored, and so would every command the tests start: the tests of Ctrl-C then
# saw commands that could not be interrupted, and one waited for a sweep's orphaned workers
# for ever. The tests start their commands with Ctrl-C as a terminal gives it.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Every op of the table; an op added there is drawn here too. Ops defined on part of the
# numbers, or with a kink, get their guard below; any other op takes plain arguments.
OP_KINDS = tuple(OPS)
EXPONENTS = (2.0, 3.0, -1.0, 0.5, 1.5, -2.5)
KINK_MARGIN = 0.05  # the arguments of ops with a kink (relu, abs) stay at least this far from 0


@dataclass
class Dag:
    """A random graph: its root, its leaves, and every node built on the way."""

    root: Node
    inputs: list[Input]
    params: list[Parameter]
    nodes: list[Node]


def build_dag(pick: Callable[[int], int], real: Callable[[float, float], float], n_ops: int) -> Dag:
    """A random DAG of `n_ops` operations; `pick(n)` chooses in range(n), `real(lo, hi)` a float."""
    inputs = [Input(name) for name in ("a", "b", "c")[: 1 + pick(3)]]
    for x in inputs:
        x.value = real(-1.5, 1.5)
    params = [Parameter(real(-1.5, 1.5)) for _ in range(1 + pick(3))]
    constants = [Constant(round(real(-2.0, 2.0), 3)) for _ in range(pick(2))]
    pool: list[Node] = [*inputs, *params, *constants]
    ops: list[Node] = []

    def arg() -> Node:
        # Favour recent nodes so that graphs get deep, but reach back to share old ones.
        k = len(pool)
        return pool[k - 1 - pick(min(k, 4))] if pick(2) else pool[pick(k)]

    def positive(x: Node, lo: float) -> Node:
        return x if x.forward() > lo else Add([Multiply([x, x]), Constant(0.5)])

    for _ in range(n_ops):
        kind = OP_KINDS[pick(len(OP_KINDS))]
        cls = OPERATIONS[kind]
        node: Node
        if kind == "div":
            num, den = arg(), arg()
            node = cls([num, den if abs(den.forward()) > 0.3 else Add([Multiply([den, den]), Constant(0.5)])])
        elif kind == "pow":
            e = EXPONENTS[pick(len(EXPONENTS))]
            base = arg()
            node = cls([base if e in (2.0, 3.0) else positive(base, 0.3), Constant(e)])
        elif kind == "log":
            node = cls([positive(arg(), 0.3)])
        elif OPS[kind].kink:
            x = arg()
            if abs(x.forward()) < KINK_MARGIN:
                x = Add([x, Constant(2 * KINK_MARGIN)])
            node = cls([x])
        else:
            arity = OPS[kind].arity
            node = cls([arg() for _ in range(2 + pick(3) if arity is None else arity)])
        if abs(node.forward()) > 10.0:
            node = Tanh([node])
        ops.append(node)
        pool.append(node)
    sinks = [n for n in ops if not n.parents]  # nodes no other node uses
    root = sinks[0] if len(sinks) == 1 else Add(sinks)
    return Dag(root, inputs, params, [*pool, root])


def dag_from_seed(seed: int, n_ops: int = 12) -> Dag:
    """A random DAG from a plain `random.Random` (for tests outside hypothesis)."""
    rng = random.Random(seed)
    return build_dag(rng.randrange, rng.uniform, n_ops)


@pytest.fixture(scope="session")
def dag_builder() -> Callable[..., Dag]:
    """`build_dag` as a fixture, so test modules need not import conftest."""
    return build_dag


@pytest.fixture(scope="session")
def seeded_dag() -> Callable[..., Dag]:
    """`dag_from_seed` as a fixture."""
    return dag_from_seed


@pytest.fixture(autouse=True)
def _no_recorded_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cli.main()` records the command line for the model files it writes (program.command_line); a test
    that runs it must not leave it to the in-process commands of the tests after it."""
    from treegrad.cli import program

    monkeypatch.setattr(program, "command_line", None)


@contextlib.contextmanager
def mounted(folder: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at `folder` (made here) with mount's `options` (size=16k, ro): a small or
    read-only disk of its own. Mounting needs root; the test skips, saying so, where it cannot."""
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture()
def tmpfs() -> Callable[[Path, str], contextlib.AbstractContextManager[Path]]:
    """`mounted` as a fixture, so test modules need not import conftest."""
    return mounted


# The files that take longest run first. pytest-xdist (`--dist loadfile`) hands whole files to the
# workers in collection order, so a long file handed out last (test_torch.py, near the end of the
# alphabet) ran alone while the other worker sat idle: the longest first leaves only short files
# for the end. Only the order changes; within a file it stays as written.
LONGEST_FIRST = (
    "test_torch.py",
    "test_report_browser.py",
    "test_agreement.py",
    "test_signals.py",
    "test_polish3.py",
    "test_safeio.py",
    "test_robustness.py",
    "test_simplify.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))  # stable
