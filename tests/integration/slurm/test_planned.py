"""End to end on real Slurm, planned by the real planner inside the daemon: sbatch on the opt-in
QOS -> tagged and delayed by the Lua module -> discovered -> planned into the low-carbon slot on
the partition of the cleaner site -> Slurm starts it then, there -> it completes. The carbon
"weather" is a function of time (FunctionSignals) so that the clean window opens in seconds."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from carbonplan.daemon import Daemon, DaemonSettings
from carbonplan.domain import ACTIVE_STATES, JobState
from carbonplan.leadership import lease_for
from carbonplan.signals.scripted import FunctionSignals

from .conftest import Cluster

REPORT = "echo $SLURM_CLUSTER_NAME $SLURM_JOB_PARTITION $(date +%s)"
SLOT_S = 4


def weather(clean_zone: str, opens_at: datetime):
    """Every zone at 900 g/kWh, except `clean_zone` from `opens_at` on (20 g/kWh)."""
    def fn(zone: str, t: datetime) -> float:
        return 20.0 if zone == clean_zone and t >= opens_at else 900.0
    return fn


def daemon(store, cfg, ex, signals) -> Daemon:
    settings = DaemonSettings(interval_s=1.0, freeze_window_s=SLOT_S, slot_h=SLOT_S / 3600,
                              horizon_h=0.25, time_limit_s=5, move_penalty_usd=1e-7,
                              start_grace_s=60)
    return Daemon(store, cfg.to_site(), ex, signals, settings=settings,
                  lease=lease_for(store.engine))


def run_until_done(d: Daemon, store, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    d.run_once()
    while not store.list_jobs(states=None) or store.list_jobs(states=ACTIVE_STATES):
        assert time.monotonic() < end, [(j.id, j.state.value) for j in store.list_jobs(
            states=None)]
        time.sleep(1.0)
        d.run_once()


def test_sbatch_is_planned_into_the_clean_window_on_the_cleaner_partition(
        north: Cluster, cfg, ex, store) -> None:
    opens = datetime.now(UTC) + timedelta(seconds=20)
    jid, err = north.sbatch("--qos=carbon", "-t", "1", "--gres=gpu:a100:1",
                            "--comment=carbonplan:hours=0.002", "--deadline=now+600",
                            script=REPORT)
    assert jid is not None, err
    assert north.job(jid)["state_reason"] == "BeginTime"  # the module's provisional delay
    d = daemon(store, cfg, ex, FunctionSignals(weather("NO-NO1", opens)))  # north-b's zone
    run_until_done(d, store)
    (job,) = store.list_jobs(states=None)
    assert job.external_id == f"north:{jid}" and job.state == JobState.SUCCEEDED
    _, plan = store.get_plan(1)
    (p,) = plan.placements
    assert p.pool == "north-b/a100-80gb/owned" and p.start >= opens - timedelta(seconds=1)
    cluster, partition, ran_at = north.output(jid).split()
    assert (cluster, partition) == ("north", "b")
    assert int(ran_at) >= int(opens.timestamp()) - 1  # it waited for the clean window
    assert job.ran_pool == "north-b/a100-80gb/owned"
    history = [e.to_state for e in store.events(job.id)]
    assert history[0] == JobState.QUEUED and history[-1] == JobState.SUCCEEDED
    assert JobState.PLANNED in history


def test_the_second_cluster_takes_the_same_path(central: Cluster, cfg, ex, store) -> None:
    opens = datetime.now(UTC) + timedelta(seconds=16)
    jid, err = central.sbatch("--qos=carbon", "-t", "1", "--gres=gpu:h100:1",
                              "--comment=carbonplan:hours=0.003", "--deadline=now+600",
                              script=REPORT)
    assert jid is not None, err
    d = daemon(store, cfg, ex, FunctionSignals(weather("DE", opens)))  # central's zone
    run_until_done(d, store)
    (job,) = store.list_jobs(states=None)
    assert job.state == JobState.SUCCEEDED and job.ran_pool == "central/h100-sxm/owned"
    cluster, partition, ran_at = central.output(jid).split()
    assert cluster == "central" and int(ran_at) >= int(opens.timestamp()) - 1


def test_a_job_whose_deadline_cannot_be_met_is_reported_not_dropped(north: Cluster, cfg, ex,
                                                                     store) -> None:
    # an hour of work with ten minutes to the deadline: carbonplan cannot plan it, says why, and
    # hands it back to Slurm to run as submitted (Slurm then ends it at its deadline)
    jid, err = north.sbatch("--qos=carbon", "-t", "60", "--gres=gpu:a100:1",
                            "--deadline=now+600", script=REPORT)
    assert jid is not None, err
    d = daemon(store, cfg, ex, FunctionSignals(lambda z, t: 300.0))
    d.run_once()
    (job,) = store.list_jobs(states=None)
    assert job.external_id == f"north:{jid}"
    reasons = " ".join(e.reason for e in store.events(job.id))
    assert "not planned" in reasons and "--deadline" in reasons
