"""Measuring: what runs (every workload, peer and depth asked for), how long one training takes,
and the command's values parsed (for the cli)."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..limits import MAX_BENCH_DEPTH
from .peers import PEER_FNS, missing
from .startup import cli_row
from .workloads import (
    BATCH,
    DEPTHS,
    EPOCHS,
    MICROGRAD_MAX_DEPTH,
    PEERS,
    WIDE,
    WIDTHS,
    WORKLOADS,
    setup,
)


@dataclass
class Result:
    """One measurement: a peer training one workload (at one depth)."""

    workload: str
    peer: str
    depth: int | None
    steps: int
    samples: int
    seconds: list[float] = field(default_factory=list)  # per training, one entry per rep
    final_loss: float = math.nan
    note: str = ""
    imports: list[float] = field(default_factory=list)  # CLI: seconds of imports, one entry per process

    @property
    def time(self) -> float:
        """The median seconds of one training."""
        return statistics.median(self.seconds)

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.time

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.time

    @property
    def us_per_step(self) -> float:
        return 1e6 * self.time / self.steps


# A training ready to time, and the result its times go to.
Job = tuple[Result, Callable[[], float]]


def measure(train: Callable[[], float], min_time: float) -> tuple[float, float]:
    """(seconds per training, final loss): train from scratch until `min_time` has passed."""
    spent, runs = 0.0, 0
    while True:
        t0 = time.perf_counter()
        loss = train()
        spent += time.perf_counter() - t0
        runs += 1
        if spent >= min_time:
            return spent / runs, loss


def run(
    workloads: Sequence[str] = WORKLOADS,
    peers: Sequence[str] = PEERS,
    *,
    quick: bool = False,
    depths: Sequence[int] | None = None,
    reps: int = 1,
    min_time: float | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[list[Result], list[str]]:
    """Measure every (workload, peer, depth); return the results and notes on what was skipped."""
    epochs = {w: 1 for w in EPOCHS} if quick else dict(EPOCHS)
    depths = tuple(depths or ((2, 4) if quick else DEPTHS))
    min_time = (0.0 if quick else 1.0) if min_time is None else min_time
    skipped: dict[str, list[str]] = {}  # why -> the peers skipped for it
    for p in peers:
        if why := missing(p):
            skipped.setdefault(why, []).append(p)
    notes = [f"{why}: no {', '.join(ps)} rows" for why, ps in skipped.items()]
    peers = [p for p in peers if not missing(p)]
    jobs: list[Job] = []
    for w in workloads:
        for d in depths if w == "W3" else (WIDTHS[:2] if quick else WIDTHS) if w == "W6" else (None,):
            jobs += _jobs(w, d, peers, epochs[w])
    if "micrograd" in peers and "W3" in workloads and max(depths) > MICROGRAD_MAX_DEPTH:
        notes.append(
            f"micrograd: W3 only up to depth {MICROGRAD_MAX_DEPTH} (its recursive topological sort "
            "overflows Python's stack on deeper chains)"
        )
    for rep in range(reps):
        for res, train in jobs:  # rounds interleaved, so that machine noise hits every peer alike
            seconds, res.final_loss = measure(train, min_time)
            res.seconds.append(seconds)
            if log:
                depth = f" d={res.depth}" if res.depth is not None else ""
                log(f"[{rep + 1}/{reps}] {res.workload}{depth} {res.peer}: {res.samples / seconds:,.0f} samples/s")
    return [r for r, _ in jobs], notes


def _jobs(workload: str, size: int | None, peers: Sequence[str], epochs: int) -> list[Job]:
    """Each peer's training of one workload (at one depth or width), with its empty result; a peer
    that does not run this workload has none."""
    init, data = setup(workload, size)
    batch = BATCH if workload == "W2b" else WIDE[workload][1] if workload in WIDE else 1
    jobs: list[Job] = []
    for p in peers:
        if p == "micrograd" and workload == "W3" and size is not None and size > MICROGRAD_MAX_DEPTH:
            continue
        res = Result(workload, p, size, epochs * -(-len(data) // batch), epochs * len(data))
        if workload == "CLI":
            train = cli_row(p, init, data, epochs, res.imports)
        else:
            train = PEER_FNS[p](workload, init, data, epochs)
        if train is not None:
            jobs.append((res, train))
    return jobs


def parse_names(text: str, allowed: Sequence[str], what: str) -> list[str]:
    """Comma-separated names, each one of `allowed`; ValueError saying which are unknown."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise ValueError(f"unknown {what} {', '.join(unknown) or '(none given)'}; use some of {','.join(allowed)}")
    return names


def parse_depths(text: str) -> list[int]:
    """Comma-separated chain depths (whole numbers from 1 to MAX_BENCH_DEPTH), sorted; ValueError otherwise."""
    try:
        depths = sorted({int(d) for d in text.split(",") if d.strip()})
    except ValueError:
        raise ValueError(f"depths must be whole numbers separated by commas, got {text!r}") from None
    if not depths or depths[0] < 1:
        raise ValueError(f"depths must be 1 or more, got {text!r}")
    if depths[-1] > MAX_BENCH_DEPTH:
        raise ValueError(
            f"depths must be at most {MAX_BENCH_DEPTH:,} (a W3 chain has as many nodes as its depth), "
            f"got {depths[-1]:,}"
        )
    return depths
