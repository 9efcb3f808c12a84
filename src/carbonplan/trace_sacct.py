"""A job trace from Slurm accounting: `sacct -P` output as `carbonplan simulate` trace rows.

Why: a Slurm site's last month is in its accounting database; the platform team should not have
to hand-convert it before asking what carbon-aware placement would have saved. The export
(docs/simulate.md):

    TZ=UTC sacct -a -X -P -S 2026-10-01 -E 2026-11-01 \\
        -o JobID,JobName,User,Account,Submit,Start,Elapsed,AllocTRES,State > last-month.sacct

Each allocation that ran on GPUs becomes a row: submitted at `Submit`, `Elapsed` hours of work
(read as hours on the reference GPU: accounting says how long a job ran, not how fast its GPU
was), `gres/gpu` GPUs from `AllocTRES`, named by `JobName`, `User` and `Account`. Accounting
has no deadline; the row's deadline is its submission + its run time + a slack of
max(`slack_h`, `slack_factor` x run time), the same rule as the Philly example. Job steps
(`123.batch`), allocations that never started, jobs without GPUs and runs under a second are
skipped and counted. Times without an offset are UTC, as in the CSV trace, hence `TZ=UTC`.

Must not import the planner, the store or the executors.
"""

from __future__ import annotations

import re
from collections import Counter

from carbonplan.errors import InputError

REQUIRED = ("Submit", "Start", "Elapsed", "AllocTRES")
OPTIONAL = ("JobID", "JobIDRaw", "JobName", "User", "Account", "State", "Partition")
NEVER_STARTED = ("", "Unknown", "None")
_ELAPSED = re.compile(r"^(?:(?P<d>\d+)-)?(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)$")
_GPU = re.compile(r"(?:^|,)gres/gpu(?::[^=,]+)?=(?P<n>\d+)")
_UNTYPED_GPU = re.compile(r"(?:^|,)gres/gpu=(?P<n>\d+)")


def is_sacct(header: str) -> bool:
    """Whether a file's first line is a `sacct -P` header (fields separated by pipes, none by
    commas); which fields it has is checked by `sacct_rows`."""
    return "|" in header and "," not in header


def elapsed_hours(text: str) -> float | None:
    """sacct's `[D-][HH:]MM:SS` as hours; None when it is not one."""
    m = _ELAPSED.match(text.strip())
    if m is None:
        return None
    return (int(m["d"] or 0) * 24 + int(m["h"] or 0) + int(m["m"]) / 60
            + float(m["s"]) / 3600)


def gpus_in(tres: str) -> int:
    """GPUs of an `AllocTRES` value: its untyped `gres/gpu=N` when listed (Slurm lists it next
    to the typed counts, which would count them twice), else the sum of the typed ones."""
    untyped = _UNTYPED_GPU.search(tres)
    if untyped:
        return int(untyped["n"])
    return sum(int(m["n"]) for m in _GPU.finditer(tres))


def sacct_rows(lines: list[str], *, slack_h: float, slack_factor: float
               ) -> tuple[list[tuple[int, dict[str, str]]], Counter[str]]:
    """The GPU allocations of `sacct -P` output (header first) as trace rows, each with its
    line number; and how many lines were skipped, by why."""
    header = [h.strip() for h in lines[0].rstrip("\n").split("|")]
    missing = [f for f in REQUIRED if f not in header]
    if missing:
        raise InputError("TRACE", f"sacct output without field {', '.join(missing)}: export "
                                  "with -o JobID,JobName,User,Account,Submit,Start,Elapsed,"
                                  "AllocTRES,State (docs/simulate.md)")
    rows: list[tuple[int, dict[str, str]]] = []
    skipped: Counter[str] = Counter()
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        values = line.rstrip("\n").split("|")
        if len(values) != len(header):
            raise InputError(f"trace row {n}", f"{len(values)} fields where the header has "
                                               f"{len(header)}")
        rec = dict(zip(header, (v.strip() for v in values), strict=True))
        job_id = rec.get("JobID") or rec.get("JobIDRaw") or str(n)
        if "." in job_id:
            skipped["job steps"] += 1
            continue
        hours = elapsed_hours(rec["Elapsed"])
        if hours is None:
            raise InputError(f"trace row {n}, Elapsed",
                             f"not [D-]HH:MM:SS: '{rec['Elapsed']}'")
        if rec["Start"] in NEVER_STARTED:
            skipped["never started"] += 1
            continue
        gpus = gpus_in(rec["AllocTRES"])
        if gpus == 0:
            skipped["no GPU"] += 1
            continue
        if hours <= 0:
            skipped["ran under a second"] += 1
            continue
        slack = max(slack_h, slack_factor * hours)
        row = {"submit": rec["Submit"], "hours": f"{hours:.6f}",
               "deadline_h": f"{hours + slack:.6f}", "gpus": str(gpus),
               "name": (rec.get("JobName") or f"slurm-{job_id}")[:200]}
        if rec.get("User"):
            row["user"] = rec["User"][:100]
        if rec.get("Account"):
            row["project"] = rec["Account"][:100]
        rows.append((n, row))
    return rows, skipped
