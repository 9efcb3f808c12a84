"""Executors: the Executor protocol (base.py), the exactly-once wrapper (apply.py) and the
executors by name. Each executor module is imported only when it is used (ray is heavy)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from carbonplan.errors import InputError, unknown

if TYPE_CHECKING:
    from carbonplan.config import SiteConfig
    from carbonplan.executors.base import Executor

KINDS = ("local", "slurm", "ray")


def default_run_dir(store_url: str) -> Path:
    """Run directories live beside a SQLite store, else in the user data directory."""
    if store_url.startswith("sqlite:///"):
        return Path(store_url.removeprefix("sqlite:///")).parent / "runs"
    from platformdirs import user_data_dir

    return Path(user_data_dir("carbonplan")) / "runs"


def make_executor(cfg: SiteConfig, store_url: str, kind: str | None = None) -> Executor:
    """The executor named by `kind` (or the config's), configured from the site config."""
    kind = kind or cfg.executor.kind
    if kind == "local":
        from carbonplan.executors.local import LocalExecutor

        run_dir = cfg.executor.local.run_dir
        return LocalExecutor(Path(run_dir).expanduser() if run_dir else
                             default_run_dir(store_url))
    if kind == "slurm":
        from carbonplan.executors.slurm import SlurmExecutor

        if not cfg.executor.slurm.clusters:
            raise InputError("config executor.slurm.clusters", "is required for the slurm "
                             "executor")
        return SlurmExecutor(cfg.executor.slurm, cfg.to_site())
    if kind == "ray":
        from carbonplan.executors.ray import RayExecutor

        return RayExecutor.from_config(cfg)
    raise InputError("--executor", unknown("executor", kind, KINDS))
