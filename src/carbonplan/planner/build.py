"""Build an `Instance` from the queue, the site and carbon signals: the planner's only door to
domain objects.

Time: slots are aligned to multiples of the slot length (whole hours for 1 h slots), so plans made
a few minutes apart share one grid and announced start times do not drift. Slot 0 is the one that
contains `now`; a job placed there starts at `now`, the others at their slot's start. A job may use
slots from ceil((not_before - t0) / slot) and must leave by floor((deadline - now) / slot): counting
the deadline from `now` keeps every placement safe, a slot-0 start included, at the cost of at most
the part of slot 0 already gone. The horizon reaches the latest deadline, capped (7 days).
Units: whole-GPU pools count GPUs; MIG pools count compute slices (instances x slices of the
pool's profile), with prices and embodied carbon per slice. Work is the job's remaining work
(`hours - done_h`, reference-GPU hours) scaled to each pool by `eligibility.pool_options`.
Frozen jobs (running, or starting inside the freeze window) keep their pool and start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from carbonplan import eligibility
from carbonplan.domain import Job, Market, Placement, Site
from carbonplan.energy.formulas import MIG_SLICES_PER_GPU
from carbonplan.planner.instance import ON_DEMAND, OWNED, SPOT, Instance

MARKET_CODE = {Market.ON_DEMAND: ON_DEMAND, Market.SPOT: SPOT, Market.OWNED: OWNED}
DEFAULT_HORIZON_H = 7 * 24.0
UNPLANNED_FACTOR = 10.0      # an unplanned job costs 10x its most expensive way to run, plus:
UNPLANNED_FLOOR_USD = 100.0
DEFAULT_MOVE_PENALTY_USD = 0.5

# carbon(zones, t0, n_slots, slot_h) -> (gCO2e/kWh array (zones, n_slots), provenance per zone)
CarbonSource = Callable[[Sequence[str], datetime, int, float], tuple[np.ndarray, dict]]


@dataclass(frozen=True)
class Frozen:
    """A job whose placement a re-plan must keep: pool name and start time."""

    pool: str
    start: datetime


@dataclass
class BuildResult:
    inst: Instance
    jobs: list[Job]                        # in instance order
    pools: list[str]                       # pool names in instance order
    work_h: np.ndarray                     # float (J, P): hours the run takes on each pool
    skipped: dict[int, str] = field(default_factory=dict)  # job id -> why it is not in inst


def slot_floor(now: datetime, slot_h: float) -> datetime:
    """The start of the slot containing `now`, on the grid of multiples of the slot length."""
    step = round(slot_h * 3600)
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step, UTC)


def slot_start(t0: datetime, slot: int, slot_h: float, now: datetime) -> datetime:
    """When a placement in `slot` starts: the slot's start, or `now` in slot 0."""
    return max(now, t0 + timedelta(hours=slot * slot_h))


def _slots(delta: timedelta, slot_h: float) -> float:
    return delta.total_seconds() / 3600.0 / slot_h


def build_instance(jobs: Sequence[Job], site: Site, carbon: CarbonSource, *,
                   now: datetime, slot_h: float = 1.0, horizon_h: float = DEFAULT_HORIZON_H,
                   frozen: dict[int, Frozen] | None = None,
                   previous: dict[int, Placement] | None = None,
                   move_penalty_usd: float = DEFAULT_MOVE_PENALTY_USD,
                   refused: dict[int, dict[str, str]] | None = None) -> BuildResult:
    """Arrays for `jobs` on `site`, slot 0 being the slot that contains `now`.

    Args:
        jobs: jobs to plan (active; frozen ones included).
        site: regions, pools, accelerators, carbon price and budget.
        carbon: source of carbon intensity per zone and slot.
        now: planning time (aware).
        slot_h: slot length in hours.
        horizon_h: cap on the horizon.
        frozen: jobs that must keep their pool and start (running, or inside the freeze window).
        previous: announced placements; moving one costs `move_penalty_usd`.
        refused: per job, pools its executor refused to take it to for good ({pool: why}):
            not offered to it again (a frozen job keeps its pool).
    """
    frozen = frozen or {}
    refused = refused or {}
    previous = previous or {}
    t0 = slot_floor(now, slot_h)
    pools = list(site.pools)
    pool_index = {p.name: i for i, p in enumerate(pools)}
    region_names = list(site.regions)
    region_index = {r: i for i, r in enumerate(region_names)}

    # jobs and their options; jobs that fit nowhere are reported, not planned
    kept: list[Job] = []
    options: list[list[eligibility.PoolOption]] = []
    skipped: dict[int, str] = {}
    for job in jobs:
        opts = eligibility.pool_options(job, site)
        if job.id in frozen and frozen[job.id].pool not in pool_index:
            skipped[job.id] = f"frozen in unknown pool {frozen[job.id].pool}"
            continue
        if not opts and job.id not in frozen:
            skipped[job.id] = eligibility.explain_no_pool(job, site).reason
            continue
        no = refused.get(job.id)
        if no and job.id not in frozen:
            kept_opts = [o for o in opts if o.pool.name not in no]
            if not kept_opts:
                skipped[job.id] = "the executor refused every pool it fits: " + "; ".join(
                    f"{pool}: {why}" for pool, why in sorted(no.items()))
                continue
            opts = kept_opts
        kept.append(job)
        options.append(opts)

    latest = max((_slots(j.deadline - now, slot_h) for j in kept), default=1.0)
    # one slot beyond the latest whole-slot deadline: a run that ends inside its last reserved slot
    # may reserve that slot (see deadline_pool below)
    T = max(1, min(math.floor(latest + 1e-9) + 1, math.floor(horizon_h / slot_h + 1e-9)))
    J, P, S = len(kept), len(pools), len(region_names)

    eligible = np.zeros((J, P), dtype=bool)
    units = np.zeros((J, P))
    duration = np.ones((J, P), dtype=np.int32)
    work_slots = np.ones((J, P))
    power_kw = np.zeros((J, P))
    for j, (job, opts) in enumerate(zip(kept, options, strict=True)):
        share = job.remaining_h / job.hours if job.hours > 0 else 1.0
        for o in opts:
            p = pool_index[o.pool.name]
            eligible[j, p] = True
            units[j, p] = o.units
            work_slots[j, p] = o.work_h * share / slot_h
            duration[j, p] = max(1, math.ceil(work_slots[j, p] - 1e-9))
            power_kw[j, p] = o.power_w / 1000.0

    # pools: capacity in units (GPUs or slices), prices per unit-hour, zone carbon intensity
    capacity = np.zeros((P, T))
    price = np.zeros((P, T))
    energy_price = np.zeros((P, T))
    market = np.zeros(P, dtype=np.int8)
    site_idx = np.zeros(P, dtype=np.int32)
    pue = np.ones(P)
    eviction = np.zeros(P)
    embodied = np.zeros(P)
    zones = sorted({site.regions[p.region].zone for p in pools})
    ci_by_zone, provenance = carbon(zones, t0, T, slot_h)
    ci_by_zone = np.asarray(ci_by_zone, dtype=float).reshape(len(zones), T)
    zone_row = {z: i for i, z in enumerate(zones)}
    ci = np.zeros((P, T))
    for p, pool in enumerate(pools):
        acc = site.accelerators[pool.accelerator]
        region = site.regions[pool.region]
        slices = acc.mig_profiles[pool.mig].slices if pool.mig else 1
        per_unit = MIG_SLICES_PER_GPU if pool.mig else 1  # MIG units are slices of 1/7 GPU
        capacity[p] = pool.capacity * slices
        price[p] = pool.price_usd_per_unit_h / slices
        if pool.market == Market.OWNED:
            energy_price[p] = region.energy_price_usd_per_kwh
        market[p] = MARKET_CODE[pool.market]
        site_idx[p] = region_index[pool.region]
        pue[p] = region.pue
        eviction[p] = pool.eviction_rate_per_h if pool.market == Market.SPOT else 0.0
        embodied[p] = acc.embodied_kg / site.embodied_lifetime_h / per_unit
        ci[p] = ci_by_zone[zone_row[region.zone]]
    power_cap = np.full((S, T), np.inf)
    for r, name in enumerate(region_names):
        cap = site.regions[name].power_cap_kw
        if cap is not None:
            power_cap[r] = cap

    release = np.zeros(J, dtype=np.int32)
    deadline = np.zeros(J, dtype=np.int32)
    pausable = np.zeros(J, dtype=bool)
    resume = np.zeros(J, dtype=np.int32)
    ckpt_every = np.zeros(J)
    ckpt_cost = np.zeros(J)
    home = np.full(J, -1, dtype=np.int32)
    penalty = np.zeros(J)
    fixed_pool = np.full(J, -1, dtype=np.int32)
    fixed_start = np.full(J, -1, dtype=np.int32)
    prev_pool = np.full(J, -1, dtype=np.int32)
    prev_start = np.full(J, -1, dtype=np.int32)
    move = np.zeros(J)
    cp = site.carbon_price_usd_per_t
    mid_slot = now - t0 > timedelta(seconds=1)
    deadline_pool = np.zeros((J, P), dtype=np.int32)
    start_offset = np.zeros(J)  # a frozen run's start inside its first slot, in slots
    spot = market == SPOT
    for j, job in enumerate(kept):
        if job.not_before is not None and job.not_before > t0:
            release[j] = min(T, math.ceil(_slots(job.not_before - t0, slot_h) - 1e-9))
        window = _slots(job.deadline - now, slot_h)
        deadline[j] = min(T, max(0, math.floor(window + 1e-9)))
        # on pool p the run ends `spare` slots before its last reserved slot does; spot pools
        # keep the whole-slot deadline (their safety margin is measured on the fallback pool)
        spare = np.where(eligible[j] & ~spot, duration[j] - work_slots[j], 0.0)
        deadline_pool[j] = np.clip(np.floor(window + np.maximum(spare, 0.0) + 1e-9), 0, T)
        deadline[j] = int(deadline_pool[j].max())
        # a start in a slot already under way would spill into the slot after the run; only a
        # job that cannot wait for the next boundary does that
        el = np.flatnonzero(eligible[j])
        if mid_slot and release[j] == 0 and el.size and \
                (deadline_pool[j, el] - 1 >= duration[j, el]).any():
            release[j] = 1
        pausable[j] = job.pausable
        ckpt_every[j] = job.checkpoint_every_h or 0.0
        ckpt_cost[j] = job.checkpoint_cost_h
        resume[j] = math.ceil(job.checkpoint_cost_h / slot_h - 1e-9) if job.pausable else 0
        home[j] = _home_pool(job, site, options[j], pool_index)
        # penalty: 10x the dearest way to run it (rental + energy + carbon at the zone's worst)
        el = np.flatnonzero(eligible[j])
        if el.size:
            hours = duration[j, el] * slot_h
            kwh = power_kw[j, el] * pue[el] * hours
            worst = (units[j, el] * price[el].max(axis=1) * hours
                     + kwh * energy_price[el].max(axis=1)
                     + kwh * ci[el].max(axis=1) / 1e6 * cp)
            penalty[j] = UNPLANNED_FACTOR * float(worst.max()) + UNPLANNED_FLOOR_USD
        else:
            penalty[j] = UNPLANNED_FLOOR_USD
        if job.id in frozen:
            f = frozen[job.id]
            p = pool_index[f.pool]
            at = _slots(f.start - t0, slot_h)
            fixed_pool[j] = p
            fixed_start[j] = math.floor(at + 1e-9)
            if not eligible[j, p]:  # e.g. a discovered job running where we would not put it
                eligible[j, p] = True
                units[j, p] = units[j].max() or 1.0
                work_slots[j, p] = job.remaining_h / slot_h
                duration[j, p] = max(1, math.ceil(work_slots[j, p] - 1e-9))
                power_kw[j, p] = power_kw[j].max()
            # a start inside a slot occupies the part of the slot after its last whole one too
            offset = at - fixed_start[j]
            if offset > 1e-6:
                duration[j, p] = math.ceil(offset + duration[j, p] - 1e-9)
                start_offset[j] = offset
        if job.id in previous and previous[job.id].pool in pool_index and eligible[
                j, pool_index[previous[job.id].pool]]:  # (not a pool that refused the job)
            prev = previous[job.id]
            prev_pool[j] = pool_index[prev.pool]
            prev_start[j] = round(_slots(prev.start - t0, slot_h))
            move[j] = move_penalty_usd

    # a run ends inside its last reserved slot when its work is not a whole number of slots
    # (a frozen run that started mid-slot is shifted by its offset into the first, where it is
    # charged from its start on: start_offset)
    final_share = np.where(eligible, np.clip(work_slots + start_offset[:, None] - (duration - 1),
                                              1e-6, 1.0), 1.0)
    inst = Instance(
        t0=t0, slot_h=slot_h, pool_names=tuple(p.name for p in pools), market=market,
        site=site_idx, pue=pue, eviction_rate_per_h=eviction, embodied_kg_per_unit_h=embodied,
        capacity=capacity, price_usd_per_unit_h=price, energy_price_usd_per_kwh=energy_price,
        ci_g_per_kwh=ci, site_names=tuple(region_names), power_cap_kw=power_cap,
        job_ids=np.array([j.id for j in kept], dtype=np.int64), eligible=eligible, units=units,
        duration_slots=duration, power_kw=power_kw, release=release, deadline=deadline,
        deadline_pool=deadline_pool,
        pausable=pausable, resume_slots=resume, checkpoint_interval_h=ckpt_every,
        checkpoint_cost_h=ckpt_cost, home_pool=home, unplanned_penalty_usd=penalty,
        carbon_price_usd_per_t=cp, final_share=final_share, start_offset=start_offset,
        carbon_budget_t=site.carbon_budget_t if site.carbon_budget_t else float("inf"),
        fixed_pool=fixed_pool, fixed_start=fixed_start, prev_pool=prev_pool,
        prev_start=prev_start, move_penalty_usd=move,
        meta={"zones": zones, "carbon": provenance},
    )
    return BuildResult(inst=inst, jobs=kept, pools=[p.name for p in pools],
                       work_h=work_slots * slot_h, skipped=skipped)


def _home_pool(job: Job, site: Site, opts: list[eligibility.PoolOption],
               pool_index: dict[str, int]) -> int:
    """The pool the job would use without carbonplan (`eligibility.home_pick`), -1 if none."""
    pick = eligibility.home_pick(opts, site, job.home_region or site.home_region)
    return -1 if pick is None else pool_index[opts[pick].pool.name]
