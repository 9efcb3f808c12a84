"""Spot eviction rates learned from what this site's own spot runs met.

The catalog's rates come from monthly interruption bands and sit far below what measured GPU
spot traces show (docs/catalog.md). A site that runs on spot sees its own: every run that went
back to the queue is an interruption (the store's attempts) and every hour a run held its pool
is exposure. With `[planner] learn_evictions = "30d"` the planner uses, for each spot pool, the
posterior mean of a Gamma prior worth `eviction_prior_h` run-hours, updated by that pool's
interruptions and run-hours over the window:

    rate = (centre x prior_h + interruptions) / (prior_h + run_h)

The centre is the configured rate scaled by what the pool's siblings (the spot pools of the same
accelerator in other regions or MIG profiles) met against what their configured rates expected,
itself shrunk towards 1 with the same prior weight:

    centre = configured_rate x (configured_rate x prior_h + sibling interruptions)
                             / (configured_rate x prior_h + sum of sibling configured_rate x run_h)

Why: a provider reclaims one GPU type's spot capacity in similar ways everywhere, and a new or
rarely used pool has too little history of its own; its siblings' say how far the configured
rates are off. The pool's own history is left out of its centre (it already counts once), so a
pool without siblings keeps the plain update. A pool with little history keeps about its centre;
one with much moves to what it measured. The rate prices expected rework only: spot columns stay
deadline-safe whatever it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from carbonplan.domain import (
    FINISHED_STATES,
    TERMINAL_STATES,
    UNFINISHED_STATES,
    Attempt,
    Job,
    JobState,
    Market,
    Plan,
    Pool,
    Site,
)


@dataclass
class Exposure:
    """A pool's runs, run-hours and interruptions over some period."""

    runs: int = 0
    run_h: float = 0.0
    interrupted: int = 0

    @property
    def per_h(self) -> float | None:
        """Interruptions per run-hour: the maximum-likelihood hazard of a constant rate."""
        return self.interrupted / self.run_h if self.run_h > 0 else None


def tally(runs: Iterable[tuple[str, float, bool]]) -> dict[str, Exposure]:
    """(pool, hours, interrupted) per run -> each pool's exposure."""
    out: dict[str, Exposure] = {}
    for pool, hours, interrupted in runs:
        e = out.setdefault(pool, Exposure())
        e.runs += 1
        e.run_h += hours
        e.interrupted += int(interrupted)
    return out


def last_run_end(state: JobState, started_at: datetime | None, ended_at: datetime | None,
                 updated_at: datetime) -> datetime | None:
    """When a terminal job's last run ended: its reported end; for a job cancelled or stopped
    at its deadline while running, the time of that change when none was reported."""
    if started_at is None:
        return None
    end = ended_at if state in FINISHED_STATES else ended_at or updated_at
    return None if end is None else max(end, started_at)


def run_at_end(job: Job) -> Attempt | None:
    """The run a job that never finished was in when it was cancelled or ended at its deadline;
    None if it was not running. Not an interruption of its pool: the job ended, the pool did not
    take the GPUs back."""
    if job.state not in UNFINISHED_STATES or not job.ran_pool:
        return None
    end = last_run_end(job.state, job.started_at, job.ended_at, job.updated_at)
    if job.started_at is None or end is None:
        return None
    return Attempt(job_id=job.id, attempt=job.attempt, pool=job.ran_pool,
                   started_at=job.started_at, ended_at=end,
                   end_reported=job.ended_at is not None, reason=job.state.value,
                   done_h=job.done_h, gpu_kwh=job.gpu_kwh, energy_meter=job.energy_meter)


def unfinished_runs(job: Job, attempts: Sequence[Attempt]) -> list[Attempt]:
    """Every run of a job that never finished: its interrupted runs, then the one it ended in."""
    end = run_at_end(job)
    return [*attempts, *([end] if end is not None else [])]


def observed(store: Any, since: datetime, until: datetime) -> dict[str, Exposure]:
    """Every pool's runs that ended in [since, until): interrupted ones from the store's
    attempts, the others from the jobs that finished or ended there (a job that ended in a run,
    cancelled or at its deadline, as `run_at_end` counts it)."""
    runs = [(a.pool, a.hours, True)
            for a in store.attempts(ended_since=since, ended_before=until)]
    for r in store.run_spans(TERMINAL_STATES, updated_since=since):
        end = last_run_end(r.state, r.started_at, r.ended_at, r.updated_at)
        if r.pool and r.started_at is not None and end is not None and since <= end < until:
            runs.append((r.pool, (end - r.started_at).total_seconds() / 3600.0, False))
    return tally(runs)


def learned(site: Site, seen: dict[str, Exposure], prior_h: float) -> tuple[Site, dict]:
    """The site with each spot pool's rate updated by what it and its siblings met (see the
    module docstring); and, per changed pool, {configured, learned, interrupted, run_h[,
    siblings]} for the plan's record."""
    history = {name: e for name, e in seen.items() if e.run_h > 0}
    by_gpu: dict[str, list[tuple[Pool, Exposure]]] = {}
    for p in site.pools:
        if p.market == Market.SPOT and p.name in history:
            by_gpu.setdefault(p.accelerator, []).append((p, history[p.name]))
    pools, changes = [], {}
    for p in site.pools:
        if p.market != Market.SPOT:
            pools.append(p)
            continue
        own = history.get(p.name, Exposure())
        others = [(q, e) for q, e in by_gpu.get(p.accelerator, ()) if q.name != p.name]
        if own.run_h <= 0 and not others:
            pools.append(p)
            continue
        c = p.eviction_rate_per_h
        centre, record = c, {}
        if others:
            hit = sum(e.interrupted for _, e in others)
            expected = sum(q.eviction_rate_per_h * e.run_h for q, e in others)
            weight = c * prior_h
            factor = (weight + hit) / (weight + expected) if weight + expected > 0 else 1.0
            centre = c * factor
            record = {"siblings": {"pools": len(others), "interrupted": hit,
                                   "run_h": round(sum(e.run_h for _, e in others), 3),
                                   "factor": factor}}
        rate = (centre * prior_h + own.interrupted) / (prior_h + own.run_h)
        changes[p.name] = {"configured": c, "learned": rate, "interrupted": own.interrupted,
                           "run_h": round(own.run_h, 3), **record}
        pools.append(p.model_copy(update={"eviction_rate_per_h": rate}))
    return site.model_copy(update={"pools": tuple(pools)}), changes


def for_plan(site: Site, store: Any, *, window_h: float | None, prior_h: float,
             now: datetime) -> tuple[Site, dict]:
    """The site a plan should use: learned rates when `window_h` is set (`[planner]
    learn_evictions`), else the site as configured; and the changes to record with the plan."""
    if not window_h:
        return site, {}
    return learned(site, observed(store, now - timedelta(hours=window_h), now), prior_h)


def recorded(plan: Plan, changes: dict) -> Plan:
    """The plan with the learned rates it used in its details (`eviction_rates`)."""
    if not changes:
        return plan
    return plan.model_copy(update={"details": {**plan.details, "eviction_rates": changes}})
