"""plan, show (explanations), demo and daemon through the CLI."""

from __future__ import annotations

import json

import pytest

from .test_bad_input import assert_one_line_error

CMD = ["--", "python", "train.py"]


def test_plan_stores_a_plan_that_queue_and_show_read(cli) -> None:
    for hours in ("2", "5"):
        assert cli("submit", "--hours", hours, "--within", "2d", "--gpu-type", "a100",
                   *CMD).code == 0
    r = cli("plan", "--time-limit", "5", "--json")
    assert r.code == 0, r.err
    plan = json.loads(r.out)
    assert plan["plan_id"] == 1 and len(plan["placements"]) == 2
    assert plan["bound"] <= plan["objective"] + 1e-6
    assert set(plan["details"]["savings"]) == {"run-now", "greedy"}
    queued = json.loads(cli("queue", "--json").out)
    assert all(j["placement"]["pool"] for j in queued)
    shown = cli("show", "1")
    assert "Placement (plan 1)" in shown.out and "run-now" in shown.out
    table = cli("plan", "--time-limit", "5", "--dry-run")
    assert table.code == 0 and "(not stored)" in table.out and "vs run-now" in table.out
    assert json.loads(cli("plan", "--dry-run", "--json").out)["plan_id"] is None


def test_an_unplaceable_job_is_explained(cli, tmp_path) -> None:
    (tmp_path / "carbonplan.toml").write_text(
        '[[pools]]\nregion = "eu-north-1"\naccelerator = "h100-sxm"\nmarket = "on_demand"\n'
        'capacity = 1\n')
    for _ in range(2):  # two jobs, one GPU, deadlines that allow only one of them
        assert cli("submit", "--hours", "8", "--within", "4h", *CMD).code == 0
    plan = json.loads(cli("plan", "--time-limit", "5", "--json").out)
    assert len(plan["placements"]) == 1 and len(plan["unplanned"]) == 1
    (jid, why), = plan["unplanned"].items()
    assert "capacity" in why
    assert "Not planned" in cli("show", jid).out


@pytest.mark.parametrize("args,field,words", [
    (["plan", "--solver", "gurobix"], "--solver", "unknown solver"),
    (["plan", "--time-limit", "0"], "--time-limit", "must be > 0"),
    (["plan", "--gap", "2"], "--gap", "between 0 and 1"),
    (["plan", "--carbon-price", "-3"], "--carbon-price", ">= 0"),
    (["demo", "--jobs", "0"], "--jobs", "greater than or equal to 1"),
    (["daemon", "--interval", "soon"], "--interval", "cannot parse"),
    (["daemon", "--executor", "k8s"], "--executor", "unknown executor"),
    (["daemon", "--log-level", "loud"], "--log-level", "unknown level"),
    (["daemon", "--metrics-port", "70000"], "--metrics-port", "0-65535"),
])
def test_bad_input_on_planning_commands(cli, db_path, args, field, words) -> None:
    assert_one_line_error(cli(*args), field, words)
    assert not db_path.exists()


def test_daemon_once_plans_and_starts(cli, tmp_path) -> None:
    assert cli("submit", "--hours", "0.001", "--within", "1d", "--", "true").code == 0
    r = cli("daemon", "--once", "--json", "--log-level", "warning")
    assert r.code == 0, r.err
    rep = json.loads(r.out)
    assert rep["leader"] and rep["triggers"] == ["initial"] and rep["plan_id"] == 1


def test_demo_runs_on_a_temporary_store(cli, db_path) -> None:
    r = cli("demo", "--jobs", "12", "--time-limit", "3", "--json")
    assert r.code == 0, r.err
    plan = json.loads(r.out)
    assert len(plan["placements"]) + len(plan["unplanned"]) == 12
    assert {"run-now", "threshold", "lowest-window", "carbon-time", "greedy"} <= set(
        plan["details"]["savings"])
    assert not db_path.exists()  # the user's store is untouched


def test_baselines_with_the_same_figures_share_a_line() -> None:
    from carbonplan.cli.planning import same_baselines

    a = {"jobs_compared": 36, "usd": 881.1, "kg_co2e": 23.8, "baseline_unplaced": 4}
    b = {"jobs_compared": 40, "usd": 33.1, "kg_co2e": 10.9, "baseline_unplaced": 0}
    saved = {"run-now": a, "threshold": dict(a), "greedy": b, "carbon-time": dict(a)}
    evals = {"run-now": {"objective": 6863.4}, "threshold": {"objective": 6863.4},
             "greedy": {"objective": 207.4}, "carbon-time": {"objective": 6863.4}}
    assert same_baselines(saved, evals) == [(["run-now", "threshold", "carbon-time"], a),
                                            (["greedy"], b)]
    # equal savings but another evaluation (e.g. other unplaced jobs' penalties): kept apart
    evals["threshold"] = {"objective": 7000.0}
    assert [names for names, _ in same_baselines(saved, evals)] == [
        ["run-now", "carbon-time"], ["threshold"], ["greedy"]]
