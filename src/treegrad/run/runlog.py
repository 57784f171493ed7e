"""A training run's record on disk (`train --log-dir DIR`), and the resolved spec.

The resolved spec is the spec file as written with its `training:` replaced by every
setting as trained (defaults, options and `--set` filled in) and its data pinned (a CSV
as an absolute path), so training it again gives the same parameters bit for bit. A run
started from another model's parameters (`--init-from`) names that file in a comment at the
top, since a spec has no key for it: trained again, it needs the same option.

A run folder holds `spec.yaml` (the resolved spec, written atomically before training
starts) and `metrics.csv` (one row per epoch: appended and flushed as each epoch ends,
so a killed run keeps its history up to its last complete epoch). A folder that already
holds a run's files is refused unless `force`, which starts them afresh; either file is
made new (files.Appending), so a link at its name is replaced, never written through. A run
holds its folder while it trains: a second run given the same folder is refused, rather
than the two tearing each other's rows.

The disk: a folder that cannot be made or written (read-only, full) stops the run before it
trains. A row the disk refuses later (it filled up) ends the log there, on its last whole
row, and training goes on: `fault` says what happened, and the model is saved as ever.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from ..errors import FileError
from ..files import Appending, Held, check_output, write_atomic
from ..spec.reading import dump_data, read_data

SPEC_FILE = "spec.yaml"
METRICS_FILE = "metrics.csv"
# In a resolved spec, the model file (absolute) whose parameters the run started from (train
# --init-from): no key of a spec, so `dump` writes it as a comment above the spec.
INIT_FROM = "init_from"


def resolved_spec(text: str, training: Any, data: str | None, target: str, base: Path) -> dict[str, Any]:
    """The spec `text` with `training` (a validated Training) in full and its data pinned.

    `data` is the data as named (by --data from the current folder, else by the spec's
    `data:` from `base`, the spec's folder): a file becomes its absolute path, a built-in
    dataset stays its name."""
    raw, _ = read_data(text, "the spec")  # as the spec was read: YAML 1.2 (PyYAML's 1.1 made `yes` true)
    assert isinstance(raw, dict), "a spec that validated is a mapping"
    out = dict(raw)
    if data is not None:
        file = base / data
        out["data"] = str(file.resolve()) if file.is_file() else data
    out["target"] = target
    out["training"] = training.model_dump(mode="json")
    return out


def dump(spec: dict[str, Any]) -> str:
    """The resolved spec as YAML text, keys in the spec's order; a run started from another
    model's parameters says so first, in a comment, with the option that trains it again."""
    text = dump_data({k: v for k, v in spec.items() if k != INIT_FROM})
    if spec.get(INIT_FROM) is None:
        return text
    from .provenance import quoted

    start = quoted([spec[INIT_FROM]])  # one line, whatever the path holds
    return (
        f"# This run started from the parameters of {start}, not from the spec's own: train it\n"
        f"# again with --init-from {start} (the same parameters bit for bit while that file is unchanged).\n" + text
    )


class RunLog:
    """Writes one run's folder: `start` before training, `epoch` after each epoch, `close` at the end."""

    def __init__(self, folder: Path, *, force: bool = False) -> None:
        self.folder = folder
        self.force = force
        self._metrics: Appending | None = None
        self._held: Held | None = None
        self._columns: list[str] = []
        self.rows = 0  # epochs written to metrics.csv

    @property
    def fault(self) -> str | None:
        """Why the log stopped before the run ended (the disk refused a row), or None."""
        return self._metrics.fault if self._metrics is not None else None

    def check(self) -> None:
        """Raise FileError now, before training, if the run cannot be written where asked."""
        folder = self.folder
        if folder.exists() and not folder.is_dir():
            raise FileError(f"--log-dir {folder}: it is a file, not a folder; give a folder for the run's files")
        # The folder and any parents missing are made when the run starts; what exists must be folders.
        above = next((p for p in folder.parents if p.exists()), Path("."))
        if not folder.exists() and not above.is_dir():
            raise FileError(f"--log-dir {folder}: {above} is a file, not a folder; give a folder for the run's files")
        for name in (SPEC_FILE, METRICS_FILE):
            path = folder / name
            if path.exists() and not self.force:
                raise FileError(
                    f"--log-dir {folder} already holds a run ({name}): give another folder, or --force to replace it"
                )
            if folder.is_dir():
                check_output(path, force=self.force)

    def start(self, spec_yaml: str, columns: list[str]) -> None:
        """Hold the folder, write the resolved spec and the header of metrics.csv."""
        self.check()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise FileError(f"--log-dir {self.folder}: cannot make the folder: {e.strerror or e}") from None
        self._held = Held(
            self.folder,
            f"--log-dir {self.folder} is the folder of a run still training (another treegrad process holds it): "
            "give each run a folder of its own",
        )
        try:
            write_atomic(self.folder / SPEC_FILE, spec_yaml, force=self.force)
            self._columns = ["epoch", *columns]
            self._metrics = Appending(self.folder / METRICS_FILE, _row(self._columns), force=self.force)
        except BaseException:
            self.close()
            raise

    def epoch(self, epoch: int, values: dict[str, float | None]) -> None:
        """Append the epoch's row (missing values empty), written through to the file at once."""
        assert self._metrics is not None, "start() comes first"

        def cell(v: float | None) -> str:
            return "" if v is None or (isinstance(v, float) and math.isnan(v)) else repr(float(v))

        if self._metrics.add(_row([epoch, *(cell(values.get(c)) for c in self._columns[1:])])):
            self.rows += 1

    def close(self) -> None:
        """Stop writing and let the folder go."""
        if self._metrics is not None:
            self._metrics.close()
        if self._held is not None:
            self._held.release()
            self._held = None


def _row(cells: list[Any]) -> str:
    """One CSV line."""
    buf = io.StringIO()
    csv.writer(buf).writerow(cells)
    return buf.getvalue()
