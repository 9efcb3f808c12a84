"""Slurm's text formats that the Slurm executor reads and writes, as pure functions.

- carbonplan's segment in a job's admin_comment, `[carbonplan:<state> key=value ...]`: written by
  carbonplan.lua at submit (`tagged`) and replaced by the executor with its decision (`planned`,
  `released`), keeping whatever else the comment holds;
- job states (squeue, sacct, jobcomp) -> carbonplan job states;
- exit codes (squeue's wait status, sacct's and jobcomp's `code:signal`);
- jobcomp/filetxt lines and `sacct -P` rows.
Imports domain only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from carbonplan.domain import JobState

_SEGMENT = re.compile(r"\[carbonplan:(?P<state>[a-z-]+)(?P<body>[^\]]*)\]")


@dataclass(frozen=True)
class Tag:
    """carbonplan's segment of an admin_comment."""

    state: str                                 # tagged | planned | released
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return self.fields.get("mode", "open")

    @property
    def not_before(self) -> int | None:
        v = self.fields.get("not_before", "")
        return int(v) if v.isdigit() else None

    def render(self) -> str:
        body = "".join(f" {k}={v}" for k, v in self.fields.items())
        return f"[carbonplan:{self.state}{body}]"

    def evolve(self, state: str, **updates: str) -> Tag:
        """The same tag in a new state; keys given replace (or add to) the old ones."""
        return Tag(state, {**self.fields, **updates})


def parse_tag(admin_comment: str | None) -> Tag | None:
    """carbonplan's tag in an admin_comment, or None when the job was not tagged."""
    m = _SEGMENT.search(admin_comment or "")
    if m is None:
        return None
    fields = {}
    for tok in m.group("body").split():
        k, sep, v = tok.partition("=")
        if sep:
            fields[k] = v
    return Tag(m.group("state"), fields)


def with_tag(admin_comment: str | None, tag: Tag) -> str:
    """The admin_comment with carbonplan's segment replaced by `tag` (appended when absent)."""
    text = admin_comment or ""
    new = tag.render()
    if _SEGMENT.search(text):
        return _SEGMENT.sub(lambda _: new, text, count=1)
    return f"{text} {new}" if text.strip() else new


def has_word(text: str | None, word: str | None) -> bool:
    """True when `word` stands alone in `text` ('carbonplan:hours=2' has 'carbonplan')."""
    if not text or not word:
        return False
    return re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", text) is not None


_HOURS = re.compile(r"carbonplan:hours=(?P<h>\d+(?:\.\d+)?)")


def hours_estimate(comment: str | None) -> float | None:
    """A user's run-time estimate from `--comment 'carbonplan:hours=1.5'`, if any."""
    m = _HOURS.search(comment or "")
    return float(m.group("h")) if m else None


# ---------------------------------------------------------------------------------------------
# States and exit codes

RUNNING_STATES = frozenset({"RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "STOPPED",
                            "SIGNALING", "STAGE_OUT", "RESIZING"})
PENDING_STATES = frozenset({"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
                            "SPECIAL_EXIT"})
FINAL_STATES: dict[str, JobState] = {
    "COMPLETED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED,
    "TIMEOUT": JobState.FAILED,
    "NODE_FAIL": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "PREEMPTED": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
    "DEADLINE": JobState.MISSED_DEADLINE,
}


def base_state(text: str) -> str:
    """'CANCELLED by 0' / 'COMPLETED+' -> 'CANCELLED' / 'COMPLETED'."""
    return (text.split() or [""])[0].rstrip("+").upper()


def wait_status_exit_code(status: int) -> int:
    """squeue's exit_code is a wait status: the exit code, or 128 + the signal that killed it."""
    if status & 0x7F:
        return 128 + (status & 0x7F)
    return (status >> 8) & 0xFF


def colon_exit_code(text: str) -> int | None:
    """sacct's and jobcomp's 'code:signal' ('3:0', '0:9') -> 3 / 137."""
    code, _, sig = text.partition(":")
    if not code.isdigit():
        return None
    if sig.isdigit() and int(sig):
        return 128 + int(sig)
    return int(code)


# ---------------------------------------------------------------------------------------------
# Finished jobs: jobcomp/filetxt lines and sacct rows


@dataclass(frozen=True)
class Finished:
    """A job that left Slurm's queue, as the completion log or accounting tells it."""

    job_id: int
    state: str                 # Slurm's base state (COMPLETED, FAILED, DEADLINE...)
    partition: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    cluster: str = ""          # the cluster that ran it (sacct --federation), else ""


def _local_time(text: str) -> datetime | None:
    """Slurm's local 'YYYY-MM-DDTHH:MM:SS' (or epoch seconds) as an aware UTC datetime."""
    if not text or text in ("Unknown", "None", "N/A"):
        return None
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC) if int(text) > 0 else None
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None


_KV = re.compile(r"(\w+)=(\S*)")


def parse_jobcomp_line(line: str) -> Finished | None:
    """One jobcomp/filetxt line ('JobId=12 ... JobState=COMPLETED ... ExitCode=0:0')."""
    kv = dict(_KV.findall(line))
    jid = kv.get("JobId", "")
    if not jid.isdigit():
        return None
    return Finished(job_id=int(jid), state=base_state(kv.get("JobState", "")),
                    partition=kv.get("Partition", ""),
                    started_at=_local_time(kv.get("StartTime", "")),
                    ended_at=_local_time(kv.get("EndTime", "")),
                    exit_code=colon_exit_code(kv.get("ExitCode", "")))


SACCT_FIELDS = "JobIDRaw,State,Partition,Start,End,ExitCode"
SACCT_FEDERATION_FIELDS = SACCT_FIELDS + ",Cluster"


def parse_sacct_row(row: str) -> Finished | None:
    """One `sacct -P -n -o SACCT_FIELDS` row (times as epoch seconds: SLURM_TIME_FORMAT=%s),
    or SACCT_FEDERATION_FIELDS (a seventh column, the cluster)."""
    parts = row.split("|")
    if len(parts) < 6 or not parts[0].isdigit():
        return None  # job steps (12.batch) and headers
    jid, state, partition, start, end, exit_code = parts[:6]
    return Finished(job_id=int(jid), state=base_state(state), partition=partition,
                    started_at=_local_time(start), ended_at=_local_time(end),
                    exit_code=colon_exit_code(exit_code),
                    cluster=parts[6] if len(parts) > 6 else "")


def federated_record(records: list[Finished], ran_in: str | None) -> Finished:
    """The record of the run that counts among a federated job's records on several clusters.

    Each sibling a federation creates leaves a record: one that never ran (FAILED at submit
    when the cluster lacks the job's GRES, start = end) beside the one that ran. The cluster the
    job was last seen on wins; without one, the longest run (ties: the later record).
    """
    if ran_in:
        there = [r for r in records if r.cluster == ran_in]
        if there:
            return there[-1]

    def ran_s(r: Finished) -> float:
        if r.started_at is None or r.ended_at is None:
            return -1.0
        return (r.ended_at - r.started_at).total_seconds()

    return max(reversed(records), key=ran_s)


def final_record(records: list[Finished], ran_in: str | None = None) -> Finished:
    """The record of a job's last run among all Slurm kept of it (oldest first): the last one,
    or in a federation the last one of each cluster, of which `federated_record` picks."""
    last: dict[str, Finished] = {}
    for r in records:
        last.pop(r.cluster, None)  # keep the clusters in the order of their last records
        last[r.cluster] = r
    if len(last) == 1:
        return records[-1]
    return federated_record(list(last.values()), ran_in)
