"""`carbonplan simulate`: the replay is online, respects capacity and deadlines, and charges
what happened, not what was forecast."""

from __future__ import annotations

import csv
import json
import math
import tempfile
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbonplan.config import parse_config
from carbonplan.errors import InputError
from carbonplan.signals.scripted import FunctionSignals
from carbonplan.sim import POLICIES, load_trace, simulate
from carbonplan.trace_sacct import elapsed_hours, gpus_in
from toml_sites import dirty_and_clean

T0 = datetime(2026, 11, 2, tzinfo=UTC)
CSV_CARBON = """
[carbon]
provider = "csv"

[carbon.csv]
path = "history.csv"
"""
CONFIG_TOML = dirty_and_clean(capacity=4, on_demand_usd_per_h=0.05, carbon=CSV_CARBON,
                              site="carbon_price_usd_per_t = 1000")
SITE = parse_config(tomllib.loads(CONFIG_TOML)).to_site()


def write_trace(path: Path, rows: list[dict]) -> Path:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return path


def random_rows(seed: int, n: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        sub = T0 + timedelta(hours=float(rng.uniform(0, 30)))
        hours = round(float(rng.uniform(0.5, 5)), 2)
        rows.append({"submit": sub.isoformat(), "hours": hours,
                     "gpus": int(rng.choice([1, 2, 4])),
                     "deadline_h": round(hours + float(rng.uniform(1, 30)), 2),
                     "pausable": str(bool(rng.random() < 0.3)).lower(),
                     "checkpoint_every_h": 1 if rng.random() < 0.5 else "",
                     "checkpoint_cost_h": 0.1})
    return rows


def wavy(zone: str, t: datetime) -> float:
    """PL dirty, SE clean, both cleaner at night (UTC)."""
    night = 0.6 if t.hour < 6 else 1.0
    return {"PL": 700.0, "SE": 40.0}[zone] * night


SPOT_POOL = """
[[pools]]
region = "clean"
accelerator = "a100-80gb"
market = "spot"
capacity = 2
price_usd_per_unit_h = 0.02
eviction_rate_per_h = 0.4
"""
WITH_SPOT = parse_config(tomllib.loads(CONFIG_TOML.replace("[carbon]", SPOT_POOL + "\n[carbon]"))
                         ).to_site()
CAPPED = WITH_SPOT.model_copy(update={"regions": {**SITE.regions, "dirty": SITE.regions[
    "dirty"].model_copy(update={"power_cap_kw": 1.5})}})  # about 3 of its 4 GPUs at once
CAPACITY = {p.name: p.capacity for p in CAPPED.pools}


def hours_touched(a: datetime, b: datetime):
    t = a.replace(minute=0, second=0, microsecond=0)
    while t < b:
        yield t
        t += timedelta(hours=1)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(3, 25))
def test_every_policy_respects_capacity_power_submission_and_deadlines(seed: int,
                                                                       n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trace = load_trace(write_trace(Path(tmp) / "t.csv", random_rows(seed, n)), CAPPED)
    sim = simulate(trace, CAPPED, FunctionSignals(wavy), time_limit=1.0)
    jobs = {j.id: j for j in trace.jobs}
    region = {p.name: p.region for p in CAPPED.pools}
    for name, res in sim.results.items():
        assert set(res.runs) | set(res.missed) == set(jobs), name
        assert not set(res.runs) & set(res.missed)
        units: dict[tuple[str, datetime], float] = {}
        kw: dict[tuple[str, datetime], float] = {}
        runs = [(jid, run.placement) for jid, run in res.runs.items()]
        runs += [(jid, pl) for jid, pls in res.evicted.items() for pl in pls]  # cut short
        for jid, pl in runs:
            job = jobs[jid]
            # online: nothing starts before it was submitted, everything ends by its deadline
            assert pl.start >= job.submitted_at and pl.end <= job.deadline, (name, jid)
            spans = pl.segments or [(pl.start, pl.end)]
            run_kw = pl.energy_kwh / sum((b - a).total_seconds() / 3600 for a, b in spans)
            for a, b in spans:
                for t in hours_touched(a, b):
                    units[pl.pool, t] = units.get((pl.pool, t), 0.0) + pl.units
                    key = (region[pl.pool], t)
                    kw[key] = kw.get(key, 0.0) + run_kw
        assert all(v <= CAPACITY[k[0]] + 1e-9 for k, v in units.items()), name
        assert all(v <= 1.5 + 1e-6 for (r, _), v in kw.items() if r == "dirty"), (name, kw)


def test_the_planner_moves_work_to_the_clean_region(tmp_path: Path) -> None:
    rows = [{"submit": (T0 + timedelta(hours=i)).isoformat(), "hours": 2, "gpus": 1,
             "deadline_h": 12} for i in range(6)]
    trace = load_trace(write_trace(tmp_path / "t.csv", rows), SITE)
    sim = simulate(trace, SITE, FunctionSignals(wavy), policies=["carbonplan", "run-now"])
    plan, base = sim.results["carbonplan"], sim.results["run-now"]
    assert {r.placement.pool for r in plan.runs.values()} == {"clean/a100-80gb/on_demand"}
    assert {r.placement.pool for r in base.runs.values()} == {"dirty/a100-80gb/owned"}
    row = next(r for r in sim.summary()["policies"] if r["policy"] == "carbonplan")
    assert row["vs_run_now"]["jobs_compared"] == 6
    assert row["vs_run_now"]["saved_pct_co2e"] > 90  # 40 vs 700 g/kWh, PUE 1.1 vs 1.2
    assert row["max_gap"] <= 0.01


def flipped(zone: str, t: datetime) -> float:
    """Day 1 (Nov 2) clean at 00-06 UTC; day 2 clean at 12-18 UTC instead."""
    clean = range(0, 6) if t.day == 2 else range(12, 18)
    return 100.0 if t.hour in clean else 500.0


@pytest.mark.parametrize(("forecast", "hour", "ci"), [("persistence", 0, 500.0),
                                                       ("perfect", 12, 100.0)])
def test_plans_see_the_forecast_and_runs_pay_what_happened(tmp_path: Path, forecast: str,
                                                           hour: int, ci: float) -> None:
    """A 2-h job on one pool submitted on day 2 at 00:00: persistence expects day 1's clean
    night again and runs then, paying day 2's dirty night; perfect foresight waits for noon."""
    site = SITE.model_copy(update={"pools": SITE.pools[:1]})
    rows = [{"submit": "2026-11-02T00:00:00Z", "hours": 0.5, "deadline_h": 1},  # day 1 seen
            {"submit": "2026-11-03T00:00:00Z", "hours": 2, "deadline_h": 24}]
    trace = load_trace(write_trace(tmp_path / "t.csv", rows), site)
    sim = simulate(trace, site, FunctionSignals(flipped), policies=["lowest-window"],
                   forecast=forecast)
    pl = sim.results["lowest-window"].runs[3].placement
    assert pl.start == datetime(2026, 11, 3, hour, tzinfo=UTC)
    assert pl.kg_co2e == pytest.approx(pl.energy_kwh * ci / 1000)


@pytest.mark.parametrize(("row", "field"), [
    ({"submit": "yesterday", "hours": 1, "deadline_h": 5}, "trace row 2, submit"),
    ({"submit": "2026-11-02T00:00Z", "hours": -1, "deadline_h": 5}, "trace row 2, hours"),
    ({"submit": "2026-11-02T00:00Z", "hours": 1}, "trace row 2, deadline"),
    ({"submit": "2026-11-02T00:00Z", "hours": 1, "deadline_h": 5,
      "deadline": "2026-11-03T00:00Z"}, "trace row 2, deadline"),
    ({"submit": "2026-11-02T00:00Z", "hours": 1, "deadline_h": 5, "gpu_types": "tpu"},
     "trace row 2, gpu_type"),
    ({"submit": "2026-11-02T00:00Z", "hours": 1, "deadline_h": 5, "spot": "maybe"},
     "trace row 2, spot"),
    ({"submit": "2026-11-02T00:00Z", "hours": 1, "deadline_h": 5, "colour": "red"}, "TRACE"),
    ({"submit": "2026-11-02T00:00Z", "deadline_h": 5}, "TRACE"),
])
def test_bad_trace_rows_name_the_row_and_field(tmp_path: Path, row: dict, field: str) -> None:
    with pytest.raises(InputError) as exc:
        load_trace(write_trace(tmp_path / "t.csv", [row]), SITE)
    assert str(exc.value).startswith(field)


def test_a_job_the_site_cannot_run_even_alone_is_rejected_not_simulated(tmp_path: Path) -> None:
    rows = [{"submit": "2026-11-02T00:00Z", "hours": 10, "deadline_h": 2},
            {"submit": "2026-11-02T00:00Z", "hours": 1, "deadline_h": 2}]
    trace = load_trace(write_trace(tmp_path / "t.csv", rows), SITE)
    assert [j.id for j in trace.jobs] == [3] and "after submission" in trace.rejected[2]


def test_a_trace_with_nothing_to_replay_says_why(cli, isolated: Path) -> None:
    write_trace(isolated / "t.csv", [{"submit": "2026-11-02T00:00Z", "hours": 30,
                                      "deadline_h": 2}])
    r = cli("simulate", "t.csv")
    assert r.code == 0 and "No job to replay: 1 row(s) rejected (row 2: leaves 2h" in r.out
    out = json.loads(cli("simulate", "t.csv", "--json").out)
    assert out["jobs"] == 0 and out["start"] is None and "2" in out["rejected_rows"]


def test_the_simulate_command(cli, isolated: Path) -> None:
    """End to end on the CSV carbon provider (a recorded history, as a user would give)."""
    (isolated / "carbonplan.toml").write_text(CONFIG_TOML)
    with (isolated / "history.csv").open("w") as fh:
        fh.write("datetime,zone,gco2_per_kwh\n")
        for h in range(24 * 6):
            t = T0 - timedelta(days=2) + timedelta(hours=h)
            for zone in ("PL", "SE"):
                fh.write(f"{t.isoformat()},{zone},{wavy(zone, t)}\n")
    write_trace(isolated / "trace.csv", random_rows(7, 15))
    r = cli("simulate", "trace.csv", "--json", "--time-limit", "1")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert [p["policy"] for p in out["policies"]] == list(POLICIES)
    rows = {p["policy"]: p for p in out["policies"]}
    assert rows["carbonplan"]["missed"] == 0 and rows["carbonplan"]["jobs"] == 15
    assert rows["carbonplan"]["vs_run_now"]["saved_t_co2e"] > 0
    r = cli("simulate", "trace.csv", "--policy", "carbonplan", "--policy", "greedy",
            "--runs", "runs.csv")
    assert r.code == 0 and "carbonplan" in r.out and "certified gap" in r.out
    with (isolated / "runs.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 15 and {r["policy"] for r in rows} == {"carbonplan", "greedy"}
    ran = [r for r in rows if r["pool"]]
    at = datetime.fromisoformat
    assert all(at(r["start"]) >= at(r["submitted"]) and at(r["end"]) <= at(r["deadline"])
               for r in ran)
    assert all(r["missed"] for r in rows if not r["pool"])
    assert not (isolated / "carbonplan.db").exists()  # a simulation writes nothing


def test_simulate_replays_evictions_unless_told_not_to(cli, isolated: Path) -> None:
    (isolated / "carbonplan.toml").write_text(EVICTION_TOML)
    with (isolated / "history.csv").open("w") as fh:
        fh.write("datetime,zone,gco2_per_kwh\n")
        for h in range(24 * 4):
            fh.write(f"{(T0 - timedelta(days=1) + timedelta(hours=h)).isoformat()},SE,50\n")
    write_trace(isolated / "trace.csv", [
        {"submit": (T0 + timedelta(hours=i)).isoformat(), "hours": 5, "deadline_h": 40,
         "checkpoint_every_h": 1} for i in range(4)])
    args = ("simulate", "trace.csv", "--policy", "greedy", "--time-limit", "1")
    r = cli(*args, "--json", "--seed", "3", "--runs", "runs.csv")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    row = out["policies"][0]
    assert out["settings"]["evictions"] is True and out["settings"]["seed"] == 3
    with (isolated / "runs.csv").open() as fh:
        runs = list(csv.DictReader(fh))
    assert row["evictions"] == sum(int(r["evictions"]) for r in runs) > 0
    assert row["cost_usd"] == pytest.approx(sum(float(r["cost_usd"] or 0)
                                                + float(r["evicted_cost_usd"]) for r in runs))
    again = json.loads(cli(*args, "--json", "--seed", "3").out)["policies"][0]
    assert again["cost_usd"] == row["cost_usd"]        # seeded: the same draws
    off = json.loads(cli(*args, "--json", "--no-evictions").out)
    assert off["settings"]["evictions"] is False and off["policies"][0]["evictions"] == 0
    table = cli(*args).out
    assert "evicted" in table and "Evicted: spot attempts cut short" in table


@pytest.mark.parametrize(("args", "field"), [
    (["missing.csv"], "TRACE"),
    (["trace.csv", "--policy", "fifo"], "--policy"),
    (["trace.csv", "--forecast", "psychic"], "--forecast"),
    (["trace.csv", "--replan-h", "0.5"], "--replan-h"),
    (["trace.csv", "--since", "2026-11-03T00:00Z", "--until", "2026-11-02T00:00Z"], "--until"),
    (["trace.csv", "--solver", "gurobi-ish"], "--solver"),
    (["trace.csv", "--carbon-price", "-1"], "--carbon-price"),
    (["trace.csv", "--runs", "runs.txt"], "--runs"),
    (["trace.csv", "--runs", "no/such/dir/runs.csv"], "--runs"),
    (["trace.csv", "--seed", "x"], "--seed"),
    (["trace.csv", "--eviction-rate", "-1"], "--eviction-rate"),
    (["trace.csv", "--eviction-rate", "0.1", "--no-evictions"], "--eviction-rate"),
])
def test_simulate_bad_input(cli, isolated: Path, args: list[str], field: str) -> None:
    write_trace(isolated / "trace.csv", random_rows(1, 3))
    r = cli("simulate", *args)
    assert r.code == 2 and field in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert not (isolated / "carbonplan.db").exists() and not list(isolated.glob("runs*"))


# -- spot evictions ------------------------------------------------------------------------------

EVICTION_TOML = """
[site]
home_region = "r"

[[regions]]
name = "r"
zone = "SE"
pue = 1.0

[[pools]]
region = "r"
accelerator = "a100-80gb"
market = "on_demand"
capacity = 2
price_usd_per_unit_h = 3.0

[[pools]]
region = "r"
accelerator = "a100-80gb"
market = "spot"
capacity = 2
price_usd_per_unit_h = 0.5
eviction_rate_per_h = 0.3
""" + CSV_CARBON
EVICTION_SITE = parse_config(tomllib.loads(EVICTION_TOML)).to_site()
SPOT = "r/a100-80gb/spot"


def hours_of(pl) -> float:
    return sum((b - a).total_seconds() / 3600 for a, b in pl.segments or [(pl.start, pl.end)])


def replay_one(tmp_path: Path, row: dict, **kwargs):
    row = {"submit": T0.isoformat(), "hours": 6, "deadline_h": 30, **row}
    trace = load_trace(write_trace(tmp_path / "t.csv", [row]), EVICTION_SITE)
    return trace.jobs[0].id, simulate(trace, EVICTION_SITE, FunctionSignals(lambda z, t: 50.0),
                                      policies=["greedy", "carbonplan"], **kwargs)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_an_evicted_spot_run_pays_what_it_ran_and_resumes_from_its_last_checkpoint(
        tmp_path: Path, seed: int) -> None:
    jid, sim = replay_one(tmp_path, {"checkpoint_every_h": 1, "checkpoint_cost_h": 0.1},
                          seed=seed)
    res = sim.results["greedy"]
    attempts, run = res.evicted.get(jid, []), res.runs[jid].placement
    assert attempts, "a 6-h run at 0.3 evictions/h: these seeds evict it at least once"
    assert attempts[0].pool == SPOT and attempts[0].start == T0
    kw = run.energy_kwh / hours_of(run)          # one accelerator, PUE 1: the same everywhere
    saved = 0.0
    for prev, cut in zip([None, *attempts], attempts, strict=False):
        ran = hours_of(cut)
        assert 0 < ran < 6 - saved
        assert prev is None or cut.start >= prev.end
        assert cut.energy_kwh == pytest.approx(kw * ran)
        assert cut.cost_usd == pytest.approx(0.5 * ran)  # the cloud's rental; no rework on top
        saved += max(math.floor(ran) - 0.1, 0.0)  # up to its last checkpoint, less the resume
    # the run that finished did only the work no checkpoint had kept
    assert run.start >= attempts[-1].end
    assert hours_of(run) == pytest.approx(6 - saved)
    totals = res.totals()
    assert totals["evictions"] == len(attempts)
    assert totals["cost_usd"] == pytest.approx(run.cost_usd + sum(a.cost_usd for a in attempts))
    # common random numbers: the planner put it on spot at once too, and met the same eviction
    other = sim.results["carbonplan"].evicted[jid][0]
    assert (other.pool, other.start, other.end) == (SPOT, attempts[0].start, attempts[0].end)


def test_a_job_that_never_checkpoints_loses_the_whole_attempt(tmp_path: Path) -> None:
    jid, sim = replay_one(tmp_path, {}, seed=0)
    res = sim.results["greedy"]
    assert res.evicted[jid]
    assert hours_of(res.runs[jid].placement) == pytest.approx(6)


def test_evictions_can_happen_at_a_rate_plans_do_not_assume(tmp_path: Path) -> None:
    ckpt = {"checkpoint_every_h": 1, "checkpoint_cost_h": 0.1}
    # plans assume 0.3/h, none happen: the spot run finishes in one go, with no rework charged
    jid, sim = replay_one(tmp_path, ckpt, seed=1, eviction_rate=0.0)
    res = sim.results["greedy"]
    assert not res.evicted and res.runs[jid].placement.pool == SPOT
    assert res.runs[jid].placement.cost_usd == pytest.approx(0.5 * 6)
    assert sim.summary()["settings"]["eviction_rate_per_h"] == 0.0
    # plans assume none, 0.3/h happen: the same draws as when plans knew the rate
    blind = EVICTION_SITE.model_copy(update={"pools": tuple(
        p.model_copy(update={"eviction_rate_per_h": 0.0}) for p in EVICTION_SITE.pools)})
    trace = load_trace(write_trace(tmp_path / "b.csv", [
        {"submit": T0.isoformat(), "hours": 6, "deadline_h": 30, **ckpt}]), blind)
    surprised = simulate(trace, blind, FunctionSignals(lambda z, t: 50.0), policies=["greedy"],
                         seed=1, eviction_rate=0.3).results["greedy"]
    _, knew = replay_one(tmp_path, ckpt, seed=1)
    cut = [(a.start, a.end) for a in surprised.evicted[trace.jobs[0].id]]
    assert cut and cut == [(a.start, a.end) for a in knew.results["greedy"].evicted[jid]]
    for bad, why in ((-0.1, "rate per hour"), (float("nan"), "rate per hour")):
        with pytest.raises(InputError, match=why):
            simulate(trace, blind, FunctionSignals(lambda z, t: 50.0), eviction_rate=bad)
    with pytest.raises(InputError, match="needs evictions replayed"):
        simulate(trace, blind, FunctionSignals(lambda z, t: 50.0), eviction_rate=0.1,
                 evictions=False)


def test_without_eviction_replay_spot_runs_pay_their_expected_rework(tmp_path: Path) -> None:
    jid, sim = replay_one(tmp_path, {"checkpoint_every_h": 1, "checkpoint_cost_h": 0.1},
                          evictions=False)
    res = sim.results["greedy"]
    run = res.runs[jid].placement
    assert not res.evicted and run.pool == SPOT and hours_of(run) == pytest.approx(6)
    # 0.3/h x 6 h x (1/2 + 0.1) h = 1.08 h of rework on top of 6 h
    assert run.cost_usd == pytest.approx(0.5 * 6 * (1 + 1.08 / 6))
    assert sim.summary()["settings"]["evictions"] is False


def test_an_evicted_job_with_no_time_left_is_missed_and_says_why(tmp_path: Path) -> None:
    """Both on-demand GPUs are taken by a long job submitted first; the spot job's deadline
    leaves room for one more try on spot only."""
    rows = [{"submit": T0.isoformat(), "hours": 20, "gpus": 2, "deadline_h": 20.5,
             "spot": "false"},
            {"submit": T0.isoformat(), "hours": 6, "deadline_h": 13}]
    trace = load_trace(write_trace(tmp_path / "t.csv", rows), EVICTION_SITE)
    outcomes = []
    for seed in range(6):
        sim = simulate(trace, EVICTION_SITE, FunctionSignals(lambda z, t: 50.0),
                       policies=["greedy"], seed=seed)
        res = sim.results["greedy"]
        jid = trace.jobs[1].id
        if jid in res.missed:
            assert res.missed[jid].startswith("evicted from spot")
            assert res.evicted[jid]
        outcomes.append(jid in res.missed)
    assert any(outcomes), "some seed evicts it too late to finish"


# -- traces from Slurm accounting (trace_sacct.py) ---------------------------------------------

# as `TZ=UTC sacct -a -X -P -o JobID,JobName,User,Account,Submit,Start,Elapsed,AllocTRES,State`
# prints it (Slurm 22.05), plus the lines -X would have left out
SACCT = """\
JobID|JobName|User|Account|Submit|Start|Elapsed|AllocTRES|State
101|train-llm|ana|nlp|2026-11-02T00:10:00|2026-11-02T00:12:31|1-02:30:00|billing=16,cpu=16,gres/gpu:a100=4,gres/gpu=4,mem=256G,node=1|COMPLETED
101.batch|batch|||2026-11-02T00:12:31|2026-11-02T00:12:31|1-02:30:00|cpu=16,gres/gpu:a100=4,gres/gpu=4,mem=256G,node=1|COMPLETED
102|eval|bo|vision|2026-11-02T03:00:00|2026-11-02T03:00:05|00:45:00|billing=2,cpu=2,gres/gpu:a100=1,mem=16G,node=1|FAILED
103|preproc|bo|vision|2026-11-02T03:05:00|2026-11-02T03:05:01|02:00:00|billing=8,cpu=8,mem=32G,node=1|COMPLETED
104|waiting|cy|nlp|2026-11-02T04:00:00|Unknown|00:00:00||PENDING
105_3|sweep|cy|nlp|2026-11-02T05:00:00|2026-11-02T05:00:00|30:00|cpu=1,gres/gpu=2|CANCELLED by 0
106|oops|cy|nlp|2026-11-02T06:00:00|2026-11-02T06:00:00|00:00:00|cpu=1,gres/gpu=1|FAILED
"""


def write(tmp_path: Path, text: str, name: str = "last-month.sacct") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_gpu_allocations_become_jobs_with_their_run_time_and_a_slack_deadline(
        tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path, SACCT), SITE)
    jobs = {j.name: j for j in trace.jobs}
    assert sorted(jobs) == ["eval", "sweep", "train-llm"]
    train, ev, sweep = jobs["train-llm"], jobs["eval"], jobs["sweep"]
    assert (train.gpus, train.hours, train.user, train.project) == (4, 26.5, "ana", "nlp")
    assert train.submitted_at == datetime(2026, 11, 2, 0, 10, tzinfo=UTC)
    # slack = max(12 h, 1 x run time): a day-long job may wait a day, a short one 12 h
    assert train.deadline == train.submitted_at + timedelta(hours=2 * 26.5)
    assert (ev.gpus, ev.hours) == (1, 0.75)
    assert ev.deadline == ev.submitted_at + timedelta(hours=0.75 + 12)
    assert (sweep.gpus, sweep.hours) == (2, 0.5)     # untyped gres/gpu only; MM:SS elapsed
    assert trace.skipped == {"job steps": 1, "no GPU": 1, "never started": 1,
                             "ran under a second": 1}


def test_the_slack_is_the_sites_choice(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path, SACCT), SITE, slack_h=2, slack_factor=0)
    assert all(j.deadline == j.submitted_at + timedelta(hours=j.hours + 2) for j in trace.jobs)


@pytest.mark.parametrize(("text", "field"), [
    ("JobID|JobName|Submit|Start|State\n1|x|2026-11-02T00:00:00|2026-11-02T00:00:00|"
     "COMPLETED\n", "TRACE"),
    (SACCT.replace("1-02:30:00|billing=16", "a day|billing=16"), "trace row 2, Elapsed"),
    (SACCT.replace("|COMPLETED\n101.batch", "|COMPLETED|extra\n101.batch"), "trace row 2"),
    (SACCT.replace("2026-11-02T03:00:00|2026-11-02T03:00:05", "yesterday|2026-11-02T03:00:05"),
     "trace row 4, submit"),
])
def test_bad_sacct_output_names_the_line_and_field(tmp_path: Path, text: str,
                                                   field: str) -> None:
    with pytest.raises(InputError) as err:
        load_trace(write(tmp_path, text), SITE)
    assert err.value.field == field


def test_slack_options_apply_to_sacct_only(tmp_path: Path) -> None:
    csv_trace = write(tmp_path, "submit,hours,deadline_h\n2026-11-02T00:00Z,1,5\n", "t.csv")
    with pytest.raises(InputError) as err:
        load_trace(csv_trace, SITE, slack_h=3)
    assert err.value.field == "--slack-h"
    with pytest.raises(InputError) as err:
        load_trace(write(tmp_path, SACCT), SITE, slack_factor=-1)
    assert err.value.field == "--slack-factor"


@pytest.mark.parametrize(("text", "hours"), [("1-02:30:00", 26.5), ("02:00:00", 2.0),
                                             ("45:30", 0.7583333), ("00:00:01.5", 1.5 / 3600)])
def test_elapsed(text: str, hours: float) -> None:
    assert elapsed_hours(text) == pytest.approx(hours)


@pytest.mark.parametrize(("tres", "gpus"), [
    ("cpu=8,gres/gpu:a100=2,gres/gpu=2,mem=1G", 2),
    ("cpu=8,gres/gpu:a100=2,gres/gpu:h100=1", 3),
    ("billing=4,cpu=4,mem=8G", 0),
    ("gres/gpumem=80G,cpu=1", 0),
])
def test_gpus_counted_once(tres: str, gpus: int) -> None:
    assert gpus_in(tres) == gpus


def test_simulate_reads_sacct_output(cli, isolated: Path) -> None:
    (isolated / "carbonplan.toml").write_text(CONFIG_TOML)
    with (isolated / "history.csv").open("w") as fh:
        fh.write("datetime,zone,gco2_per_kwh\n")
        t0 = datetime(2026, 11, 1, tzinfo=UTC)
        for h in range(24 * 5):
            for zone, ci in (("PL", 700), ("SE", 40)):
                fh.write(f"{(t0 + timedelta(hours=h)).isoformat()},{zone},{ci}\n")
    write(isolated, SACCT)
    r = cli("simulate", "last-month.sacct", "--policy", "run-now", "--policy", "greedy",
            "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert out["jobs"] == 3 and out["skipped_rows"] == {
        "job steps": 1, "no GPU": 1, "never started": 1, "ran under a second": 1}
    rows = {p["policy"]: p for p in out["policies"]}
    assert rows["greedy"]["jobs"] == 3
    # run-now waits for the home pool (4 GPUs), which the 26.5-h 4-GPU job holds
    assert (rows["run-now"]["jobs"], rows["run-now"]["missed"]) == (1, 2)
    table = cli("simulate", "last-month.sacct", "--policy", "run-now").out
    assert ("sacct lines skipped: 1 job steps, 1 never started, 1 no GPU, 1 ran under a "
            "second") in table
    bad = cli("simulate", "last-month.sacct", "--slack-h", "-2")
    assert bad.code == 2 and "--slack-h" in bad.err
