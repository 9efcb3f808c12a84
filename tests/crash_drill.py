"""The crash drill both crash tests run: SIGKILL `carbonplan daemon` over and over, at armed
crash points (carbonplan.faults) and at random moments, checking after every death; then let
it finish undisturbed. tests/daemon/test_crash.py (local executor) and
tests/integration/slurm/test_daemon_crash.py (real Slurm) bring the workload and the checks."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence

KILLS = 50
FAULTS = "after-refresh=0.08,after-plan=0.3,executor-called=0.2,after-apply=0.08"


def kill_repeatedly(argv: Sequence[str], env: Mapping[str, str], check: Callable[[], None], *,
                    seed: int, kills: int = KILLS, budget_s: float = 600) -> int:
    """Start the daemon with crash points armed and kill it `kills` times, calling `check()`
    after each death. Returns how many deaths were at an exact crash point."""
    rng = random.Random(seed)
    at_points = 0
    give_up = time.monotonic() + budget_s
    for done in range(kills):
        assert time.monotonic() < give_up, f"only {done} kills in time"
        proc = subprocess.Popen(argv, env={**env, "CARBONPLAN_FAULTS": FAULTS},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=rng.uniform(1.5, 5.0))
            at_points += proc.returncode == -signal.SIGKILL  # it died at a crash point
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)  # ... or at a random moment
            proc.wait()
        assert proc.returncode == -signal.SIGKILL, f"daemon exited with {proc.returncode}"
        check()
    return at_points


def run_until(argv: Sequence[str], env: Mapping[str, str], done: Callable[[], bool], *,
              timeout_s: float = 300) -> None:
    """Run the daemon undisturbed until `done()`, then stop it with SIGTERM."""
    proc = subprocess.Popen(argv, env=dict(env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + timeout_s
        while not done():
            assert time.monotonic() < end, "the workload did not finish"
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
