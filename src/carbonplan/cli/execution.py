"""Commands about running jobs: logs. Each asks the executor that ran the job."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from carbonplan.cli.common import (
    ConfigOption,
    DbOption,
    console,
    error_line,
    load_config,
    open_store,
)


def logs(
    job_id: Annotated[int, typer.Argument(help="Job id.", show_default=False)],
    tail: Annotated[int | None, typer.Option(
        "--tail", "-n", min=1, help="Only the last N lines.", show_default=False)] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Print a job's output, fetched from the executor (Ray cluster, run directory) that ran it."""
    from carbonplan.executors import make_executor

    cfg = load_config(config)
    store = open_store(db, cfg)
    job = store.get_job(job_id)
    if not job.executor:
        console.print(f"Job {job.id} has not started yet ({job.state.value}).")
        return
    try:
        text = make_executor(cfg, store.url, job.executor).logs(job, tail)
    except OSError as exc:  # the cluster that ran it does not answer
        error_line(f"job {job.id}: {exc}")
        raise typer.Exit(1) from None
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
