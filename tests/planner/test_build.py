"""The instance builder maps the queue and the site onto arrays exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from carbonplan.config import parse_config
from carbonplan.domain import Job, JobState, Placement
from carbonplan.planner.build import Frozen, build_instance
from carbonplan.planner.instance import OWNED, SPOT

NOW = datetime(2026, 11, 23, 10, 17, 42, tzinfo=UTC)
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ZONE_CI = {"SE": 30.0, "DE": 400.0, "US-MIDA-PJM": 370.0}


def carbon(zones, t0, n, slot_h):
    assert t0 == T0
    rows = [np.full(n, ZONE_CI[z]) + np.arange(n) for z in zones]
    return np.array(rows), {z: "test" for z in zones}


SITE = parse_config({
    "site": {"home_region": "north", "carbon_price_usd_per_t": 200},
    "regions": [
        {"name": "north", "zone": "SE", "pue": 1.2, "power_cap_kw": 50,
         "energy_price_usd_per_kwh": 0.1},
        {"name": "central", "zone": "DE", "pue": 1.4},
    ],
    "pools": [
        {"region": "north", "accelerator": "a100-80gb", "market": "owned", "capacity": 8},
        {"region": "north", "accelerator": "a100-80gb", "mig": "3g.40gb", "market": "owned",
         "capacity": 4},
        {"region": "central", "accelerator": "h100-sxm", "market": "on_demand", "capacity": 4,
         "price_usd_per_unit_h": 4.0},
        {"region": "central", "accelerator": "h100-sxm", "market": "spot", "capacity": 4,
         "price_usd_per_unit_h": 1.5, "eviction_rate_per_h": 0.01},
    ],
}).to_site()


def job(jid: int, **kw) -> Job:
    base = dict(id=jid, state=JobState.QUEUED, name=f"j{jid}", user="u", project="p",
                command=["true"], hours=4.0, deadline=NOW + timedelta(hours=20),
                submitted_at=NOW, updated_at=NOW)
    return Job(**{**base, **kw})


def test_slots_pools_and_units() -> None:
    r = build_instance([job(1, gpus=2), job(2, mig="3g.40gb", hours=1.0)], SITE, carbon, now=NOW)
    inst = r.inst
    assert inst.t0 == T0 and inst.n_slots == 21 and inst.n_pools == 4  # +1: see deadline_pool
    assert list(inst.pool_names) == r.pools
    a100, mig, h100, h100s = range(4)
    # capacity: GPUs, MIG slices (4 instances x 3 slices)
    assert inst.capacity[:, 0].tolist() == [8, 12, 4, 4]
    # prices per unit-hour; owned pools pay energy, cloud pools do not
    assert inst.price_usd_per_unit_h[h100, 0] == 4.0 and inst.price_usd_per_unit_h[a100, 0] == 0
    assert inst.energy_price_usd_per_kwh[a100, 0] == 0.1
    assert inst.energy_price_usd_per_kwh[h100, 0] == 0
    assert inst.market.tolist() == [OWNED, OWNED, 0, SPOT]
    assert inst.eviction_rate_per_h.tolist() == [0, 0, 0, 0.01]
    assert inst.pue.tolist() == [1.2, 1.2, 1.4, 1.4]
    assert inst.ci_g_per_kwh[a100, 3] == 33 and inst.ci_g_per_kwh[h100, 0] == 400
    assert np.isinf(inst.power_cap_kw[1]).all() and (inst.power_cap_kw[0] == 50).all()
    # job 1: 2 whole GPUs on a100 (4 h) and h100 (4 / 2.2 -> 2 slots), not on the MIG pool
    assert inst.eligible[0].tolist() == [True, False, True, True]
    assert inst.units[0, a100] == 2 and inst.duration_slots[0, a100] == 4
    assert inst.duration_slots[0, h100] == 2
    # job 2: one 3g.40gb instance = 3 slices, 1 h of A100 work on 3/7 of it -> 3 slots
    assert inst.eligible[1].tolist() == [False, True, False, False]
    assert inst.units[1, mig] == 3 and inst.duration_slots[1, mig] == 3
    # embodied per unit-hour: per GPU, per slice for MIG
    emb = SITE.accelerators["a100-80gb"].embodied_kg / SITE.embodied_lifetime_h
    assert inst.embodied_kg_per_unit_h[a100] == pytest.approx(emb)
    assert inst.embodied_kg_per_unit_h[mig] == pytest.approx(emb / 7)
    assert inst.home_pool.tolist() == [a100, mig]
    assert (inst.unplanned_penalty_usd > 100).all()
    assert inst.carbon_price_usd_per_t == 200


def test_windows_round_inwards_and_remaining_work_counts() -> None:
    # now = 10:17:42, grid on whole hours; not before 10:47 -> slot 1 (11:00)
    j = job(1, not_before=NOW + timedelta(minutes=30), deadline=NOW + timedelta(hours=9,
                                                                                minutes=59),
            done_h=3.0)
    inst = build_instance([j], SITE, carbon, now=NOW).inst
    assert inst.t0 == T0
    assert inst.release[0] == 1 and inst.n_slots == 10
    assert inst.duration_slots[0, 0] == 1  # 1 h of 4 left
    # 9.98 h to the deadline: the A100 run fills whole slots (9 usable); the H100 run (0.45 h)
    # ends inside its slot, so slot 9 is usable there; spot keeps the whole-slot deadline
    assert inst.deadline_pool[0].tolist() == [9, 9, 10, 9]  # (pool 1, MIG, is not eligible)
    assert inst.deadline[0] == 10


def test_deadlines_counted_from_now_keep_a_slot_0_start_safe() -> None:
    # 2 h of work, deadline 2 h 30 from now: slot 0 starts now (10:17) and ends 12:17 <= 12:47;
    # from t0 the grid would also allow a start at 11:00 ending 13:00 > 12:47: it must not
    j = job(1, hours=2.0, deadline=NOW + timedelta(hours=2, minutes=30))
    inst = build_instance([j], SITE, carbon, now=NOW).inst
    assert inst.deadline[0] == 2  # only slots 0 and 1: a start in slot 0 only
    assert inst.duration_slots[0, 0] == 2


def test_grids_of_plans_minutes_apart_agree() -> None:
    a = build_instance([job(1)], SITE, carbon, now=NOW).inst
    later = NOW + timedelta(minutes=25)
    b = build_instance([job(1)], SITE, lambda z, t0, n, s: carbon(z, T0, n, s), now=later).inst
    assert a.t0 == b.t0 == T0


def test_horizon_cap_and_half_hour_slots() -> None:
    inst = build_instance([job(1, deadline=NOW + timedelta(days=30))], SITE,
                          lambda z, t0, n, s: carbon(z, T0, n, s), now=NOW, slot_h=0.5).inst
    assert inst.n_slots == 7 * 48 and inst.deadline[0] == 7 * 48  # capped at the horizon
    assert inst.duration_slots[0, 0] == 8


def test_frozen_and_announced_jobs() -> None:
    running = job(1, state=JobState.RUNNING)
    announced = job(2)
    prev = {2: Placement(job_id=2, pool="central/h100-sxm/spot", start=T0 + timedelta(hours=5),
                         end=T0 + timedelta(hours=7), units=1, energy_kwh=1, kg_co2e=1,
                         cost_usd=1)}
    frozen = {1: Frozen(pool="north/a100-80gb/owned", start=T0 - timedelta(hours=2))}
    inst = build_instance([running, announced], SITE, carbon, now=NOW, frozen=frozen,
                          previous=prev, move_penalty_usd=3.0).inst
    assert inst.fixed_pool.tolist() == [0, -1] and inst.fixed_start.tolist() == [-2, -1]
    assert inst.prev_pool.tolist() == [-1, 3] and inst.prev_start.tolist() == [-1, 5]
    assert inst.move_penalty_usd.tolist() == [0.0, 3.0]


def test_pools_refused_by_the_executor_are_left_out() -> None:
    spot = "central/h100-sxm/spot"
    prev = {j: Placement(job_id=j, pool=spot, start=T0 + timedelta(hours=5),
                         end=T0 + timedelta(hours=7), units=1, energy_kwh=1, kg_co2e=1,
                         cost_usd=1) for j in (1, 2)}
    refused = {1: {spot: "one way"}, 2: {spot: "one way"},
               3: {p.name: "no cluster" for p in SITE.pools}}
    r = build_instance([job(1), job(2, state=JobState.RUNNING), job(3)], SITE, carbon, now=NOW,
                       frozen={2: Frozen(pool=spot, start=T0)}, previous=prev,
                       move_penalty_usd=3.0, refused=refused)
    inst = r.inst
    assert inst.job_ids.tolist() == [1, 2]
    assert inst.eligible[0].tolist() == [True, False, True, False]
    assert inst.prev_pool[0] == -1 and inst.move_penalty_usd[0] == 0.0  # moving off is free
    assert inst.fixed_pool[1] == 3 and inst.eligible[1, 3]  # a frozen job keeps its pool
    assert r.skipped[3].startswith("the executor refused every pool it fits: ")
    assert "central/h100-sxm/on_demand: no cluster" in r.skipped[3]


def test_jobs_that_fit_nowhere_are_reported() -> None:
    r = build_instance([job(1, gpu_types=["t4"]), job(2)], SITE, carbon, now=NOW)
    assert r.skipped.keys() == {1} and "no pool offers t4" in r.skipped[1]
    assert r.inst.job_ids.tolist() == [2]


def test_no_spot_and_region_filters() -> None:
    inst = build_instance([job(1, spot=False, regions=["central"])], SITE, carbon, now=NOW).inst
    assert inst.eligible[0].tolist() == [False, False, True, False]
    assert inst.home_pool[0] == 2  # not at home (north): the cheapest allowed non-spot pool


def test_mid_slot_only_jobs_that_cannot_wait_start_now() -> None:
    # now is 10:17, slot 0 is 10:00-11:00: a relaxed job waits for 11:00, a tight one starts now
    relaxed = job(1, hours=2.0, deadline=NOW + timedelta(hours=12))
    tight = job(2, hours=2.0, gpu_types=["a100-80gb"],
                deadline=NOW + timedelta(hours=2, minutes=30))  # 2 slots on A100 from now only
    inst = build_instance([relaxed, tight], SITE, carbon, now=NOW).inst
    assert inst.release.tolist() == [1, 0]


def test_a_job_frozen_mid_slot_holds_the_partial_slot_at_its_end() -> None:
    running = job(1, state=JobState.RUNNING, hours=2.0)
    started = T0 + timedelta(minutes=30)  # mid-slot: it runs 10:30-12:30, i.e. slots 0, 1, 2
    inst = build_instance([running], SITE, carbon, now=NOW,
                          frozen={1: Frozen(pool="north/a100-80gb/owned", start=started)}).inst
    assert inst.fixed_start[0] == 0 and inst.duration_slots[0, 0] == 3
    # it works half of slot 2 (from 12:00 to 12:30)
    assert inst.final_share[0, 0] == pytest.approx(0.5)
    # and half of slot 0 (from 10:30): it is charged for the 2 h it works, not 2.5
    assert inst.start_offset[0] == pytest.approx(0.5)
    from carbonplan.planner.prepare import frozen_schedule, prepare, schedule_costs

    prep = prepare(inst)
    c = schedule_costs(inst, prep.cc, frozen_schedule(inst))
    kw = inst.power_kw[0, 0] * inst.pue[0]
    assert c.kwh[0] == pytest.approx(2.0 * kw)
    ci = inst.ci_g_per_kwh[0]
    assert c.kg_op[0] == pytest.approx(kw * (0.5 * ci[0] + ci[1] + 0.5 * ci[2]) / 1000)
    assert prep.frozen_cost == pytest.approx(c.objective[0])
    # another start of the same job on the same pool is not the frozen run: charged whole
    from carbonplan.planner.columns import contiguous_slots, price_columns

    indptr, slots = contiguous_slots(np.array([1]), np.array([3]))
    other = price_columns(inst, prep.cc, np.array([0]), np.array([0]), indptr, slots)
    assert other.kwh[0] == pytest.approx(2.5 * kw)


def test_a_run_is_charged_for_the_part_of_its_last_slot_it_works() -> None:
    from carbonplan.planner.columns import contiguous_slots, price_columns
    from carbonplan.planner.prepare import prepare

    # 5 minutes on the A100 (1-h slots) and 4 h / 2.2 = 1.82 h on the H100
    inst = build_instance([job(1, hours=5 / 60), job(2)], SITE, carbon, now=NOW).inst
    a100, h100 = 0, 2
    assert inst.duration_slots[0, a100] == 1 and inst.duration_slots[1, h100] == 2
    assert inst.final_share[0, a100] == pytest.approx(5 / 60)
    assert inst.final_share[1, h100] == pytest.approx(4 / 2.2 - 1)
    cc = prepare(inst).cc
    indptr, slots = contiguous_slots(np.array([1, 1]), np.array([1, 2]))
    c = price_columns(inst, cc, np.array([0, 1]), np.array([a100, h100]), indptr, slots)
    kw = inst.power_kw[[0, 1], [a100, h100]] * inst.pue[[a100, h100]]
    assert c.kwh == pytest.approx(kw * [5 / 60, 4 / 2.2])
    # the H100 is rented for the hours worked, 4 $/h, and emits at slot 1, then slot 2 for 0.82 h
    assert c.usd[1] == pytest.approx(4.0 * 4 / 2.2 * (1 + cc.rework_factor[1, h100]))
    ci = inst.ci_g_per_kwh[h100]
    assert c.kg_op[1] == pytest.approx(kw[1] * (ci[1] + (4 / 2.2 - 1) * ci[2]) / 1000)


def test_the_run_now_pool_is_the_cheapest_for_the_job_not_by_the_hour() -> None:
    """In the built-in us-east-1 the T4 is the cheapest GPU-hour but, at an eighth of the
    reference speed, the dearest way to run a job there: a user would not pick it, nor does
    the run-now baseline (its pool is also the report's counterfactual)."""
    from carbonplan import catalog, eligibility
    from carbonplan.domain import Market

    site = catalog.builtin_site(8)
    j = job(1, deadline=NOW + timedelta(days=3))
    home = [o for o in eligibility.pool_options(j, site)
            if o.pool.region == "us-east-1" and o.pool.market == Market.ON_DEMAND]
    by_hour = min(home, key=lambda o: o.pool.price_usd_per_unit_h)
    by_job = min(home, key=lambda o: eligibility.job_usd(o, site))
    assert by_hour.accelerator.name != by_job.accelerator.name
    assert eligibility.job_usd(by_job, site) < 0.7 * eligibility.job_usd(by_hour, site)
    inst = build_instance([j], site, lambda z, t0, n, s: (np.full((len(z), n), 300.0), {}),
                          now=NOW).inst
    assert inst.pool_names[inst.home_pool[0]] == by_job.pool.name
