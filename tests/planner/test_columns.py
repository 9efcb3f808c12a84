"""columns.py: column sets, schedules and exact column costs."""

from __future__ import annotations

import numpy as np

from carbonplan.planner.columns import ColumnSet, Schedule, contiguous_slots, price_columns
from carbonplan.planner.costs import build_cost_coefficients

from .planner_helpers import tiny_instance


def test_contiguous_slots() -> None:
    indptr, slots = contiguous_slots(np.array([2, 0, 5]), np.array([3, 0, 1]))
    assert indptr.tolist() == [0, 3, 3, 4]
    assert slots.tolist() == [2, 3, 4, 5]


def test_price_columns_by_hand() -> None:
    inst = tiny_instance(2)
    cc = build_cost_coefficients(inst)
    j, p = 0, int(np.flatnonzero(inst.eligible[0])[0])
    slots = np.array([1, 2, 4], dtype=np.int32)
    c = price_columns(inst, cc, np.array([j]), np.array([p]), np.array([0, 3]), slots)
    f = 1 + cc.rework_factor[j, p]
    kwh = inst.power_kw[j, p] * inst.slot_h * inst.pue[p]
    usd = sum(inst.units[j, p] * inst.price_usd_per_unit_h[p, t] * inst.slot_h
              + kwh * inst.energy_price_usd_per_kwh[p, t] for t in slots) * f
    kg = sum(kwh * inst.ci_g_per_kwh[p, t] / 1000 for t in slots) * f
    emb = inst.units[j, p] * inst.embodied_kg_per_unit_h[p] * inst.slot_h * 3 * f
    assert np.isclose(c.usd[0], usd)
    assert np.isclose(c.kg_op[0], kg)
    assert np.isclose(c.kg_emb[0], emb)
    assert np.isclose(c.objective[0], usd + inst.carbon_price_usd_per_t * (kg + emb) / 1000)


def test_columnset_deduplicates() -> None:
    inst = tiny_instance(2)
    cc = build_cost_coefficients(inst)
    cols = ColumnSet.empty()
    ip, sl = contiguous_slots(np.array([0, 1]), np.array([2, 2]))
    a = cols.add(inst, cc, np.array([0, 0]), np.array([0, 0]), ip, sl)
    b = cols.add(inst, cc, np.array([0, 1]), np.array([0, 0]), ip, sl)
    assert a.tolist() == [0, 1]
    assert b[0] == 0 and b[1] == 2
    assert len(cols) == 3
    sub = cols.subset(np.array([2, 0]))
    assert sub.job.tolist() == [1, 0]
    assert sub.column_slots(0).tolist() == [1, 2]


def test_schedule_roundtrip_and_replace() -> None:
    inst = tiny_instance(5)
    pool = np.array([0, -1, 1])
    start = np.array([1, 0, 2])
    s = Schedule.from_starts(inst, pool, start)
    assert s.start.tolist()[0] == 1 and s.start[1] == -1
    assert s.end[0] == 1 + inst.duration_slots[0, 0]
    other = Schedule.from_starts(inst, np.array([1, 1, -1]), np.array([0, 0, 0]))
    r = s.replace(np.array([1]), other)
    assert r.pool.tolist() == [0, 1, 1]
    assert r.job_slots(0).tolist() == s.job_slots(0).tolist()
    assert r.job_slots(1).tolist() == other.job_slots(1).tolist()
    cc = build_cost_coefficients(inst)
    cols, idx = s.as_columns(inst, cc)
    back = Schedule.from_columns(inst.n_jobs, cols, idx)
    assert back.pool.tolist() == s.pool.tolist()
    assert back.slots.tolist() == s.slots.tolist()
