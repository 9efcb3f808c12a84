"""Spot eviction rates learned from the interruptions a site's own runs met."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carbonplan.config import parse_config
from carbonplan.domain import JobSpec, JobState
from carbonplan.eviction_rates import Exposure, for_plan, learned, observed
from carbonplan.store import open_store

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
SPOT, OD = "r/a100-80gb/spot", "r/a100-80gb/on_demand"
SITE = parse_config({
    "site": {"home_region": "r"},
    "regions": [{"name": "r", "zone": "SE", "pue": 1.1}],
    "pools": [
        {"region": "r", "accelerator": "a100-80gb", "market": "spot", "capacity": 8,
         "price_usd_per_unit_h": 1.0, "eviction_rate_per_h": 0.01},
        {"region": "r", "accelerator": "a100-80gb", "market": "on_demand", "capacity": 8,
         "price_usd_per_unit_h": 3.0},
    ],
}).to_site()


def rate(site, name: str) -> float:
    return next(p for p in site.pools if p.name == name).eviction_rate_per_h


def test_the_posterior_mean_moves_from_the_configured_rate_to_the_measured_one() -> None:
    # no history: as configured
    same, changes = learned(SITE, {}, prior_h=200)
    assert rate(same, SPOT) == 0.01 and changes == {}
    # 5 interruptions in 100 run-hours (0.05/h measured) against 0.01/h worth 200 h
    site, changes = learned(SITE, {SPOT: Exposure(runs=9, run_h=100, interrupted=5),
                                   OD: Exposure(runs=3, run_h=50, interrupted=1)}, prior_h=200)
    assert rate(site, SPOT) == pytest.approx((0.01 * 200 + 5) / 300)
    assert changes == {SPOT: {"configured": 0.01, "learned": pytest.approx(7 / 300),
                              "interrupted": 5, "run_h": 100}}
    assert rate(site, OD) == 0.0  # only spot pools have an eviction rate
    # much history: close to what was measured; a tiny prior: nearly the measured rate
    site, _ = learned(SITE, {SPOT: Exposure(runs=900, run_h=10_000, interrupted=500)}, 200)
    assert rate(site, SPOT) == pytest.approx(0.05, rel=0.03)
    site, _ = learned(SITE, {SPOT: Exposure(runs=9, run_h=100, interrupted=5)}, 1e-6)
    assert rate(site, SPOT) == pytest.approx(0.05)
    # hours without an interruption lower it
    site, _ = learned(SITE, {SPOT: Exposure(runs=40, run_h=200, interrupted=0)}, 200)
    assert rate(site, SPOT) == pytest.approx(0.005)


R_A100, S_A100, S_MIG, R_H100 = ("r/a100-80gb/spot", "s/a100-80gb/spot",
                                  "s/a100-80gb:1g.10gb/spot", "r/h100-sxm/spot")
SIBLINGS = parse_config({
    "site": {"home_region": "r"},
    "regions": [{"name": "r", "zone": "SE", "pue": 1.1}, {"name": "s", "zone": "FR", "pue": 1.2}],
    "pools": [
        {"region": "r", "accelerator": "a100-80gb", "market": "spot", "capacity": 8,
         "price_usd_per_unit_h": 1.0, "eviction_rate_per_h": 0.01},
        {"region": "s", "accelerator": "a100-80gb", "market": "spot", "capacity": 8,
         "price_usd_per_unit_h": 1.0, "eviction_rate_per_h": 0.02},
        {"region": "s", "accelerator": "a100-80gb", "mig": "1g.10gb", "market": "spot",
         "capacity": 14, "price_usd_per_unit_h": 0.2, "eviction_rate_per_h": 0.02},
        {"region": "r", "accelerator": "h100-sxm", "market": "spot", "capacity": 8,
         "price_usd_per_unit_h": 2.0, "eviction_rate_per_h": 0.01},
        {"region": "r", "accelerator": "a100-80gb", "market": "on_demand", "capacity": 8,
         "price_usd_per_unit_h": 3.0},
    ],
}).to_site()


def test_a_pool_learns_from_the_spot_pools_of_its_gpu_elsewhere() -> None:
    # r's A100 spot met 5 interruptions in 100 h where its configured 0.01/h expected 1
    seen = {R_A100: Exposure(runs=20, run_h=100, interrupted=5)}
    site, changes = learned(SIBLINGS, seen, prior_h=200)
    # r itself: no sibling history, so the plain update
    assert rate(site, R_A100) == pytest.approx((0.01 * 200 + 5) / 300)
    assert "siblings" not in changes[R_A100]
    # s (no history of its own): its configured 0.02/h scaled by what r met against what r's
    # rate expected, shrunk with the same prior weight (0.02 x 200 = 4 interruptions)
    factor = (4 + 5) / (4 + 1)
    assert rate(site, S_A100) == pytest.approx(0.02 * factor)
    assert changes[S_A100] == {
        "configured": 0.02, "learned": pytest.approx(0.02 * factor), "interrupted": 0,
        "run_h": 0, "siblings": {"pools": 1, "interrupted": 5, "run_h": 100,
                                 "factor": pytest.approx(factor)}}
    assert rate(site, S_MIG) == pytest.approx(0.02 * factor)  # MIG slices of the same GPU
    # another GPU type, on-demand: untouched
    assert rate(site, R_H100) == 0.01 and R_H100 not in changes
    assert rate(site, "r/a100-80gb/on_demand") == 0.0


def test_a_pools_own_history_counts_once_and_quiet_siblings_lower_the_rate() -> None:
    seen = {R_A100: Exposure(runs=10, run_h=50, interrupted=2),
            S_A100: Exposure(runs=50, run_h=400, interrupted=0)}
    site, changes = learned(SIBLINGS, seen, prior_h=200)
    # r's centre from s alone (0 interruptions where 0.02 x 400 = 8 were expected), then r's
    # own 2 in 50 h on top
    centre_r = 0.01 * (2 + 0) / (2 + 8)
    assert rate(site, R_A100) == pytest.approx((centre_r * 200 + 2) / 250)
    # s's centre from r alone (2 where 0.5 were expected); s's own quiet 400 h pull it down
    centre_s = 0.02 * (4 + 2) / (4 + 0.5)
    assert rate(site, S_A100) == pytest.approx((centre_s * 200 + 0) / 600)
    assert changes[S_A100]["siblings"]["pools"] == 1
    # the MIG pool has both as siblings
    centre_m = 0.02 * (4 + 2) / (4 + 0.5 + 8)
    assert rate(site, S_MIG) == pytest.approx(centre_m)
    assert changes[S_MIG]["siblings"] == {"pools": 2, "interrupted": 2, "run_h": 450,
                                          "factor": pytest.approx(centre_m / 0.02)}
    # a huge prior keeps the configured rates; with none, a pool without history takes its
    # siblings' measured ratio
    site, _ = learned(SIBLINGS, seen, prior_h=1e9)
    assert rate(site, S_MIG) == pytest.approx(0.02, rel=1e-6)
    site, _ = learned(SIBLINGS, {R_A100: Exposure(runs=10, run_h=50, interrupted=2)}, 1e-9)
    assert rate(site, S_MIG) == pytest.approx(0.02 * 2 / 0.5, rel=1e-6)


def _run(store, job_id: int, pool: str, start: datetime, end: datetime, to: JobState,
         **updates) -> None:
    store.transition(job_id, JobState.SUBMITTED, updates={"attempt": 1, "ran_pool": pool})
    store.transition(job_id, JobState.RUNNING, updates={"started_at": start})
    store.transition(job_id, to, now=end + timedelta(minutes=1),
                     updates={"ended_at": end, **updates})


def _history(store, now: datetime = NOW) -> None:
    spec = JobSpec(name="j", user="u", project="p", command=["true"], hours=4,
                   deadline=now + timedelta(days=3))
    a, b, c, d, e = store.add_jobs([spec] * 5)
    t = now - timedelta(days=1, hours=12)
    # a: 2 h on spot, preempted; then 3 h on spot, finished -> 5 h, 1 interruption
    _run(store, a.id, SPOT, t, t + timedelta(hours=2), JobState.QUEUED)
    _run(store, a.id, SPOT, t + timedelta(hours=3), t + timedelta(hours=6), JobState.SUCCEEDED)
    # b: 1 h on spot, lost; then cancelled while queued -> 1 h, 1 interruption
    _run(store, b.id, SPOT, t, t + timedelta(hours=1), JobState.QUEUED)
    store.transition(b.id, JobState.CANCELLED)
    # c: cancelled 4 h into a spot run: exposure, not an interruption
    _run(store, c.id, SPOT, t, t + timedelta(hours=4), JobState.CANCELLED)
    # d: on demand, finished: not spot
    _run(store, d.id, OD, t, t + timedelta(hours=2), JobState.SUCCEEDED)
    # e: preempted 40 days ago: outside a 30-day window
    old = now - timedelta(days=40)
    _run(store, e.id, SPOT, old, old + timedelta(hours=1), JobState.QUEUED)


def test_observed_counts_the_window_from_the_store(store_url: str) -> None:
    store = open_store(store_url)
    try:
        _history(store)
        seen = observed(store, NOW - timedelta(days=30), NOW)
        assert (seen[SPOT].runs, seen[SPOT].interrupted) == (4, 2)
        assert seen[SPOT].run_h == pytest.approx(2 + 3 + 1 + 4)
        assert (seen[OD].runs, seen[OD].run_h, seen[OD].interrupted) == (1, 2.0, 0)
        site, changes = for_plan(SITE, store, window_h=30 * 24, prior_h=100, now=NOW)
        assert rate(site, SPOT) == pytest.approx((0.01 * 100 + 2) / (100 + 10))
        assert changes[SPOT]["interrupted"] == 2
        assert for_plan(SITE, store, window_h=None, prior_h=100, now=NOW) == (SITE, {})
        longer, _ = for_plan(SITE, store, window_h=60 * 24, prior_h=100, now=NOW)
        assert rate(longer, SPOT) == pytest.approx((0.01 * 100 + 3) / (100 + 11))
    finally:
        store.close()


CONFIG = """
[site]
home_region = "r"

[[regions]]
name = "r"
zone = "SE"
pue = 1.1

[[pools]]
region = "r"
accelerator = "a100-80gb"
market = "spot"
capacity = 8
price_usd_per_unit_h = 1.0
eviction_rate_per_h = 0.01

[[pools]]
region = "r"
accelerator = "a100-80gb"
market = "on_demand"
capacity = 8
price_usd_per_unit_h = 3.0

[carbon]
provider = "offline"

[planner]
time_limit_s = 5
"""


def test_plan_uses_and_records_the_learned_rates(cli, isolated: Path, db_path: Path) -> None:
    (isolated / "carbonplan.toml").write_text(CONFIG + 'learn_evictions = "30d"\n'
                                              'eviction_prior_h = 10\n')
    store = open_store(str(db_path))
    spec = JobSpec(name="j", user="u", project="p", command=["true"], hours=1,
                   deadline=datetime.now(UTC) + timedelta(days=3))
    (a,) = store.add_jobs([spec])
    now = datetime.now(UTC)
    for n in range(3):  # three 1-h runs on spot, each preempted
        t = now - timedelta(hours=10 - 2 * n)
        store.transition(a.id, JobState.SUBMITTED, updates={"attempt": n + 1, "ran_pool": SPOT})
        store.transition(a.id, JobState.RUNNING, updates={"started_at": t})
        store.transition(a.id, JobState.QUEUED, reason="preempted",
                         updates={"ended_at": t + timedelta(hours=1)})
    store.close()
    r = cli("plan", "--json")
    assert r.code == 0, r.err
    plan = json.loads(r.out)
    assert plan["details"]["eviction_rates"] == {SPOT: {
        "configured": 0.01, "learned": pytest.approx((0.01 * 10 + 3) / (10 + 3)),
        "interrupted": 3, "run_h": 3.0}}
    assert "learned from 3 interruption(s) in 3.0 run-hours" in cli("plan", "--dry-run").out
    # without the key the plan carries no learned rates
    (isolated / "carbonplan.toml").write_text(CONFIG)
    assert "eviction_rates" not in json.loads(cli("plan", "--json").out)["details"]


def test_plan_names_what_the_siblings_taught(cli, isolated: Path, db_path: Path) -> None:
    sibling = CONFIG.replace("[[pools]]", """[[regions]]
name = "s"
zone = "FR"
pue = 1.2

[[pools]]
region = "s"
accelerator = "a100-80gb"
market = "spot"
capacity = 8
price_usd_per_unit_h = 1.0
eviction_rate_per_h = 0.02

[[pools]]""", 1)
    (isolated / "carbonplan.toml").write_text(sibling + 'learn_evictions = "30d"\n')
    store = open_store(str(db_path))
    (a,) = store.add_jobs([JobSpec(name="j", user="u", project="p", command=["true"], hours=1,
                                   deadline=datetime.now(UTC) + timedelta(days=3))])
    t = datetime.now(UTC) - timedelta(hours=5)
    store.transition(a.id, JobState.SUBMITTED, updates={"attempt": 1, "ran_pool": SPOT})
    store.transition(a.id, JobState.RUNNING, updates={"started_at": t})
    store.transition(a.id, JobState.QUEUED, reason="preempted",
                     updates={"ended_at": t + timedelta(hours=2)})
    store.close()
    out = cli("plan", "--dry-run").out
    # 0.02/h x (0.02 x 200 + 1) / (0.02 x 200 + 0.01 x 2): r's one interruption in 2 h, where
    # its configured rate expected 0.02
    assert ("Eviction rate of s/a100-80gb/spot: 0.02488/h learned from 0 interruption(s) in 0.0 "
            "run-hours and 1 in 2.0 on 1 other pool(s) of its GPU over 30d (configured 0.02/h)."
            in " ".join(out.split()))


@pytest.mark.parametrize(("line", "field"), [
    ('learn_evictions = "soon"', "planner.learn_evictions"),
    ("eviction_prior_h = 0", "planner.eviction_prior_h"),
])
def test_bad_learning_keys(cli, isolated: Path, line: str, field: str) -> None:
    (isolated / "carbonplan.toml").write_text(CONFIG + line + "\n")
    r = cli("plan")
    assert r.code == 2 and field in r.err and len(r.err.strip().splitlines()) == 1


def test_the_daemon_plans_with_the_learned_rates(tmp_path: Path) -> None:
    from carbonplan.config import load_config
    from carbonplan.daemon import Daemon, DaemonSettings
    from carbonplan.executors.local import LocalExecutor
    from carbonplan.leadership import lease_for
    from carbonplan.signals.scripted import FunctionSignals

    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(CONFIG + 'learn_evictions = "2d"\n')
    settings = DaemonSettings.from_config(load_config(str(cfg_path)), time_limit_s=2.0)
    assert (settings.learn_evictions_h, settings.eviction_prior_h) == (48.0, 200.0)
    store = open_store(str(tmp_path / "d.db"))
    try:
        _history(store, datetime.now(UTC))  # two interruptions in 10 spot run-hours
        spec = JobSpec(name="next", user="u", project="p", command=["true"], hours=2,
                       not_before=datetime.now(UTC) + timedelta(hours=6),
                       deadline=datetime.now(UTC) + timedelta(days=2))
        store.add_jobs([spec])
        d = Daemon(store, SITE, LocalExecutor(tmp_path / "runs"),
                   FunctionSignals(lambda zone, t: 40.0), settings=settings,
                   lease=lease_for(store.engine))
        d.run_once()
        _, plan = store.get_plan()
        assert plan.details["eviction_rates"] == {SPOT: {
            "configured": 0.01, "learned": pytest.approx((0.01 * 200 + 2) / (200 + 10)),
            "interrupted": 2, "run_h": 10.0}}
    finally:
        store.close()
