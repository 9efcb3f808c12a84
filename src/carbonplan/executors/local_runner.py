"""Runs one local job attempt, detached from the daemon, and leaves its result on disk.

`python -m carbonplan.executors.local_runner RUN_DIR` reads RUN_DIR/spec.json (argv, cwd, env),
runs the command as an argument list (never a shell) with its output in RUN_DIR/output.log, and
writes RUN_DIR/exit atomically when it ends, with the energy its GPUs drew when NVML can read it
(carbonplan.energy.nvml). It holds an exclusive lock on RUN_DIR/lock while it
lives, and exits at once when another runner holds it or the attempt already ended: starting the
same attempt twice runs it once. SIGTERM is passed on to the command's process group.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from carbonplan.energy.nvml import EnergyTracker, NvmlMeter


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _track(visible: str | None) -> EnergyTracker | None:
    """Start metering the boards the job sees; None where NVML cannot (fail open)."""
    meter = NvmlMeter.open()
    if meter is None:
        return None
    try:
        boards = meter.boards(visible)
        if not boards:
            meter.close()
            return None
        return meter.track(boards).start()
    except Exception:
        meter.close()
        return None


def _energy(tracker: EnergyTracker | None) -> dict[str, Any] | None:
    if tracker is None:
        return None
    try:
        m = tracker.stop()
        return m.as_json() if m is not None else None
    except Exception:
        return None
    finally:
        tracker.meter.close()


def main(run_dir: str) -> int:
    d = Path(run_dir)
    lock = open(d / "lock", "a+")  # held (never closed) for the runner's whole lifetime
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another runner has this attempt
    if (d / "exit").exists():
        return 0  # this attempt already ran
    spec = json.loads((d / "spec.json").read_text())
    env = {**os.environ, **spec.get("env", {})}
    started = datetime.now(UTC).isoformat()
    tracker = _track(env.get("CUDA_VISIBLE_DEVICES"))
    with open(d / "output.log", "ab") as out:
        try:
            child = subprocess.Popen(spec["argv"], cwd=spec.get("cwd") or None, env=env,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     start_new_session=True)
        except OSError as exc:
            out.write(f"carbonplan: cannot start {spec['argv'][0]!r}: {exc}\n".encode())
            _energy(tracker)
            _write_atomic(d / "exit", json.dumps({"code": 127, "started": started,
                                                  "ended": datetime.now(UTC).isoformat()}))
            return 0
        _write_atomic(d / "started", json.dumps({"pid": child.pid, "runner": os.getpid(),
                                                 "at": started}))

        def forward(signum: int, _frame: object) -> None:
            try:
                os.killpg(child.pid, signum)
            except ProcessLookupError:
                pass

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        code = child.wait()
    _write_atomic(d / "exit", json.dumps({"code": code, "started": started,
                                          "ended": datetime.now(UTC).isoformat(),
                                          "energy": _energy(tracker)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
