"""`carbonplan logs` through the real CLI entry point (on the local executor; the Ray executor's
logs are checked on real clusters in tests/integration/test_ray.py)."""

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from carbonplan.config import load_config
from carbonplan.domain import Placement
from carbonplan.executors import make_executor
from carbonplan.executors.apply import apply_actions
from carbonplan.executors.base import Action, ActionKind
from carbonplan.store import open_store


def test_logs_of_a_job_not_started_and_of_no_job(cli) -> None:
    r = cli("submit", "--hours", "1", "--within", "1d", "--json", "--", "echo", "hi")
    job_id = json.loads(r.out)["id"]
    r = cli("logs", str(job_id))
    assert r.code == 0 and "has not started yet (queued)" in r.out
    r = cli("logs", "99")
    assert r.code == 2 and r.err.strip() == "error: job: no job 99"
    assert cli("logs", str(job_id), "--tail", "0").code == 2


def test_logs_of_a_job_that_ran(cli, tmp_path: Path) -> None:
    code = "for i in range(5): print('line', i)"
    r = cli("submit", "--hours", "1", "--within", "1d", "--json", "--", sys.executable, "-c",
            code)
    job_id = json.loads(r.out)["id"]
    url = os.environ["CARBONPLAN_DB"]
    store = open_store(url)
    ex = make_executor(load_config(), url, "local")
    now = datetime.now(UTC)
    p = Placement(job_id=job_id, pool="x", start=now, end=now + timedelta(hours=1), units=1,
                  energy_kwh=0, kg_co2e=0, cost_usd=0)
    apply_actions(store, ex, [Action(ActionKind.START, store.get_job(job_id), p, attempt=1)])
    done = Path(store.get_job(job_id).executor_ref) / "exit"
    for _ in range(600):
        if done.exists():
            break
        time.sleep(0.05)
    r = cli("logs", str(job_id))
    assert r.code == 0 and r.out.splitlines() == [f"line {i}" for i in range(5)]
    r = cli("logs", str(job_id), "--tail", "2")
    assert r.out.splitlines() == ["line 3", "line 4"]


def test_submit_carries_what_the_ray_executor_needs(cli, tmp_path: Path) -> None:
    r = cli("submit", "--hours", "1", "--within", "1d", "--gpus", "2", "--workdir",
            "s3://bucket/proj.zip", "--env", "SEED=3", "--json", "--", "python", "train.py",
            "--name", "a b; echo x")
    assert r.code == 0, r.err
    job = json.loads(r.out)
    assert job["command"] == ["python", "train.py", "--name", "a b; echo x"]
    assert job["workdir"] == "s3://bucket/proj.zip" and job["env"] == {"SEED": "3"}
    assert job["gpus"] == 2
