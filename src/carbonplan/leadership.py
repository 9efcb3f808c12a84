"""One planning daemon at a time: a lease that the operating system or the database drops when
its holder dies.

PostgreSQL: a session advisory lock held on a dedicated connection; when the leader process dies
its connection closes and the server releases the lock, so a standby that tries every interval
takes over within one or two intervals. SQLite: an exclusive `flock` on a file beside the
database, released by the kernel when the holder exits. `check()` tells a leader whether it still
holds the lease (a dropped database connection means it does not).
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger("carbonplan.leadership")

LEASE_KEY = 0x63706C6561  # "cplea"


class Lease(Protocol):
    def try_acquire(self) -> bool: ...
    def check(self) -> bool: ...
    def release(self) -> None: ...


class PgAdvisoryLease:
    """Session-level `pg_try_advisory_lock` on a connection kept open while leading."""

    def __init__(self, engine: Engine, key: int = LEASE_KEY) -> None:
        self.engine = engine
        self.key = key
        self._conn = None

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return self.check()
        conn = self.engine.connect()
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                    {"k": self.key}).scalar())
            conn.commit()
        except DBAPIError as exc:
            conn.close()
            log.warning("lease: cannot reach the database: %s", type(exc.orig).__name__)
            return False
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def check(self) -> bool:
        """Still the leader? Confirms the lock on the same session."""
        if self._conn is None:
            return False
        try:
            held = self._conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND objid = :lo AND classid = :hi"),
                {"lo": self.key & 0xFFFFFFFF, "hi": (self.key >> 32) & 0xFFFFFFFF}).scalar()
            self._conn.commit()
        except DBAPIError:
            self._drop()
            return False
        if not held:
            self._drop()
        return bool(held)

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self._conn.commit()
        except DBAPIError:
            pass
        self._drop()

    def _drop(self) -> None:
        try:
            if self._conn is not None:
                self._conn.close()
        finally:
            self._conn = None


class FileLease:
    """An exclusive flock on `path` (beside a SQLite store)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def check(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def lease_for(engine: Engine) -> Lease:
    """The lease that fits the store's database."""
    if engine.dialect.name == "postgresql":
        return PgAdvisoryLease(engine)
    db = engine.url.database or "carbonplan.db"
    return FileLease(Path(f"{db}.daemon.lock"))
