"""The `bench` command: training speed side by side with hand-written peers (bench/)."""

# No `from __future__ import annotations` in the cli: Typer reads the commands' annotations on
# every run, and evaluating them from strings cost about 0.1 s of each command's start-up.

from typing import Annotated

import typer

from .program import app, parsed
from .render import err, escape, out


@app.command()
def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="Smoke test: 1 epoch, depths 2 and 4 (not a measurement).")
    ] = False,
    only: Annotated[
        str | None, typer.Option("--only", metavar="W1,W2a,...,W6", help="Workloads to run (default: all).")
    ] = None,
    peers: Annotated[
        str | None,
        typer.Option("--peers", metavar="treegrad,python,...", help="Peers to run (default: every installed one)."),
    ] = None,
    depths: Annotated[
        str | None, typer.Option("--depths", metavar="2,4,8", help="W3 chain depths (default 2,4,...,4096).")
    ] = None,
    reps: Annotated[int, typer.Option("--reps", min=1, help="Interleaved rounds; the table shows medians.")] = 1,
) -> None:
    """Benchmark training speed side by side with hand-written Python, NumPy, and micrograd/PyTorch when installed.

    The workloads and the recipe they share: python -m pydoc treegrad.bench
    """
    from ..bench import measuring as b
    from ..bench.report import table

    results, notes = b.run(
        parsed(b.parse_names, b.WORKLOADS, "workload")(only) or b.WORKLOADS,
        parsed(b.parse_names, b.PEERS, "peer")(peers) or b.PEERS,
        quick=quick,
        depths=parsed(b.parse_depths)(depths),
        reps=reps,
        log=lambda line: err.print(escape(line)),
    )
    if quick:
        notes.append("--quick is a smoke test (one short training each): its ratios are not measurements")
    out.print(escape(table(results, notes, reps)))
