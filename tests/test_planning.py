"""The planning service: domain in, a stored-ready Plan out, honest savings, fail-open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from carbonplan.config import parse_config
from carbonplan.domain import Job, JobState
from carbonplan.planner.build import Frozen
from carbonplan.planning import plan_jobs

NOW = datetime(2026, 11, 23, 10, 20, tzinfo=UTC)
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

SITE = parse_config({
    "site": {"home_region": "dirty", "carbon_price_usd_per_t": 500},
    "regions": [{"name": "dirty", "zone": "PL", "pue": 1.2},
                {"name": "clean", "zone": "SE", "pue": 1.2}],
    "pools": [
        {"region": "dirty", "accelerator": "a100-80gb", "market": "on_demand", "capacity": 4,
         "price_usd_per_unit_h": 3.0},
        {"region": "clean", "accelerator": "a100-80gb", "market": "on_demand", "capacity": 2,
         "price_usd_per_unit_h": 3.0},
    ],
}).to_site()


def carbon(zones, t0, n, slot_h):
    # PL dirty and flat; SE clean, cleanest from slot 3 on
    rows = {"PL": np.full(n, 700.0), "SE": np.r_[np.full(min(3, n), 60.0), np.full(max(n - 3, 0),
                                                                                    20.0)]}
    return np.array([rows[z] for z in zones]), {z: {"origin": "test"} for z in zones}


def job(jid: int, **kw) -> Job:
    base = dict(id=jid, state=JobState.QUEUED, name=f"j{jid}", user="u", project="p",
                command=["true"], gpus=1, hours=2.0, deadline=NOW + timedelta(hours=12),
                submitted_at=NOW, updated_at=NOW)
    return Job(**{**base, **kw})


def test_plan_moves_work_to_the_clean_zone_and_later_slots() -> None:
    run = plan_jobs([job(1), job(2)], SITE, carbon, now=NOW, time_limit=10)
    plan = run.plan
    assert plan.status in ("optimal", "gap_reached") and plan.gap <= 0.01 + 1e-9
    assert plan.bound <= plan.objective + 1e-6
    by_job = {p.job_id: p for p in plan.placements}
    for p in by_job.values():
        assert p.pool == "clean/a100-80gb/on_demand"
        assert p.start >= T0 + timedelta(hours=3)  # the cleanest hours
        assert p.end <= NOW + timedelta(hours=12)
        assert p.end - p.start == timedelta(hours=2)
        assert p.energy_kwh > 0 and p.cost_usd == pytest.approx(6.0, rel=1e-6)
        assert p.explanation["chosen"]["pool"] == p.pool
        labels = {a["label"] for a in p.explanation["alternatives"]}
        assert "run-now" in labels and "other-site" in labels
    sv = plan.details["savings"]["run-now"]
    assert sv["jobs_compared"] == 2 and sv["kg_co2e"] > 0 and sv["usd"] == pytest.approx(0.0)


def test_a_slot_0_placement_starts_now_not_at_the_slot_start() -> None:
    run = plan_jobs([job(1, deadline=NOW + timedelta(hours=2, minutes=30))], SITE, carbon,
                    now=NOW, time_limit=5)
    (p,) = run.plan.placements
    assert p.start == NOW and p.end == NOW + timedelta(hours=2)  # its run, from now
    assert p.end <= NOW + timedelta(hours=2, minutes=30)


def test_unplaceable_jobs_are_named_with_their_reason() -> None:
    run = plan_jobs([job(1, gpu_types=["t4"]), job(2, gpus=8)], SITE, carbon, now=NOW,
                    time_limit=5)
    assert not run.plan.placements
    assert "no pool offers t4" in run.plan.unplanned[1]
    assert run.plan.unplanned[2]  # 8 GPUs fit no pool: the builder or the planner says why


def test_frozen_jobs_keep_their_place() -> None:
    frozen = {1: Frozen(pool="dirty/a100-80gb/on_demand", start=T0)}
    run = plan_jobs([job(1, state=JobState.RUNNING), job(2)], SITE, carbon, now=NOW,
                    frozen=frozen, time_limit=5)
    by_job = {p.job_id: p for p in run.plan.placements}
    assert by_job[1].pool == "dirty/a100-80gb/on_demand"


def test_a_failing_solver_falls_back_to_the_greedy_plan() -> None:
    run = plan_jobs([job(1), job(2)], SITE, carbon, now=NOW, solver="pulp:NO_SUCH_SOLVER",
                    time_limit=5)
    plan = run.plan
    assert plan.status == "fallback" and "greedy" in plan.solver
    assert len(plan.placements) == 2  # a plan always exists
    assert run.evaluation.feasible


def test_savings_count_only_jobs_both_place() -> None:
    # capacity for one job at home in its window: run-now misses one, the plan places both
    jobs = [job(1, gpus=4, deadline=NOW + timedelta(hours=2, minutes=30)),
            job(2, gpus=4, deadline=NOW + timedelta(hours=2, minutes=30)),
            job(3, gpus=1, hours=1.0)]
    site = SITE.model_copy(update={"pools": (SITE.pools[0],
                                             SITE.pools[1].model_copy(update={"capacity": 4}))})
    run = plan_jobs(jobs, site, carbon, now=NOW, time_limit=5)
    sv = run.plan.details["savings"]["run-now"]
    assert len(run.plan.placements) == 3
    assert sv["baseline_unplaced"] == 1 and sv["jobs_compared"] == 2


def test_a_run_ending_inside_its_last_slot_meets_a_tight_deadline() -> None:
    # 3.5 h of work (4 slots reserved) with 3.9 h to the deadline: feasible, and planned
    j = job(1, hours=3.5, deadline=NOW + timedelta(hours=3, minutes=54))
    run = plan_jobs([j], SITE, carbon, now=NOW, time_limit=5)
    (p,) = run.plan.placements
    assert p.start == NOW
    assert p.end == NOW + timedelta(hours=3.5)  # when the run ends, not its last reserved slot
    assert p.end <= j.deadline
