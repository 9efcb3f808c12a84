"""The demo's queue and site exercise both dimensions the planner chooses: where and when."""

from __future__ import annotations

from datetime import UTC, datetime

from carbonplan.demo import demo_queue, demo_site
from carbonplan.planning import plan_jobs
from carbonplan.signals.service import SignalService
from carbonplan.store import open_store

# 06:00 UTC is 22:00 in California (standard time): its solar dip is 13-17 hours ahead.
NOW = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


def test_waiting_in_the_home_region_saves_carbon_on_the_demo(tmp_path) -> None:
    cfg, site = demo_site()
    store = open_store(str(tmp_path / "demo.db"))
    jobs = store.add_jobs(demo_queue(site, now=NOW, n=12), actor="test")
    signals = SignalService(cfg.carbon, store)  # the demo's: the offline model
    run = plan_jobs(jobs, site, signals, now=NOW, time_limit=5,
                    baselines=("run-now", "threshold", "lowest-window", "greedy"))
    evals = run.plan.details["baselines"]
    now = evals["run-now"]
    for name in ("threshold", "lowest-window"):
        waited = evals[name]
        # the same pools (same $ and kWh), later hours: less carbon than running now
        assert waited["cost_usd"] == now["cost_usd"]
        assert waited["t_operational"] < now["t_operational"] * 0.99, name
    assert run.plan.objective <= min(e["objective"] for e in evals.values()) + 1e-6
