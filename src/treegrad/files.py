"""Files treegrad writes: regular files only, never one the command reads, always atomically.

The rules, for every command that writes (train, predict --out, export -o, plot -o):

- A command never writes over a file it has read in the same command: the model, the
  spec or the CSV it was given (the same inode, whatever path or hard link names it).
- The output must be a regular file or not exist yet. A device, a FIFO or a socket is
  refused (writing there would report success while nothing was saved); a symbolic link
  is refused unless the caller passes `force` (train --force), and then the link itself
  is replaced, never the file it points to.
- The new file is written beside the old one under a hidden temporary name and renamed
  over it in one step, so the old file stays whole until the new one is complete.

`command()` scopes one command: it records what is read (`note_read`) and written, and
turns SIGTERM into `Terminated` (a KeyboardInterrupt) so that it is cleaned up after as
Ctrl-C is. The rename and its record happen with both signals held back, so that what
an interrupted command says it wrote is what it wrote.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from .errors import FileError

# A file name may have 255 bytes; the temporary name adds a dot, a random part and ".tmp".
_NAME_BYTES = 255
_TEMP_EXTRA = len(".") + len(".") + 8 + len(".tmp")


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: stop, clean up, and say what was (not) written."""


@dataclass
class Session:
    """What one command has read (file identities) and written (paths), and how it was stopped."""

    reads: set[tuple[int, int]] = field(default_factory=set)
    written: list[Path] = field(default_factory=list)
    signal: int | None = None


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


def check_output(path: Path, *, force: bool = False) -> None:
    """Raise FileError now if writing `path` would be refused or could not work.

    Training calls this before it starts, so that a typo in --out does not cost the run.
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
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done (then they are delivered)."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def write_atomic(path: Path, text: str | bytes, *, force: bool = False) -> None:
    """Write `text` (or bytes) to `path` so that the old file stays whole until the new one is complete.

    The text goes to a temporary file in the same folder, is flushed to disk, and then
    renamed over `path` in one step; a crash or Ctrl-C at any moment leaves either the
    old file or the new one, never half of one. A process killed outright (SIGKILL, power
    loss) can leave its temporary file behind: it is hidden (`.NAME.*.tmp`) and never read.
    See `check_output` for what is refused.
    """
    check_output(path, force=force)
    folder = path.parent if str(path.parent) else Path(".")
    mode = _file_mode(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=folder)
    except OSError as e:
        raise FileError(f"cannot write in {folder}: {e.strerror}") from None
    try:
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp makes the file private (0o600); a model or CSV is an ordinary file
        with _signals_held():
            os.replace(tmp, path)
            if _session is not None:
                _session.written.append(path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):  # a full disk, a quota, a read-only file system: the user's to fix
            raise FileError(
                f"cannot write {path}: {e.strerror or e}; the previous file, if any, is unchanged"
            ) from None
        raise
