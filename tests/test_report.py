"""Realized and projected footprints, and the saving against run-now, checked by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carbonplan import eligibility
from carbonplan.config import parse_config
from carbonplan.domain import Attempt, Job, JobSpec, JobState
from carbonplan.energy.formulas import embodied_kg, energy_kwh
from carbonplan.report import (
    ZoneHistory,
    build_report,
    job_footprint,
    read_intensity,
    run_footprint,
)
from carbonplan.signals.scripted import FunctionSignals
from toml_sites import dirty_and_clean

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CI = {"PL": 700.0, "SE": 40.0, "FR": 60.0}

SITE_CONFIG = {
    "site": {"home_region": "dirty", "carbon_price_usd_per_t": 100},
    "regions": [
        {"name": "dirty", "zone": "PL", "pue": 1.2, "energy_price_usd_per_kwh": 0.1},
        {"name": "clean", "zone": "SE", "pue": 1.1},
        {"name": "spotty", "zone": "FR", "pue": 1.3},
    ],
    "pools": [
        {"region": "dirty", "accelerator": "a100-80gb", "market": "owned", "capacity": 8},
        {"region": "clean", "accelerator": "a100-80gb", "market": "on_demand", "capacity": 8,
         "price_usd_per_unit_h": 3.0},
        {"region": "clean", "accelerator": "a100-80gb", "mig": "3g.40gb", "market": "on_demand",
         "capacity": 4, "price_usd_per_unit_h": 1.4},
        {"region": "spotty", "accelerator": "a100-80gb", "market": "spot", "capacity": 8,
         "price_usd_per_unit_h": 1.0, "eviction_rate_per_h": 0.01},
    ],
}
SITE = parse_config(SITE_CONFIG).to_site()
A100 = SITE.accelerators["a100-80gb"]


def flat(zone: str, t: datetime) -> float:
    return CI[zone]


def job(jid: int, *, pool: str, started: datetime, hours_run: float, state=JobState.SUCCEEDED,
        submitted: datetime | None = None, **kw) -> Job:
    spec = dict(name=f"j{jid}", user="ann", project="llm", command=["true"], hours=hours_run,
                deadline=NOW + timedelta(days=2))
    spec.update(kw)
    return Job(id=jid, state=state, submitted_at=submitted or started - timedelta(hours=5),
               updated_at=NOW, ran_pool=pool, started_at=started,
               ended_at=started + timedelta(hours=hours_run), **spec)


def option(j: Job, pool: str) -> eligibility.PoolOption:
    return next(o for o in eligibility.pool_options(j, SITE) if o.pool.name == pool)


def test_footprints_price_cloud_owned_and_mig_pools() -> None:
    j = job(1, pool="clean/a100-80gb/on_demand", started=NOW, hours_run=3, gpus=2)
    cloud = option(j, "clean/a100-80gb/on_demand")
    f = run_footprint(cloud, SITE, 3.0, 40.0)
    assert f.kwh == pytest.approx(energy_kwh(1, cloud.power_w, 3.0, 1.1))
    assert f.cost_usd == pytest.approx(2 * 3.0 * 3)  # 2 GPUs x $3/GPU-h x 3 h
    assert f.kg_co2e == pytest.approx(f.kwh * 40.0 / 1000)
    assert f.embodied_kg == pytest.approx(embodied_kg(2, A100.embodied_kg,
                                                      SITE.embodied_lifetime_h, 3.0))
    owned = run_footprint(option(j, "dirty/a100-80gb/owned"), SITE, 3.0, 700.0)
    assert owned.cost_usd == pytest.approx(owned.kwh * 0.1)  # owned: energy at the region's price
    m = job(2, pool="clean/a100-80gb:3g.40gb/on_demand", started=NOW, hours_run=1, gpus=2,
            mig="3g.40gb")
    mig = run_footprint(option(m, "clean/a100-80gb:3g.40gb/on_demand"), SITE, 1.0, 40.0)
    assert mig.cost_usd == pytest.approx(2 * 1.4)  # two instances at $1.4 each
    assert mig.embodied_kg == pytest.approx(embodied_kg(6 / 7, A100.embodied_kg,
                                                        SITE.embodied_lifetime_h, 1.0))
    measured = run_footprint(cloud, SITE, 3.0, 40.0, gpu_kwh=2.0)
    assert measured.kwh == pytest.approx(2.0 * 1.1)  # the meter's GPU energy times PUE


def test_a_finished_job_against_running_at_submission_at_home() -> None:
    started = NOW - timedelta(hours=10)
    j = job(1, pool="clean/a100-80gb/on_demand", started=started, hours_run=2, gpus=4)
    fp = job_footprint(j, SITE, ZoneHistory(FunctionSignals(flat), started - timedelta(days=1),
                                            NOW))
    assert fp is not None and fp.region == "clean" and not fp.measured
    assert fp.actual == run_footprint(option(j, j.ran_pool), SITE, 2.0, 40.0)
    # run-now: at submission, in the home region, not spot, cheapest: the owned dirty pool
    assert fp.run_now_pool == "dirty/a100-80gb/owned"
    assert fp.run_now == run_footprint(option(j, "dirty/a100-80gb/owned"), SITE, 2.0, 700.0)
    assert fp.run_now.total_kg > 10 * fp.actual.total_kg
    # a last attempt that resumed from a checkpoint ran 2 of 4 h: run-now does the same 2 h
    resumed = job(2, pool="clean/a100-80gb/on_demand", started=started, hours_run=2, gpus=4,
                  hours=4.0, done_h=2.0)
    fp2 = job_footprint(resumed, SITE, ZoneHistory(FunctionSignals(flat), started -
                                                   timedelta(days=1), NOW))
    assert fp2.run_now == fp.run_now


def test_intensity_is_weighted_by_the_part_of_each_slot_a_run_covers() -> None:
    step = NOW - timedelta(hours=3)

    def fn(zone: str, t: datetime) -> float:
        return 100.0 if t < step else 300.0

    hist = ZoneHistory(FunctionSignals(fn), NOW - timedelta(days=1), NOW)
    a = step - timedelta(minutes=30)
    assert hist("SE", a, a + timedelta(minutes=90)) == pytest.approx((100 * 0.5 + 300) / 1.5)
    assert hist("SE", a, a + timedelta(minutes=20)) == pytest.approx(100.0)
    # the daemon's metric reads each run's interval on its own, weighted the same way
    once = read_intensity(FunctionSignals(fn))
    assert once("SE", a, a + timedelta(minutes=90)) == pytest.approx((100 * 0.5 + 300) / 1.5)
    assert once("SE", a, a + timedelta(minutes=20)) == pytest.approx(100.0)


def test_report_totals_groups_period_and_projected() -> None:
    t = NOW - timedelta(days=3)
    jobs = [
        job(1, pool="clean/a100-80gb/on_demand", started=t, hours_run=2, gpus=4),
        job(2, pool="dirty/a100-80gb/owned", started=t, hours_run=1, project="cv",
            gpu_kwh=0.5, state=JobState.FAILED),
        job(3, pool="spotty/a100-80gb/spot", started=t, hours_run=4, regions=["spotty"],
            project="cv"),  # spot only: nothing to compare with
        job(4, pool="clean/a100-80gb/on_demand", started=NOW - timedelta(days=40),
            hours_run=1),  # before the period
        job(5, pool="clean/a100-80gb/on_demand", started=t, hours_run=1,
            state=JobState.RUNNING),  # not finished
        job(6, pool="gone/a100-80gb/owned", started=t, hours_run=1),  # pool since removed
    ]
    rep = build_report(jobs, SITE, FunctionSignals(flat), since=NOW - timedelta(days=30),
                       until=NOW, by="project")
    hist = ZoneHistory(FunctionSignals(flat), NOW - timedelta(days=30), NOW)
    fps = {j.id: job_footprint(j, SITE, hist) for j in jobs[:3]}
    r = rep["realized"]
    assert r["jobs"] == 3 and r["measured_jobs"] == 1 and r["compared_jobs"] == 2
    assert r["unpriced_jobs"] == 1
    assert r["t_co2e"] == pytest.approx(sum(f.actual.total_kg for f in fps.values()) / 1000)
    assert r["embodied_t"] == pytest.approx(sum(f.actual.embodied_kg for f in fps.values())
                                            / 1000)
    assert r["cost_usd"] == pytest.approx(sum(f.actual.cost_usd for f in fps.values()))
    compared = [fps[1], fps[2]]
    assert fps[3].run_now is None
    assert r["run_now"]["t_co2e"] == pytest.approx(sum(f.run_now.total_kg for f in compared)
                                                   / 1000)
    assert r["saved"]["t_co2e"] == pytest.approx(
        sum(f.run_now.total_kg - f.actual.total_kg for f in compared) / 1000)
    assert r["saved"]["cost_usd"] == pytest.approx(
        sum(f.run_now.cost_usd - f.actual.cost_usd for f in compared))
    # job 2 ran at home (dirty, owned) and was metered: no saving, the same footprint both ways
    # except its measured energy
    assert fps[2].run_now_pool == fps[2].pool
    groups = {g["project"]: g for g in rep["groups"]}
    assert groups.keys() == {"llm", "cv"} and groups["cv"]["jobs"] == 2
    assert sum(g["t_co2e"] for g in groups.values()) == pytest.approx(r["t_co2e"])
    assert [row["job_id"] for row in rep["jobs"]] == [1, 2, 3]
    assert rep["projected"] is None


def attempt(jid: int, n: int, pool: str, start: datetime, hours: float, done_h: float = 0.0
            ) -> Attempt:
    return Attempt(job_id=jid, attempt=n, pool=pool, started_at=start,
                   ended_at=start + timedelta(hours=hours), end_reported=True,
                   reason="preempted", done_h=done_h)


def test_interrupted_runs_count_and_measure_each_pool() -> None:
    t = NOW - timedelta(days=2)
    spot, od = "spotty/a100-80gb/spot", "clean/a100-80gb/on_demand"
    # 3 h of work: 1.5 h on spot (1 h checkpointed), preempted, the last 2 h on demand
    resumed = job(7, pool=od, started=t + timedelta(hours=2), hours_run=2, hours=3.0,
                  done_h=1.0, submitted=t - timedelta(hours=1))
    not_running = {"started_at": None, "ended_at": None}  # cleared when it went back
    gave_up = job(8, pool=spot, started=t, hours_run=1, state=JobState.MISSED_DEADLINE
                  ).model_copy(update=not_running)
    old = job(9, pool=spot, started=t, hours_run=1, state=JobState.CANCELLED
              ).model_copy(update=not_running)
    # cancelled half an hour into its run: that run counts to the cancellation
    cancelled = job(12, pool=spot, started=NOW - timedelta(hours=1), hours_run=1,
                    state=JobState.CANCELLED).model_copy(update={
                        "ended_at": None, "updated_at": NOW - timedelta(minutes=30)})
    runs = [attempt(7, 1, spot, t, 1.5, done_h=1.0), attempt(8, 1, spot, t, 1.0),
            attempt(9, 1, spot, NOW - timedelta(days=40), 1.0),
            attempt(10, 1, spot, t, 1.0)]  # job 10 is still queued: counted when it ends
    rep = build_report([resumed, gave_up, old, cancelled], SITE, FunctionSignals(flat),
                       since=NOW - timedelta(days=30), until=NOW, attempts=runs)
    r = rep["realized"]
    opt_spot, opt_od = option(resumed, spot), option(resumed, od)
    first = run_footprint(opt_spot, SITE, 1.5, CI["FR"])
    final = run_footprint(opt_od, SITE, 2.0, CI["SE"])
    lost8 = run_footprint(option(gave_up, spot), SITE, 1.0, CI["FR"])
    lost12 = run_footprint(option(cancelled, spot), SITE, 0.5, CI["FR"])
    assert lost12.kwh > 0
    lost8 += lost12  # the two jobs that never finished, together
    assert r["jobs"] == 1 and r["compared_jobs"] == 1
    assert r["interrupted"]["runs"] == 3 and r["interrupted"]["unfinished_jobs"] == 2
    assert r["interrupted"]["kwh"] == pytest.approx(first.kwh + lost8.kwh)
    assert r["kwh"] == pytest.approx(first.kwh + final.kwh + lost8.kwh)
    assert r["t_co2e"] == pytest.approx((first.total_kg + final.total_kg + lost8.total_kg) / 1000)
    assert r["cost_usd"] == pytest.approx(first.cost_usd + final.cost_usd + lost8.cost_usd)
    # run-now: all 3 h of work at home (the dirty owned pool), from submission; the saving
    # charges carbonplan with the preempted run too
    home = option(resumed, "dirty/a100-80gb/owned")
    base = run_footprint(home, SITE, 3.0, CI["PL"])
    assert r["run_now"]["t_co2e"] == pytest.approx(base.total_kg / 1000)
    assert r["saved"]["cost_usd"] == pytest.approx(base.cost_usd - first.cost_usd
                                                   - final.cost_usd)
    assert r["saved"]["t_co2e"] == pytest.approx(
        (base.total_kg - first.total_kg - final.total_kg) / 1000)
    rows = {j["job_id"]: j for j in rep["jobs"]}
    assert rows.keys() == {7, 8, 12} and rows[8]["run_now"] is None
    assert rows[7]["interrupted_runs"] == 1
    assert rows[7]["whole"]["kwh"] == pytest.approx(first.kwh + final.kwh)
    # the spot pool: 3 h in three runs, two taken back; the cancelled run is exposure without
    # an interruption (the user ended it, not the pool); job 7 finished on demand, not spot
    (pool,) = rep["interruptions"]
    assert (pool["pool"], pool["runs"], pool["interrupted"]) == (spot, 3, 2)
    assert pool["run_h"] == pytest.approx(3.0) and pool["per_h"] == pytest.approx(2 / 3)
    assert pool["assumed_per_h"] == 0.01
    # a run that finished on spot is exposure without an interruption
    on_spot = job(11, pool=spot, started=t, hours_run=1.5)
    (pool,) = build_report([resumed, on_spot], SITE, FunctionSignals(flat),
                           since=NOW - timedelta(days=30), until=NOW,
                           attempts=runs)["interruptions"]
    assert (pool["runs"], pool["interrupted"]) == (2, 1)
    assert pool["per_h"] == pytest.approx(1 / 3.0)
    # without the attempts the same jobs count only the final run, as before
    bare = build_report([resumed, gave_up, old], SITE, FunctionSignals(flat),
                        since=NOW - timedelta(days=30), until=NOW)["realized"]
    assert bare["kwh"] == pytest.approx(final.kwh) and bare["interrupted"]["runs"] == 0


CONFIG_TOML = dirty_and_clean(capacity=8, on_demand_usd_per_h=3.0,
                              carbon='[carbon]\nprovider = "offline"\n')


def _finished_in_store(db: Path) -> None:
    from carbonplan.store import open_store

    store = open_store(str(db))
    now = datetime.now(UTC)
    spec = JobSpec(name="train", user="ann", project="llm", command=["true"], hours=2, gpus=2,
                   deadline=now + timedelta(days=1))
    a, b = store.add_jobs([spec, spec.model_copy(update={"name": "old"})])
    for j, ago in ((a, 3), (b, 24 * 40)):
        t0 = now - timedelta(hours=ago)
        store.transition(j.id, JobState.SUCCEEDED, reason="exit code 0", updates={
            "ran_pool": "clean/a100-80gb/on_demand", "started_at": t0,
            "ended_at": t0 + timedelta(hours=2), "exit_code": 0})
    store.close()


def test_the_report_command(cli, isolated: Path, db_path: Path) -> None:
    (isolated / "carbonplan.toml").write_text(CONFIG_TOML)
    _finished_in_store(db_path)
    r = cli("report", "--json", "--jobs")
    assert r.code == 0, r.err
    rep = json.loads(r.out)
    assert rep["realized"]["jobs"] == 1 and [j["name"] for j in rep["jobs"]] == ["train"]
    assert rep["realized"]["cost_usd"] == pytest.approx(2 * 3.0 * 2)
    # SE is far cleaner than PL in the offline model: moving the job saved carbon
    assert rep["realized"]["saved"]["t_co2e"] > 0
    assert rep["groups"][0]["region"] == "clean"
    r = cli("report", "--since", "60d", "--by", "user", "--json")
    assert json.loads(r.out)["realized"]["jobs"] == 2 and "jobs" not in json.loads(r.out)
    r = cli("report")
    assert r.code == 0 and "Saved against run-now" in r.out and "no plan yet" in r.out
    # projected: the latest plan, and its saving against the run-now policy
    assert cli("submit", "--gpus", "2", "--hours", "3", "--within", "2d", "--", "true").code == 0
    assert cli("plan", "--json", "--carbon-price", "50000").code == 0  # carbon over $
    proj = json.loads(cli("report", "--json").out)["projected"]
    assert proj["placed"] == 1 and proj["unplanned"] == 0 and proj["plan_id"] == 1
    assert proj["saved"]["t_co2e"] == pytest.approx(proj["run_now"]["t_co2e"] - proj["t_co2e"])
    assert proj["saved"]["t_co2e"] > 0  # the plan moves it from PL to SE
    assert "Projected, plan 1" in cli("report").out


def test_the_report_and_show_count_a_run_that_was_lost(cli, isolated: Path,
                                                       db_path: Path) -> None:
    from carbonplan.store import open_store

    (isolated / "carbonplan.toml").write_text(CONFIG_TOML)
    store = open_store(str(db_path))
    now = datetime.now(UTC)
    (j,) = store.add_jobs([JobSpec(name="again", user="ann", project="llm", command=["true"],
                                   hours=2, gpus=2, deadline=now + timedelta(days=1))])
    pool = "clean/a100-80gb/on_demand"
    for n, (start_h, end_h) in enumerate(((6, 5), (4, 2)), start=1):
        store.transition(j.id, JobState.SUBMITTED, updates={"attempt": n, "ran_pool": pool})
        store.transition(j.id, JobState.RUNNING,
                         updates={"started_at": now - timedelta(hours=start_h)})
        ended = {"ended_at": now - timedelta(hours=end_h)}
        if n == 1:  # its runner died after an hour: back to the queue with nothing saved
            store.transition(j.id, JobState.QUEUED, reason="lost: runner gone", updates=ended)
        else:
            store.transition(j.id, JobState.SUCCEEDED, updates={**ended, "exit_code": 0})
    store.close()
    rep = json.loads(cli("report", "--json", "--jobs").out)
    r = rep["realized"]
    assert r["jobs"] == 1 and r["interrupted"]["runs"] == 1
    assert r["cost_usd"] == pytest.approx((1 + 2) * 3.0 * 2)  # both runs, 2 GPUs at 3 $/h
    assert r["interrupted"]["cost_usd"] == pytest.approx(1 * 3.0 * 2)
    assert rep["interruptions"] == [{"pool": pool, "market": "on_demand", "runs": 2,
                                     "run_h": pytest.approx(3.0), "interrupted": 1,
                                     "per_h": pytest.approx(1 / 3), "assumed_per_h": 0.0}]
    out = cli("report").out
    assert "1 run(s) that did not finish" in out and "Interruptions per pool" in out
    shown = cli("show", str(j.id))
    assert shown.code == 0 and "interrupted" in shown.out and "lost: runner gone" in shown.out
    (run,) = json.loads(cli("show", str(j.id), "--json").out)["interrupted_runs"]
    assert run["attempt"] == 1 and run["pool"] == pool and run["end_reported"] is True


def test_the_report_chart(cli, isolated: Path, db_path: Path) -> None:
    pytest.importorskip("matplotlib")
    (isolated / "carbonplan.toml").write_text(CONFIG_TOML)
    _finished_in_store(db_path)
    out = isolated / "saved.png"
    r = cli("report", "--chart", str(out))
    assert r.code == 0, r.err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("args", "field"), [
    (["--by", "colour"], "--by"),
    (["--since", "yesterday"], "--since"),
    (["--since", "1d", "--until", "2020-01-01T00:00Z"], "--until"),
    (["--chart", "saved.txt"], "--chart"),
    (["--chart", "no/such/dir/x.png"], "--chart"),
])
def test_report_bad_input(cli, isolated: Path, args: list[str], field: str) -> None:
    r = cli("report", *args)
    assert r.code == 2 and field in r.err and len(r.err.strip().splitlines()) == 1
    assert not list(isolated.glob("*.png"))
