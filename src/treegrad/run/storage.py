"""The study database of `sweep --search optuna --storage URL`: the URL checked and the study opened
before any run, and every fault of it (a URL that is no database's, a driver not installed, a file
that is not a database, a read-only or full disk, a server that refuses) one message.

A password in the URL is never shown: messages name the URL with it as `***` (`shown`), and the
database's own words are cleaned of it; nothing treegrad writes records the URL.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import OptionError, StorageError

SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


def _parsed(url: str) -> Any:
    """The URL as SQLAlchemy reads it (optuna needs SQLAlchemy, so it is there)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        return None


def shown(url: str) -> str:
    """The URL as messages show it: a password in it as ***."""
    parsed = _parsed(url)
    if parsed is None:
        return _hidden(url, url)
    return str(parsed.render_as_string(hide_password=True))


def _hidden(text: str, url: str) -> str:
    """`text` with the URL's password (as written, and decoded) replaced by ***."""
    parsed = _parsed(url)
    secrets = {str(parsed.password)} if parsed is not None and parsed.password else set()
    if "://" in url and "@" in url.split("://", 1)[1]:
        login = url.split("://", 1)[1].rsplit("@", 1)[0]
        if ":" in login:
            secrets.add(login.split(":", 1)[1])
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def check_url(url: str) -> None:
    """Refuse now (OptionError at --storage), before any run, a URL that cannot name a study database."""
    parsed = _parsed(url)
    where = f"--storage: {shown(url)}"  # a usage error: the cli shows it at the option, without this prefix
    if parsed is None or "://" not in url:
        raise OptionError(
            f"{where} is not a database URL; give one such as sqlite:///study.db (a file beside you, three "
            "slashes) or postgresql://user@host/db",
            "--storage",
        )
    from sqlalchemy.exc import NoSuchModuleError

    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise OptionError(
            f"{where}: '{parsed.get_backend_name()}' is not a kind of database SQLAlchemy knows; "
            "use sqlite, postgresql or mysql (sqlite:///study.db)",
            "--storage",
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as e:
        raise OptionError(
            f"{where}: its database driver, the Python module '{e.name or parsed.drivername}', is not "
            f"installed; install it, or name a driver that is in the URL ({parsed.get_backend_name()}+DRIVER://...)",
            "--storage",
        ) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        _check_sqlite_file(Path(parsed.database), where)


def _check_sqlite_file(path: Path, where: str) -> None:
    """An SQLite database's file: its folder exists, and if the file does, it is a database."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OptionError(f"{where}: the folder {folder} does not exist; create it, or give another", "--storage")
    if path.is_dir():
        raise OptionError(f"{where}: {path} is a folder; give a file name such as {path / 'study.db'}", "--storage")
    if not path.exists():
        return
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as e:
        url = where.removeprefix("--storage: ")
        raise StorageError(f"--storage {url}: cannot read {path}: {e.strerror or e}") from None
    if head and head != SQLITE_HEADER:
        raise OptionError(
            f"{where}: {path} is not an SQLite database (it is some other file); give a new file name, "
            "or the database a search made before",
            "--storage",
        )


@contextlib.contextmanager
def faults(url: str) -> Iterator[None]:
    """The database's errors in the block (it cannot be opened or written: read-only, full, gone, a
    server refusing) as one StorageError each, in the database's own words cleaned of the password."""
    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import SQLAlchemyError

    kinds = (SQLAlchemyError, StorageInternalError)
    try:
        yield
    except (*kinds, AssertionError) as e:
        # Optuna meets a failed write at a trial's end with an assertion of its own ("Should not
        # reach."), raised while handling the database's error: that error is the one to say.
        fault = next((c for c in _chain(e) if isinstance(c, kinds)), None)
        if fault is None:
            raise
        reason = (str(_first_cause(fault)).strip().splitlines() or [type(fault).__name__])[0]
        raise StorageError(
            f"--storage {shown(url)}: the study database cannot be used ({_hidden(reason, url)[:300]}); check that "
            "it is a database an Optuna search made, on a disk with room that treegrad may write, or give another"
        ) from None


def _chain(e: BaseException) -> Iterator[BaseException]:
    """`e` and the exceptions it was raised from or while handling, nearest first."""
    seen: set[int] = set()
    at: BaseException | None = e
    while at is not None and id(at) not in seen:
        seen.add(id(at))
        yield at
        at = at.__cause__ or at.__context__


def _first_cause(e: BaseException) -> BaseException:
    """The database's own error under Optuna's and SQLAlchemy's wrappers (its words, without theirs)."""
    for _ in range(5):
        inner = getattr(e, "orig", None) or e.__cause__
        if not isinstance(inner, BaseException) or inner is e:
            break
        e = inner
    return e


def open_study(url: str | None, name: str | None, warn: Callable[[str], None] | None = None, **options: Any) -> Any:
    """optuna.create_study(storage=url, study_name=name, **options), the URL checked first and its
    faults and warnings said in treegrad's words (a warning through `warn`, not Python's)."""
    import optuna

    if url is not None:
        check_url(url)
    with faults(url or ""), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = optuna.create_study(storage=url, study_name=name, load_if_exists=url is not None, **options)
    for w in caught:
        if warn is not None:
            text = _hidden(str(w.message), url or "").split(" (Background on this")[0]
            warn(f"--storage {shown(url or '')}: {text}")
    return study
