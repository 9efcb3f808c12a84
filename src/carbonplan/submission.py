"""Turn what a user typed into a validated `JobSpec`, then queue it.

All validation happens before the store is opened, so bad input writes nothing. Errors name the
CLI flag. A job that could not run even alone (no eligible pool, or a deadline shorter than its run
on the fastest eligible GPU) is rejected here with the reason.
"""

from __future__ import annotations

import getpass
import grp
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from carbonplan import eligibility
from carbonplan.domain import JobSpec, Site, input_error
from carbonplan.errors import InputError
from carbonplan.sbatch import parse_sbatch
from carbonplan.timeparse import fmt_hours, fmt_time, parse_duration, parse_time

# JobSpec field -> the flag a user typed, for error messages.
FLAGS = {
    "name": "--name", "user": "--user", "project": "--project", "gpus": "--gpus",
    "gpu_types": "--gpu-type", "mig": "--mig", "hours": "--hours", "deadline": "--deadline",
    "not_before": "--not-before", "checkpoint_every_h": "--checkpoint-every",
    "checkpoint_cost_h": "--checkpoint-cost", "pausable": "--pausable", "spot": "--spot",
    "regions": "--regions", "home_region": "--home-region", "watts": "--watts",
    "workdir": "--workdir", "env": "--env", "command": "command", "script": "script",
}


@dataclass
class SubmitRequest:
    """The raw inputs of `carbonplan submit` (strings where parsing can fail)."""

    args: list[str] = field(default_factory=list)  # the command after '--', or [script]
    name: str | None = None
    gpus: int | None = None
    gpu_type: str | None = None
    mig: str | None = None
    hours: str | None = None
    deadline: str | None = None
    within: str | None = None
    not_before: str | None = None
    checkpoint_every: str | None = None
    checkpoint_cost: str | None = None
    pausable: bool = False
    spot: bool = True
    regions: str | None = None
    home_region: str | None = None
    user: str | None = None
    project: str | None = None
    watts: float | None = None
    workdir: str | None = None
    env: list[str] = field(default_factory=list)


def default_user() -> str:
    return getpass.getuser()


def default_project() -> str:
    try:
        return grp.getgrgid(os.getgid()).gr_name
    except KeyError:
        return default_user()


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _hours(text: str) -> float:
    try:
        h = float(text)
    except ValueError:
        return parse_duration(text, "--hours").total_seconds() / 3600.0
    if not h > 0:
        raise InputError("--hours", f"must be > 0, got {text}")
    return h


_LAUNCHERS = {"python", "python3", "bash", "sh", "torchrun", "accelerate", "deepspeed", "srun",
              "uv", "poetry", "env", "nohup", "apptainer", "singularity", "docker"}


def default_name(argv: list[str]) -> str:
    """A readable job name: the script a launcher runs ('python train.py' -> 'train.py')."""
    base = Path(argv[0]).name
    if base.rstrip("0123456789.") in _LAUNCHERS:
        for arg in argv[1:]:
            if not arg.startswith("-") and "=" not in arg:
                return Path(arg).name
    return base


def _is_batch_script(args: list[str]) -> bool:
    if len(args) != 1:
        return False
    p = Path(args[0])
    try:
        return p.is_file() and "#SBATCH" in p.read_text(errors="replace")[:65536]
    except OSError:
        return False


def prepare(req: SubmitRequest, site: Site, *, now: datetime | None = None) -> JobSpec:
    """Validate a submit request against the site. Raises InputError naming the flag."""
    now = now or datetime.now(UTC)
    command: list[str] | None = None
    script: str | None = None
    directives = None
    if _is_batch_script(req.args):
        path = Path(req.args[0]).resolve()
        script = str(path)
        directives = parse_sbatch(path.read_text(errors="replace"), source=path.name)
    elif req.args:
        command = list(req.args)
    else:
        raise InputError("command", "give the command after '--' (or a Slurm batch script)")

    if req.deadline and req.within:
        raise InputError("--deadline", "give --deadline or --within, not both")
    not_before = parse_time(req.not_before, "--not-before", now=now) if req.not_before else None
    if req.within:
        deadline = now + parse_duration(req.within, "--within")
    elif req.deadline:
        deadline = parse_time(req.deadline, "--deadline", now=now)
    elif directives and directives.deadline:
        deadline = parse_time(directives.deadline, "script --deadline", now=now)
    else:
        raise InputError("--deadline", "is required (an ISO time, or --within 36h)")
    if not_before is None and directives and directives.begin:
        not_before = parse_time(directives.begin, "script --begin", now=now)

    gpu_types = _split(req.gpu_type)
    if not gpu_types and directives and directives.gpu_type:
        gpu_types = [directives.gpu_type]
    gpus = req.gpus if req.gpus is not None else (directives.gpus if directives else None) or 1

    if req.hours is not None:
        hours = _hours(req.hours)
    elif directives and directives.time_min:
        # the script's time limit is on its GPU type; convert to reference-GPU hours (slowest match)
        accs = [site.accelerators[a] for a in site.accelerators_matching(gpu_types)]
        hours = directives.time_min / 60.0 * min((a.speed for a in accs), default=1.0)
    else:
        raise InputError("--hours", "is required (run time on the reference GPU, "
                                    f"{site.reference_gpu})")

    env: dict[str, str] = {}
    for item in req.env:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise InputError("--env", f"expected KEY=VALUE, got '{item}'")
        env[key] = val
    workdir = None
    if req.workdir is not None and "://" in req.workdir:
        workdir = req.workdir  # a remote package a Ray cluster fetches (s3://, gs://, https://)
    elif req.workdir is not None:
        wd = Path(req.workdir).expanduser()
        if not wd.is_dir():
            raise InputError("--workdir", f"no such directory: {wd}")
        workdir = str(wd.resolve())

    name = req.name or (directives.name if directives and directives.name else None)
    name = name or (Path(script).name if script else default_name(command or ["job"]))
    try:
        spec = JobSpec(
            name=name, user=req.user or default_user(), project=req.project or default_project(),
            command=command, script=script, gpus=gpus, gpu_types=gpu_types, mig=req.mig,
            hours=hours, deadline=deadline, not_before=not_before,
            checkpoint_every_h=(parse_duration(req.checkpoint_every, "--checkpoint-every")
                                .total_seconds() / 3600) if req.checkpoint_every else None,
            checkpoint_cost_h=(parse_duration(req.checkpoint_cost, "--checkpoint-cost",
                                              allow_zero=True).total_seconds() / 3600)
            if req.checkpoint_cost else 0.0,
            pausable=req.pausable, spot=req.spot, regions=_split(req.regions),
            home_region=req.home_region, watts=req.watts, workdir=workdir, env=env,
        )
    except ValidationError as exc:
        raise input_error(exc, names=FLAGS) from None
    check_feasible_alone(spec, site, now=now)
    return spec


def check_feasible_alone(spec: JobSpec, site: Site, *, now: datetime) -> None:
    """Reject a job that could not meet its deadline even with the whole site to itself."""
    eligibility.check_names(spec, site)
    if spec.deadline <= now:
        raise InputError("--deadline", f"{fmt_time(spec.deadline)} is in the past")
    options = eligibility.pool_options(spec, site)
    if not options:
        raise eligibility.explain_no_pool(spec, site)
    best = eligibility.fastest(options)
    start = max(now, spec.not_before) if spec.not_before else now
    window_h = (spec.deadline - start).total_seconds() / 3600.0
    if window_h < best.work_h:
        after = "not-before" if spec.not_before and spec.not_before > now else "now"
        raise InputError("--deadline", f"leaves {fmt_hours(window_h)} after {after}, but the "
                         f"job needs {fmt_hours(best.work_h)} on the fastest eligible GPU "
                         f"({best.pool.name})")
