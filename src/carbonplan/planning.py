"""Plan the queue: domain objects in, a domain `Plan` out. The CLI (`plan`, `demo`) and the daemon
both call `plan_jobs`; it is the only place that converts between planner arrays and times.

Fail open: if the solver raises, the plan is the greedy spatio-temporal policy's (status
`fallback`); a time-limited solve returns its best plan with its certified gap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from carbonplan.domain import Job, Placement, Plan, Site
from carbonplan.planner.build import (
    DEFAULT_HORIZON_H,
    DEFAULT_MOVE_PENALTY_USD,
    BuildResult,
    CarbonSource,
    Frozen,
    build_instance,
    slot_start,
)

log = logging.getLogger("carbonplan.planning")

EXPLAIN_MAX_JOBS = 400      # explanations (alternatives beaten) for plans up to this many jobs
BASELINES = ("run-now", "greedy")


@dataclass
class PlanningRun:
    """A plan with the arrays it came from."""

    plan: Plan
    build: BuildResult
    result: Any                                   # planner PlanResult (None on fallback)
    schedule: Any                                 # planner Schedule
    evaluation: Any                               # planner Evaluation of the schedule
    baselines: dict[str, Any] = field(default_factory=dict)  # policy -> Evaluation


def _segments(slots: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs [a, b) of sorted slots."""
    if slots.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(slots) != 1)
    starts = np.r_[slots[0], slots[breaks + 1]]
    ends = np.r_[slots[breaks] + 1, slots[-1] + 1]
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def _warm_schedule(build: BuildResult):
    """The announced placements (prev_pool / prev_start) as a planner Schedule."""
    from carbonplan.planner.columns import Schedule, contiguous_slots

    inst = build.inst
    pool = inst.prev_pool.copy()
    J = inst.n_jobs
    n = np.where(pool >= 0, inst.duration_slots[np.arange(J), np.maximum(pool, 0)], 0)
    start = np.clip(inst.prev_start, 0, inst.n_slots)
    n = np.minimum(n, inst.n_slots - start)
    pool = np.where(n > 0, pool, -1).astype(np.int32)
    indptr, slots = contiguous_slots(start.astype(np.int64), np.where(pool >= 0, n, 0))
    return Schedule(pool=pool, indptr=indptr, slots=slots)


def _solve(build: BuildResult, *, solver: str, time_limit: float, rel_gap: float,
           progress: Callable | None):
    from carbonplan.planner.solve import plan

    warm = _warm_schedule(build) if (build.inst.prev_pool >= 0).any() else None
    return plan(build.inst, backend=solver, time_limit=time_limit, rel_gap=rel_gap,
                warm_start=warm, progress=progress)


def fingerprint(jobs: Sequence[Job]) -> list[list[Any]]:
    """What a plan depends on in the queue: which jobs are active and how much work each has
    left. A daemon re-plans when it differs from the one the current plan recorded; starting a
    job as planned does not change it, finishing, arriving or checkpointed progress does."""
    return sorted([j.id, round(j.done_h, 4)] for j in jobs)


def plan_jobs(jobs: Sequence[Job], site: Site, carbon: CarbonSource | Any, *, now: datetime,
              slot_h: float = 1.0, horizon_h: float = DEFAULT_HORIZON_H, solver: str = "highs",
              time_limit: float = 30.0, rel_gap: float = 0.01,
              frozen: dict[int, Frozen] | None = None,
              previous: dict[int, Placement] | None = None,
              move_penalty_usd: float = DEFAULT_MOVE_PENALTY_USD,
              refused: dict[int, dict[str, str]] | None = None, trigger: str = "manual",
              baselines: Sequence[str] = BASELINES, explain: bool = True,
              progress: Callable | None = None) -> PlanningRun:
    """Plan `jobs` on `site` and return the domain plan with its certificate.

    Args:
        jobs: active jobs to plan (frozen ones included, see `frozen`).
        site: the site; carbon: carbon intensity source: a `SignalService` (the matrix it
            builds is kept in the plan, for the daemon's change detection) or any callable of
            the `CarbonSource` shape (a kept matrix's `as_source()`, a test's function).
        now: planning time; slot_h, horizon_h: grid.
        solver: integer-master backend name; time_limit, rel_gap: stopping rules.
        frozen: jobs that keep their pool and start; previous: announced placements.
        refused: per job, pools its executor refused for good ({pool: why}), not offered again.
        trigger: why this plan is made (recorded).
        baselines: policies evaluated on the same instance, for savings.
        explain: attach explanations (alternatives beaten, reasons) up to EXPLAIN_MAX_JOBS jobs.
        progress: planner progress callback.
    """
    from carbonplan.planner.evaluate import evaluate
    from carbonplan.planner.policies import get_policy
    from carbonplan.planner.prepare import prepare

    t_start = time.perf_counter()
    service = carbon if hasattr(carbon, "carbon_source") else None
    if service is not None:
        carbon = service.carbon_source
    build = build_instance(jobs, site, carbon, now=now, slot_h=slot_h, horizon_h=horizon_h,
                           frozen=frozen, previous=previous, move_penalty_usd=move_penalty_usd,
                           refused=refused)
    inst = build.inst
    status, solver_used, result = "optimal", solver, None
    try:
        result = _solve(build, solver=solver, time_limit=time_limit, rel_gap=rel_gap,
                        progress=progress)
        sched, ev = result.schedule, result.evaluation
        sr = result.result
        status = sr.termination.value if hasattr(sr.termination, "value") else str(
            sr.termination)
        objective, bound, gap = sr.objective, sr.bound, sr.gap
        iterations, n_columns = sr.iterations, sr.columns
    except Exception as exc:  # fail open: a plan must exist; the greedy policy always answers
        log.error("solver %s failed (%s: %s); using the greedy plan", solver,
                  type(exc).__name__, exc)
        sched = get_policy("greedy")(inst)
        ev = evaluate(inst, sched)
        status, solver_used = "fallback", f"greedy (after {solver} failed)"
        objective, bound, gap, iterations, n_columns = ev.objective, float("-inf"), 1.0, 0, 0
    prep = prepare(inst)

    base_evals, base_scheds = {}, {}
    for name in baselines:
        try:
            base_scheds[name] = get_policy(name)(inst)
            base_evals[name] = evaluate(inst, base_scheds[name], prep.cc)
        except Exception as exc:  # a baseline is a comparison, never a reason to fail
            log.warning("baseline %s failed: %s", name, exc)

    explanations = {}
    if explain and inst.n_jobs <= EXPLAIN_MAX_JOBS:
        from carbonplan.planner.explain import explain_job

        for j in range(inst.n_jobs):
            explanations[j] = explain_job(inst, sched, j, prep)

    placements, unplanned = to_placements(build, sched, ev, explanations, now)
    for job_id, reason in build.skipped.items():
        unplanned[job_id] = reason
    details = {
        "savings": {k: savings(sched, ev, base_scheds[k], v) for k, v in base_evals.items()},
        "slots": inst.n_slots, "t0": inst.t0.isoformat(), "pools": inst.n_pools,
        "jobs": inst.n_jobs, "trigger": trigger,
        "evaluation": _summary(ev),
        "baselines": {k: _summary(v) for k, v in base_evals.items()},
        "carbon": inst.meta.get("carbon", {}),
        "timings": getattr(result, "timings", {}),
        "wall_s": time.perf_counter() - t_start,
        "queue": fingerprint(jobs),
    }
    matrix = getattr(service, "last_matrix", None)
    if matrix is not None:
        details["matrix"] = matrix.to_json_dict()
    plan = Plan(created_at=now, trigger=trigger, solver=solver_used, status=status,
                objective=float(objective), bound=float(bound), gap=float(gap),
                seconds=time.perf_counter() - t_start, iterations=int(iterations),
                n_columns=int(n_columns), slot_h=slot_h,
                carbon_price_usd_per_t=inst.carbon_price_usd_per_t, placements=placements,
                unplanned=unplanned, details=details)
    return PlanningRun(plan=plan, build=build, result=result, schedule=sched, evaluation=ev,
                       baselines=base_evals)


def savings(plan_sched: Any, plan_ev: Any, base_sched: Any, base_ev: Any,
            ) -> dict[str, float | int]:
    """What the plan saves against a baseline, over the jobs both place (so that a baseline does
    not look clean by leaving jobs out), with how many jobs only one of them places.

    Positive means the plan is better: `usd` and `kg_co2e` are baseline minus plan.
    """
    a, b = plan_ev.per_job, base_ev.per_job
    placed_a = (plan_sched.pool >= 0) & ~plan_ev.late
    placed_b = (base_sched.pool >= 0) & ~base_ev.late
    both = placed_a & placed_b
    kg_a = (a.kg_op + a.kg_emb)[both].sum()
    kg_b = (b.kg_op + b.kg_emb)[both].sum()
    return {"jobs_compared": int(both.sum()), "usd": float(b.usd[both].sum() - a.usd[both].sum()),
            "kg_co2e": float(kg_b - kg_a),
            "pct_co2e": float(100 * (kg_b - kg_a) / kg_b) if kg_b > 0 else 0.0,
            "pct_usd": float(100 * (b.usd[both].sum() - a.usd[both].sum()) / b.usd[both].sum())
            if b.usd[both].sum() > 0 else 0.0,
            "baseline_unplaced": int((~placed_b & placed_a).sum()),
            "plan_unplaced": int((~placed_a & placed_b).sum()),
            "baseline_late": int(base_ev.n_late)}


def _summary(ev: Any) -> dict[str, float | int]:
    s = ev.summary()
    return {k: (float(v) if isinstance(v, float) else int(v)) for k, v in s.items()}


def _option_json(opt: Any) -> dict[str, Any]:
    return {"label": opt.label, "pool": opt.pool_name, "start_slot": int(opt.start),
            "end_slot": int(opt.end), "kwh": round(opt.kwh, 3),
            "kg_co2e": round(opt.kg_co2e, 4), "usd": round(opt.usd, 4), "fits": bool(opt.fits),
            "delta_usd": round(opt.delta_usd, 4), "delta_kg_co2e": round(opt.delta_kg_co2e, 4),
            "delta_objective": round(opt.delta_objective, 4)}


def to_placements(build: BuildResult, sched: Any, ev: Any, explanations: dict[int, Any],
                  now: datetime) -> tuple[list[Placement], dict[int, str]]:
    """A schedule as domain placements (times, segments, kWh, kg, $ from `ev`), and the jobs it
    leaves unplanned with the reason."""
    inst = build.inst
    per = ev.per_job
    placements: list[Placement] = []
    unplanned: dict[int, str] = {}
    slot = timedelta(hours=inst.slot_h)
    for j, job in enumerate(build.jobs):
        p = int(sched.pool[j])
        exp = explanations.get(j)
        if p < 0:
            unplanned[job.id] = exp.reason.message if exp and exp.reason else \
                "not planned (no placement fits within the deadline at acceptable cost)"
            continue
        segs = _segments(sched.job_slots(j))
        times = []
        for a, b in segs:
            begin = slot_start(inst.t0, a, inst.slot_h, now)  # slot 0 starts now
            times.append((begin, begin + (b - a) * slot))
        # the run ends when its work is done, which may be inside its last reserved slot
        need = build.work_h[j, p] + inst.checkpoint_cost_h[j] * (len(segs) - 1)
        done_before = sum(((e - b) for b, e in times[:-1]), timedelta())
        last_begin, last_end = times[-1]
        times[-1] = (last_begin, min(last_end, last_begin + max(
            timedelta(hours=need) - done_before, timedelta(seconds=1))))
        explanation: dict[str, Any] = {}
        if exp is not None and exp.chosen is not None:
            explanation = {"chosen": _option_json(exp.chosen),
                           "alternatives": [_option_json(a) for a in exp.alternatives]}
        placements.append(Placement(
            job_id=job.id, pool=build.pools[p], start=times[0][0], end=times[-1][1],
            segments=times if len(times) > 1 else [], units=float(inst.units[j, p]),
            energy_kwh=float(per.kwh[j]), kg_co2e=float(per.kg_op[j]),
            embodied_kg=float(per.kg_emb[j]), cost_usd=float(per.usd[j]),
            explanation=explanation))
    return placements, unplanned
