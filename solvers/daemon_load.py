"""Daemon load benchmark: N queued jobs, a forecast that moves every cycle.

    python -m solvers.daemon_load --jobs 10000 --cycles 4 [--json out.json]

A real daemon (SQLite store, local executor, the real planner) runs `--cycles` cycles over a site of
12 regions x {on-demand, spot} A100 pools, 168 hourly slots. Every job is released at least an
hour out, so no job starts during the run: what is measured is the cycle itself (refresh, change
detection, warm re-plan, diff, the action log) at this queue size. The carbon intensity is a
seeded function of (zone, time) that shifts by a few percent every cycle, so every cycle after the
first re-plans on a forecast change. Reports per cycle: wall time, plan time, plan gap, actions,
and the peak memory of the process.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from carbonplan.config import parse_config
from carbonplan.daemon import Daemon, DaemonSettings
from carbonplan.domain import JobSpec
from carbonplan.executors.local import LocalExecutor
from carbonplan.leadership import lease_for
from carbonplan.signals.scripted import FunctionSignals
from carbonplan.store import open_store

REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "eu-north-1",
           "ap-northeast-1", "us-central1", "europe-west4", "northamerica-northeast1",
           "asia-northeast1", "westus2", "swedencentral"]


def site(capacity: int):
    pools = [{"region": r, "accelerator": "a100-80gb", "market": m, "capacity": capacity,
              "price_usd_per_unit_h": 4.0 if m == "on_demand" else 1.6,
              **({"eviction_rate_per_h": 0.002} if m == "spot" else {})}
             for r in REGIONS for m in ("on_demand", "spot")]
    return parse_config({"site": {"home_region": "us-east-1"}, "pools": pools}).to_site()


def jobs(n: int, now: datetime, seed: int) -> list[JobSpec]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        gpus = int(rng.choice([1, 2, 4, 8], p=[0.5, 0.25, 0.15, 0.1]))
        hours = float(np.clip(rng.lognormal(np.log(3.0), 0.8), 0.5, 24.0))
        release = now + timedelta(hours=float(rng.uniform(1, 140)))
        slack = float(rng.uniform(2, 48))
        out.append(JobSpec(name=f"load-{i}", user="u", project="p", command=["true"],
                           gpus=gpus, hours=round(hours, 2), not_before=release,
                           deadline=release + timedelta(hours=hours + slack),
                           checkpoint_every_h=1.0, checkpoint_cost_h=0.05))
    return out


def weather(seed: int):
    rng = np.random.default_rng(seed)
    base = {r: float(rng.uniform(30, 700)) for r in range(64)}
    state = {"shift": 0.0}

    def fn(zone: str, t: datetime) -> float:
        h = t.timestamp() / 3600.0
        b = base[hash(zone) % 64]
        return max(5.0, b * (1 + 0.3 * np.sin(2 * np.pi * h / 24 + hash(zone) % 7))
                   * (1 + state["shift"]))
    return fn, state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--cycles", type=int, default=4)
    ap.add_argument("--capacity", type=int, default=0, help="GPUs per pool [default: ~70%% load]")
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--gap", type=float, default=0.02)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    now = datetime.now(UTC)
    specs = jobs(args.jobs, now, args.seed)
    gpu_h = sum(s.gpus * s.hours for s in specs)
    capacity = args.capacity or max(8, round(gpu_h / (0.7 * 140 * 24)))
    s = site(capacity)
    fn, state = weather(args.seed)
    signals = FunctionSignals(fn)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"{tmp}/load.db")
        t = time.perf_counter()
        store.add_jobs(specs)
        insert_s = time.perf_counter() - t
        d = Daemon(store, s, LocalExecutor(Path(tmp) / "runs"), signals,
                   settings=DaemonSettings(interval_s=300, slot_h=1.0, horizon_h=168,
                                           time_limit_s=args.time_limit, rel_gap=args.gap,
                                           change_threshold=0.02, change_min_g_per_kwh=1.0),
                   lease=lease_for(store.engine))
        for c in range(args.cycles):
            state["shift"] = 0.0 if c == 0 else 0.06 * (1 if c % 2 else -1)
            t = time.perf_counter()
            rep = d.run_once()
            wall = time.perf_counter() - t
            pid, plan = store.get_plan()
            row = {"cycle": c + 1, "triggers": ",".join(rep.triggers) or "-",
                   "cycle_s": round(wall, 2),
                   "plan_s": round(plan.seconds, 2) if rep.triggers else 0.0,
                   "gap": round(plan.gap, 4), "placed": len(plan.placements),
                   "unplanned": len(plan.unplanned), "actions": rep.actions,
                   "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                         / 1024)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {"jobs": args.jobs, "pools": len(s.pools), "capacity_per_pool": capacity,
               "insert_s": round(insert_s, 2), "cycles": rows}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "cycles"}))


if __name__ == "__main__":
    main()
