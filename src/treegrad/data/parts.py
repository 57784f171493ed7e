"""A process's part of the data in a data-parallel run, and the few facts the processes agree on.

Under `torchrun` every process reads only its part of the CSV (its lines, `data.read_csv`),
yet the run must be the one a single process would train on all rows: the same classes,
the same split, the same standardisation statistics, the same metrics. Each such fact is
a small summary of each part (a count, a set of labels, a sum), exchanged between the
processes and combined the same way everywhere. `Part` is the one way that happens; alone
(`WHOLE`, one process) it exchanges nothing, so the code that uses it reads the same in both.

The exchange itself is given by whoever started the processes (`torch.trainer.data_parallel`: an
all-gather of picklable objects over torch.distributed); this module imports nothing of it.

Every process must reach every exchange, in the same order: a process that stopped at an
error would leave the others waiting. So the work between two exchanges runs in `agree`,
which passes an error on to every process instead of raising it in one.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from ..errors import ProcessError, TreegradError

T = TypeVar("T")


def launched() -> tuple[int, int]:
    """(rank, number of processes) that torchrun gave this process (RANK, WORLD_SIZE); (0, 1) alone."""
    return int(os.environ.get("RANK", "0") or 0), int(os.environ.get("WORLD_SIZE", "1") or 1)


def echoed(error: BaseException) -> bool:
    """True for an error that rank 0 of a data-parallel run reports: the other processes,
    which raise it too so that every one stops, say nothing."""
    return bool(getattr(error, "_echo", False))


def _shared(kind: type[TreegradError], message: str, echo: bool) -> TreegradError:
    try:
        error = kind(message)
    except Exception:  # a subclass with another signature
        error = TreegradError(message)
    error._echo = echo  # type: ignore[attr-defined]
    return error


@dataclass(frozen=True)
class Part:
    """Process `rank` of `world`, with `exchange`: every process's object, in rank order."""

    rank: int = 0
    world: int = 1
    exchange: Callable[[Any], list[Any]] | None = None

    @property
    def alone(self) -> bool:
        return self.world == 1

    def gather(self, obj: Any) -> list[Any]:
        """Every process's `obj`, in rank order (one process: `[obj]`)."""
        if self.world == 1:
            return [obj]
        assert self.exchange is not None, "a part of several processes needs an exchange"
        return self.exchange(obj)

    def agree(self, work: Callable[[], T]) -> T:
        """This process's result of `work`, once every process has run its own; if any
        process's `work` raised a TreegradError, every process raises the lowest rank's (the
        first in the file). Only the errors are exchanged, never the results."""
        if self.world == 1:
            return work()
        result: Any = None
        try:
            result, mine = work(), None
        except TreegradError as e:
            mine = (type(e), str(e))
        for failed in self.gather(mine):
            if failed is not None:
                kind, message = failed
                raise _shared(kind, message, echo=self.rank != 0)
        return result  # type: ignore[no-any-return]

    def same(self, facts: Any, differ: Callable[[Any, Any, int], str]) -> None:
        """Check that every process holds the same `facts` (small, picklable: what it was given to
        work on; None where it has none to give); where process r's are not rank 0's, every process
        raises ProcessError(differ(rank 0's, r's, r)), which rank 0 says. Run it before any other
        exchange about what `facts` describe: processes given different things would exchange
        summaries that do not fit together."""
        if self.world == 1:
            return
        every = self.gather(facts)
        if any(f is None for f in every):
            return  # a process with nothing to compare: what it does next says why (a missing file)
        odd = next((r for r, theirs in enumerate(every) if theirs != every[0]), None)
        if odd is not None:
            self.fail(ProcessError(differ(every[0], every[odd], odd)))

    def fail(self, error: TreegradError) -> NoReturn:
        """Raise `error`, which every process met the same way (a check of what the parts agreed
        on), so that rank 0 alone reports it; one process raises it as it is."""
        if self.world == 1:
            raise error
        raise _shared(type(error), str(error), echo=self.rank != 0)

    def offset(self, count: int) -> tuple[int, int]:
        """(the number of items before this part's first one, the number in all), of `count` here."""
        counts = self.gather(count)
        return sum(counts[: self.rank]), sum(counts)

    def counts(self, items: Iterable[Any]) -> Counter[Any]:
        """How often each item occurs over every process."""
        total: Counter[Any] = Counter()
        for c in self.gather(Counter(items)):
            total.update(c)
        return total

    def union(self, items: Iterable[Any]) -> set[Any]:
        return set().union(*self.gather(set(items)))

    def any(self, flag: bool) -> bool:
        return any(self.gather(bool(flag)))

    def concat(self, items: list[T]) -> list[T]:
        """Every process's `items`, one list in rank order."""
        return [x for part in self.gather(items) for x in part]


WHOLE = Part()  # one process holding all the data
