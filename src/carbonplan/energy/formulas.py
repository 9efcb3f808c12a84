"""Every unit conversion and emissions formula of carbonplan, in one place.

DESIGN.md "Units and formulas" is the reference; planner, reports and signals call these functions
(or their numpy equivalents with the same names) instead of writing the arithmetic again.
Imports nothing from carbonplan.
"""

from __future__ import annotations

import math

LBS_PER_MWH_TO_G_PER_KWH = 453.59237 / 1000.0
MIG_SLICES_PER_GPU = 7
HOURS_PER_YEAR = 8760.0


def energy_kwh(units: float, power_w: float, hours: float, pue: float) -> float:
    """Facility energy of `units` devices drawing `power_w` each for `hours`, with PUE."""
    return units * power_w * hours / 1000.0 * pue


def joules_to_kwh(joules: float) -> float:
    """J -> kWh (a meter's reading)."""
    return joules / 3.6e6


def emissions_kg(energy_kwh_: float, ci_g_per_kwh: float) -> float:
    """Operational emissions (kgCO2e) of an energy use at a carbon intensity in gCO2e/kWh."""
    return energy_kwh_ * ci_g_per_kwh / 1000.0


def embodied_kg(units: float, embodied_kg_per_unit: float, lifetime_h: float,
                hours: float) -> float:
    """Embodied carbon of `units` devices used for `hours` (linear amortization)."""
    return units * embodied_kg_per_unit / lifetime_h * hours


def mig_power_w(idle_w: float, tdp_w: float, slices: int, utilization: float = 1.0) -> float:
    """Power of a MIG instance of `slices` of 7: idle/7*k + (TDP-idle)*util*k/7."""
    k = slices / MIG_SLICES_PER_GPU
    return idle_w * k + (tdp_w - idle_w) * utilization * k


def active_power_w(idle_w: float, tdp_w: float, utilization: float) -> float:
    """Average power of a whole GPU at a utilization in [0, 1] (linear between idle and TDP)."""
    return idle_w + (tdp_w - idle_w) * utilization


def lbs_per_mwh_to_g_per_kwh(value: float) -> float:
    """WattTime MOER (lbs CO2 per MWh) to gCO2e per kWh."""
    return value * LBS_PER_MWH_TO_G_PER_KWH


def expected_rework_h(eviction_rate_per_h: float, duration_h: float, checkpoint_interval_h: float,
                      checkpoint_cost_h: float) -> float:
    """Expected extra hours a spot run repeats: rate * duration * (interval/2 + restore cost)."""
    return eviction_rate_per_h * duration_h * (checkpoint_interval_h / 2.0 + checkpoint_cost_h)


def checkpointed_h(run_h: float, checkpoint_every_h: float, checkpoint_cost_h: float,
                   speed: float, *, resumed: bool) -> float:
    """Reference-GPU hours an interrupted run of `run_h` wall-clock hours saved in checkpoints.

    Assumes the run first restores its last checkpoint (`checkpoint_cost_h`, when `resumed`), then
    repeats: compute `checkpoint_every_h` wall-clock hours, write a checkpoint
    (`checkpoint_cost_h`). Only completed checkpoints count. `speed` turns hours on the pool's GPU
    into reference-GPU hours (the accelerator's speed, times the slice share for MIG).
    """
    useful_h = run_h - (checkpoint_cost_h if resumed else 0.0)
    if useful_h <= 0 or checkpoint_every_h <= 0:
        return 0.0
    # + 1e-9: a checkpoint completed exactly at the end is not lost to rounding (3.3 / 1.1)
    n_checkpoints = math.floor(useful_h / (checkpoint_every_h + checkpoint_cost_h) + 1e-9)
    return n_checkpoints * checkpoint_every_h * speed


def tonnes(kg: float) -> float:
    """kg -> t."""
    return kg / 1000.0
