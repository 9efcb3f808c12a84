"""Slurm's commands, one cluster at a time: squeue, scontrol, scancel, sacct and the jobcomp file.

Each cluster is reached through its own slurm.conf (SLURM_CONF in the subprocess environment), so
several clusters on one machine or one login node need no federation. Commands are argument
lists with a timeout, never a shell. A failure raises `SlurmError`, which says whether trying
again may help (an unreachable controller) or not (an unknown job id). Imports formats only.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbonplan.executors.slurm_formats import (
    SACCT_FEDERATION_FIELDS,
    SACCT_FIELDS,
    Finished,
    final_record,
    parse_jobcomp_line,
    parse_sacct_row,
)

# stderr fragments of Slurm client errors that a later retry may not see
TRANSIENT = ("Unable to contact slurm controller", "Socket timed out", "Connection refused",
             "Zero Bytes were transmitted", "Resource temporarily unavailable",
             "backup controller in standby", "Communication connection failure",
             "Connection timed out", "Transport endpoint", "Unable to establish")

Runner = Callable[..., subprocess.CompletedProcess]


class SlurmError(RuntimeError):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class ClusterCli:
    """The commands of one cluster."""

    name: str
    slurm_conf: str
    timeout_s: float = 30.0
    accounting: bool = False
    jobcomp: str | None = None
    federation: bool = False  # accounting of every cluster in the federation (sacct --federation)
    run: Runner = subprocess.run

    def _env(self) -> dict[str, str]:
        # epoch seconds in sacct output; C locale so that messages can be matched
        return {**os.environ, "SLURM_CONF": self.slurm_conf, "SLURM_TIME_FORMAT": "%s",
                "LC_ALL": "C"}

    def call(self, argv: Sequence[str]) -> str:
        """Run one command; its stdout. Raises SlurmError."""
        try:
            cp = self.run(list(argv), env=self._env(), capture_output=True, text=True,
                          timeout=self.timeout_s, check=False)
        except FileNotFoundError:
            raise SlurmError(f"{argv[0]} not found: install the Slurm client commands "
                             "(Debian: slurm-client)", retryable=False) from None
        except subprocess.TimeoutExpired:
            raise SlurmError(f"{argv[0]} on cluster {self.name} timed out after "
                             f"{self.timeout_s:g}s", retryable=True) from None
        except OSError as exc:
            raise SlurmError(f"{argv[0]}: {exc}", retryable=True) from None
        if cp.returncode != 0:
            err = " ".join((cp.stderr or cp.stdout or "").split()) or f"exit {cp.returncode}"
            raise SlurmError(f"{' '.join(argv[:2])} on cluster {self.name}: {err}",
                             retryable=any(t in err for t in TRANSIENT))
        return cp.stdout

    # -- reads ---------------------------------------------------------------------------------

    def jobs(self) -> list[dict[str, Any]]:
        """Every job slurmctld still holds (pending, running, finished within MinJobAge).

        `squeue --json` (Slurm 21.08+) ignores squeue's filters, so callers filter. Records
        without a job id are left out: 22.05 lists a federated job's revoked sibling so.
        """
        out = self.call(["squeue", "--json"])
        try:
            jobs = json.loads(out).get("jobs", [])
        except (ValueError, AttributeError):
            raise SlurmError(f"squeue --json on cluster {self.name}: not JSON",
                             retryable=True) from None
        return [j for j in jobs if isinstance(j, dict) and isinstance(j.get("job_id"), int)]

    def finished(self, job_ids: Iterable[int], ran_in: Mapping[int, str] | None = None,
                 ) -> dict[int, Finished]:
        """Jobs that left the queue: from accounting (sacct), else the completion log; the
        record of each job's last run (`final_record`; `ran_in` names the cluster a federated
        job was last seen on)."""
        return {jid: final_record(rs, (ran_in or {}).get(jid))
                for jid, rs in self.runs(job_ids).items()}

    def runs(self, job_ids: Iterable[int]) -> dict[int, list[Finished]]:
        """Every record Slurm kept of each job, oldest first: one per run that a requeue ended
        (accounting's REQUEUED rows with `sacct -D`; jobcomp writes a line at each requeue)
        before the current or final one. In a federation, the records of every cluster that
        held a sibling, each naming its cluster."""
        ids = sorted(set(job_ids))
        if not ids:
            return {}
        if not self.accounting and self.jobcomp:
            return read_jobcomp_runs(Path(self.jobcomp), ids)
        # accounting: -D keeps the requeued runs, -X leaves out steps; else jobcomp/filetxt
        # through sacct, which lists every line anyway
        if self.federation:
            how: tuple[str, ...] = ("-D", "-X", "--federation")
        else:
            how = ("-D", "-X") if self.accounting else ("-c",)
        fields = SACCT_FEDERATION_FIELDS if self.federation else SACCT_FIELDS
        rows: dict[int, list[Finished]] = {}
        for row in self.call(["sacct", *how, "-P", "-n", "-o", fields, "-j",
                              ",".join(map(str, ids))]).splitlines():
            f = parse_sacct_row(row)
            if f is not None and f.job_id in ids:
                rows.setdefault(f.job_id, []).append(f)
        return rows

    # -- writes --------------------------------------------------------------------------------

    def update(self, job_id: int, fields: Sequence[str]) -> None:
        self.call(["scontrol", "update", f"JobId={job_id}", *fields])

    def release(self, job_id: int) -> None:
        self.call(["scontrol", "release", str(job_id)])

    def cancel(self, job_id: int) -> None:
        self.call(["scancel", str(job_id)])


def read_jobcomp_runs(path: Path, ids: Sequence[int]) -> dict[int, list[Finished]]:
    """Every line of `ids` in a jobcomp/filetxt file, oldest first: Slurm writes one when a
    requeue ends a run (JobState=PENDING, the run's start and end) and one at completion."""
    wanted = set(ids)
    out: dict[int, list[Finished]] = {}
    try:
        with open(path, errors="replace") as fh:
            for line in fh:
                if not line.startswith("JobId="):
                    continue
                f = parse_jobcomp_line(line)
                if f is not None and f.job_id in wanted:
                    out.setdefault(f.job_id, []).append(f)
    except FileNotFoundError:
        return {}  # no job has finished yet
    except OSError as exc:
        raise SlurmError(f"cannot read jobcomp file {path}: {exc.strerror}",
                         retryable=True) from None
    return out
