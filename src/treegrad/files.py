"""Files treegrad writes: regular files only, never one the command reads, always atomically.

The rules, for every command that writes (train, simplify, card, export, predict --out,
report, plot, sweep, import-params, ...):

- A command never writes over a file it has read in the same command: the model, the
  spec or the CSV it was given (the same inode, whatever path or hard link names it).
- An existing file is replaced only when it is evidently the output this command writes
  again, never the user's own file: a model file of the same model for a model (see
  `modelfile.output_kind`), else a file of the same `Kind` that treegrad wrote, told by
  a mark treegrad puts in it (or, for a CSV, by the columns treegrad adds) within its
  first or last few KB. Anything else needs `force` (--force) or another name; an empty
  file holds nothing to lose.
- The output must be a regular file or not exist yet. A device, a FIFO or a socket is
  refused (writing there would report success while nothing was saved); a symbolic link
  is refused unless the caller passes `force` (train --force), and then the link itself
  is replaced, never the file it points to.
- The new file is written beside the old one under a hidden temporary name and renamed
  over it in one step, so the old file stays whole until the new one is complete. A file
  written a line at a time (a run's metrics.csv, `Appending`) is made the same way, with its
  first lines, and then added to: a link at its name is replaced, never written through.
- A fault of the disk (full, read-only, a quota) is a `FileError` saying which file, never
  an internal error.

`command()` scopes one command: it records what is read (`note_read`) and written, and
turns SIGTERM into `Terminated` (a KeyboardInterrupt) so that it is cleaned up after as
Ctrl-C is. What an interrupted command says it wrote (`Session.wrote`) is checked against
the disk: a file counts as written when its name holds the very file the command made
(its device and inode), wherever in the rename the signal landed and whichever thread
the kernel handed it to.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from .errors import FileError

# A file name may have 255 bytes; the temporary name adds a dot, a random part and ".tmp".
_NAME_BYTES = 255
_TEMP_EXTRA = len(".") + len(".") + 8 + len(".tmp")


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: stop, clean up, and say what was (not) written."""


@dataclass
class Session:
    """What one command has read (file identities) and renamed into place (paths, with the
    identity of the file it made there), and how it was stopped."""

    reads: set[tuple[int, int]] = field(default_factory=set)
    made: list[tuple[Path, tuple[int, int]]] = field(default_factory=list)
    signal: int | None = None

    def wrote(self) -> list[Path]:
        """The files this command wrote, each once: those whose name holds the file it made.

        Asked after the command stopped, so the answer is true however the stop fell: a
        rename that happened counts even if the signal came before it was recorded, and a
        file replaced since by someone else is not claimed."""
        out: list[Path] = []
        for path, made in self.made:
            if path not in out and _holds(path, made):
                out.append(path)
        return out


_session: Session | None = None


@contextlib.contextmanager
def command() -> Iterator[Session]:
    """The scope of one command: reads and writes are recorded, SIGTERM raises `Terminated`."""
    global _session
    outer, _session = _session, Session()
    session = _session
    previous = None
    main = threading.current_thread() is threading.main_thread()

    def on_term(signum: int, frame: FrameType | None) -> None:
        session.signal = signum
        raise Terminated()

    if main:
        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield session
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        _session = outer


def stopped_by() -> int | None:
    """The signal (SIGTERM) that stopped the current command, if one did and was recorded."""
    return _session.signal if _session is not None else None


def _identity(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def _holds(path: Path, made: tuple[int, int]) -> bool:
    """True if the name `path` (not what a link there points to) is the file of identity `made`."""
    try:
        return _identity(os.lstat(path)) == made
    except OSError:
        return False


def sha256_of(path: Path) -> str:
    """The SHA-256 (hex) of a file's bytes, read a block at a time (as `sha256sum` gives it)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def note_read(path: Path | int) -> None:
    """Record that the current command reads the file at `path` (or open descriptor)."""
    if _session is None:
        return
    with contextlib.suppress(OSError):
        _session.reads.add(_identity(os.fstat(path) if isinstance(path, int) else os.stat(path)))


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


@dataclass(frozen=True)
class Kind:
    """A kind of file treegrad writes, and how to tell one that treegrad wrote: one of `marks`
    within its first or last `_LOOK` bytes, or (a CSV) a header ending with one of `columns`;
    or `judge`, which says why a file may not be replaced (None: it may), as
    `modelfile.output_kind` does for a model of a given name."""

    what: str
    marks: tuple[bytes, ...] = ()
    columns: tuple[tuple[str, ...], ...] = ()
    judge: Callable[[Path], str | None] | None = None


# The bytes looked at, at each end of a file: marks sit in a header (a PDF's at its end).
_LOOK = 4096

CARD = Kind("a model card treegrad wrote", (b"<!-- written by treegrad card",))
PAGE = Kind("an HTML page treegrad wrote", (b'<meta name="generator" content="treegrad',))
PYTHON = Kind("a Python module treegrad exported", (b'"""A treegrad model as plain Python',))
TORCH = Kind("a PyTorch module treegrad exported", (b'"""A treegrad model as a PyTorch module',))
ONNX = Kind("an ONNX model treegrad exported", (b"\x12\x08treegrad",))  # producer_name "treegrad"
LATEX = Kind("a LaTeX document treegrad exported", (b"% written by treegrad export",))
DOT = Kind("a Graphviz file treegrad exported", (b"digraph treegrad {",))
GRAPH = Kind("a graph JSON treegrad exported", (b'"format": "treegrad-graph"',))
IMAGE = Kind("an image treegrad drew", (b"written by treegrad plot",))
PREDICTIONS = Kind("a CSV of treegrad predictions", columns=(("prediction",), ("prediction", "probability")))
SWEEP = Kind("a CSV of sweep runs", columns=(("formula_length", "dead_units", "seconds", "error"),))
KINDS = (CARD, PAGE, PYTHON, TORCH, ONNX, LATEX, DOT, GRAPH, IMAGE, PREDICTIONS, SWEEP)

# What treegrad writes as the text of the mark, for the writers (the same text `Kind` looks for).
IMAGE_MARK = "written by treegrad plot"
CARD_MARK = "<!-- written by treegrad card: treegrad card MODEL -o FILE writes it again -->"
LATEX_MARK = "% written by treegrad export --format latex"


def _ends(path: Path) -> bytes:
    """The first and last `_LOOK` bytes of a regular file (all of it when it is small)."""
    with open(path, "rb") as f:
        head = f.read(_LOOK)
        size = os.fstat(f.fileno()).st_size
        if size <= 2 * _LOOK:
            return head + f.read(_LOOK)
        f.seek(size - _LOOK)
        return head + b"\n" + f.read(_LOOK)


def _header(ends: bytes) -> tuple[str, ...]:
    line = ends.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    return tuple(cell.strip().strip('"') for cell in line.split(","))


def is_kind(ends: bytes, kind: Kind) -> bool:
    """True if a file whose ends are `ends` (see `_ends`) is a file of `kind` that treegrad wrote."""
    if any(mark in ends for mark in kind.marks):
        return True
    header = _header(ends) if kind.columns else ()
    return any(len(header) > len(c) and header[-len(c) :] == c for c in kind.columns)


def _what_is(path: Path, ends: bytes) -> str:
    """A few words on what an existing file is, for a refusal."""
    found = [k.what for k in KINDS if is_kind(ends, k)]
    if found:
        return found[0]
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "a CSV file treegrad did not write (your data?)"
    if suffix in (".yaml", ".yml"):
        return "a YAML file treegrad did not write (a spec?)"
    if suffix == ".json" and b'"format"' in ends:
        return "a treegrad model file"
    return "a file treegrad did not write"


def what_is(path: Path) -> str:
    """A few words on what the existing regular file `path` is (a treegrad output, a CSV, ...)."""
    try:
        return _what_is(path, _ends(path))
    except OSError:
        return "a file treegrad cannot read"


def check_replace(path: Path, kind: Kind, *, force: bool = False, option: str = "-o") -> None:
    """Refuse (FileError) to replace an existing `path` unless it is a file of this kind that
    treegrad wrote before, or `force`."""
    if force:
        return
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode) or os.stat(path).st_size == 0:
            return  # nothing there, or check_output's to judge; an empty file holds nothing to lose
    except OSError:
        return
    if kind.judge is not None:
        reason = kind.judge(path)
        if reason is not None:
            raise FileError(f"{reason}. Choose another {option}, or pass --force to replace it.")
        return
    try:
        ends = _ends(path)
    except OSError as e:
        raise FileError(f"cannot read {path} to see what it is: {e.strerror or e}") from None
    if is_kind(ends, kind):
        return
    raise FileError(
        f"{path} exists and is {_what_is(path, ends)}, not {kind.what}: refusing to replace it. "
        f"Choose another {option}, or pass --force to replace it."
    )


def check_output(path: Path, *, force: bool = False, kind: Kind | None = None, option: str = "-o") -> None:
    """Raise FileError now if writing `path` would be refused or could not work.

    With a `kind`, an existing file must also pass `check_replace`; without one the caller
    judges what it replaces (train: `modelfile.check_replace`). Commands call this before
    their work, so that a typo in --out does not cost the run.
    """
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileError(f"cannot write {path}: the folder {folder} does not exist")
    if path.is_dir():
        raise FileError(f"cannot write {path}: it is a directory; give a file name such as {path / 'model.json'}")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise FileError(f"cannot write {path}: {e.strerror or e}") from None
    if stat.S_ISLNK(st.st_mode):
        if not force:
            target = os.readlink(path)
            raise FileError(
                f"{path} is a symbolic link (to {target}): refusing to replace it; give the file it "
                "points to, or another name"
            )
        return  # with force the link itself is replaced, never the file it points to
    if not stat.S_ISREG(st.st_mode):
        raise FileError(
            f"cannot write {path}: it is {_kind(st.st_mode)}, and treegrad writes only regular files; "
            "give the name of a regular file"
        )
    if _session is not None and _identity(st) in _session.reads:
        raise FileError(
            f"{path} is a file this command reads: writing there would destroy its input; choose another output file"
        )
    if kind is not None:
        check_replace(path, kind, force=force, option=option)


def _file_mode(path: Path) -> int:
    """The permissions the written file gets: those of the file it replaces, else 0o666 less the umask."""
    try:
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode):
            return st.st_mode & 0o7777
    except OSError:
        pass
    umask = os.umask(0o022)  # the only way to read the umask is to set it; put it straight back
    os.umask(umask)
    return 0o666 & ~umask


def _temp_prefix(name: str) -> str:
    """`.NAME.`, with NAME cut (at a character boundary) so that the temporary name fits in 255 bytes."""
    room = _NAME_BYTES - _TEMP_EXTRA
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > room:
        name = raw[:room].decode("utf-8", "ignore")
    return f".{name}."


@contextlib.contextmanager
def signals_held() -> Iterator[list[tuple[int, FrameType | None]]]:
    """SIGINT and SIGTERM wait until the block is done (then their handlers run); the block sees
    the ones held so far in the list it is given, and may end early for them.

    They are held back in Python, not masked: a process-wide signal may go to any thread that
    does not mask it (NumPy's BLAS threads, once NumPy is loaded), and Python then runs its
    handler in the main thread at once, which a mask of the main thread alone does not stop."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    held = (signal.SIGINT, signal.SIGTERM)
    old: dict[int, Any] = {int(s): signal.getsignal(s) for s in held}
    caught: list[tuple[int, FrameType | None]] = []
    for s in held:
        signal.signal(s, lambda number, frame: caught.append((number, frame)))
    try:
        yield caught
    finally:
        for s in held:
            signal.signal(s, old[int(s)])
        for number, frame in caught:
            handler = old[number]
            if callable(handler):
                handler(number, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(number)


def write_atomic(
    path: Path, text: str | bytes, *, force: bool = False, kind: Kind | None = None, option: str = "-o"
) -> None:
    """Write `text` (or bytes) to `path` so that the old file stays whole until the new one is complete.

    The text goes to a temporary file in the same folder, is flushed to disk, and then
    renamed over `path` in one step; a crash or Ctrl-C at any moment leaves either the
    old file or the new one, never half of one. A process killed outright (SIGKILL, power
    loss) can leave its temporary file behind: it is hidden (`.NAME.*.tmp`) and never read.
    See `check_output` for what is refused (`kind`: which existing file it may replace).
    """
    check_output(path, force=force, kind=kind, option=option)
    _place(path, text if isinstance(text, bytes) else text.encode("utf-8"), keep=False)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _place(path: Path, data: bytes, *, keep: bool) -> int | None:
    """`data` in a new file renamed over `path` (the name: a link there is replaced, not followed);
    the new file's descriptor, still open for appending, if `keep`. A fault of the disk is a FileError."""
    folder = path.parent if str(path.parent) else Path(".")
    mode = _file_mode(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=folder)
    except OSError as e:
        raise FileError(f"cannot write in {folder}: {e.strerror or e}") from None
    try:
        _write_all(fd, data)
        os.fsync(fd)
        os.chmod(tmp, mode)  # mkstemp makes the file private (0o600); a model or CSV is an ordinary file
        if _session is not None:
            # Recorded before the rename: if a signal stops it, the disk tells whether it happened.
            _session.made.append((path, _identity(os.fstat(fd))))
        if not keep:
            os.close(fd)
            fd = -1
        with signals_held():
            os.replace(tmp, path)
    except BaseException as e:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # gone already if the rename happened
        if isinstance(e, OSError):  # a full disk, a quota, a read-only file system: the user's to fix
            raise FileError(
                f"cannot write {path}: {e.strerror or e}; the previous file, if any, is unchanged"
            ) from None
        raise
    return fd if keep else None


class Appending:
    """A file written a line at a time (a run's metrics.csv), so that a killed run keeps what it wrote.

    It starts as `write_atomic` writes a file, holding `first` (a header): a link at its name
    is replaced, never written through. Each `add` is written and flushed at once. A fault of
    the disk afterwards (full, gone read-only) is not raised: the file is cut back to its last
    complete addition and closed, `fault` says why, and `add` writes nothing more, so that a
    log the disk refuses does not stop the work it logs.
    """

    def __init__(self, path: Path, first: str, *, force: bool = False) -> None:
        check_output(path, force=force)
        self.path = path
        self.fault: str | None = None
        self._fd: int | None = _place(path, first.encode("utf-8"), keep=True)
        self._size = len(first.encode("utf-8"))

    def add(self, text: str) -> bool:
        """Append `text`; False, writing nothing, once the disk has refused an addition."""
        if self._fd is None:
            return False
        data = text.encode("utf-8")
        try:
            _write_all(self._fd, data)
        except OSError as e:
            self.fault = f"{self.path}: {e.strerror or e}"
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)  # no half line at the end; cutting back frees space
            self.close()
            return False
        self._size += len(data)
        return True

    def close(self) -> None:
        """Stop writing (the file keeps what was added)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


class Held:
    """A folder held by this process (an exclusive lock on it) until `release`, or until the process ends."""

    def __init__(self, folder: Path, busy: str) -> None:
        """Hold `folder`, or raise FileError(`busy`) if another process (or another command here) holds it."""
        self._fd: int | None = None
        try:
            import fcntl
        except ImportError:  # no advisory locks here (Windows): nothing to hold
            return
        try:
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError as e:
            raise FileError(f"cannot open the folder {folder}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FileError(busy) from None
            return  # a file system without locks (some network mounts): go on unheld
        self._fd = fd

    def release(self) -> None:
        """Let the folder go."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the last descriptor drops the lock
