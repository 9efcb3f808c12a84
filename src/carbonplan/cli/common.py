"""What every command shares: the --db/--config/--json options, loading, output helpers.

Imports stay light (typer, rich): config, store and numpy load inside the helpers, when a command
actually needs them, so `carbonplan --help` starts fast.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from carbonplan.config import SiteConfig
    from carbonplan.domain import Site
    from carbonplan.store.repo import Store

# Piped output is read by people too: give tables room rather than 80 columns.
console = Console(highlight=False, soft_wrap=True,
                  width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False)

DbOption = Annotated[str | None, typer.Option(
    "--db", help="Store: a SQLite path or a postgresql:// URL \\[env: CARBONPLAN_DB; default: "
                 "the user data dir].", show_default=False)]
ConfigOption = Annotated[str | None, typer.Option(
    "--config", "-c", help="Site config TOML \\[env: CARBONPLAN_CONFIG; default: ./carbonplan.toml,"
                           " then the user config dir, then the built-in catalog].",
    show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def load_config(config: str | None) -> SiteConfig:
    from carbonplan.config import load_config as _load

    return _load(config)


def load_site(config: str | None) -> tuple[SiteConfig, Site]:
    cfg = load_config(config)
    return cfg, cfg.to_site()


def open_store(db: str | None, cfg: SiteConfig | None = None) -> Store:
    from carbonplan.store import open_store as _open

    return _open(db, config_url=cfg.store.url if cfg else None)


def check_output_file(path: str, field: str, suffixes: tuple[str, ...]) -> None:
    """An output file a command will write: a known suffix, in a directory that exists (checked
    before anything runs, so bad input writes nothing)."""
    from pathlib import Path

    from carbonplan.errors import InputError

    if Path(path).suffix.lower() not in suffixes:
        raise InputError(field, f"must end in {', '.join(suffixes)}, got '{path}'")
    if not Path(path).resolve().parent.is_dir():
        raise InputError(field, f"no such directory: {Path(path).parent}")


def print_json(data: Any) -> None:
    """JSON to stdout, unstyled, for scripts."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def error_line(message: str) -> None:
    """The one line a user sees for bad input."""
    err_console.print(f"error: {' '.join(message.split())}", markup=False, soft_wrap=True)
