"""The NVML energy meter: on a real GPU where there is one, skipped cleanly where there is none.

Only the power integral and the no-GPU behaviour run everywhere; every other test reads a real
board (CI has none; they ran on an H100, see docs/daemon.md "Measured energy").
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carbonplan.energy.nvml import NvmlMeter, PowerIntegral

METER = NvmlMeter.open()
_skip = pytest.mark.skipif(METER is None, reason="no NVIDIA GPU / NVML on this machine")


def needs_gpu(test):
    return pytest.mark.gpu(_skip(test))


def test_power_integral_is_trapezoidal() -> None:
    p = PowerIntegral()
    for t, w in [(0.0, 100.0), (1.0, 100.0), (3.0, 200.0)]:
        p.add(t, w)
    assert p.samples == 3
    assert p.joules == pytest.approx(100.0 + 2 * 150.0)


@pytest.mark.skipif(METER is not None, reason="a GPU is present")
def test_no_gpu_means_no_meter_and_no_failed_job(tmp_path: Path) -> None:
    assert NvmlMeter.open() is None
    info = _run(tmp_path, [sys.executable, "-c", "pass"], {})
    assert info["code"] == 0 and info["energy"] is None


@needs_gpu
def test_readings_name_every_board() -> None:
    readings = METER.readings()
    assert len(readings) == METER.count() >= 1
    for g in readings:
        assert g.uuid.startswith("GPU-") and g.name
        assert g.power_w is not None and 0 < g.power_w <= (g.power_limit_w or 2000) * 1.5
        assert g.power_limit_w is not None and g.power_limit_w > 0


@needs_gpu
def test_visible_devices_map_to_boards() -> None:
    first = METER.readings()[0]
    assert METER.boards(None) == list(range(METER.count()))
    assert METER.boards("0") == [0]
    assert METER.boards(first.uuid) == [0]
    assert METER.boards("") == []
    assert METER.boards("MIG-4f1c0a3e-0000-0000-0000-000000000000") is None  # not metered
    assert METER.boards(str(METER.count())) is None  # no such board


@needs_gpu
def test_counter_energy_matches_sampled_power() -> None:
    tracker = METER.track([0]).start()
    samples = []
    for _ in range(20):
        samples.append(METER.power_w([0]))
        time.sleep(0.1)
    m = tracker.stop()
    assert m is not None and m.method == "nvml-counter"
    avg_w = sum(samples) / len(samples)
    # the counter and the mean sampled power agree within 25% over 2 s (idle boards drift little)
    assert m.joules == pytest.approx(avg_w * m.seconds, rel=0.25)


@needs_gpu
def test_boards_without_a_counter_are_sampled(monkeypatch) -> None:
    """Pre-Volta boards have no energy counter: power samples, integrated, must agree with it."""
    counter = METER.track([0]).start()
    no_counter = NvmlMeter.open()
    monkeypatch.setattr(no_counter, "energy_j", lambda boards: None)  # the missing counter
    sampled = no_counter.track([0], sample_s=0.05).start()
    time.sleep(2.0)
    s, c = sampled.stop(), counter.stop()
    no_counter.close()
    assert s is not None and s.method == "nvml-power-samples"
    assert s.joules == pytest.approx(c.joules, rel=0.25)


@needs_gpu
def test_runner_measures_the_job_gpus(tmp_path: Path) -> None:
    idle = _run(tmp_path / "idle", [sys.executable, "-c", "import time; time.sleep(3)"],
                {"CUDA_VISIBLE_DEVICES": "0"})
    e = idle["energy"]
    assert e["method"] == "nvml-counter" and len(e["gpus"]) == 1
    assert e["seconds"] >= 3 and e["joules"] > 0
    watts = e["joules"] / e["seconds"]
    limit = METER.readings()[0].power_limit_w
    assert 10 < watts < limit  # an idle board: more than nothing, less than its limit
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    busy_code = ("import time, torch; a = torch.randn(8192, 8192, device='cuda'); "
                 "t = time.time()\nwhile time.time() - t < 3: (a @ a).sum().item()")
    busy = _run(tmp_path / "busy", [sys.executable, "-c", busy_code],
                {"CUDA_VISIBLE_DEVICES": "0"})
    assert busy["code"] == 0
    busy_w = busy["energy"]["joules"] / busy["energy"]["seconds"]
    assert busy_w > 1.5 * watts  # matrix work on the board draws visibly more


@needs_gpu
def test_a_mig_instance_is_not_metered(tmp_path: Path) -> None:
    info = _run(tmp_path, [sys.executable, "-c", "pass"],
                {"CUDA_VISIBLE_DEVICES": "MIG-4f1c0a3e-0000-0000-0000-000000000000"})
    assert info["code"] == 0 and info["energy"] is None


def _run(d: Path, argv: list[str], env: dict[str, str]) -> dict:
    """One attempt through the real runner, as the local executor launches it."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "spec.json").write_text(json.dumps({"argv": argv, "env": env}))
    subprocess.run([sys.executable, "-m", "carbonplan.executors.local_runner", str(d)],
                   check=True, timeout=120)
    return json.loads((d / "exit").read_text())
