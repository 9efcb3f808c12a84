"""Trace-driven what-if: what carbon-aware placement would have saved on a past job trace.

Each policy (the planner, and the baselines of planner/policies.py) replays the same trace on
the same site, online: every `replan_h` hours it sees only the jobs submitted so far that have
not started, plans them on the capacity and power that the jobs it already started leave, and
starts what its plan starts before the next re-plan. Nothing is known ahead of its submission.

Carbon: plans see a forecast, runs are charged what happened. `persistence` (the default)
forecasts every future hour by the same hour of the last day observed (a day-ahead naive
forecast); `perfect` gives the plans the history itself (an upper bound on what forecasts can
give). Prices are the site config's.

Spot evictions are replayed (unless turned off, when a spot run carries its expected rework in
$, as in a plan): a run on a spot pool is cut at a random run-time drawn from the pool's
eviction rate, pays what it ran, keeps the work of its last checkpoint (less the checkpoint
cost, as the planner's rework model counts it) and goes back to the queue with the rest. The
draws are common random numbers: a job's n-th spot attempt meets the same draw under every
policy, so policies differ by where they put jobs, not by luck.

A job still waiting at its deadline is a miss (a real site would run it late); savings are
compared over the jobs both policies ran.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from carbonplan import eligibility
from carbonplan.domain import Job, JobSpec, JobState, Placement, Site
from carbonplan.errors import InputError, did_you_mean
from carbonplan.planner.build import DEFAULT_HORIZON_H, build_instance, slot_floor
from carbonplan.signals.validate import parse_time as parse_utc
from carbonplan.submission import check_feasible_alone

log = logging.getLogger("carbonplan.sim")

PLANNER = "carbonplan"
POLICIES = (PLANNER, "run-now", "threshold", "lowest-window", "carbon-time", "greedy")
FORECASTS = ("persistence", "perfect")
REQUIRED = ("submit", "hours")
OPTIONAL = ("deadline", "deadline_h", "name", "user", "project", "gpus", "gpu_types", "mig",
            "not_before", "checkpoint_every_h", "checkpoint_cost_h", "pausable", "spot",
            "regions", "home_region", "watts")
DEFAULT_SLACK_H, DEFAULT_SLACK_FACTOR = 12.0, 1.0   # deadlines of sacct rows (trace_sacct.py)
LIST_FIELDS = ("gpu_types", "regions")      # ';'-separated in the file
BOOL_WORDS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


# -- the trace -----------------------------------------------------------------------------------

@dataclass
class Trace:
    """Jobs of a trace file, in submission order, and those the site could not run at all."""

    jobs: list[Job]
    rejected: dict[int, str] = field(default_factory=dict)  # row -> why (as `submit` would say)
    skipped: dict[str, int] = field(default_factory=dict)   # sacct lines left out, by why


def _time(text: str, where: str) -> datetime:
    """An ISO 8601 time; without an offset it is UTC (traces are logged in UTC), as in the
    carbon providers' data."""
    dt = parse_utc(text)
    if dt is None:
        raise InputError(where, f"cannot parse '{text}' as an ISO 8601 time")
    return dt


def _row_spec(row: dict[str, str], n: int) -> tuple[JobSpec, datetime]:
    where = f"trace row {n}"
    submit = _time(row["submit"], f"{where}, submit")
    fields: dict[str, Any] = {"name": f"trace-{n}", "user": "trace", "project": "trace",
                              "command": ["true"], "source": "trace"}
    for key in OPTIONAL:
        text = (row.get(key) or "").strip()
        if not text or key in ("deadline", "deadline_h"):
            continue
        if key in LIST_FIELDS:
            fields[key] = [v.strip() for v in text.split(";") if v.strip()]
        elif key in ("pausable", "spot"):
            if text.lower() not in BOOL_WORDS:
                raise InputError(f"{where}, {key}", f"must be true or false, got '{text}'")
            fields[key] = BOOL_WORDS[text.lower()]
        elif key == "not_before":
            fields[key] = _time(text, f"{where}, not_before")
        else:
            fields[key] = text
    fields["hours"] = row["hours"]
    deadline, deadline_h = (row.get("deadline") or "").strip(), (row.get("deadline_h") or ""
                                                                   ).strip()
    if bool(deadline) == bool(deadline_h):
        raise InputError(f"{where}, deadline", "give exactly one of deadline (a time) and "
                                               "deadline_h (hours after submit)")
    if deadline:
        fields["deadline"] = _time(deadline, f"{where}, deadline")
    else:
        try:
            hours = float(deadline_h)
        except ValueError:
            raise InputError(f"{where}, deadline_h", f"not a number: '{deadline_h}'") from None
        if not (math.isfinite(hours) and hours > 0):
            raise InputError(f"{where}, deadline_h", f"must be > 0, got {deadline_h}")
        fields["deadline"] = submit + timedelta(hours=hours)
    try:
        spec = JobSpec(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "row"
        raise InputError(f"{where}, {loc}", err["msg"].removeprefix("Value error, ")) from None
    return spec, submit


def load_trace(path: str | Path, site: Site, *, since: datetime | None = None,
               until: datetime | None = None, slack_h: float | None = None,
               slack_factor: float | None = None) -> Trace:
    """Read a trace: a CSV (docs/simulate.md has the columns) or `sacct -P` output
    (trace_sacct.py; `slack_h` and `slack_factor` give its deadlines). Every row is validated
    first, so a bad one stops the run naming its row and field. Rows submitted outside
    [since, until) are skipped; a job the site could not run even alone is rejected, as
    `submit` would."""
    from carbonplan import trace_sacct

    p = Path(path)
    if not p.is_file():
        raise InputError("TRACE", f"no such file: {p}")
    with p.open(newline="", encoding="utf-8") as fh:
        lines = fh.readlines()
    skipped: dict[str, int] = {}
    if lines and trace_sacct.is_sacct(lines[0]):
        for name, value in (("--slack-h", slack_h), ("--slack-factor", slack_factor)):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InputError(name, f"must be a number >= 0, got {value}")
        numbered, why = trace_sacct.sacct_rows(
            lines, slack_h=DEFAULT_SLACK_H if slack_h is None else slack_h,
            slack_factor=DEFAULT_SLACK_FACTOR if slack_factor is None else slack_factor)
        skipped = dict(why)
    else:
        for name, value in (("--slack-h", slack_h), ("--slack-factor", slack_factor)):
            if value is not None:
                raise InputError(name, "applies to sacct output only: a CSV row gives its own "
                                       "deadline")
        numbered = _csv_rows(p, lines)
    jobs: list[Job] = []
    rejected: dict[int, str] = {}
    for n, row in numbered:
        spec, submit = _row_spec(row, n)
        try:  # an unknown GPU type or MIG profile is bad input, not a miss
            eligibility.check_names(spec, site)
        except InputError as exc:
            raise InputError(f"trace row {n}, {exc.field.removeprefix('--').replace('-', '_')}",
                             exc.reason) from None
        if (since and submit < since) or (until and submit >= until):
            continue
        try:
            check_feasible_alone(spec, site, now=submit)
        except InputError as exc:
            rejected[n] = exc.reason.replace("after now", "after submission")
            continue
        jobs.append(Job(**spec.model_dump(), id=n, state=JobState.QUEUED, submitted_at=submit,
                        updated_at=submit))
    jobs.sort(key=lambda j: (j.submitted_at, j.id))
    return Trace(jobs=jobs, rejected=rejected, skipped=skipped)


def _csv_rows(p: Path, lines: list[str]) -> list[tuple[int, dict[str, str]]]:
    """A trace CSV's rows with their line numbers (the header is line 1), columns checked."""
    reader = csv.DictReader(lines)
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError("TRACE", f"{p.name} has no column {', '.join(missing)} (its "
                                  f"header: {', '.join(header) or 'empty'})")
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise InputError("TRACE", f"unknown column {unknown[0]}"
                                  f"{did_you_mean(unknown[0], REQUIRED + OPTIONAL)}")
    return [(n, {(k or "").strip(): v for k, v in r.items()})
            for n, r in enumerate(reader, start=2)]


# -- carbon: what happened, and what a plan could have known -------------------------------------

class ZoneTable:
    """Every zone's history on the slot grid over the simulated span, read once (fail open:
    the typical profile where the provider has nothing)."""

    def __init__(self, signals: Any, zones: Sequence[str], start: datetime, end: datetime,
                 slot_h: float) -> None:
        self.start, self.slot_h = start, slot_h
        self.values = {z: np.asarray(signals.history(z, start, end, slot_h=slot_h,
                                                     fail_open=True).values, dtype=float)
                       for z in dict.fromkeys(zones)}
        for z, v in self.values.items():
            if np.isnan(v).all():
                raise InputError("carbon", f"no carbon intensity for zone {z} over the trace")
            self.values[z] = _fill_nan(v)

    def _index(self, t: datetime) -> int:
        return round((t - self.start).total_seconds() / 3600.0 / self.slot_h)

    def actual(self, zones: Sequence[str], t0: datetime, n: int, slot_h: float,
               ) -> tuple[np.ndarray, dict]:
        """History as a `CarbonSource` (the planner's `carbon` argument)."""
        k = self._index(t0)
        return np.vstack([self._take(z, np.arange(k, k + n)) for z in zones]), {}

    def persistence(self, now: datetime) -> Callable[..., tuple[np.ndarray, dict]]:
        """A `CarbonSource` forecasting each slot from `now` on by the same hour of the last
        day before `now` (day-ahead persistence)."""
        day = round(24 / self.slot_h)

        def source(zones: Sequence[str], t0: datetime, n: int, slot_h: float,
                   ) -> tuple[np.ndarray, dict]:
            k, now_k = self._index(t0), self._index(now)
            idx = np.arange(k, k + n)
            ahead = idx - now_k
            idx = np.where(ahead >= 0, idx - day * (ahead // day + 1), idx)
            return np.vstack([self._take(z, idx) for z in zones]), {}
        return source

    def _take(self, zone: str, idx: np.ndarray) -> np.ndarray:
        v = self.values[zone]
        return v[np.clip(idx, 0, v.size - 1)]


def _fill_nan(v: np.ndarray) -> np.ndarray:
    ok = ~np.isnan(v)
    if ok.all():
        return v
    i = np.arange(v.size)
    return np.interp(i, i[ok], v[ok])


# -- the replay ----------------------------------------------------------------------------------

@dataclass
class Run:
    """A job as a policy ran it: where, when, and what it cost with the carbon that happened."""

    job_id: int
    placement: Placement
    wait_h: float


@dataclass
class PolicyResult:
    policy: str
    runs: dict[int, Run] = field(default_factory=dict)
    missed: dict[int, str] = field(default_factory=dict)  # job -> why
    plans: int = 0
    plan_s: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)   # the planner's certified gaps
    # job -> its attempts cut short by a spot eviction (charged what they ran)
    evicted: dict[int, list[Placement]] = field(default_factory=dict)

    def totals(self, jobs: set[int] | None = None) -> dict[str, float]:
        """Sums over the runs of `jobs` (all when None), evicted attempts included."""
        rs = [r for r in self.runs.values() if jobs is None or r.job_id in jobs]
        lost = [pl for jid, pls in self.evicted.items() if jobs is None or jid in jobs
                for pl in pls]
        ps = [r.placement for r in rs] + lost
        kg = sum(p.kg_co2e + p.embodied_kg for p in ps)
        return {"jobs": len(rs), "kwh": sum(p.energy_kwh for p in ps), "t_co2e": kg / 1000.0,
                "embodied_t": sum(p.embodied_kg for p in ps) / 1000.0,
                "cost_usd": sum(p.cost_usd for p in ps),
                "evictions": len(lost), "evicted_usd": sum(p.cost_usd for p in lost),
                "mean_wait_h": float(np.mean([r.wait_h for r in rs])) if rs else 0.0}


class Replay:
    """One policy replaying the trace; `step(t)` is one re-plan."""

    def __init__(self, policy: str, jobs: Sequence[Job], site: Site, table: ZoneTable, *,
                 t_start: datetime, n_abs: int, slot_h: float, replan_h: float,
                 horizon_h: float, forecast: str, solver: str, time_limit: float,
                 rel_gap: float, evictions: bool = True, seed: int = 0,
                 eviction_rate: float | None = None) -> None:
        self.policy, self.site, self.table = policy, site, table
        self.evictions, self.seed = evictions, seed
        self.eviction_rate = eviction_rate  # what happens on every spot pool; None = assumed
        self.t_start, self.slot_h, self.replan_h = t_start, slot_h, replan_h
        self.horizon_h, self.forecast = horizon_h, forecast
        self.solver, self.time_limit, self.rel_gap = solver, time_limit, rel_gap
        self.pending = deque(jobs)             # in submission order
        self.queue: dict[int, Job] = {}
        self.result = PolicyResult(policy)
        self.pool_row = {p.name: i for i, p in enumerate(site.pools)}
        self.zone_of = {p.name: site.regions[p.region].zone for p in site.pools}
        regions = sorted(site.regions)
        self.used_units = np.zeros((len(site.pools), n_abs))    # by started runs
        self.used_kw = np.zeros((len(regions), n_abs))
        self.site_row = {name: i for i, name in enumerate(regions)}
        self.previous: dict[int, tuple[int, np.ndarray]] = {}   # warm start: pool, abs slots

    @property
    def done(self) -> bool:
        return not self.pending and not self.queue

    def step(self, t: datetime) -> None:
        while self.pending and self.pending[0].submitted_at <= t:
            job = self.pending.popleft()
            self.queue[job.id] = job
        for jid in [j for j, job in self.queue.items() if job.deadline <= t]:
            self.queue.pop(jid)
            self.previous.pop(jid, None)
            self.result.missed[jid] = self._why(jid, "still waiting at its deadline")
        if not self.queue:
            return
        source = self.table.actual if self.forecast == "perfect" else self.table.persistence(t)
        build = build_instance(list(self.queue.values()), self.site, source, now=t,
                               slot_h=self.slot_h, horizon_h=self.horizon_h)
        for jid, why in build.skipped.items():
            self.queue.pop(jid, None)
            self.result.missed[jid] = self._why(jid, why)
        if not build.jobs:
            return
        inst = self._residual(build, t)
        tick = time.perf_counter()
        sched = self._schedule(inst)
        self.result.plans += 1
        self.result.plan_s.append(time.perf_counter() - tick)
        self._start(build, inst, sched, t)

    def _why(self, jid: int, why: str) -> str:
        n = len(self.result.evicted.get(jid, ()))
        return f"evicted from spot {n} time(s), then {why}" if n else why

    def _k(self, t: datetime) -> int:
        return round((t - self.t_start).total_seconds() / 3600.0 / self.slot_h)

    def _window(self, build: Any, t: datetime) -> tuple[Any, Any]:
        """Where `build`'s instance (its pools, regions and slots from `t`) lies in the replay's
        own arrays of what started runs use: (index into used_units, into used_kw)."""
        k = self._k(t)
        slots = np.arange(k, k + build.inst.n_slots)
        return (np.ix_([self.pool_row[name] for name in build.pools], slots),
                np.ix_([self.site_row[name] for name in build.inst.site_names], slots))

    def _residual(self, build: Any, t: datetime) -> Any:
        """The instance on what started runs leave free (their slots were charged already)."""
        inst = build.inst
        pools, regions = self._window(build, t)
        cap = np.maximum(inst.capacity - self.used_units[pools], 0.0)
        power = np.maximum(inst.power_cap_kw - self.used_kw[regions], 0.0)
        return dataclasses.replace(inst, capacity=cap, power_cap_kw=power)

    def _schedule(self, inst: Any) -> Any:
        from carbonplan.planner.policies import get_policy

        if self.policy != PLANNER:
            return get_policy(self.policy)(inst)
        from carbonplan.planner.solve import plan

        try:
            res = plan(inst, backend=self.solver, time_limit=self.time_limit,
                       rel_gap=self.rel_gap, warm_start=self._warm(inst))
        except Exception as exc:  # fail open, as `carbonplan plan` does
            log.error("planner failed (%s: %s); the greedy plan stands in", type(exc).__name__,
                      exc)
            return get_policy("greedy")(inst)
        self.result.gaps.append(float(res.result.gap))
        return res.schedule

    def _warm(self, inst: Any) -> Any:
        """The previous plan, shifted to this instance's slots (jobs that keep it)."""
        from carbonplan.planner.columns import Schedule

        k = self._k(inst.t0)
        pool = np.full(inst.n_jobs, -1, np.int32)
        parts = []
        for j, jid in enumerate(inst.job_ids):
            prev = self.previous.get(int(jid))
            slots = prev[1] - k if prev else np.zeros(0, np.int64)
            if prev and slots.size and slots[0] >= 0:
                pool[j] = prev[0]
                parts.append(slots)
            else:
                parts.append(np.zeros(0, np.int64))
        if (pool < 0).all():
            return None
        indptr = np.concatenate([[0], np.cumsum([p.size for p in parts])]).astype(np.int64)
        return Schedule(pool=pool, indptr=indptr,
                        slots=np.concatenate(parts).astype(np.int32))

    def _start(self, build: Any, inst: Any, sched: Any, t: datetime) -> None:
        """Start what the plan starts before the next re-plan; charge it what happened."""
        from carbonplan.planner.columns import Schedule
        from carbonplan.planner.costs import build_cost_coefficients
        from carbonplan.planner.evaluate import evaluate
        from carbonplan.planner.prepare import usage_of
        from carbonplan.planning import to_placements

        zones = [self.zone_of[name] for name in build.pools]
        distinct = list(dict.fromkeys(zones))
        ci, _ = self.table.actual(distinct, inst.t0, inst.n_slots, self.slot_h)
        happened = dataclasses.replace(inst, ci_g_per_kwh=ci[[distinct.index(z)
                                                              for z in zones]])
        if self.evictions:  # evictions happen below: no expected rework on top
            happened = dataclasses.replace(
                happened, eviction_rate_per_h=np.zeros_like(inst.eviction_rate_per_h))
        ev = evaluate(happened, sched)
        k = self._k(t)
        steps = max(1, round(self.replan_h / self.slot_h))
        start = sched.start
        now_slots = (sched.pool >= 0) & (start >= 0) & (start < steps) & ~ev.late
        keep = np.where(now_slots, sched.pool, -1).astype(np.int32)
        started = Schedule(pool=keep, indptr=sched.indptr, slots=sched.slots)
        cc = build_cost_coefficients(happened)
        units, kw = usage_of(happened, cc, started)
        pools, regions = self._window(build, t)
        self.used_units[pools] += units
        self.used_kw[regions] += kw
        for j, job in enumerate(build.jobs):
            p = int(sched.pool[j])
            if p < 0:
                self.previous.pop(job.id, None)
            elif not now_slots[j]:
                self.previous[job.id] = (p, sched.job_slots(j).astype(np.int64) + k)
        placed, _ = to_placements(build, started, ev, {}, t)
        index = {job.id: j for j, job in enumerate(build.jobs)}
        for pl in placed:
            job = self.queue.pop(pl.job_id)
            self.previous.pop(pl.job_id, None)
            if self.evictions and self._evict(build, inst, cc, sched, index[job.id], pl, job, t):
                continue  # cut short: back in the queue
            self.result.runs[pl.job_id] = Run(
                job_id=pl.job_id, placement=pl,
                wait_h=(pl.start - job.submitted_at).total_seconds() / 3600.0)

    def _evict(self, build: Any, inst: Any, cc: Any, sched: Any, j: int, pl: Placement,
               job: Job, t: datetime) -> bool:
        """Cut a spot run at its drawn eviction, if that comes before its end: charge what it
        ran, free the capacity it held after the eviction's slot, and queue the job again
        with the work of its last checkpoint done. True when it was cut."""
        from carbonplan.planner.costs import slot_kg_op, slot_usd
        from carbonplan.planner.instance import SPOT

        p = int(sched.pool[j])
        if inst.market[p] != SPOT:
            return False
        rate = float(inst.eviction_rate_per_h[p]) if self.eviction_rate is None \
            else self.eviction_rate
        if rate <= 0:
            return False
        attempts = self.result.evicted.get(job.id, [])
        # common random numbers: attempt n of this job meets the same draw in every policy
        tau = np.random.default_rng([self.seed, job.id, len(attempts)]).exponential() / rate
        cut, ran = [], 0.0
        for a, b in pl.segments or [(pl.start, pl.end)]:
            h = (b - a).total_seconds() / 3600.0
            if ran + h > tau:
                cut.append((a, a + timedelta(hours=tau - ran)))
                break
            cut.append((a, b))
            ran += h
        else:
            return False  # it finished first
        at = cut[-1][1]
        slots = sched.job_slots(j).astype(np.int64)
        x = (at - inst.t0).total_seconds() / 3600.0 / inst.slot_h
        last = math.ceil(x - 1e-9) - 1               # the slot it was evicted in
        held = slots[slots <= last]
        share = np.ones(held.size)
        share[-1] = x - last                          # that slot in part
        jj, pp = np.full(held.size, j), np.full(held.size, p)
        self.result.evicted.setdefault(job.id, []).append(Placement(
            job_id=job.id, pool=pl.pool, start=pl.start, end=at,
            segments=cut if len(cut) > 1 else [], units=pl.units,
            energy_kwh=float(cc.slot_kwh[j, p] * share.sum()),
            kg_co2e=float((slot_kg_op(cc, jj, pp, held) * share).sum()),
            embodied_kg=float(cc.emb_kg_slot[j, p] * share.sum()),
            cost_usd=float((slot_usd(cc, jj, pp, held) * share).sum()),
            explanation={"evicted_at": at.isoformat()}))
        after = slots[slots > last] + self._k(t)     # free again
        self.used_units[self.pool_row[pl.pool], after] -= cc.units[j, p]
        self.used_kw[self.site_row[inst.site_names[inst.site[p]]], after] -= cc.facility_kw[j, p]
        # work kept: run-time up to its last checkpoint, less the cost of resuming from it
        every = job.checkpoint_every_h or 0.0
        kept = math.floor(tau / every) * every if every > 0 else 0.0
        share_done = min(max(kept - job.checkpoint_cost_h, 0.0) / build.work_h[j, p], 0.99)
        self.queue[job.id] = job.model_copy(update={
            "done_h": job.done_h + job.remaining_h * share_done, "not_before": at,
            "attempt": job.attempt + 1})
        return True


@dataclass
class Simulation:
    """Every policy's replay of one trace, with what the run was given."""

    results: dict[str, PolicyResult]
    trace: Trace
    start: datetime | None   # first re-plan (None: no job to replay)
    end: datetime | None     # the last deadline's slot end
    settings: dict[str, Any]
    wall_s: float

    def write_runs(self, path: str | Path) -> int:
        """Every policy's runs and misses as CSV rows (one per job and policy); the count."""
        fields = ("policy", "job", "name", "project", "user", "submitted", "deadline", "pool",
                  "start", "end", "wait_h", "kwh", "kg_co2e", "embodied_kg", "cost_usd",
                  "evictions", "evicted_kwh", "evicted_kg_co2e", "evicted_cost_usd", "missed")
        jobs = {j.id: j for j in self.trace.jobs}
        n = 0
        with Path(path).open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(fields)
            for name, res in self.results.items():
                for jid, job in jobs.items():
                    run = res.runs.get(jid)
                    head = [name, jid, job.name, job.project, job.user,
                            job.submitted_at.isoformat(), job.deadline.isoformat()]
                    lost = res.evicted.get(jid, [])
                    tail = [len(lost), f"{sum(x.energy_kwh for x in lost):.6f}",
                            f"{sum(x.kg_co2e + x.embodied_kg for x in lost):.6f}",
                            f"{sum(x.cost_usd for x in lost):.6f}"]
                    if run is None:
                        w.writerow(head + [""] * 8 + tail + [res.missed.get(jid, "")])
                    else:
                        pl = run.placement
                        w.writerow(head + [pl.pool, pl.start.isoformat(), pl.end.isoformat(),
                                           f"{run.wait_h:.4f}", f"{pl.energy_kwh:.6f}",
                                           f"{pl.kg_co2e:.6f}", f"{pl.embodied_kg:.6f}",
                                           f"{pl.cost_usd:.6f}"] + tail + [""])
                    n += 1
        return n

    def summary(self) -> dict[str, Any]:
        """Per policy totals, and against run-now over the jobs both ran (JSON-ready)."""
        base = self.results.get("run-now")
        rows = []
        for name, r in self.results.items():
            row: dict[str, Any] = {"policy": name, **r.totals(), "missed": len(r.missed),
                                   "plans": r.plans,
                                   "mean_plan_s": float(np.mean(r.plan_s)) if r.plan_s else 0.0,
                                   "max_plan_s": max(r.plan_s, default=0.0)}
            if r.gaps:
                row["max_gap"] = max(r.gaps)
                row["mean_gap"] = float(np.mean(r.gaps))
            if base is not None and name != "run-now":
                both = set(r.runs) & set(base.runs)
                mine, theirs = r.totals(both), base.totals(both)
                row["vs_run_now"] = {
                    "jobs_compared": len(both),
                    "saved_t_co2e": theirs["t_co2e"] - mine["t_co2e"],
                    "saved_pct_co2e": 100 * (1 - mine["t_co2e"] / theirs["t_co2e"])
                    if theirs["t_co2e"] > 0 else 0.0,
                    "saved_usd": theirs["cost_usd"] - mine["cost_usd"],
                    "saved_pct_usd": 100 * (1 - mine["cost_usd"] / theirs["cost_usd"])
                    if theirs["cost_usd"] > 0 else 0.0}
            rows.append(row)
        return {"start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
                "jobs": len(self.trace.jobs), "rejected": len(self.trace.rejected),
                "settings": self.settings, "wall_s": self.wall_s, "policies": rows}


def simulate(trace: Trace, site: Site, signals: Any, *,
             policies: Sequence[str] = POLICIES, slot_h: float = 1.0, replan_h: float = 1.0,
             horizon_h: float = DEFAULT_HORIZON_H, forecast: str = "persistence",
             solver: str = "highs", time_limit: float = 2.0, rel_gap: float = 0.01,
             evictions: bool = True, seed: int = 0, eviction_rate: float | None = None,
             progress: Callable[[str, float], None] | None = None) -> Simulation:
    """Replay `trace` under each policy (module docstring); `progress(policy, share done)`.

    `eviction_rate`: evictions happen at this rate (per hour) on every spot pool, whatever
    rate the site configures and plans assume (None: the configured rates)."""
    from carbonplan.planner.policies import POLICIES as BASELINES

    for name in policies:
        if name != PLANNER and name not in BASELINES:
            raise InputError("--policy", f"unknown policy '{name}'; valid: "
                                         f"{', '.join(POLICIES)}")
    if forecast not in FORECASTS:
        raise InputError("--forecast", f"must be one of {', '.join(FORECASTS)}, got "
                                       f"'{forecast}'")
    if eviction_rate is not None and not (math.isfinite(eviction_rate) and eviction_rate >= 0):
        raise InputError("--eviction-rate", f"must be a rate per hour >= 0, got {eviction_rate}")
    if eviction_rate is not None and not evictions:
        raise InputError("--eviction-rate", "needs evictions replayed (drop --no-evictions)")
    if replan_h <= 0 or abs(replan_h / slot_h - round(replan_h / slot_h)) > 1e-9:
        raise InputError("--replan-h", f"must be a positive multiple of the slot ({slot_h} h)")
    tick = time.perf_counter()
    jobs = trace.jobs
    settings = {"policies": list(policies), "carbon_price_usd_per_t": site.carbon_price_usd_per_t,
                "slot_h": slot_h, "replan_h": replan_h,
                "horizon_h": horizon_h, "forecast": forecast, "solver": solver,
                "time_limit_s": time_limit, "rel_gap": rel_gap, "evictions": evictions,
                "seed": seed, "eviction_rate_per_h": eviction_rate}
    if not jobs:
        return Simulation({p: PolicyResult(p) for p in policies}, trace, None, None, settings,
                          0.0)
    start = slot_floor(jobs[0].submitted_at, slot_h)
    last = max(j.deadline for j in jobs)
    end = slot_floor(last, slot_h) + timedelta(hours=slot_h)
    # every instance reaches at most horizon_h past its re-plan, which is before `end`
    n_abs = math.ceil((end - start).total_seconds() / 3600.0 / slot_h) + math.ceil(
        horizon_h / slot_h) + 2
    zones = [site.regions[p.region].zone for p in site.pools]
    table = ZoneTable(signals, zones, start - timedelta(days=1),
                      start + timedelta(hours=n_abs * slot_h), slot_h)
    table_start = table.start
    results = {}
    span = (end - start).total_seconds()
    for name in policies:
        replay = Replay(name, jobs, site, table, t_start=table_start, n_abs=n_abs + round(
            24 / slot_h), slot_h=slot_h, replan_h=replan_h, horizon_h=horizon_h,
            forecast=forecast, solver=solver, time_limit=time_limit, rel_gap=rel_gap,
            evictions=evictions, seed=seed, eviction_rate=eviction_rate)
        t = start
        while not replay.done:
            if not replay.queue and replay.pending:  # idle: on to the next submission
                t = max(t, slot_floor(replay.pending[0].submitted_at, slot_h))
            replay.step(t)
            t += timedelta(hours=replan_h)
            if progress is not None:
                progress(name, min((t - start).total_seconds() / span, 1.0))
        results[name] = replay.result
    return Simulation(results, trace, start, end, settings, time.perf_counter() - tick)
