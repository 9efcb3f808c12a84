"""Versioned schema migrations (alembic), applied on open, one process at a time.

Opening a store compares the database's revision with the newest one this release ships; only when
they differ is alembic imported and the upgrade run, under an exclusive lock (a file lock beside a
SQLite database, an advisory lock on PostgreSQL) so that many processes opening a new store at once
migrate it exactly once. A database from a newer release is refused rather than damaged.
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from carbonplan.errors import InputError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_ADVISORY_KEY = 0x6361726270  # "carbp"


def known_revisions() -> list[str]:
    """Revision ids shipped with this release, oldest first (from the version file names)."""
    files = sorted(MIGRATIONS_DIR.joinpath("versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    return [re.match(r"(\d{4})_", f.name).group(1) for f in files]  # type: ignore[union-attr]


def head_revision() -> str:
    return known_revisions()[-1]


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
            conn.rollback()
    except (OperationalError, ProgrammingError):
        return None
    return row[0] if row else None


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "sqlite":
        db = engine.url.database
        if not db or db == ":memory:":
            yield
            return
        with open(f"{db}.migrate.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    else:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _ADVISORY_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_KEY})
                conn.commit()


def upgrade(engine: Engine, target: str = "head") -> None:
    """Bring the schema to `target` (default: the newest revision) if it is not there yet."""
    head = head_revision() if target == "head" else target
    rev = current_revision(engine)
    if rev == head:
        return
    if rev is not None and rev not in known_revisions():
        raise InputError("store", f"database schema {rev} is newer than this carbonplan "
                                  f"(knows up to {head_revision()}); upgrade carbonplan")
    with _migration_lock(engine):
        if current_revision(engine) == head:
            return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, head)
