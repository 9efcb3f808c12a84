"""The demo: a realistic, seeded queue on the built-in catalog (plus a small on-prem MIG cluster,
since cloud regions rent whole GPUs only), planned with the offline carbon model.

Jobs: training runs of 1-8 GPUs lasting hours to a day (some checkpointing, some pausable),
MIG-sized inference batches, and small L4/T4 jobs; deadlines from hours to days. Half the users
are at home in N. California, on a solar grid, so the carbon-aware baselines that only wait in the
home region (threshold, lowest window, Carbon-Time) have a daily dip to wait for.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from carbonplan import catalog
from carbonplan.config import SiteConfig
from carbonplan.domain import JobSpec, Market, Pool, Region, Site
from carbonplan.errors import InputError
from carbonplan.submission import check_feasible_alone

# each user's home region: where run-now and the temporal baselines run their jobs
HOME_REGIONS = {"alice": "us-east-1", "bob": "us-west-1", "chen": "us-east-1", "dana": "us-west-1"}
DEMO_CAPACITY = 8  # GPUs per cloud pool: enough pressure that where and when both matter


def demo_site() -> tuple[SiteConfig, Site]:
    cfg = SiteConfig()
    base = catalog.builtin_site(DEMO_CAPACITY)
    onprem = Region(name="onprem-lulea", provider="onprem", zone="SE", pue=1.15,
                    energy_price_usd_per_kwh=0.06, location="Lulea (demo)", continent="europe")
    mig = (Pool(region=onprem.name, accelerator="a100-80gb", mig="1g.10gb",
                market=Market.OWNED, capacity=28),
           Pool(region=onprem.name, accelerator="a100-80gb", mig="3g.40gb",
                market=Market.OWNED, capacity=8),
           Pool(region=onprem.name, accelerator="a100-80gb", market=Market.OWNED, capacity=8))
    site = base.model_copy(update={"regions": {**base.regions, onprem.name: onprem},
                                   "pools": base.pools + mig})
    return cfg, site


def demo_queue(site: Site, *, now: datetime, n: int = 40, seed: int = 7) -> list[JobSpec]:
    """`n` jobs that each fit the site alone (deadlines widened until they do)."""
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(n):
        kind = rng.choice(["train", "mig", "small"], p=[0.6, 0.25, 0.15])
        if kind == "train":
            gpus = int(rng.choice([1, 2, 4, 8], p=[0.35, 0.3, 0.25, 0.1]))
            hours = float(np.clip(rng.lognormal(np.log(5.0), 0.7), 1.0, 24.0))
            types = [["a100"], ["h100"], ["a100", "h100"], []][rng.integers(4)]
            ckpt = bool(rng.random() < 0.6)
            kw = dict(gpus=gpus, gpu_types=list(types), hours=round(hours, 1),
                      checkpoint_every_h=0.5 if ckpt else None,
                      checkpoint_cost_h=5 / 60 if ckpt else 0.0,
                      pausable=bool(ckpt and rng.random() < 0.4), spot=bool(rng.random() < 0.7),
                      name=f"train-{['bert', 'vit', 'llama-ft', 'resnet', 'whisper'][i % 5]}-{i}")
            slack_h = float(rng.uniform(6, 60))
        elif kind == "mig":
            profile = str(rng.choice(["1g.10gb", "3g.40gb"]))
            kw = dict(gpus=1, mig=profile, hours=round(float(rng.uniform(0.1, 0.6)), 2),
                      pausable=bool(rng.random() < 0.5), checkpoint_cost_h=2 / 60,
                      regions=["onprem-*"], name=f"infer-batch-{profile}-{i}")
            slack_h = float(rng.uniform(3, 24))
        else:
            kw = dict(gpus=1, gpu_types=[str(rng.choice(["l4", "t4"]))],
                      hours=round(float(rng.uniform(0.1, 0.5)), 2),
                      spot=bool(rng.random() < 0.8), name=f"embed-{i}")
            slack_h = float(rng.uniform(4, 36))
        not_before = now + timedelta(hours=float(rng.choice([0, 0, 0, 2, 6])))
        user = str(rng.choice(["alice", "bob", "chen", "dana"]))
        spec = JobSpec(user=user, project="demo",
                       command=["python", f"{kw['name'].split('-')[0]}.py"],
                       deadline=not_before + timedelta(hours=slack_h), not_before=not_before,
                       home_region=HOME_REGIONS[user], **kw)
        for _ in range(20):
            try:
                check_feasible_alone(spec, site, now=now)
                break
            except InputError:
                spec = spec.model_copy(update={"deadline": spec.deadline + timedelta(hours=6)})
        specs.append(spec)
    return specs
