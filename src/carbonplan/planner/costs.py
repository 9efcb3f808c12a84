"""Per-slot cost and emission coefficients of an `Instance`, from the formulas module.

Every cost the planner, the baseline policies and the evaluator use is built from the arrays here,
which call `carbonplan.energy.formulas` on numpy arrays (the formulas are plain arithmetic, so they
vectorize as written). A column's cost is the sum of its slots' costs times `(1 + rework_factor)`:

    usd_slot[j, p, t]   = units * price[p, t] * slot_h + kwh_slot[j, p] * energy_price[p, t]
    kg_op_slot[j, p, t] = kwh_slot[j, p] * ci[p, t] / 1000
    kg_emb_slot[j, p]   = units * embodied_kg_per_unit_h[p] * slot_h
    objective           = usd + carbon_price * (kg_op + kg_emb) / 1000

A run's last slot counts `final_share[j, p]` of these (the run ends inside it; the capacity of
the whole slot stays reserved), and a frozen run that started inside its first slot counts that
one from `start_offset[j]` on.

Must not import domain models, the store, signals or config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from carbonplan.energy import formulas
from carbonplan.planner.instance import SPOT, Instance


@dataclass(frozen=True, eq=False)
class CostCoefficients:
    """Coefficients that turn a set of slots into $, kgCO2e and objective, per (job, pool)."""

    slot_kwh: np.ndarray          # float (J, P): facility kWh per occupied slot
    facility_kw: np.ndarray       # float (J, P): facility kW while running (IT kW x PUE)
    units: np.ndarray             # float (J, P): capacity units per occupied slot
    emb_kg_slot: np.ndarray       # float (J, P): embodied kgCO2e per occupied slot
    rework_factor: np.ndarray     # float (J, P): expected rework as a share of the run (0 off spot)
    final_share: np.ndarray       # float (J, P): share of its last slot a run is charged, (0, 1]
    usd_per_unit_slot: np.ndarray  # float (P, T): rental $ per unit per slot
    energy_usd_per_kwh: np.ndarray  # float (P, T): energy price
    kg_per_kwh: np.ndarray        # float (P, T): operational kgCO2e per facility kWh
    carbon_usd_per_kg: float      # carbon price per kg


def checkpoint_interval_eff_h(inst: Instance, duration_h: np.ndarray) -> np.ndarray:
    """Checkpoint interval used for rework and spot safety, hours, shape of `duration_h` (J, P).

    A job that never checkpoints (interval 0) loses all the work done so far on an eviction, so
    its effective interval is its whole duration on that pool. An interval longer than the run is
    capped at the run.
    """
    interval = inst.checkpoint_interval_h[:, None]
    return np.where(interval > 0, np.minimum(interval, duration_h), duration_h)


def build_cost_coefficients(inst: Instance) -> CostCoefficients:
    """Vectorized per-slot coefficients of an instance (see the module docstring)."""
    slot_h = inst.slot_h
    pue = inst.pue[None, :]
    slot_kwh = formulas.energy_kwh(1.0, inst.power_kw * 1000.0, slot_h, pue)
    facility_kw = inst.power_kw * pue
    emb = formulas.embodied_kg(inst.units, inst.embodied_kg_per_unit_h[None, :], 1.0, slot_h)
    offset = np.zeros(inst.eligible.shape)  # a frozen run's mid-slot start (start_offset)
    frozen = np.flatnonzero(inst.fixed_pool >= 0)
    offset[frozen, inst.fixed_pool[frozen]] = inst.start_offset[frozen]
    duration_h = (inst.duration_slots - 1 + inst.final_share - offset) * slot_h
    interval = checkpoint_interval_eff_h(inst, duration_h)
    rate = np.where(inst.market == SPOT, inst.eviction_rate_per_h, 0.0)[None, :]
    rework_h = formulas.expected_rework_h(rate, duration_h, interval,
                                          inst.checkpoint_cost_h[:, None])
    rework_factor = np.where(duration_h > 0, rework_h / np.maximum(duration_h, 1e-12), 0.0)
    return CostCoefficients(
        slot_kwh=np.where(inst.eligible, slot_kwh, 0.0),
        facility_kw=np.where(inst.eligible, facility_kw, 0.0),
        units=np.where(inst.eligible, inst.units, 0.0).astype(float),
        emb_kg_slot=np.where(inst.eligible, emb, 0.0),
        rework_factor=np.where(inst.eligible, rework_factor, 0.0),
        final_share=np.where(inst.eligible, inst.final_share, 1.0),
        usd_per_unit_slot=inst.price_usd_per_unit_h * slot_h,
        energy_usd_per_kwh=inst.energy_price_usd_per_kwh.astype(float),
        kg_per_kwh=formulas.emissions_kg(1.0, inst.ci_g_per_kwh.astype(float)),
        carbon_usd_per_kg=formulas.tonnes(inst.carbon_price_usd_per_t),
    )


def slot_usd(cc: CostCoefficients, jobs: np.ndarray, pools: np.ndarray,
             slots: np.ndarray) -> np.ndarray:
    """$ of one occupied slot (before rework) for aligned arrays of job, pool, slot (N,)."""
    return (cc.units[jobs, pools] * cc.usd_per_unit_slot[pools, slots]
            + cc.slot_kwh[jobs, pools] * cc.energy_usd_per_kwh[pools, slots])


def slot_kg_op(cc: CostCoefficients, jobs: np.ndarray, pools: np.ndarray,
               slots: np.ndarray) -> np.ndarray:
    """Operational kgCO2e of one occupied slot (before rework), aligned arrays (N,)."""
    return cc.slot_kwh[jobs, pools] * cc.kg_per_kwh[pools, slots]
