"""Realized emissions: measured GPU energy (NVML) wins over the power model when a run has it."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest

from carbonplan.domain import JobSpec, JobState
from carbonplan.energy.formulas import embodied_kg, emissions_kg, energy_kwh

from .conftest import (
    SLOT_H,
    ScriptedSignals,
    all_finished,
    cycle_until,
    make_daemon,
    recording_job,
)

POOL = "clean/a100-80gb/owned"


def _finished(store, marker, **updates):
    (job,) = store.add_jobs([recording_job(marker, "done")])
    t0 = datetime.now(UTC) - timedelta(hours=2)
    return store.transition(job.id, JobState.SUCCEEDED, reason="exit code 0", updates={
        "ran_pool": POOL, "started_at": t0, "ended_at": t0 + timedelta(hours=1),
        "exit_code": 0, **updates})


def test_measured_energy_replaces_the_model(store, site, executor, marker) -> None:
    d = make_daemon(store, site, executor, ScriptedSignals(lambda zone, t: 40.0))
    modelled = _finished(store, marker)
    measured = _finished(store, marker, gpu_kwh=0.25, energy_meter="nvml-counter")
    assert store.get_job(measured.id).gpu_kwh == 0.25  # stored and read back
    acc = site.accelerators["a100-80gb"]
    emb = embodied_kg(1, acc.embodied_kg, site.embodied_lifetime_h, 1.0)
    # measured: the boards' 0.25 kWh times the region's PUE (1.2), at 40 g/kWh
    assert abs(d._job_realized_kg(measured) - (emissions_kg(0.25 * 1.2, 40.0) + emb)) < 1e-9
    # modelled: the pool's modelled power for the hour it ran; never the measured figure
    got = d._job_realized_kg(modelled)
    assert got > emb
    assert abs(got - (emissions_kg(0.25 * 1.2, 40.0) + emb)) > 1e-6
    model_kwh = (got - emb) * 1000 / 40.0
    assert model_kwh <= energy_kwh(1, acc.max_w, 1.0, 1.2) + 1e-9
    d.run_once()
    text = generate_latest(d.metrics.registry).decode()
    line = next(x for x in text.splitlines() if x.startswith("carbonplan_realized_kgco2e "))
    assert abs(float(line.split()[1]) - (got + d._job_realized_kg(measured))) < 1e-6


def test_the_metric_counts_interrupted_runs(store, site, executor, marker) -> None:
    """A run lost before the job finished still drew power: the metric counts it, and the runs
    of a job that never finished, as `carbonplan report` does."""
    d = make_daemon(store, site, executor, ScriptedSignals(lambda zone, t: 40.0))
    once = _finished(store, marker)  # one run of an hour, finished
    (twice, gave_up) = store.add_jobs([recording_job(marker, "done")] * 2)
    t0 = datetime.now(UTC) - timedelta(hours=5)
    for job in (twice, gave_up):
        store.transition(job.id, JobState.SUBMITTED, updates={"attempt": 1, "ran_pool": POOL})
        store.transition(job.id, JobState.RUNNING, updates={"started_at": t0})
        store.transition(job.id, JobState.QUEUED, reason="lost",
                         updates={"ended_at": t0 + timedelta(hours=1)})
    store.transition(twice.id, JobState.SUCCEEDED, updates={
        "ran_pool": POOL, "started_at": t0 + timedelta(hours=2),
        "ended_at": t0 + timedelta(hours=3), "exit_code": 0})
    store.transition(gave_up.id, JobState.MISSED_DEADLINE, reason="cannot finish")
    one = d._job_realized_kg(store.get_job(once.id))
    # the same hour at the same intensity on the same pool: twice and once the footprint
    d.run_once()
    text = generate_latest(d.metrics.registry).decode()
    line = next(x for x in text.splitlines() if x.startswith("carbonplan_realized_kgco2e "))
    assert float(line.split()[1]) == pytest.approx(one + 2 * one + one, rel=1e-9)


def _has_gpu() -> bool:
    from carbonplan.energy.nvml import NvmlMeter

    meter = NvmlMeter.open()
    if meter is None:
        return False
    meter.close()
    return True


@pytest.mark.gpu
@pytest.mark.skipif(not _has_gpu(), reason="no NVIDIA GPU / NVML on this machine")
def test_a_gpu_job_is_reported_from_its_measured_energy(store, site, executor) -> None:
    """Daemon, local executor and a real GPU: the run's NVML energy is what realized counts."""
    work = ("import time\ntry:\n import torch; a = torch.randn(8192, 8192, device='cuda')\n"
            "except ImportError:\n a = None\nt = time.time()\nwhile time.time() - t < 4:\n"
            " (a @ a).sum().item() if a is not None else time.sleep(0.1)")
    (job,) = store.add_jobs([JobSpec(
        name="gpu", user="u", project="p", command=[sys.executable, "-c", work],
        env={"CUDA_VISIBLE_DEVICES": "0"}, hours=SLOT_H * 0.999,
        deadline=datetime.now(UTC) + timedelta(seconds=90))])
    d = make_daemon(store, site, executor, ScriptedSignals(lambda zone, t: 40.0))
    cycle_until(d, all_finished(store), timeout=90)
    done = store.get_job(job.id)
    assert done.state == JobState.SUCCEEDED
    assert done.energy_meter == "nvml-counter" and done.gpu_kwh and done.gpu_kwh > 0
    run_s = (done.ended_at - done.started_at).total_seconds()
    watts = done.gpu_kwh * 3.6e6 / run_s
    assert 10 < watts < 1000  # one board, between idle and any data-centre GPU's limit
    region = site.regions[site.pools[[p.name for p in site.pools].index(done.ran_pool)].region]
    acc = site.accelerators["a100-80gb"]
    emb = embodied_kg(1, acc.embodied_kg, site.embodied_lifetime_h, run_s / 3600)
    want = emissions_kg(done.gpu_kwh * region.pue, 40.0) + emb
    assert d._job_realized_kg(done) == pytest.approx(want, rel=1e-6)
    text = generate_latest(d.metrics.registry).decode()
    assert 'carbonplan_gpu_power_watts{gpu="0"' in text  # this host's boards, exported
    print(f"\nmeasured {done.gpu_kwh * 1000:.3f} Wh over {run_s:.1f} s = {watts:.0f} W; "
          f"realized {d._job_realized_kg(done) * 1000:.3f} gCO2e")
