"""The store: SQLModel tables, migrations and the repository API.

Import `open_store` from here; it imports SQLAlchemy/SQLModel only when called, so commands that
never touch the store start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from carbonplan.store.repo import Store


def open_store(url: str | None = None, *, config_url: str | None = None) -> Store:
    """Open (migrating if needed) the store at `url`, $CARBONPLAN_DB, the config's, or default."""
    from carbonplan.store.db import resolve_url
    from carbonplan.store.repo import Store

    return Store(resolve_url(url, config_url))
