"""Seeded planning instances for benchmarks: synthetic, or built from public traces.

Synthetic (the calibration setting): pools = regions x {on-demand, spot}; jobs of 1/2/4/8 GPUs with
lognormal durations (mean about 4.5 h, 1-24 h), slack 2-48 h, releases over the whole horizon,
300-700 W per GPU, carbon price 100 $/t, and capacity scaled so that demand is `load` (0.7) of the
capacity over the horizon. An unplanned job costs 10x its most expensive column.

From traces (`trace_instance(data_dir, ...)`): hourly carbon intensity per zone from
`electricitymaps-api-47zones-2022`, jobs (GPUs, durations, arrival pattern) from `philly-pollux` or
`alibaba-gpu-v2023-openb`, spot discounts and interruption bands from `aws-spot-advisor-2025`.
The data are read where they lie; nothing is copied into the project.

Imports only the planner's `Instance` (and numpy / the standard library).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from carbonplan.planner.instance import ON_DEMAND, SPOT, Instance

T0 = datetime(2022, 9, 5, tzinfo=UTC)

# cloud region -> Electricity Maps zone (approximate, from the data README)
REGION_ZONES = (
    ("us-east-1", "US-MIDA-PJM"), ("us-west-2", "US-NW-PACW"), ("eu-west-1", "IE"),
    ("eu-central-1", "DE"), ("eu-north-1", "SE"), ("ap-northeast-1", "JP-TK"),
    ("ap-southeast-1", "SG"), ("us-central1", "US-MIDW-MISO"), ("europe-west1", "BE"),
    ("europe-west4", "NL"), ("europe-north1", "FI"), ("northamerica-northeast1", "CA-QC"),
    ("us-west-1", "US-CAL-CISO"), ("eu-west-2", "GB"), ("eu-west-3", "FR"),
    ("ca-central-1", "CA-ON"), ("ap-south-1", "IN-MH"), ("ap-northeast-2", "KR"),
    ("ap-southeast-2", "AUS-NSW"), ("sa-east-1", "BR-CS"), ("eu-south-1", "IT-NO"),
    ("us-east-2", "US-MIDW-MISO"), ("af-south-1", "ZA"), ("eu-central-2", "CH"),
)
# AWS interruption band index -> assumed share reclaimed per month (band mid-points)
BAND_PER_MONTH = (0.025, 0.075, 0.125, 0.175, 0.25)


@dataclass(frozen=True)
class Regions:
    """Per-region inputs of a generated instance (R regions, T slots)."""

    names: tuple[str, ...]
    ci: np.ndarray          # float (R, T): gCO2e/kWh
    od_price: np.ndarray    # float (R,): on-demand $/GPU-h
    spot_discount: np.ndarray  # float (R,): spot price = od * (1 - discount)
    eviction_per_h: np.ndarray  # float (R,)
    speed: np.ndarray       # float (R,): duration multiplier of the region's accelerator


@dataclass(frozen=True)
class Jobs:
    """Per-job inputs (J jobs)."""

    gpus: np.ndarray        # int (J,)
    hours: np.ndarray       # float (J,): duration on a speed-1 accelerator
    release_h: np.ndarray   # float (J,): hours from t0


def synthetic_regions(rng: np.random.Generator, n_regions: int, n_slots: int,
                      slot_h: float) -> Regions:
    """Regions with diurnal carbon intensity, on-demand prices and spot bands."""
    hours = np.arange(n_slots) * slot_h
    level = rng.uniform(30, 650, n_regions)
    amp = rng.uniform(0.1, 0.4, n_regions)
    phase = rng.uniform(0, 24, n_regions)
    noise = np.zeros((n_regions, n_slots))
    for t in range(1, n_slots):
        noise[:, t] = 0.85 * noise[:, t - 1] + rng.normal(0, 0.05, n_regions)
    ci = level[:, None] * (1 + amp[:, None] * np.sin(2 * np.pi * (hours[None, :] - phase[:, None])
                                                      / 24.0) + noise)
    speed = np.where(rng.random(n_regions) < 0.3, 0.6, 1.0)
    od = np.where(speed < 1, rng.uniform(5.0, 7.5, n_regions), rng.uniform(2.5, 4.0, n_regions))
    return Regions(names=tuple(f"region-{r}" for r in range(n_regions)),
                   ci=np.maximum(ci, 5.0), od_price=od,
                   spot_discount=rng.uniform(0.55, 0.75, n_regions),
                   eviction_per_h=rng.uniform(0.002, 0.03, n_regions), speed=speed)


def synthetic_jobs(rng: np.random.Generator, n_jobs: int, horizon_h: float) -> Jobs:
    """Jobs of 1/2/4/8 GPUs, lognormal durations (1-24 h), releases over the horizon."""
    gpus = rng.choice([1, 2, 4, 8], size=n_jobs, p=[0.5, 0.25, 0.15, 0.10])
    hours = np.clip(rng.lognormal(mean=1.15, sigma=0.8, size=n_jobs), 1.0, 24.0)
    release = rng.uniform(0, 1, n_jobs) * np.maximum(horizon_h - hours - 2.0, 0.0)
    return Jobs(gpus=gpus, hours=hours, release_h=release)


def assemble(rng: np.random.Generator, regions: Regions, jobs: Jobs, n_pools: int, n_slots: int,
             *, slot_h: float = 1.0, load: float = 0.7, carbon_price: float = 100.0,
             pausable_frac: float = 0.1, spot_frac: float = 0.7, power_cap_frac: float = 0.0,
             budget_frac: float | None = None, meta: dict | None = None) -> Instance:
    """Pools = regions x {on-demand, spot} (first `n_pools`), jobs with windows, capacities.

    Args:
        power_cap_frac: if > 0, each site gets a facility power cap of this share of the power its
            pools would draw at full capacity of 500 W GPUs.
        budget_frac: if given, a carbon budget of this share of the emissions of the cheapest
            column of every job.
    """
    R = len(regions.names)
    J = len(jobs.gpus)
    T = n_slots
    P = n_pools
    pool_region = np.arange(P) // 2
    market = np.where(np.arange(P) % 2 == 0, ON_DEMAND, SPOT).astype(np.int8)
    if pool_region.max() >= R:
        raise ValueError(f"{P} pools need {math.ceil(P / 2)} regions, got {R}")
    pue = rng.uniform(1.08, 1.4, R)[pool_region]
    is_spot = market == SPOT
    eviction = np.where(is_spot, regions.eviction_per_h[pool_region], 0.0)
    speed = regions.speed[pool_region]
    od = regions.od_price[pool_region]
    price = np.repeat(od[:, None], T, axis=1)
    wobble = np.cumsum(rng.normal(0, 0.02, (P, T)), axis=1)
    wobble = np.clip(wobble - wobble.mean(axis=1, keepdims=True), -0.15, 0.15)
    spot_price = od[:, None] * (1 - regions.spot_discount[pool_region][:, None]) * (1 + wobble)
    price = np.where(is_spot[:, None], spot_price, price)
    ci = regions.ci[pool_region]
    embodied = np.where(speed < 1, 0.045, 0.03)

    # jobs x pools
    n_regions_used = int(pool_region.max()) + 1
    allow_all = rng.random(J) < 0.4
    allowed = rng.random((J, n_regions_used)) < 0.5
    allowed |= allow_all[:, None]
    none = ~allowed.any(axis=1)
    allowed[none, rng.integers(0, n_regions_used, none.sum())] = True
    spot_ok = rng.random(J) < spot_frac
    eligible = allowed[:, pool_region] & (~is_spot[None, :] | spot_ok[:, None])
    work = jobs.hours[:, None] * speed[None, :] / slot_h
    duration = np.maximum(np.ceil(work - 1e-9), 1).astype(np.int32)
    final_share = np.clip(work - (duration - 1), 1e-6, 1.0)  # the run ends inside its last slot
    units = np.repeat(jobs.gpus[:, None].astype(float), P, axis=1)
    watts = rng.uniform(300, 700, J)
    power_kw = units * watts[:, None] / 1000.0 * np.where(speed < 1, 1.4, 1.0)[None, :]
    release = np.clip(np.floor(jobs.release_h / slot_h), 0, T - 1).astype(np.int32)
    slack_h = rng.uniform(2, 48, J)
    n_max = np.where(eligible, duration, 0).max(axis=1)
    deadline = np.minimum(release + n_max + np.ceil(slack_h / slot_h), T).astype(np.int32)
    # a job whose window is cut by the horizon end keeps at least its longest run
    release = np.minimum(release, np.maximum(deadline - n_max, 0)).astype(np.int32)
    pausable = rng.random(J) < pausable_frac
    ckpt = rng.random(J) < 0.6
    interval = np.where(ckpt, rng.uniform(0.5, 3.0, J), 0.0)
    ckpt_cost = np.where(ckpt, rng.uniform(0.05, 0.25, J), 0.0)
    pausable &= ckpt
    resume = np.where(pausable, np.maximum(np.ceil(ckpt_cost / slot_h), 1), 0).astype(np.int32)
    home_region = np.array([rng.choice(np.flatnonzero(a)) for a in allowed])
    home_pool = (2 * home_region).astype(np.int32)

    # capacity: demand / load over the horizon, split by pool weights; an on-demand pool holds at
    # least the largest job, a spot pool at least one GPU
    demand = float((units[:, 0] * jobs.hours / slot_h).sum())
    weight = np.where(is_spot, 0.5, 1.0)
    scale = demand / load / T / weight.sum()
    floor = np.where(is_spot, 1.0, float(units.max()))
    cap_pool = np.maximum(np.round(weight * scale), floor)
    capacity = np.repeat(cap_pool[:, None], T, axis=1)

    # unplanned penalty: 10 x the most expensive column
    kwh = power_kw * slot_h * pue[None, :]
    slot_max = (units * (price.max(axis=1) * slot_h)[None, :]
                + kwh * (ci.max(axis=1) / 1e6 * carbon_price)[None, :]
                + units * embodied[None, :] * slot_h / 1000 * carbon_price)
    col_max = np.where(eligible, slot_max * duration * 1.2, 0).max(axis=1)
    penalty = 10.0 * col_max

    sites = tuple(regions.names[r] for r in range(n_regions_used))
    if power_cap_frac > 0:
        site_kw = np.zeros(n_regions_used)
        np.add.at(site_kw, pool_region, cap_pool * 0.5 * pue)
        power_cap = np.repeat((site_kw * power_cap_frac)[:, None], T, axis=1)
    else:
        power_cap = np.full((n_regions_used, T), np.inf)
    budget = math.inf
    if budget_frac is not None:
        cheapest_t = np.where(eligible, kwh * ci.min(axis=1)[None, :] / 1e6 * duration,
                              np.inf).min(axis=1)
        budget = float(budget_frac * cheapest_t.sum())
    names = tuple(f"{regions.names[r]}/{'spot' if s else 'on-demand'}"
                  for r, s in zip(pool_region, is_spot, strict=True))
    return Instance(
        t0=T0, slot_h=slot_h, pool_names=names, market=market,
        site=pool_region.astype(np.int32), pue=pue, eviction_rate_per_h=eviction,
        embodied_kg_per_unit_h=embodied, capacity=capacity, price_usd_per_unit_h=price,
        energy_price_usd_per_kwh=np.zeros((P, T)), ci_g_per_kwh=ci, site_names=sites,
        power_cap_kw=power_cap, job_ids=np.arange(J, dtype=np.int64), eligible=eligible,
        units=units, duration_slots=duration, power_kw=power_kw, release=release,
        deadline=deadline, pausable=pausable, resume_slots=resume,
        checkpoint_interval_h=interval, checkpoint_cost_h=ckpt_cost, home_pool=home_pool,
        unplanned_penalty_usd=penalty, carbon_price_usd_per_t=carbon_price,
        carbon_budget_t=budget, final_share=final_share, meta=dict(meta or {}, load=load))


def synthetic_instance(n_jobs: int, n_pools: int, n_slots: int, *, seed: int = 0,
                       **kwargs: object) -> Instance:
    """The calibration setting (module docstring), seeded."""
    rng = np.random.default_rng(seed)
    slot_h = float(kwargs.get("slot_h", 1.0))
    regions = synthetic_regions(rng, math.ceil(n_pools / 2), n_slots, slot_h)
    jobs = synthetic_jobs(rng, n_jobs, n_slots * slot_h)
    return assemble(rng, regions, jobs, n_pools, n_slots, meta={"source": "synthetic",
                                                                "seed": seed}, **kwargs)


# -- traces ------------------------------------------------------------------------------------

def _read_zone_ci(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Hourly series of one Electricity Maps zone file: (hours since epoch (N,), gCO2e/kWh (N,)).

    Polls are de-duplicated by hour (last wins) and gaps forward-filled.
    """
    by_hour: dict[int, float] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            value = row.get("carbon_intensity_avg", "")
            if not value:
                continue
            when = datetime.fromisoformat(row["zone_datetime"].replace("Z", "+00:00"))
            by_hour[int(when.timestamp() // 3600)] = float(value)
    hours = np.array(sorted(by_hour), dtype=np.int64)
    full = np.arange(hours[0], hours[-1] + 1)
    values = np.full(full.shape, np.nan)
    values[hours - hours[0]] = [by_hour[h] for h in hours]
    for i in range(1, len(values)):
        if np.isnan(values[i]):
            values[i] = values[i - 1]
    return full, values


def trace_regions(data_dir: Path, rng: np.random.Generator, n_regions: int, n_slots: int,
                  slot_h: float) -> tuple[Regions, datetime]:
    """Regions from the 47-zone carbon traces and the AWS spot advisor (spot bands)."""
    ci_dir = data_dir / "electricitymaps-api-47zones-2022"
    series = []
    for _, zone in REGION_ZONES[:n_regions]:
        series.append(_read_zone_ci(ci_dir / f"{zone}.csv"))
    lo = max(int(h[0]) for h, _ in series)
    hi = min(int(h[-1]) for h, _ in series)
    span = int(math.ceil(n_slots * slot_h))
    start = int(rng.integers(lo, max(hi - span, lo) + 1))
    ci = np.zeros((n_regions, n_slots))
    for r, (h, v) in enumerate(series):
        hourly = v[start - h[0]: start - h[0] + span]
        idx = np.minimum((np.arange(n_slots) * slot_h).astype(int), len(hourly) - 1)
        ci[r] = hourly[idx]
    discount = rng.uniform(0.55, 0.75, n_regions)
    eviction = rng.uniform(0.002, 0.03, n_regions)
    advisor = data_dir / "aws-spot-advisor-2025" / "gpu_accel_spot_advisor_linux.csv"
    if advisor.exists():
        rows = list(csv.DictReader(advisor.open(newline="")))
        for r, (region, _) in enumerate(REGION_ZONES[:n_regions]):
            mine = [x for x in rows if x["region"] == region and x["instance_type"].startswith(
                ("p4d", "p5", "g5", "g6", "p3"))] or rows
            pick = mine[int(rng.integers(0, len(mine)))]
            discount[r] = float(pick["savings_over_ondemand_pct"]) / 100.0
            band = int(pick["interruption_bucket"])
            eviction[r] = BAND_PER_MONTH[band] / (30 * 24)
    speed = np.where(rng.random(n_regions) < 0.3, 0.6, 1.0)
    od = np.where(speed < 1, rng.uniform(5.0, 7.5, n_regions), rng.uniform(2.5, 4.0, n_regions))
    t0 = datetime.fromtimestamp(start * 3600, tz=UTC)
    return Regions(names=tuple(r for r, _ in REGION_ZONES[:n_regions]), ci=ci, od_price=od,
                   spot_discount=discount, eviction_per_h=eviction, speed=speed), t0


def trace_jobs(data_dir: Path, rng: np.random.Generator, n_jobs: int, horizon_h: float,
               source: str = "philly") -> Jobs:
    """Jobs sampled from a GPU trace: GPUs (<= 8), durations (clipped to 1-24 h), and arrival
    times of a contiguous stretch of the trace rescaled onto the horizon."""
    if source == "philly":
        path = data_dir / "philly-pollux" / "philly.csv"
        rows = [(datetime.fromisoformat(r["timestamp"]).timestamp(), float(r["duration"]),
                 int(r["num_gpus"])) for r in csv.DictReader(path.open(newline=""))]
    elif source == "alibaba":
        path = data_dir / "alibaba-gpu-v2023-openb" / "openb_pod_list_default.csv"
        rows = []
        for r in csv.DictReader(path.open(newline="")):
            try:
                gpus, created = int(r["num_gpu"]), float(r["creation_time"])
                dur = float(r["deletion_time"]) - float(r["scheduled_time"])
            except ValueError:
                continue
            if gpus >= 1 and dur > 0:
                rows.append((created, dur, gpus))
    else:
        raise ValueError(f"unknown job trace {source!r}; valid: philly, alibaba")
    arr = np.array([r for r in rows if 1 <= r[2] <= 8 and r[1] >= 60], dtype=float)
    arr = arr[np.argsort(arr[:, 0])]
    first = int(rng.integers(0, max(len(arr) - n_jobs, 1)))
    pick = arr[first:first + n_jobs]
    if len(pick) < n_jobs:
        pick = arr[rng.integers(0, len(arr), n_jobs)]
        pick = pick[np.argsort(pick[:, 0])]
    gpus = np.array([min(8, 2 ** int(math.ceil(math.log2(g)))) for g in pick[:, 2]])
    hours = np.clip(pick[:, 1] / 3600.0, 1.0, 24.0)
    arrival = pick[:, 0] - pick[0, 0]
    span = max(float(arrival.max()), 1.0)
    release = arrival / span * np.maximum(horizon_h - hours - 2.0, 0.0)
    return Jobs(gpus=gpus, hours=hours, release_h=release)


def trace_instance(data_dir: str | Path, n_jobs: int, n_pools: int, n_slots: int, *,
                   seed: int = 0, jobs_from: str = "philly", **kwargs: object) -> Instance:
    """An instance from the traces under `data_dir` (see the module docstring)."""
    data_dir = Path(data_dir)
    rng = np.random.default_rng(seed)
    slot_h = float(kwargs.get("slot_h", 1.0))
    regions, t0 = trace_regions(data_dir, rng, math.ceil(n_pools / 2), n_slots, slot_h)
    jobs = trace_jobs(data_dir, rng, n_jobs, n_slots * slot_h, jobs_from)
    inst = assemble(rng, regions, jobs, n_pools, n_slots,
                    meta={"source": f"traces:{jobs_from}", "seed": seed,
                          "zones": [z for _, z in REGION_ZONES[:len(regions.names)]]},
                    **kwargs)
    object.__setattr__(inst, "t0", t0)
    return inst


def make_instance(n_jobs: int, n_pools: int, n_slots: int, *, seed: int = 0,
                  data_dir: str | Path | None = None, **kwargs: object) -> Instance:
    """Trace-based when `data_dir` holds the traces, synthetic otherwise."""
    if data_dir is not None and (Path(data_dir) / "electricitymaps-api-47zones-2022").is_dir():
        return trace_instance(data_dir, n_jobs, n_pools, n_slots, seed=seed, **kwargs)
    return synthetic_instance(n_jobs, n_pools, n_slots, seed=seed, **kwargs)


def describe(inst: Instance) -> str:
    """One line: sizes and utilization."""
    hours = (inst.units * inst.duration_slots)[np.arange(inst.n_jobs), inst.home_pool].sum()
    util = hours / max(float(inst.capacity.sum()), 1.0)
    return (f"{inst.n_jobs} jobs x {inst.n_pools} pools x {inst.n_slots} slots, "
            f"utilization {util:.0%}, {int(inst.pausable.sum())} pausable")


__all__ = ["Instance", "make_instance", "synthetic_instance", "trace_instance", "describe"]
