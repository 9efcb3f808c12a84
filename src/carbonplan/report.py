"""Realized and projected carbon and cost, and what carbonplan saved against running at once.

Realized, per finished job (succeeded or failed) of a period, from every run it had: the one that
finished and the ones before it that were interrupted (preempted, requeued or lost; the store
keeps them as attempts). Each run's energy is measured by the executor (NVML GPU energy, times
PUE) or else the power model over its run time; the carbon intensity of its zone while it ran
(the signals' history); the embodied share; the pool's price (cloud: per unit-hour; owned: the
region's energy price). Beside it, the run-now counterfactual, priced the same way: the same work
started at submission (or its `not_before`) in its home pool (home region, not spot, cheapest:
the pool the planner's run-now baseline uses), taking the final run's hours plus the work its
interrupted runs checkpointed, scaled by the two GPUs' speeds. Interrupted runs of jobs that
never finished (cancelled, or missed their deadline) count in the period they ended.
Projected: the latest plan, with its saving against the run-now policy as the planner evaluated
it on the same instance (queueing included). The daemon's realized-kgCO2e metric is computed here
too, so the report and the metric agree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from carbonplan import eligibility
from carbonplan.domain import (
    FINISHED_STATES,
    UNFINISHED_STATES,
    Attempt,
    Job,
    Market,
    Plan,
    Site,
)
from carbonplan.energy.formulas import (
    MIG_SLICES_PER_GPU,
    embodied_kg,
    emissions_kg,
    energy_kwh,
)
from carbonplan.eviction_rates import run_at_end, tally, unfinished_runs
from carbonplan.signals.series import floor_time

log = logging.getLogger("carbonplan.report")

GROUPS = ("region", "pool", "project", "user")

# mean gCO2e/kWh of a zone over [start, end)
Intensity = Callable[[str, datetime, datetime], float]


@dataclass(frozen=True)
class Footprint:
    """One run's energy, emissions and cost."""

    kwh: float
    kg_co2e: float        # operational
    embodied_kg: float
    cost_usd: float

    @property
    def total_kg(self) -> float:
        return self.kg_co2e + self.embodied_kg

    def __add__(self, other: Footprint) -> Footprint:
        return Footprint(self.kwh + other.kwh, self.kg_co2e + other.kg_co2e,
                         self.embodied_kg + other.embodied_kg, self.cost_usd + other.cost_usd)


@dataclass(frozen=True)
class JobFootprint:
    """A finished job's realized footprint and its run-now counterfactual."""

    job_id: int
    name: str
    user: str
    project: str
    state: str
    pool: str
    region: str
    started_at: datetime
    ended_at: datetime
    measured: bool                     # energy from the executor's meter, not the power model
    actual: Footprint                  # the run that finished (zero for a job that did not)
    run_now_pool: str | None = None
    run_now: Footprint | None = None   # None when the job has no non-spot pool to compare with
    interrupted_runs: int = 0          # runs before it that ended without finishing the job
    interrupted: Footprint | None = None

    @property
    def whole(self) -> Footprint:
        """Every run of the job: the one that finished and the interrupted ones."""
        return self.actual if self.interrupted is None else self.actual + self.interrupted

    @property
    def finished(self) -> bool:
        return self.state in {s.value for s in FINISHED_STATES}


def run_footprint(opt: eligibility.PoolOption, site: Site, hours: float, ci_g_per_kwh: float,
                  gpu_kwh: float | None = None) -> Footprint:
    """The footprint of running on `opt` for `hours` at a mean carbon intensity."""
    region = site.regions[opt.pool.region]
    kwh = (gpu_kwh * region.pue if gpu_kwh is not None
           else energy_kwh(1, opt.power_w, hours, region.pue))
    gpus = opt.units / MIG_SLICES_PER_GPU if opt.is_mig else opt.units
    return Footprint(kwh=kwh, kg_co2e=emissions_kg(kwh, ci_g_per_kwh),
                     embodied_kg=embodied_kg(gpus, opt.accelerator.embodied_kg,
                                             site.embodied_lifetime_h, hours),
                     cost_usd=eligibility.run_usd(opt, site, hours, kwh))


def home_option(job: Job, site: Site) -> eligibility.PoolOption | None:
    """Where the job would run without carbonplan (`eligibility.home_pick`)."""
    options = eligibility.pool_options(job, site)
    pick = eligibility.home_pick(options, site, job.home_region or site.home_region)
    return None if pick is None else options[pick]


def _option(job: Job, site: Site, pool: str) -> eligibility.PoolOption | None:
    return next((o for o in eligibility.pool_options(job, site) if o.pool.name == pool), None)


def _priced(opt: eligibility.PoolOption, site: Site, intensity: Intensity, start: datetime,
            end: datetime, gpu_kwh: float | None) -> Footprint:
    hours = (end - start).total_seconds() / 3600.0
    return run_footprint(opt, site, hours, intensity(site.regions[opt.pool.region].zone,
                                                     start, end), gpu_kwh)


def attempts_footprint(job: Job, site: Site, intensity: Intensity,
                       attempts: Sequence[Attempt]) -> tuple[int, Footprint | None]:
    """How many of a job's interrupted runs could be priced, and their footprint together (runs
    on a pool no longer configured are left out)."""
    n, total = 0, None
    for a in attempts:
        opt = _option(job, site, a.pool)
        if opt is None or a.hours <= 0:
            continue
        fp = _priced(opt, site, intensity, a.started_at, a.ended_at, a.gpu_kwh)
        n, total = n + 1, fp if total is None else total + fp
    return n, total


def job_footprint(job: Job, site: Site, intensity: Intensity, *, run_now: bool = True,
                  attempts: Sequence[Attempt] = ()) -> JobFootprint | None:
    """The realized footprint of a finished job: its final run, and its interrupted runs
    (`attempts`, this job's) beside it. None when the final run was not on a pool of this
    site."""
    if not (job.started_at and job.ended_at and job.ran_pool):
        return None
    opt = _option(job, site, job.ran_pool)
    hours = (job.ended_at - job.started_at).total_seconds() / 3600.0
    if opt is None or hours <= 0:
        return None
    actual = _priced(opt, site, intensity, job.started_at, job.ended_at, job.gpu_kwh)
    n_lost, lost = attempts_footprint(job, site, intensity, attempts)
    base = home_option(job, site) if run_now else None
    counter = None
    if base is not None:
        # the same work: the final run's hours at the home GPU's speed, plus what the
        # interrupted runs checkpointed (reference-GPU hours) at that speed
        saved_h = max((a.done_h for a in attempts), default=0.0)
        base_h = hours * base.work_h / opt.work_h + (
            saved_h * base.work_h / job.hours if job.hours > 0 else 0.0)
        start = max(job.submitted_at, job.not_before or job.submitted_at)
        counter = _priced(base, site, intensity, start, start + timedelta(hours=base_h), None)
    return JobFootprint(job_id=job.id, name=job.name, user=job.user, project=job.project,
                        state=job.state.value, pool=opt.pool.name, region=opt.pool.region,
                        started_at=job.started_at, ended_at=job.ended_at,
                        measured=job.gpu_kwh is not None, actual=actual,
                        run_now_pool=base.pool.name if base else None, run_now=counter,
                        interrupted_runs=n_lost, interrupted=lost)


def unfinished_footprint(job: Job, site: Site, intensity: Intensity,
                         attempts: Sequence[Attempt]) -> JobFootprint | None:
    """A job that never finished (cancelled, missed its deadline) but ran and was interrupted:
    the footprint of those runs, under the pool of the last; no run-now to compare with."""
    n, lost = attempts_footprint(job, site, intensity, attempts)
    if lost is None:
        return None
    last = attempts[-1]
    opt = _option(job, site, last.pool)
    region = opt.pool.region if opt is not None else ""
    return JobFootprint(job_id=job.id, name=job.name, user=job.user, project=job.project,
                        state=job.state.value, pool=last.pool, region=region,
                        started_at=attempts[0].started_at, ended_at=last.ended_at,
                        measured=False, actual=Footprint(0.0, 0.0, 0.0, 0.0),
                        interrupted_runs=n, interrupted=lost)


def ended_footprint(job: Job, site: Site, intensity: Intensity, attempts: Sequence[Attempt],
                    *, run_now: bool = True) -> JobFootprint | None:
    """The footprint of a job that ended, whichever way: `job_footprint` for one that finished,
    `unfinished_footprint` over every run of one that did not."""
    if job.state in FINISHED_STATES:
        return job_footprint(job, site, intensity, run_now=run_now, attempts=attempts)
    runs = unfinished_runs(job, attempts)
    return unfinished_footprint(job, site, intensity, runs) if runs else None


def read_intensity(signals: Any, slot_h: float = 1.0) -> Intensity:
    """An `Intensity` that reads the history of each interval asked for (the daemon's way: it
    meets finished jobs a few at a time), weighted as `ZoneHistory` weights it; fail open, and
    the zone's typical level if even that fails."""
    def mean(zone: str, a: datetime, b: datetime) -> float:
        try:
            start = floor_time(a, round(slot_h * 3600))  # on the slot grid, as the store's
            value = ZoneHistory(signals, start, max(b, a + timedelta(hours=slot_h)),
                                slot_h=slot_h)(zone, a, b)
            if np.isfinite(value):
                return value
        except Exception as exc:
            log.debug("no history for %s: %s", zone, exc)
        from carbonplan.catalog.zones import ZONES

        return float(ZONES[zone][1])
    return mean


class ZoneHistory:
    """Mean carbon intensity of a zone over an interval, from one history read per zone.

    Reads [start, end) of every zone once (fail open: typical values where the provider has
    nothing) and averages the slots an interval overlaps, weighted by the overlap."""

    def __init__(self, signals: Any, start: datetime, end: datetime, slot_h: float = 1.0):
        self.signals, self.start, self.end, self.slot_h = signals, start, end, slot_h
        self._series: dict[str, Any] = {}

    def __call__(self, zone: str, a: datetime, b: datetime) -> float:
        s = self._series.get(zone)
        if s is None:
            s = self._series[zone] = self.signals.history(zone, self.start, self.end,
                                                          slot_h=self.slot_h, fail_open=True)
        edges = s.start.timestamp() + s.step_s * np.arange(s.n + 1)
        lo, hi = a.timestamp(), max(b.timestamp(), a.timestamp() + 1.0)
        w = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, None)
        ok = w > 0
        vals = s.values[ok]
        good = ~np.isnan(vals)
        if not good.any():  # outside what was read: the nearest known value
            known = s.values[~np.isnan(s.values)]
            return float(known[0] if lo < edges[0] else known[-1]) if known.size else float(
                "nan")
        return float(np.average(vals[good], weights=w[ok][good]))


def _sum(fps: Iterable[Footprint]) -> dict[str, float]:
    """kWh, tCO2e (operational + embodied, as the planner counts it), its embodied part, $."""
    fps = list(fps)
    return {"kwh": sum(f.kwh for f in fps), "t_co2e": sum(f.total_kg for f in fps) / 1000,
            "embodied_t": sum(f.embodied_kg for f in fps) / 1000,
            "cost_usd": sum(f.cost_usd for f in fps)}


def summarize(records: Sequence[JobFootprint]) -> dict[str, Any]:
    """Totals of realized footprints (every run, interrupted ones included), their run-now
    counterfactuals and the saving.

    The saving counts only finished jobs with a counterfactual (a job allowed on spot pools
    only has none), on both sides, so it compares like with like."""
    compared = [r for r in records if r.run_now is not None]
    mine = _sum(r.whole for r in compared)
    base = _sum(r.run_now for r in compared if r.run_now is not None)
    saved_t = base["t_co2e"] - mine["t_co2e"]
    finished = [r for r in records if r.finished]
    lost = [r for r in records if r.interrupted is not None]
    return {
        "jobs": len(finished), "measured_jobs": sum(r.measured for r in finished),
        **_sum(r.whole for r in records),
        "interrupted": {"runs": sum(r.interrupted_runs for r in lost),
                        "unfinished_jobs": len(records) - len(finished),
                        **_sum(r.interrupted for r in lost if r.interrupted is not None)},
        "compared_jobs": len(compared),
        "run_now": {"t_co2e": base["t_co2e"], "cost_usd": base["cost_usd"]},
        "saved": {"t_co2e": saved_t, "cost_usd": base["cost_usd"] - mine["cost_usd"],
                  "share_co2e": saved_t / base["t_co2e"] if base["t_co2e"] > 0 else 0.0},
    }


def group(records: Sequence[JobFootprint], by: str) -> list[dict[str, Any]]:
    """`summarize` per region, pool, project or user, largest emitter first."""
    keys: dict[str, list[JobFootprint]] = {}
    for r in records:
        keys.setdefault(str(getattr(r, by)), []).append(r)
    rows = [{by: k, **summarize(v)} for k, v in keys.items()]
    return sorted(rows, key=lambda d: -d["t_co2e"])


def projected(plan_id: int, plan: Plan) -> dict[str, Any]:
    """The latest plan's footprint and its saving against the run-now policy."""
    kg = sum(p.kg_co2e + p.embodied_kg for p in plan.placements)
    out: dict[str, Any] = {"plan_id": plan_id, "created_at": plan.created_at.isoformat(),
                           "trigger": plan.trigger, "placed": len(plan.placements),
                           "unplanned": len(plan.unplanned), "kwh": sum(
                               p.energy_kwh for p in plan.placements),
                           "t_co2e": kg / 1000, "cost_usd": sum(p.cost_usd for p in
                                                                plan.placements)}
    base = plan.details.get("baselines", {}).get("run-now")
    mine = plan.details.get("evaluation")
    if base and mine:
        out["run_now"] = {"t_co2e": base["t_co2e"], "cost_usd": base["cost_usd"],
                          "late": base.get("n_late", 0)}
        out["saved"] = {"t_co2e": base["t_co2e"] - mine["t_co2e"],
                        "cost_usd": base["cost_usd"] - mine["cost_usd"]}
    return out


def finished_between(jobs: Iterable[Job], since: datetime, until: datetime) -> list[Job]:
    return [j for j in jobs if j.state in FINISHED_STATES and j.ended_at is not None
            and since <= j.ended_at < until]


def interruptions(records: Sequence[JobFootprint], runs: dict[int, Sequence[Attempt]],
                  ends: dict[int, Attempt], site: Site) -> list[dict[str, Any]]:
    """Per pool: runs, run-hours and interrupted runs (`runs`) of the period's jobs, the
    measured rate (interruptions per run-hour: the maximum-likelihood hazard when interruptions
    come at a constant rate) beside the rate the planner assumes (`eviction_rate_per_h`). Runs
    that finished their job, or ended with it (`ends`), count as run-hours without an
    interruption. Spot pools, and any pool with an interruption."""
    pools = {p.name: p for p in site.pools}
    runs_h: list[tuple[str, float, bool]] = []
    for r in records:
        if r.finished:
            runs_h.append((r.pool, (r.ended_at - r.started_at).total_seconds() / 3600.0, False))
        runs_h += [(a.pool, a.hours, True) for a in runs.get(r.job_id, ())]
        if r.job_id in ends:
            runs_h.append((ends[r.job_id].pool, ends[r.job_id].hours, False))
    out = []
    for name, e in sorted(tally(runs_h).items()):
        pool = pools.get(name)
        if not (e.interrupted or (pool is not None and pool.market == Market.SPOT)):
            continue
        out.append({"pool": name, "market": pool.market.value if pool else "unknown",
                    "runs": e.runs, "run_h": e.run_h, "interrupted": e.interrupted,
                    "per_h": e.per_h,
                    "assumed_per_h": pool.eviction_rate_per_h if pool else None})
    return out


def build_report(jobs: Sequence[Job], site: Site, signals: Any, *, since: datetime,
                 until: datetime, by: str = "region", slot_h: float = 1.0,
                 latest: tuple[int, Plan] | None = None,
                 attempts: Sequence[Attempt] = ()) -> dict[str, Any]:
    """The whole report as plain data (the CLI prints it as tables or JSON).

    `jobs` may hold jobs in any state: finished ones count when their final run ended in the
    period, with every interrupted run they had (`attempts`, of any job); cancelled and missed
    ones when their last run did (`run_at_end`).
    """
    runs: dict[int, list[Attempt]] = {}
    for a in sorted(attempts, key=lambda a: (a.ended_at, a.attempt)):
        runs.setdefault(a.job_id, []).append(a)
    ends = {j.id: end for j in jobs if (end := run_at_end(j)) is not None}
    spent = {j.id: unfinished_runs(j, runs.get(j.id, ())) for j in jobs
             if j.state in UNFINISHED_STATES}
    done = finished_between(jobs, since, until)
    gave_up = [j for j in jobs if spent.get(j.id) and since <= spent[j.id][-1].ended_at < until]
    records: list[JobFootprint] = []
    if done or gave_up:
        lo = min([min(j.started_at or j.submitted_at, j.submitted_at) for j in done]
                 + [runs[j.id][0].started_at for j in done if j.id in runs]
                 + [spent[j.id][0].started_at for j in gave_up])
        hi = max([j.ended_at for j in done if j.ended_at is not None]
                 + [spent[j.id][-1].ended_at for j in gave_up])
        history = ZoneHistory(signals, lo, hi + timedelta(hours=slot_h), slot_h=slot_h)
        records = [r for j in done if (r := job_footprint(
            j, site, history, attempts=runs.get(j.id, ()))) is not None]
        records += [r for j in gave_up if (r := unfinished_footprint(
            j, site, history, spent[j.id])) is not None]
    return {
        "since": since.isoformat(), "until": until.isoformat(), "by": by,
        "realized": {**summarize(records),
                     "unpriced_jobs": len(done) - sum(r.finished for r in records)},
        "groups": group(records, by),
        "interruptions": interruptions(records, runs, ends, site),
        "jobs": [_job_row(r) for r in records],
        "projected": projected(*latest) if latest else None,
    }


def _job_row(r: JobFootprint) -> dict[str, Any]:
    d = asdict(r)
    d["started_at"], d["ended_at"] = r.started_at.isoformat(), r.ended_at.isoformat()
    d["whole"] = asdict(r.whole)
    return d


def chart(report: dict[str, Any], path: str) -> None:
    """Realized tCO2e against run-now per group, as a bar chart (PNG, SVG or PDF by suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["groups"]
    by = report["by"]
    names = [str(r[by]) for r in rows]
    mine = [r["t_co2e"] for r in rows]
    base = [r["run_now"]["t_co2e"] for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(7.0, 1.1 * len(rows) + 2), 4.5), layout="constrained")
    ax.bar(x - 0.2, base, 0.4, label="run now (counterfactual)", color="#b0b0b0")
    ax.bar(x + 0.2, mine, 0.4, label="realized", color="#2a9d8f")
    ax.set_xticks(x, names, rotation=20 if len(rows) > 4 else 0, ha="right" if len(rows) > 4
                  else "center")
    ax.set_ylabel("tCO2e (operational + embodied)")
    ax.set_title(f"Jobs finished {report['since'][:10]} to {report['until'][:10]}, by {by}",
                 fontsize=11)
    ax.legend()
    fig.savefig(path)
    plt.close(fig)
