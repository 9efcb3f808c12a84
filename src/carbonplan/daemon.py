"""The re-planning loop: refresh -> detect -> re-plan -> diff -> apply -> record.

Each cycle (`run_once`), the daemon holding the lease:
1. refreshes: admits jobs submitted to the executor directly (Slurm), polls the executor for
   what its jobs did (started, finished, preempted), and marks jobs whose deadline can no longer
   be met;
2. detects what makes the current plan stale: no plan yet, a changed queue, a forecast that moved
   enough over the planned slots (signals' change detection), or a placement that became
   infeasible (its start passed unstarted, or its pool refused a start), or an executor
   refused an announced placement for good (that job is not planned in that pool again);
3. re-plans if so, warm from the current plan: jobs that started, or start within the freeze
   window, keep their place; moving an announced job costs a small stability penalty;
4. diffs the plan against what executors were told, and 5. applies only the difference through
   the exactly-once wrapper (executors/apply.py);
6. records the plan (its trigger, the carbon matrix it used) and the metrics.

All state lives in the store, so a restart at any point resumes: intents without results are
repeated idempotently, and overdue starts go first. Fail open: unavailable signals keep the last
plan (no forecast-triggered re-plan), a solver failure falls back to the greedy plan, and with the
daemon down Slurm starts jobs at the Lua module's provisional begin time while local and Ray jobs
start, overdue first, on restart.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from carbonplan import eligibility
from carbonplan.domain import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    Attempt,
    Job,
    JobState,
    Placement,
    Plan,
    Site,
)
from carbonplan.executors.apply import apply_actions
from carbonplan.executors.base import Action, ActionKind, Executor
from carbonplan.faults import checkpoint
from carbonplan.leadership import Lease
from carbonplan.metrics import Metrics
from carbonplan.planner.build import Frozen, slot_floor
from carbonplan.planning import fingerprint
from carbonplan.store.repo import Store, TransitionError

log = logging.getLogger("carbonplan.daemon")

NOT_STARTED = (JobState.QUEUED, JobState.PLANNED)
STARTED = (JobState.SUBMITTED, JobState.RUNNING)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DaemonSettings:
    interval_s: float = 300.0
    freeze_window_s: float = 900.0
    slot_h: float = 1.0
    horizon_h: float = 168.0
    solver: str = "highs"
    time_limit_s: float = 30.0
    rel_gap: float = 0.01
    move_penalty_usd: float = 0.5
    start_grace_s: float | None = None   # a planned start this late and unstarted is infeasible
    avoid_failed_pool_s: float = 900.0   # a pool that refused a start is avoided this long
    avoid_refused_pool_s: float = 21600.0  # a pool that refused a job for good: not for it, so long
    change_threshold: float = 0.10
    change_min_g_per_kwh: float = 10.0
    max_backoff_s: float = 300.0
    learn_evictions_h: float | None = None  # [planner] learn_evictions (eviction_rates.py)
    eviction_prior_h: float = 200.0

    @classmethod
    def from_config(cls, cfg: Any, **overrides: Any) -> DaemonSettings:
        p = cfg.planner
        base = cls(freeze_window_s=_seconds(p.freeze_window), slot_h=p.slot_h,
                   horizon_h=p.horizon_h, solver=p.solver, time_limit_s=p.time_limit_s,
                   rel_gap=p.rel_gap, change_threshold=cfg.carbon.change_threshold,
                   change_min_g_per_kwh=cfg.carbon.change_min_g_per_kwh,
                   learn_evictions_h=p.learn_evictions_h, eviction_prior_h=p.eviction_prior_h)
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def grace_s(self) -> float:
        return self.start_grace_s if self.start_grace_s is not None else 2 * self.interval_s


def _seconds(text: str) -> float:
    from carbonplan.timeparse import parse_duration

    return parse_duration(text, "planner.freeze_window", allow_zero=True).total_seconds()


@dataclass
class CycleReport:
    leader: bool
    triggers: list[str] = field(default_factory=list)
    plan_id: int | None = None
    admitted: int = 0
    updates: int = 0
    missed: int = 0
    actions: int = 0
    failed_actions: int = 0
    seconds: float = 0.0
    note: str = ""


class Daemon:
    """One daemon process. `run_once()` is one cycle; `run()` loops until stopped."""

    def __init__(self, store: Store, site: Site, executor: Executor, signals: Any, *,
                 settings: DaemonSettings, lease: Lease, metrics: Metrics | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.store = store
        self.site = site
        self.executor = executor
        self.signals = signals
        self.settings = settings
        self.lease = lease
        self.metrics = metrics or Metrics()
        self.clock = clock
        self._stop = threading.Event()
        self._realized: dict[int, float] = {}
        self._meter: Any = None  # NVML on this host, opened on first use (local executor only)
        self._meter_tried = executor.name != "local"

    # -- the cycle -----------------------------------------------------------------------------

    def run_once(self) -> CycleReport:
        t_start = time.perf_counter()
        now = self.clock()
        if not self.lease.try_acquire():
            self.metrics.cycle_done(leader=False)
            return CycleReport(leader=False, note="standby: another daemon holds the lease")
        rep = CycleReport(leader=True)
        rep.admitted = self._admit(now)
        rep.updates = self._poll(now)
        rep.missed = self._expire(now)
        jobs = self.store.list_jobs(states=ACTIVE_STATES)
        latest = self.store.get_plan()
        checkpoint("after-refresh")
        rep.triggers = self._detect(now, jobs, latest)
        if rep.triggers:
            try:
                latest = self._replan(now, jobs, latest, rep.triggers)
            except Exception:  # fail open: the last plan stands, or one on typical carbon
                log.exception("re-plan (%s) failed; %s", ",".join(rep.triggers),
                              "keeping the current plan" if latest else
                              "planning on the zones' typical carbon intensity")
                self.metrics.cycle_errors.labels("plan").inc()
                if latest is None:
                    latest = self._replan(now, jobs, None, ["fallback"], carbon=_typical)
            checkpoint("after-plan")
        rep.plan_id = latest[0] if latest else None
        if latest is not None:
            jobs = self.store.list_jobs(states=ACTIVE_STATES)
            actions = self._diff(now, jobs, *latest)
            outcomes = apply_actions(self.store, self.executor, actions)
            rep.actions = len(outcomes)
            for o in outcomes:
                if o.skipped:
                    continue
                ok = o.result.ok
                self.metrics.actions.labels(self.executor.name, o.action.kind.value).inc()
                if not ok:
                    rep.failed_actions += 1
                    self.metrics.apply_errors.labels(self.executor.name,
                                                     o.action.kind.value).inc()
        checkpoint("after-apply")
        self._record_metrics(latest)
        rep.seconds = time.perf_counter() - t_start
        self.metrics.cycle_seconds.observe(rep.seconds)
        self.metrics.cycle_done(leader=True)
        return rep

    def run(self, max_cycles: int | None = None, *, install_signals: bool = False) -> None:
        """Cycle every interval until stopped (SIGTERM/SIGINT: finish the cycle, then exit)."""
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)
        backoff = 0.0
        cycles = 0
        try:
            while not self._stop.is_set() and (max_cycles is None or cycles < max_cycles):
                cycles += 1
                try:
                    rep = self.run_once()
                    backoff = 0.0
                    log.info("cycle %d: %s", cycles, _describe(rep))
                    wait = self.settings.interval_s
                except Exception:  # a bad cycle must not end the daemon: log, back off, retry
                    log.exception("cycle %d failed", cycles)
                    self.metrics.cycle_errors.labels("cycle").inc()
                    backoff = min(max(backoff * 2, 1.0), self.settings.max_backoff_s)
                    wait = max(backoff, min(self.settings.interval_s, 1.0))
                if max_cycles is not None and cycles >= max_cycles:
                    break
                self._stop.wait(wait)
        finally:
            self.metrics.stopped()
            self.lease.release()

    def stop(self) -> None:
        self._stop.set()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self._stop.is_set():
            raise SystemExit(128 + signum)  # a second signal: leave now
        log.info("signal %d: finishing this cycle, then stopping", signum)
        self._stop.set()

    # -- 1. refresh ----------------------------------------------------------------------------

    def _admit(self, now: datetime) -> int:
        if not self.executor.capabilities.discovers_jobs:
            return 0
        from carbonplan.executors.intake import admit_discovered

        try:
            return sum(a.new for a in admit_discovered(self.store, self.executor, self.site,
                                                       now=now))
        except Exception as exc:
            log.warning("discovery failed: %s", exc)
            self.metrics.cycle_errors.labels("discover").inc()
            return 0

    def _poll(self, now: datetime) -> int:
        caps = self.executor.capabilities
        # every job that lives in the executor: those it runs for us, and (Slurm) every job
        # submitted to it directly, whatever carbonplan last recorded (a crash may have lost the
        # record of an announce the executor acted on)
        watch = [j for j in self.store.list_jobs(states=ACTIVE_STATES)
                 if j.executor == self.executor.name
                 or (caps.discovers_jobs and j.source == self.executor.name)
                 or (caps.starts_at_begin_time and j.state == JobState.PLANNED)]
        if not watch:
            return 0
        try:
            updates = self.executor.poll(watch)
        except Exception as exc:
            log.warning("poll failed: %s", exc)
            self.metrics.cycle_errors.labels("poll").inc()
            return 0
        n = 0
        for u in updates:
            fields = u.job_fields()
            if u.state in STARTED and self.executor.capabilities.starts_at_begin_time:
                fields.setdefault("executor", self.executor.name)
            try:
                self.store.transition(u.job_id, u.state, reason=u.reason,
                                      actor=self.executor.name, updates=fields or None)
                n += 1
            except TransitionError as exc:
                log.debug("update for job %s ignored: %s", u.job_id, exc.reason)
        return n

    def _expire(self, now: datetime) -> int:
        """Jobs not started that can no longer finish by their deadline: missed, with reason."""
        n = 0
        for job in self.store.list_jobs(states=NOT_STARTED):
            if job.source != "cli" and self.executor.capabilities.discovers_jobs:
                continue  # the executor (Slurm) ends it at its deadline and poll reports it
            share = job.remaining_h / job.hours if job.hours else 1.0
            opts = eligibility.pool_options(job, self.site)
            need_h = min((o.work_h for o in opts), default=job.hours) * share
            if now + timedelta(hours=need_h) <= job.deadline:
                continue
            try:
                self.store.transition(job.id, JobState.MISSED_DEADLINE, actor="daemon",
                                      reason=f"cannot finish by {job.deadline.isoformat()}: "
                                             f"needs {need_h:.2f} h on its fastest pool",
                                      expect=NOT_STARTED)
                n += 1
            except TransitionError:
                pass
        return n

    # -- 2. detect -----------------------------------------------------------------------------

    def _detect(self, now: datetime, jobs: list[Job],
                latest: tuple[int, Plan] | None) -> list[str]:
        if latest is None:
            return ["initial"] if jobs else []
        _, plan = latest
        triggers = []
        if fingerprint(jobs) != plan.details.get("queue"):
            triggers.append("queue")
        if self._forecast_changed(now, plan):
            triggers.append("forecast")
        if any(_lost(j) and j.updated_at > plan.created_at for j in jobs):
            triggers.append("preempted")
        if self._infeasible(now, jobs, plan):
            triggers.append("infeasible")
        if any(a.created_at >= plan.created_at for a in self._refusals(now)):
            triggers.append("refused")
        if "t0" in plan.details:  # jobs due beyond a capped horizon: extend it as time passes
            t0 = datetime.fromisoformat(plan.details["t0"])
            end = t0 + timedelta(hours=plan.slot_h * plan.details.get("slots", 0))
            if now - t0 > timedelta(hours=self.settings.horizon_h / 2) and any(
                    j.deadline > end for j in jobs):
                triggers.append("horizon")
        return triggers

    def _forecast_changed(self, now: datetime, plan: Plan) -> bool:
        from carbonplan.signals.change import detect_change
        from carbonplan.signals.matrix import CIMatrix

        kept = plan.details.get("matrix")
        if not kept:
            return False
        used = CIMatrix.from_json_dict(kept)
        t0 = slot_floor(now, used.slot_h)
        shift = round((t0 - used.t0).total_seconds() / used.slot_s)
        n = used.n_slots - shift
        if n < 1:
            return True  # the plan's matrix is used up
        try:
            new = self.signals.build_ci_matrix(used.zones, t0, n, used.slot_h)
        except Exception as exc:
            log.warning("signals unavailable, keeping the plan: %s", exc)
            self.metrics.cycle_errors.labels("signals").inc()
            return False
        for prov in new.provenance:
            self.metrics.intensity.labels(prov.zone, prov.source).set(
                float(new.ci_g_per_kwh[new.zones.index(prov.zone), 0]))
        if any(p.provider != "offline" and p.origin in ("stale", "model") for p in
               new.provenance):
            log.info("some carbon signals are unavailable (cached or typical values): the plan "
                     "is kept unless the queue changes")
            return False
        planned = _planned_mask(plan, used, self.site)
        report = detect_change(used, new, planned, threshold=self.settings.change_threshold,
                               min_g_per_kwh=self.settings.change_min_g_per_kwh)
        if report.matters:
            log.info("forecast changed: %s", report.summary())
        return report.matters

    def _infeasible(self, now: datetime, jobs: list[Job], plan: Plan) -> bool:
        placed = {p.job_id: p for p in plan.placements}
        grace = timedelta(seconds=self.settings.grace_s)
        for job in jobs:
            p = placed.get(job.id)
            if p is not None and job.state in NOT_STARTED and p.start + grace < now:
                return True  # its start passed and it did not start
        since = now - timedelta(seconds=self.settings.avoid_failed_pool_s)
        return any(a.created_at >= plan.created_at for a in
                   self.store.failed_since(since, kind=ActionKind.START.value))

    def _refusals(self, now: datetime) -> list[Any]:
        """Announces the executor refused for good (not retryable: a Slurm job that cannot go
        back to a cluster without its GPU type, a pool with no cluster...), recently."""
        since = now - timedelta(seconds=self.settings.avoid_refused_pool_s)
        return [a for a in self.store.failed_since(since, kind=ActionKind.ANNOUNCE.value)
                if a.result.get("retryable") is False and a.payload.get("pool")]

    def _refused(self, now: datetime) -> dict[int, dict[str, str]]:
        """Per job, the pools its executor refused ({pool: why}): the planner leaves them out,
        so a plan does not ask for the same refused move every cycle."""
        out: dict[int, dict[str, str]] = {}
        for a in self._refusals(now):
            # the pool asked for, and any others the executor said the same holds for
            for pool in [a.payload["pool"], *(a.result.get("refused_pools") or [])]:
                out.setdefault(a.job_id, {})[pool] = a.error or "refused"
        if out:
            log.info("leaving out pools executors refused for %d job(s)", len(out))
        return out

    # -- 3. re-plan ----------------------------------------------------------------------------

    def _replan(self, now: datetime, jobs: list[Job], latest: tuple[int, Plan] | None,
                triggers: list[str], carbon: Any = None) -> tuple[int, Plan]:
        from carbonplan.eviction_rates import for_plan, recorded
        from carbonplan.planning import plan_jobs

        trigger = ",".join(triggers)
        announced = self._announced(latest, jobs)
        frozen = self._frozen(now, jobs, announced)
        site, rates = for_plan(self._healthy_site(now), self.store,
                               window_h=self.settings.learn_evictions_h,
                               prior_h=self.settings.eviction_prior_h, now=now)
        started = time.perf_counter()
        run = plan_jobs(jobs, site, carbon or self.signals, now=now,
                        slot_h=self.settings.slot_h, horizon_h=self.settings.horizon_h,
                        solver=self.settings.solver, time_limit=self.settings.time_limit_s,
                        rel_gap=self.settings.rel_gap, frozen=frozen, previous=announced,
                        move_penalty_usd=self.settings.move_penalty_usd,
                        refused=self._refused(now), trigger=trigger,
                        explain=len(jobs) <= 400)
        plan = recorded(run.plan, rates)
        plan_id = self.store.save_plan(plan)
        for t in triggers:
            self.metrics.replans.labels(t).inc()
        self.metrics.solve_seconds.observe(time.perf_counter() - started)
        self.metrics.gap.set(plan.gap if np.isfinite(plan.gap) else 1.0)
        log.info("plan %d (%s): %d placed, %d unplanned, objective %.2f, gap %.2f%%, %s",
                 plan_id, trigger, len(plan.placements), len(plan.unplanned), plan.objective,
                 100 * plan.gap, plan.status)
        return plan_id, plan

    def _announced(self, latest: tuple[int, Plan] | None, jobs: list[Job],
                   ) -> dict[int, Placement]:
        """What executors were told: the current plan's placements of jobs not started."""
        if latest is None:
            return {}
        # a job whose attempt was lost needs a new placement: its old one was used up
        active = {j.id for j in jobs if not _lost(j)}
        return {p.job_id: p for p in latest[1].placements if p.job_id in active}

    def _frozen(self, now: datetime, jobs: list[Job],
                announced: dict[int, Placement]) -> dict[int, Frozen]:
        window = timedelta(seconds=self.settings.freeze_window_s)
        pools = {p.name for p in self.site.pools}
        out: dict[int, Frozen] = {}
        for job in jobs:
            p = announced.get(job.id)
            if job.state in STARTED:
                pool = job.ran_pool or (p.pool if p else None)
                start = job.started_at or (p.start if p else now)
                if pool in pools:
                    out[job.id] = Frozen(pool=pool, start=start)
            elif p is not None and p.start <= now + window and p.start + timedelta(
                    seconds=self.settings.grace_s) >= now and p.pool in pools:
                out[job.id] = Frozen(pool=p.pool, start=p.start)
        return out

    def _healthy_site(self, now: datetime) -> Site:
        """The site without pools that refused a start recently (e.g. an unreachable cluster)."""
        since = now - timedelta(seconds=self.settings.avoid_failed_pool_s)
        bad = {a.payload.get("pool") for a in self.store.failed_since(since, kind="start")
               if a.payload.get("pool")}
        if not bad:
            return self.site
        log.warning("avoiding pools that refused a start recently: %s", ", ".join(sorted(bad)))
        return self.site.model_copy(update={
            "pools": tuple(p for p in self.site.pools if p.name not in bad)})

    # -- 4. diff -------------------------------------------------------------------------------

    def _diff(self, now: datetime, jobs: list[Job], plan_id: int, plan: Plan) -> list[Action]:
        placed = {p.job_id: p for p in plan.placements}
        told = self.store.last_done(ActionKind.ANNOUNCE.value, [j.id for j in jobs])
        holds = self.executor.capabilities.starts_at_begin_time
        announce, start, cancel = [], [], []
        for job in jobs:
            p = placed.get(job.id)
            if job.state in NOT_STARTED and p is not None:
                prev = told.get(job.id)
                same = prev is not None and prev.payload.get("pool") == p.pool and \
                    _same_time(prev.payload.get("start"), p.start)
                if not same or job.state == JobState.QUEUED:
                    announce.append(Action(ActionKind.ANNOUNCE, job, p, plan_id=plan_id))
                if not holds and p.start <= now:
                    start.append(Action(ActionKind.START, job, p, attempt=job.attempt + 1,
                                        plan_id=plan_id))
        for job in self.store.list_jobs(states=[JobState.CANCELLED]):
            if job.executor == self.executor.name and job.executor_ref and \
                    self.store.get_action(f"cancel:{job.id}:{job.attempt}") is None:
                cancel.append(Action(ActionKind.CANCEL, job))
        start.sort(key=lambda a: a.placement.start)  # overdue first
        return cancel + announce + start

    # -- 6. record -----------------------------------------------------------------------------

    def _record_metrics(self, latest: tuple[int, Plan] | None) -> None:
        m = self.metrics
        counts = self.store.count_jobs()
        for state in JobState:
            m.jobs.labels(state.value).set(counts.get(state.value, 0))
        self._record_gpus()
        m.realized_kg.set(self._realized_kg())  # finished jobs count with or without a plan
        if latest is None:
            return
        plan = latest[1]
        kg = sum(p.kg_co2e + p.embodied_kg for p in plan.placements)
        m.planned_kg.set(kg)
        m.planned_usd.set(sum(p.cost_usd for p in plan.placements))
        base = plan.details.get("baselines", {}).get("run-now")
        mine = plan.details.get("evaluation")
        if base and mine:
            m.savings_kg.set(1000 * (base["t_co2e"] - mine["t_co2e"]))
            m.savings_usd.set(base["cost_usd"] - mine["cost_usd"])

    def _record_gpus(self) -> None:
        """This host's GPU power and limits, where the local executor runs jobs on them."""
        if not self._meter_tried:
            from carbonplan.energy.nvml import NvmlMeter

            self._meter, self._meter_tried = NvmlMeter.open(), True
        if self._meter is None:
            return
        try:
            for g in self._meter.readings():
                if g.power_w is not None:
                    self.metrics.gpu_power.labels(str(g.index), g.name).set(g.power_w)
                if g.power_limit_w is not None:
                    self.metrics.gpu_power_limit.labels(str(g.index), g.name).set(g.power_limit_w)
        except Exception as exc:  # a metric, never a failed cycle
            log.debug("NVML read failed: %s", exc)

    def _realized_kg(self) -> float:
        """kgCO2e of the jobs that ended: every run they had (interrupted ones included), from
        their GPUs' measured energy (NVML, local executor) or else the power model over the run
        time, times PUE, at the carbon intensity of their zone while they ran (signals'
        history), plus the embodied share; `carbonplan report`'s figures."""
        done = self.store.list_jobs(states=TERMINAL_STATES)
        new = [j for j in done if j.id not in self._realized]
        runs: dict[int, list[Attempt]] = {}
        for a in self.store.attempts([j.id for j in new]) if new else ():
            runs.setdefault(a.job_id, []).append(a)
        for job in new:
            self._realized[job.id] = self._job_realized_kg(job, runs.get(job.id, []))
        return sum(self._realized[j.id] for j in done)

    def _job_realized_kg(self, job: Job, attempts: list[Attempt] | None = None) -> float:
        from carbonplan.report import ended_footprint, read_intensity

        fp = ended_footprint(job, self.site, read_intensity(self.signals, self.settings.slot_h),
                             attempts or (), run_now=False)
        return fp.whole.total_kg if fp is not None else 0.0


def _typical(zones: Any, t0: datetime, n_slots: int, slot_h: float
             ) -> tuple[np.ndarray, dict[str, Any]]:
    """Each zone's typical level, flat: the carbon source of last resort (cannot fail)."""
    from carbonplan.catalog.zones import ZONES

    ci = np.array([[ZONES[z][1]] * n_slots for z in zones], dtype=float)
    return ci, {"zones": {z: {"origin": "typical level (signals failed)"} for z in zones}}


def _lost(job: Job) -> bool:
    """Back in the queue after an attempt started (preempted, or its runner or cluster lost)."""
    return job.state == JobState.QUEUED and job.attempt > 0


def _same_time(a: Any, b: datetime) -> bool:
    if a is None:
        return False
    t = a if isinstance(a, datetime) else datetime.fromisoformat(str(a))
    return abs((t - b).total_seconds()) < 1.0


def _planned_mask(plan: Plan, used: Any, site: Site) -> np.ndarray:
    """bool (zones, slots) of the plan's matrix: where the plan runs work."""
    mask = np.zeros(used.ci_g_per_kwh.shape, dtype=bool)
    pools = {p.name: p for p in site.pools}
    slot = timedelta(hours=used.slot_h)
    for p in plan.placements:
        pool = pools.get(p.pool)
        if pool is None:
            continue
        zone = site.regions[pool.region].zone
        if zone not in used.zones:
            continue
        a = int((p.start - used.t0) / slot)
        b = int(np.ceil((p.end - used.t0) / slot))
        mask[used.zones.index(zone), max(a, 0):max(min(b, used.n_slots), 0)] = True
    return mask


def _describe(rep: CycleReport) -> str:
    if not rep.leader:
        return rep.note
    parts = [f"{rep.seconds:.2f}s"]
    if rep.triggers:
        parts.append(f"re-planned ({','.join(rep.triggers)}) -> plan {rep.plan_id}")
    for name in ("admitted", "updates", "missed", "actions", "failed_actions"):
        v = getattr(rep, name)
        if v:
            parts.append(f"{name.replace('_', ' ')} {v}")
    return ", ".join(parts)
