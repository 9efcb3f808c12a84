"""The local executor: runs each planned job as a process on this machine at its planned slot.

carbonplan keeps the job in its own queue until its start (the daemon issues START then); each
attempt gets a run directory `job-<id>-attempt-<n>` under `run_dir` (beside the store by default)
with the command's spec, its output and its exit status. A detached runner process
(`local_runner.py`) owns the attempt, so the job survives a daemon restart, and starting the same
attempt twice runs it once.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from carbonplan.domain import Job, JobState
from carbonplan.energy.formulas import joules_to_kwh
from carbonplan.executors.base import (
    Action,
    ActionKind,
    ActionResult,
    Capabilities,
    DiscoveredJob,
    JobUpdate,
)

LAUNCH_GRACE = timedelta(seconds=60)  # a runner that has not started by then is lost


def _is_locked(path: Path) -> bool:
    """True while a runner holds the attempt's lock."""
    try:
        with open(path, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False


class LocalExecutor:
    name = "local"
    capabilities = Capabilities(has_logs=True)

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def attempt_dir(self, job: Job, attempt: int) -> Path:
        return self.run_dir / f"job-{job.id}-attempt-{attempt}"

    # -- protocol ------------------------------------------------------------------------------

    def discover(self) -> list[DiscoveredJob]:
        return []  # nothing is submitted to this machine behind carbonplan's back

    def apply(self, action: Action) -> ActionResult:
        if action.kind == ActionKind.START:
            return self._start(action)
        if action.kind == ActionKind.CANCEL:
            return self._cancel(action.job)
        return ActionResult(ok=True, detail="kept in carbonplan's queue until its slot")

    def poll(self, jobs: Sequence[Job]) -> list[JobUpdate]:
        updates = []
        for job in jobs:
            if job.executor != self.name or not job.executor_ref:
                continue
            u = self._status(job, Path(job.executor_ref))
            if u is not None:
                updates.append(u)
        return updates

    def logs(self, job: Job, tail: int | None = None) -> str:
        if not job.executor_ref:
            return f"job {job.id} has not started yet"
        path = Path(job.executor_ref) / "output.log"
        if not path.exists():
            return f"no output yet ({path})"
        lines = path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:] if tail else lines)

    # -- details -------------------------------------------------------------------------------

    def _start(self, action: Action) -> ActionResult:
        job = action.job
        d = self.attempt_dir(job, action.attempt)
        if (d / "exit").exists():
            return ActionResult(ok=True, ref=str(d), detail="attempt already ran")
        d.mkdir(parents=True, exist_ok=True)
        argv = list(job.command) if job.command else ["/bin/bash", str(job.script)]
        env = {**job.env, "CARBONPLAN_JOB_ID": str(job.id),
               "CARBONPLAN_ATTEMPT": str(action.attempt),
               "CARBONPLAN_POOL": action.placement.pool if action.placement else ""}
        spec = {"argv": argv, "cwd": job.workdir, "env": env}
        tmp = d / "spec.json.tmp"
        tmp.write_text(json.dumps(spec))
        os.replace(tmp, d / "spec.json")
        if _is_locked(d / "lock"):
            return ActionResult(ok=True, ref=str(d), detail="already running")
        try:
            with open(d / "runner.log", "ab") as err:
                subprocess.Popen(
                    [sys.executable, "-m", "carbonplan.executors.local_runner", str(d)],
                    start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=err, close_fds=True)
        except OSError as exc:
            return ActionResult(ok=False, detail=f"cannot launch runner: {exc}", retryable=True)
        return ActionResult(ok=True, ref=str(d), detail="launched")

    def _cancel(self, job: Job) -> ActionResult:
        if not job.executor_ref:
            return ActionResult(ok=True, detail="not started")
        d = Path(job.executor_ref)
        started = d / "started"
        if (d / "exit").exists() or not started.exists():
            return ActionResult(ok=True, detail="not running")
        pid = json.loads(started.read_text())["pid"]
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        return ActionResult(ok=True, detail=f"sent SIGTERM to process group {pid}")

    def _status(self, job: Job, d: Path) -> JobUpdate | None:
        exit_file, started_file = d / "exit", d / "started"
        if exit_file.exists():
            info = json.loads(exit_file.read_text())
            code = int(info["code"])
            if job.state == JobState.CANCELLED:
                return None
            energy = info.get("energy") or {}  # the runner's NVML reading, if any
            gpu_kwh = joules_to_kwh(energy["joules"]) if "joules" in energy else None
            return JobUpdate(job.id, JobState.SUCCEEDED if code == 0 else JobState.FAILED,
                             reason=f"exit code {code}", exit_code=code,
                             started_at=datetime.fromisoformat(info["started"]),
                             ended_at=datetime.fromisoformat(info["ended"]),
                             gpu_kwh=gpu_kwh,
                             energy_meter=energy.get("method"))
        running = _is_locked(d / "lock")
        if running and started_file.exists():
            if job.state == JobState.SUBMITTED:
                info = json.loads(started_file.read_text())
                return JobUpdate(job.id, JobState.RUNNING, reason=f"pid {info['pid']}",
                                 started_at=datetime.fromisoformat(info["at"]))
            return None
        if running:
            return None  # launching
        spec = d / "spec.json"
        launched = datetime.fromtimestamp(spec.stat().st_mtime, UTC) if spec.exists() else None
        if started_file.exists() or launched is None or \
                datetime.now(UTC) - launched > LAUNCH_GRACE:
            return JobUpdate(job.id, JobState.QUEUED,
                             reason="lost: its runner ended without an exit status")
        return None
