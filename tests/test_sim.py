"""`carbonplan simulate`: the replay is online, respects capacity and deadlines, and charges
what happened, not what was forecast."""

from __future__ import annotations

import csv
import json
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

T0 = datetime(2026, 11, 2, tzinfo=UTC)
CONFIG_TOML = """
[site]
home_region = "dirty"
carbon_price_usd_per_t = 1000

[[regions]]
name = "dirty"
zone = "PL"
pue = 1.2
energy_price_usd_per_kwh = 0.1

[[regions]]
name = "clean"
zone = "SE"
pue = 1.1

[[pools]]
region = "dirty"
accelerator = "a100-80gb"
market = "owned"
capacity = 4

[[pools]]
region = "clean"
accelerator = "a100-80gb"
market = "on_demand"
capacity = 4
price_usd_per_unit_h = 0.05

[carbon]
provider = "csv"

[carbon.csv]
path = "history.csv"
"""
SITE = parse_config(tomllib.loads(CONFIG_TOML)).to_site()
CAPACITY = {p.name: p.capacity for p in SITE.pools}


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
                     "checkpoint_cost_h": 0.1})
    return rows


def wavy(zone: str, t: datetime) -> float:
    """PL dirty, SE clean, both cleaner at night (UTC)."""
    night = 0.6 if t.hour < 6 else 1.0
    return {"PL": 700.0, "SE": 40.0}[zone] * night


CAPPED = SITE.model_copy(update={"regions": {**SITE.regions, "dirty": SITE.regions[
    "dirty"].model_copy(update={"power_cap_kw": 1.5})}})  # about 3 of its 4 GPUs at once


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
        for jid, run in res.runs.items():
            pl, job = run.placement, jobs[jid]
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
])
def test_simulate_bad_input(cli, isolated: Path, args: list[str], field: str) -> None:
    write_trace(isolated / "trace.csv", random_rows(1, 3))
    r = cli("simulate", *args)
    assert r.code == 2 and field in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert not (isolated / "carbonplan.db").exists() and not list(isolated.glob("runs*"))
