"""costs.py: vectorized coefficients agree with the scalar formulas module."""

from __future__ import annotations

import numpy as np

from carbonplan.energy import formulas
from carbonplan.planner.costs import build_cost_coefficients
from carbonplan.planner.instance import SPOT

from .planner_helpers import tiny_instance


def test_coefficients_match_scalar_formulas() -> None:
    inst = tiny_instance(3, n_pools=4)
    cc = build_cost_coefficients(inst)
    for j in range(inst.n_jobs):
        for p in range(inst.n_pools):
            if not inst.eligible[j, p]:
                continue
            kwh = formulas.energy_kwh(1, inst.power_kw[j, p] * 1000, inst.slot_h, inst.pue[p])
            assert np.isclose(cc.slot_kwh[j, p], kwh)
            emb = formulas.embodied_kg(inst.units[j, p], inst.embodied_kg_per_unit_h[p], 1.0,
                                       inst.slot_h)
            assert np.isclose(cc.emb_kg_slot[j, p], emb)
            dur_h = inst.duration_slots[j, p] * inst.slot_h
            interval = inst.checkpoint_interval_h[j] or dur_h
            rate = inst.eviction_rate_per_h[p] if inst.market[p] == SPOT else 0.0
            rework = formulas.expected_rework_h(rate, dur_h, min(interval, dur_h),
                                                inst.checkpoint_cost_h[j])
            assert np.isclose(cc.rework_factor[j, p] * dur_h, rework)
    assert np.isclose(cc.carbon_usd_per_kg, inst.carbon_price_usd_per_t / 1000)
    assert np.allclose(cc.kg_per_kwh, inst.ci_g_per_kwh / 1000)


def test_rework_only_on_spot() -> None:
    inst = tiny_instance(4, n_pools=4)
    cc = build_cost_coefficients(inst)
    assert np.all(cc.rework_factor[:, inst.market != SPOT] == 0)
