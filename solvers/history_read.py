"""What reading a month of history costs: `[planner] learn_evictions` on every plan, and
`carbonplan report`'s store reads.

    python -m solvers.history_read --jobs 20000 [--interrupted 0.2] [--repeat 3]

A fresh SQLite store gets `--jobs` finished jobs of the last 30 days (one run of an hour each on
one of two spot pools), and a share `--interrupted` of them one interrupted run before it
(written by the store's own requeue). Then, `--repeat` times each: the 30-day exposure the
planner reads (`eviction_rates.observed`) and the report's reads (the jobs changed since the
period's start and their attempts). Prints seconds per read.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlmodel import select

from carbonplan.domain import TERMINAL_STATES, JobSpec, JobState
from carbonplan.eviction_rates import observed
from carbonplan.store import open_store
from carbonplan.store.tables import JobRow

POOLS = ("r1/a100-80gb/spot", "r2/a100-80gb/spot")


def fill(store, n: int, interrupted: float, now: datetime, rng: np.random.Generator) -> None:
    spec = JobSpec(name="j", user="u", project="p", command=["true"], hours=1.0,
                   deadline=now + timedelta(days=1))
    jobs = store.add_jobs([spec] * n)
    for job in jobs[: int(n * interrupted)]:  # one run taken back first, through the store
        t = now - timedelta(hours=float(rng.uniform(2, 24 * 29)))
        store.transition(job.id, JobState.SUBMITTED, updates={"attempt": 1,
                                                              "ran_pool": POOLS[0]})
        store.transition(job.id, JobState.RUNNING, updates={"started_at": t})
        store.transition(job.id, JobState.QUEUED, reason="preempted", now=t + timedelta(hours=0.5),
                         updates={"ended_at": t + timedelta(hours=0.5)})
    with store.write() as s:  # the final runs, in one transaction
        for row in s.exec(select(JobRow)):
            end = now - timedelta(hours=float(rng.uniform(0, 24 * 29)))
            row.state, row.ran_pool = JobState.SUCCEEDED.value, POOLS[row.id % 2]
            row.started_at, row.ended_at, row.updated_at = end - timedelta(hours=1), end, end
            s.add(row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=20000)
    ap.add_argument("--interrupted", type=float, default=0.2)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as d:
        store = open_store(str(Path(d) / "h.db"))
        fill(store, a.jobs, a.interrupted, now, np.random.default_rng(0))
        since = now - timedelta(days=30)
        for _ in range(a.repeat):
            t = time.perf_counter()
            seen = observed(store, since, now)
            t_obs = time.perf_counter() - t
            t = time.perf_counter()
            jobs = store.list_jobs(states=TERMINAL_STATES, updated_since=since)
            attempts = store.attempts([j.id for j in jobs])
            t_rep = time.perf_counter() - t
            runs = sum(e.runs for e in seen.values())
            print(f"observed: {t_obs:.2f} s ({runs} runs, "
                  f"{sum(e.interrupted for e in seen.values())} interrupted); report reads: "
                  f"{t_rep:.2f} s ({len(jobs)} jobs, {len(attempts)} attempts)")
        store.close()


if __name__ == "__main__":
    main()
