"""Where a job may run: its eligible pools, with units, work hours and power in each.

Shared by submit-time validation (reject a job that fits nowhere, or cannot meet its deadline even
on the fastest eligible GPU) and by the planner's instance builder, so that both agree.

Rules (docs/model.md): a whole-GPU job runs on whole-GPU pools of the accelerators it names; a MIG
job runs on MIG pools whose profile has at least the requested compute slices and memory. Work
scales with the accelerator's speed and, for MIG, with the slice share. Spot pools only when the job
allows spot. A pool too small for the job, or a region whose power cap is below the job's facility
power, is not eligible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from carbonplan.domain import Accelerator, JobSpec, Market, Pool, Site
from carbonplan.energy.formulas import (
    MIG_SLICES_PER_GPU,
    active_power_w,
    energy_kwh,
    mig_power_w,
)
from carbonplan.errors import InputError, unknown

# Utilization assumed for a GPU's average power when the job gives no measured --watts.
DEFAULT_UTILIZATION = 0.8


@dataclass(frozen=True)
class PoolOption:
    """One pool a job can use: capacity units per slot, hours of work there, IT power."""

    pool: Pool
    accelerator: Accelerator
    units: float          # capacity units per slot: GPUs, or MIG compute slices
    work_h: float         # hours of work on this pool (job.hours scaled by speed and slices)
    power_w: float        # IT power of the whole job while it runs here

    @property
    def is_mig(self) -> bool:
        return self.pool.mig is not None


def check_names(spec: JobSpec, site: Site) -> None:
    """Unknown GPU types, MIG profiles and region patterns are input errors."""
    known_types = set(site.accelerators) | {a.family for a in site.accelerators.values()} | {"any"}
    for t in spec.gpu_types:
        if t.lower() not in known_types:
            raise InputError("--gpu-type", unknown("GPU type", t, known_types))
    accs = [site.accelerators[a] for a in site.accelerators_matching(spec.gpu_types)]
    if spec.mig is not None:
        profiles = {p for a in accs for p in a.mig_profiles}
        if spec.mig not in profiles:
            where = ", ".join(spec.gpu_types) if spec.gpu_types else "any GPU"
            raise InputError("--mig", unknown(f"MIG profile for {where}", spec.mig, profiles)
                             if profiles else f"no MIG profiles on {where}")
    for pat in spec.regions:
        if not site.regions_matching([pat]):
            raise InputError("--regions", unknown("region (pattern matches none)", pat,
                                                  site.regions))
    if spec.home_region is not None and spec.home_region not in site.regions:
        raise InputError("--home-region", unknown("region", spec.home_region, site.regions))


def pool_options(spec: JobSpec, site: Site) -> list[PoolOption]:
    """Every pool the job may use, in site order (empty when it fits nowhere)."""
    acc_ids = set(site.accelerators_matching(spec.gpu_types))
    region_ok = set(site.regions_matching(spec.regions))
    out: list[PoolOption] = []
    for pool in site.pools:
        if pool.accelerator not in acc_ids or pool.region not in region_ok:
            continue
        if pool.market == Market.SPOT and not spec.spot:
            continue
        acc = site.accelerators[pool.accelerator]
        if spec.mig is None:
            if pool.mig is not None:
                continue
            units = float(spec.gpus)
            work_h = spec.hours / acc.speed
            per_unit_w = spec.watts or active_power_w(acc.idle_w, acc.max_w, DEFAULT_UTILIZATION)
            if pool.capacity < spec.gpus:
                continue
        else:
            if pool.mig is None:
                continue
            want = acc.mig_profiles.get(spec.mig)
            have = acc.mig_profiles[pool.mig]
            if want is None or have.slices < want.slices or have.memory_gb < want.memory_gb:
                continue
            if pool.capacity < spec.gpus:
                continue
            units = float(spec.gpus * have.slices)
            work_h = spec.hours / (acc.speed * have.slices / MIG_SLICES_PER_GPU)
            per_unit_w = spec.watts or mig_power_w(acc.idle_w, acc.max_w, have.slices,
                                                   DEFAULT_UTILIZATION)
        power_w = per_unit_w * spec.gpus
        region = site.regions[pool.region]
        if region.power_cap_kw is not None and power_w / 1000 * region.pue > region.power_cap_kw:
            continue
        out.append(PoolOption(pool=pool, accelerator=acc, units=units, work_h=work_h,
                              power_w=power_w))
    return out


def run_usd(option: PoolOption, site: Site, hours: float, kwh: float) -> float:
    """What running in `option`'s pool for `hours`, drawing `kwh` at the facility, costs, as the
    planner charges it: rental (per MIG slice on MIG pools), plus energy on owned pools (cloud
    prices include it)."""
    pool = option.pool
    slices = option.accelerator.mig_profiles[pool.mig].slices if pool.mig else 1
    usd = pool.price_usd_per_unit_h / slices * option.units * hours
    if pool.market == Market.OWNED:
        usd += kwh * site.regions[pool.region].energy_price_usd_per_kwh
    return usd


def job_usd(option: PoolOption, site: Site) -> float:
    """What the whole job costs in `option`'s pool (`run_usd` for its work hours there)."""
    pue = site.regions[option.pool.region].pue
    return run_usd(option, site, option.work_h,
                   energy_kwh(1, option.power_w, option.work_h, pue))


def home_pick(options: Sequence[PoolOption], site: Site, home: str | None) -> int | None:
    """Which of a job's `options` it would use without carbonplan: not spot, in its home region
    if one is there, cheapest for this job (a GPU cheap by the hour but slow for the job is not
    what a user picks); None when all are spot. The run-now baseline's pool (planner) and the
    report's counterfactual both come from here."""
    candidates = [i for i, o in enumerate(options) if o.pool.market != Market.SPOT]
    at_home = [i for i in candidates if options[i].pool.region == home]
    return min(at_home or candidates, key=lambda i: job_usd(options[i], site), default=None)


def fastest(options: list[PoolOption]) -> PoolOption:
    return min(options, key=lambda o: o.work_h)


def explain_no_pool(spec: JobSpec, site: Site) -> InputError:
    """Why no pool fits: the most specific reason, naming the flag to change."""
    acc_ids = set(site.accelerators_matching(spec.gpu_types))
    region_ok = set(site.regions_matching(spec.regions))
    pools = [p for p in site.pools if p.accelerator in acc_ids and p.region in region_ok]
    types = ", ".join(spec.gpu_types) or "any GPU"
    regions = ", ".join(spec.regions) or "any region"
    if spec.mig is None:
        pools = [p for p in pools if p.mig is None]
    else:
        pools = [p for p in pools if p.mig is not None]
    if not pools:
        what = f"MIG {spec.mig} on {types}" if spec.mig else types
        flag = "--mig" if spec.mig else ("--gpu-type" if spec.gpu_types else "--regions")
        return InputError(flag, f"no pool offers {what} in {regions}")
    if not spec.spot and all(p.market == Market.SPOT for p in pools):
        return InputError("--no-spot", f"only spot pools offer {types} in {regions}")
    biggest = max(p.capacity for p in pools)
    if spec.gpus > biggest:
        return InputError("--gpus", f"{spec.gpus} exceeds every eligible pool (largest holds "
                                    f"{biggest})")
    return InputError("--gpus", f"the job's power exceeds the power cap of every region with "
                                f"{types} in {regions}")
