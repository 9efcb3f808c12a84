"""Job commands: submit, queue, show, cancel. Each parses, makes one library call, renders."""

from __future__ import annotations

from typing import Annotated

import typer

from carbonplan.cli.common import (
    ConfigOption,
    DbOption,
    JsonOption,
    console,
    load_config,
    load_site,
    open_store,
    print_json,
)

STATE_STYLE = {
    "queued": "yellow", "planned": "cyan", "submitted": "blue", "running": "bold blue",
    "succeeded": "green", "failed": "red", "cancelled": "dim", "missed-deadline": "bold red",
}


def submit(
    args: Annotated[list[str] | None, typer.Argument(
        help="The command after '--' (e.g. -- python train.py), or a Slurm batch script whose "
             "#SBATCH lines give defaults.", show_default=False)] = None,
    name: Annotated[str | None, typer.Option(help="Job name \\[default: the command].")] = None,
    gpus: Annotated[int | None, typer.Option(
        help="GPUs (or MIG instances with --mig) \\[default: 1].", show_default=False)] = None,
    gpu_type: Annotated[str | None, typer.Option(
        "--gpu-type", help="GPU type(s), comma-separated, or 'any': h100-sxm, a100 (family), "
                           "l4,a10g ... \\[default: any].", show_default=False)] = None,
    mig: Annotated[str | None, typer.Option(help="MIG profile, e.g. 3g.40gb.")] = None,
    hours: Annotated[str | None, typer.Option(
        help="Run time on the reference GPU (A100-80GB): 6, 1.5 or 90m.")] = None,
    deadline: Annotated[str | None, typer.Option(
        help="Finish by this ISO time (local time unless it has an offset or Z).")] = None,
    within: Annotated[str | None, typer.Option(
        help="Finish within this long from now, e.g. 36h or 2d.")] = None,
    not_before: Annotated[str | None, typer.Option(
        "--not-before", help="Do not start before this ISO time.")] = None,
    checkpoint_every: Annotated[str | None, typer.Option(
        "--checkpoint-every", help="Checkpoint interval, e.g. 30m.")] = None,
    checkpoint_cost: Annotated[str | None, typer.Option(
        "--checkpoint-cost", help="Time to write or restore a checkpoint, e.g. 5m.")] = None,
    pausable: Annotated[bool, typer.Option(
        help="May be paused and resumed (each resume pays the checkpoint cost).")] = False,
    spot: Annotated[bool, typer.Option(
        "--spot/--no-spot", help="Allow spot capacity (used only when deadline-safe).")] = True,
    regions: Annotated[str | None, typer.Option(
        help="Allowed regions, comma-separated patterns: eu-*,us-west-2 \\[default: all].")] = None,
    home_region: Annotated[str | None, typer.Option(
        "--home-region", help="Region the job would run in without carbonplan.")] = None,
    user: Annotated[str | None, typer.Option(help="\\[default: the OS user]")] = None,
    project: Annotated[str | None, typer.Option(help="\\[default: the OS user's group]")] = None,
    watts: Annotated[float | None, typer.Option(
        help="Measured average power per GPU in watts \\[default: model estimate].")] = None,
    workdir: Annotated[str | None, typer.Option(
        help="Working directory for the job (Ray: uploaded at its start, or a package URI "
             "such as s3://bucket/proj.zip).")] = None,
    env: Annotated[list[str] | None, typer.Option(
        help="Environment variable KEY=VALUE for the job (repeatable).")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Queue a deferrable GPU job with a deadline."""
    from carbonplan.submission import SubmitRequest, prepare
    from carbonplan.timeparse import fmt_hours, fmt_time

    cfg, site = load_site(config)
    spec = prepare(SubmitRequest(
        args=list(args or []), name=name, gpus=gpus, gpu_type=gpu_type, mig=mig, hours=hours,
        deadline=deadline, within=within, not_before=not_before,
        checkpoint_every=checkpoint_every, checkpoint_cost=checkpoint_cost, pausable=pausable,
        spot=spot, regions=regions, home_region=home_region, user=user, project=project,
        watts=watts, workdir=workdir, env=list(env or [])), site)
    job = open_store(db, cfg).add_job(spec)
    if json_out:
        print_json(job.model_dump(mode="json"))
        return
    what = f"{job.gpus}x {job.mig or ','.join(job.gpu_types) or 'any GPU'}"
    console.print(f"Queued job [bold]{job.id}[/] ({job.name}): {what}, "
                  f"{fmt_hours(job.hours)} on the reference GPU, deadline "
                  f"{fmt_time(job.deadline)}.")


def queue(
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include finished jobs.")] = False,
    state: Annotated[list[str] | None, typer.Option(help="Only jobs in this state "
                                                         "(repeatable).")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's jobs.")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """List jobs: state, resources, deadline and planned placement."""
    from rich.table import Table

    from carbonplan.domain import ACTIVE_STATES, JobState
    from carbonplan.errors import InputError, unknown
    from carbonplan.timeparse import fmt_hours, fmt_time

    states: set[JobState] | None = None if all_ else set(ACTIVE_STATES)
    if state:
        try:
            states = {JobState(s) for s in state}
        except ValueError:
            bad = next(s for s in state if s not in {x.value for x in JobState})
            valid = [x.value for x in JobState]
            raise InputError("--state", unknown("state", bad, valid)) from None
    store = open_store(db, load_config(config))
    jobs = store.list_jobs(states=states, user=user)
    placed = store.latest_placements([j.id for j in jobs])
    if json_out:
        print_json([{**j.model_dump(mode="json"),
                     "placement": placed[j.id].model_dump(mode="json") if j.id in placed else None}
                    for j in jobs])
        return
    if not jobs:
        console.print("No jobs." if all_ else "No active jobs (use --all to see finished ones).")
        return
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ID", "NAME", "USER", "STATE", "GPUS", "WORK", "DEADLINE", "PLANNED"):
        t.add_column(col, justify="right" if col in ("ID", "GPUS") else "left", no_wrap=True)
    for j in jobs:
        p = placed.get(j.id)
        t.add_row(str(j.id), j.name[:32], j.user, f"[{STATE_STYLE[j.state.value]}]"
                  f"{j.state.value}[/]", f"{j.gpus}x{j.mig or ','.join(j.gpu_types) or 'any'}",
                  fmt_hours(j.hours), fmt_time(j.deadline),
                  f"{p.pool} @ {fmt_time(p.start)}" if p else "-")
    console.print(t)


def show(
    job_id: Annotated[int, typer.Argument(help="Job id.", show_default=False)],
    db: DbOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """One job's full record: what was asked, its placement, and its state history."""
    from rich.table import Table

    from carbonplan.timeparse import fmt_hours, fmt_time

    store = open_store(db, load_config(config))
    job = store.get_job(job_id)
    events = store.events(job_id)
    placed = store.latest_placement(job_id)
    attempts = store.attempts([job_id])
    if json_out:
        print_json({"job": job.model_dump(mode="json"),
                    "placement": placed[1].model_dump(mode="json") if placed else None,
                    "plan_id": placed[0] if placed else None,
                    "interrupted_runs": [a.model_dump(mode="json") for a in attempts],
                    "history": [e.model_dump(mode="json") for e in events]})
        return
    console.print(f"[bold]Job {job.id}[/] {job.name}  [{STATE_STYLE[job.state.value]}]"
                  f"{job.state.value}[/]")
    spec = Table(box=None, show_header=False, pad_edge=False)
    spec.add_column(style="dim")
    spec.add_column()
    rows = [
        ("user / project", f"{job.user} / {job.project}"),
        ("command", " ".join(job.command) if job.command else f"batch script {job.script}"),
        ("resources", f"{job.gpus}x {job.mig + ' MIG on ' if job.mig else ''}"
                      f"{', '.join(job.gpu_types) or 'any GPU'}"),
        ("work", f"{fmt_hours(job.hours)} on the reference GPU"),
        ("window", f"{fmt_time(job.not_before) if job.not_before else 'now'} -> "
                   f"{fmt_time(job.deadline)}"),
        ("checkpoints", (f"every {fmt_hours(job.checkpoint_every_h)}"
                         if job.checkpoint_every_h else "none")
         + f", cost {fmt_hours(job.checkpoint_cost_h)}" + (", pausable" if job.pausable else "")),
        ("markets", "on-demand, owned" + (", spot" if job.spot else "")),
        ("regions", ", ".join(job.regions) or "any"),
        ("power", f"{job.watts:.0f} W/GPU measured" if job.watts else "model estimate"),
        ("source", job.source + (f" ({job.external_id})" if job.external_id else "")),
        ("submitted", fmt_time(job.submitted_at)),
    ]
    if job.workdir:
        rows.append(("workdir", job.workdir))
    if job.env:
        rows.append(("env", ", ".join(sorted(job.env))))  # names only: values may be secrets
    for a in attempts:
        rows.append(("interrupted", f"attempt {a.attempt} on {a.pool}, {fmt_time(a.started_at)} "
                     f"-> {fmt_time(a.ended_at)}{'' if a.end_reported else ' (seen)'}: "
                     f"{a.reason or 'back to the queue'}; checkpointed "
                     f"{fmt_hours(a.done_h)}"))
    if job.started_at:
        ran = f"attempt {job.attempt} on {job.ran_pool or '?'} ({job.executor or '?'}), " \
              f"{fmt_time(job.started_at)} -> {fmt_time(job.ended_at) if job.ended_at else 'now'}"
        if job.exit_code is not None:
            ran += f", exit code {job.exit_code}"
        rows.append(("ran", ran))
    if job.gpu_kwh is not None:
        rows.append(("GPU energy", f"{job.gpu_kwh:.3f} kWh measured ({job.energy_meter}), "
                                   "before PUE"))
    for k, v in rows:
        spec.add_row(k, v)
    console.print(spec)
    latest = store.get_plan()
    if latest and job.id in latest[1].unplanned and job.active:
        console.print(f"\n[bold]Not planned[/] (plan {latest[0]}): {latest[1].unplanned[job.id]}")
    elif placed:
        plan_id, p = placed
        segs = (" in " + ", ".join(f"{fmt_time(a)}-{fmt_time(b)}" for a, b in p.segments)
                if p.segments else "")
        console.print(f"\n[bold]Placement[/] (plan {plan_id}): {p.pool}, {fmt_time(p.start)} -> "
                      f"{fmt_time(p.end)}{segs}; {p.energy_kwh:.1f} kWh, "
                      f"{p.kg_co2e + p.embodied_kg:.2f} kgCO2e ({p.embodied_kg:.2f} embodied), "
                      f"${p.cost_usd:.2f}")
        alts = p.explanation.get("alternatives", [])
        if alts:
            t = Table(box=None, header_style="bold", pad_edge=False, title_justify="left")
            for col in ("ALTERNATIVE IT BEAT", "POOL", "kgCO2e", "$", "PLAN SAVES"):
                t.add_column(col, no_wrap=True)
            for a in alts:
                fits = "" if a["fits"] else " (no room left)"
                t.add_row(a["label"] + fits, a["pool"], f"{a['kg_co2e']:.2f}", f"{a['usd']:.2f}",
                          f"{a['delta_kg_co2e']:+.2f} kg, {a['delta_usd']:+.2f} $")
            console.print(t)
    hist = Table(box=None, header_style="bold", pad_edge=False, title_justify="left")
    for col in ("AT", "FROM", "TO", "BY", "REASON"):
        hist.add_column(col, no_wrap=col != "REASON")
    for e in events:
        hist.add_row(fmt_time(e.at), e.from_state.value if e.from_state else "-",
                     e.to_state.value, e.actor, e.reason)
    console.print("\n[bold]History[/]")
    console.print(hist)


def cancel(
    job_ids: Annotated[list[int], typer.Argument(help="Job ids.", show_default=False)],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Cancel queued, planned or running jobs."""
    from carbonplan.errors import InputError

    store = open_store(db, load_config(config))
    jobs = [store.get_job(i) for i in job_ids]  # all must exist before any is cancelled
    for j in jobs:
        if not j.active:
            raise InputError(f"job {j.id}", f"is already {j.state.value}; nothing to cancel")
    for j in jobs:
        store.cancel(j.id)
        console.print(f"Cancelled job {j.id} ({j.name}).")
