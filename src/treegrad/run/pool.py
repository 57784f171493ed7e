"""Work in worker processes (a sweep's runs): how many, and stopped at once by a signal.

How many: at most the runs, and the cores unless the user asks for more (`bounded_workers`): a
process more than the cores makes every run slower, and each holds a whole run in memory.

Ctrl-C and SIGTERM are the parent's to handle: a terminal sends Ctrl-C to every process of the
command, and the workers ignore it; the parent then ends the workers (SIGTERM, which they take
as the default: end at once), drops the work not begun, and goes on with the KeyboardInterrupt,
so that what finished is kept and nothing waits for the rest. Before, the pool's `with` block
waited for every queued run (about two minutes) and then kept none. A worker that dies (the
system killed it) is BrokenProcessPool, as the standard library says it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import TypeVar

from ..errors import OptionError
from ..files import signals_held
from ..limits import MAX_WORKERS

T = TypeVar("T")
R = TypeVar("R")

_WAKE = 0.2  # seconds between the main thread's looks at a signal while it waits for the workers
Warn = Callable[[str], None]  # how a sweep says something the user should know, as it goes


def cores() -> int:
    """The processors this process may run on (its affinity, where the system says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS and Windows have no affinity call
        return os.cpu_count() or 1


def check_workers(asked: int, oversubscribe: bool) -> None:
    """Refuse, before any work, more processes than the cores where they would all start: with
    `oversubscribe`, more than limits.MAX_WORKERS (without it, the cores bound them)."""
    if oversubscribe and asked > MAX_WORKERS:
        raise OptionError(
            f"-j {asked} --oversubscribe: a sweep trains at most {MAX_WORKERS} runs at once beyond its cores "
            f"(each process holds a whole run in memory); this machine has {cores()} cores for it",
            "--workers",
        )


def bounded_workers(asked: int, runs: int, oversubscribe: bool = False, warn: Warn | None = None) -> int:
    """The processes that train `runs` runs: at most `asked`, the runs and, unless `oversubscribe`,
    the cores (training is arithmetic: a process more than the cores makes every run slower). Says
    so through `warn` when it is fewer than asked."""
    check_workers(asked, oversubscribe)
    useful, have = min(asked, runs), cores()
    n, why = useful, f"the sweep has {runs} run{'s' if runs != 1 else ''}"
    if useful > have and not oversubscribe:
        n, why = have, f"one per core ({have}); --oversubscribe runs {useful} anyway"
    if n < asked and warn is not None:
        warn(f"-j {asked}: training {n} run{'s' if n != 1 else ''} at a time, {why}")
    return max(n, 1)


def run_in_pool(work: Callable[[T], R], items: Sequence[T], workers: int, finished: Callable[[int, R], None]) -> None:
    """`work(item)` for every item in `workers` processes, `finished(i, result)` called here as each ends."""
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_signals)
    try:
        # Ctrl-C and SIGTERM are held and looked at between waits, never raised inside the pool's
        # own code: raised there (amid its locks and queues), they left the workers running and
        # the command waiting for them at exit, now and then, after it had said it stopped.
        with signals_held() as caught:
            futures = {pool.submit(work, item): i for i, item in enumerate(items)}
            pending = set(futures)
            while pending and not caught:
                # Short waits: the main thread sees a held signal on waking.
                done, pending = wait(pending, timeout=_WAKE, return_when=FIRST_COMPLETED)
                for future in done:
                    finished(futures[future], future.result())
            if caught:
                _end(pool)  # the workers ended before the signal is raised, as the block ends
    except BaseException:
        _end(pool)
        raise
    pool.shutdown()


def _worker_signals() -> None:
    """In a worker: Ctrl-C is the parent's to handle, and SIGTERM (from `_end`) ends it at once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _end(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: work not begun is cancelled, workers still at work are ended."""
    # The executor has no public way to end its workers before Python 3.14 (terminate_workers);
    # its list of them is taken before shutdown, which forgets it.
    workers = list((getattr(pool, "_processes", None) or {}).values())
    # A second Ctrl-C (a user's, or a terminal's to the group) in here stopped the ending halfway,
    # and the workers, which ignore it, went on alone: it is held until they are ended.
    with signals_held():
        pool.shutdown(wait=False, cancel_futures=True)
        # Every child still alive too: a worker missing from the pool's list (a signal that came as
        # the pool changed it) ran on alone, a million epochs, holding the command's output open.
        workers += [p for p in multiprocessing.active_children() if p not in workers]
        for process in workers:
            with contextlib.suppress(Exception):
                process.terminate()
        for process in workers:
            with contextlib.suppress(Exception):
                process.join(5)
                if process.is_alive():
                    process.kill()
