"""`carbonplan report`: realized and projected tCO2e and cost, and the saving against run-now."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from carbonplan.cli.common import (
    ConfigOption,
    DbOption,
    JsonOption,
    check_output_file,
    console,
    load_site,
    open_store,
    print_json,
)

CHART_SUFFIXES = (".png", ".svg", ".pdf")


def report(
    since: Annotated[str, typer.Option(
        help="Start of the period: a duration back from now (30d, 12h) or an ISO time.")
    ] = "30d",
    until: Annotated[str, typer.Option(help="End of the period: 'now' or an ISO time.")
                     ] = "now",
    by: Annotated[str, typer.Option(help="Group realized jobs by region, pool, project or "
                                         "user.")] = "region",
    chart: Annotated[str | None, typer.Option(
        help="Also draw realized vs run-now tCO2e per group to this file (.png, .svg, .pdf; "
             "needs matplotlib).", show_default=False)] = None,
    jobs_too: Annotated[bool, typer.Option("--jobs", help="List every finished job too.")
                        ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Realized and projected tCO2e and $, with the saving against running every job at once."""
    from datetime import UTC, datetime

    from carbonplan.domain import TERMINAL_STATES
    from carbonplan.errors import InputError
    from carbonplan.report import GROUPS, build_report
    from carbonplan.timeparse import parse_duration, parse_time

    now = datetime.now(UTC)
    try:  # a duration back from now, or else a time
        start = now - parse_duration(since, "--since")
    except InputError:
        start = parse_time(since, "--since", now=now)
    end = parse_time(until, "--until", now=now)
    if end <= start:
        raise InputError("--until", f"must be after --since ({start.isoformat()})")
    if by not in GROUPS:
        raise InputError("--by", f"must be one of {', '.join(GROUPS)}, got '{by}'")
    if chart is not None:
        check_output_file(chart, "--chart", CHART_SUFFIXES)
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise InputError("--chart", "needs matplotlib: pip install 'carbonplan[report]'"
                             ) from None
    cfg, site = load_site(config)
    store = open_store(db, cfg)
    from carbonplan.signals.service import open_signals

    # a job that ended in the period last changed in it or after
    jobs = store.list_jobs(states=TERMINAL_STATES, updated_since=start)
    with open_signals(cfg, store) as signals:
        rep = build_report(jobs, site, signals, since=start, until=end, by=by,
                           slot_h=cfg.planner.slot_h, latest=store.get_plan(),
                           attempts=store.attempts([j.id for j in jobs]))
    if chart is not None:
        from carbonplan.report import chart as draw

        draw(rep, chart)
    if not jobs_too:
        rep.pop("jobs")
    if json_out:
        print_json(rep)
        return
    render(rep, chart)


def _t(x: float) -> str:
    """tCO2e with the decimals a small site's figures need (a 2-h job is a few kg)."""
    return f"{x:,.3f}" if abs(x) >= 10 else f"{x:.4f}" if abs(x) >= 0.1 else f"{x:.6f}"


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}" if x >= 1e-3 or x == 0 else f"{x:.2e}"


def _usd(x: float) -> str:
    return f"{x:,.2f}"


def _saved(d: dict[str, Any]) -> tuple[str, str]:
    s = d["saved"]
    return ("+" if s["t_co2e"] >= 0 else "") + _t(s["t_co2e"]), f"{s['cost_usd']:+,.2f}"


def render(rep: dict[str, Any], chart: str | None) -> None:
    from rich.table import Table

    r = rep["realized"]
    console.print(f"[bold]Realized[/], jobs finished {rep['since'][:16]} to {rep['until'][:16]} "
                  f"UTC: {r['jobs']} jobs ({r['measured_jobs']} with metered GPU energy, the "
                  "rest from the power model)")
    if r["jobs"]:
        table = Table(show_lines=False)
        for col in (rep["by"], "jobs", "kWh", "tCO2e", "of it embodied", "$",
                    "run-now tCO2e", "run-now $", "saved tCO2e", "saved $"):
            table.add_column(col, justify="left" if col == rep["by"] else "right")
        for g in [*rep["groups"], {rep["by"]: "[bold]total[/]", **r}]:
            table.add_row(str(g[rep["by"]]), str(g["jobs"]), f"{g['kwh']:,.1f}",
                          _t(g["t_co2e"]), _t(g["embodied_t"]), _usd(g["cost_usd"]),
                          _t(g["run_now"]["t_co2e"]), _usd(g["run_now"]["cost_usd"]),
                          *_saved(g))
        console.print(table)
        if r["unpriced_jobs"]:
            console.print(f"{r['unpriced_jobs']} finished job(s) are not counted: no run "
                          "recorded (failed before starting), or a pool no longer configured.")
        if r["compared_jobs"] < r["jobs"]:
            console.print(f"{r['jobs'] - r['compared_jobs']} job(s) had no non-spot pool to "
                          "compare with; the saving counts the others.")
        console.print(f"Saved against run-now: [bold]{_t(r['saved']['t_co2e'])} tCO2e[/] "
                      f"({100 * r['saved']['share_co2e']:.1f}%) and "
                      f"{r['saved']['cost_usd']:,.2f} $.")
    lost = r["interrupted"]
    if lost["runs"]:
        console.print(f"Counted above: {lost['runs']} run(s) that did not finish their job "
                      "(preempted, requeued, lost, or cut short by a cancel or the deadline): "
                      f"{lost['kwh']:,.1f} kWh, {_t(lost['t_co2e'])} "
                      f"tCO2e, {_usd(lost['cost_usd'])} $"
                      + (f"; {lost['unfinished_jobs']} of their jobs never finished"
                         if lost["unfinished_jobs"] else "") + ".")
    if rep["interruptions"]:
        table = Table(title="Interruptions per pool (the period's jobs)")
        for col in ("pool", "runs", "run-hours", "interrupted", "measured /h", "assumed /h"):
            table.add_column(col, justify="left" if col == "pool" else "right")
        for row in rep["interruptions"]:
            table.add_row(row["pool"], str(row["runs"]), f"{row['run_h']:,.1f}",
                          str(row["interrupted"]), _rate(row["per_h"]),
                          _rate(row["assumed_per_h"]))
        console.print(table)
    for job in rep.get("jobs") or []:
        base, whole, lost = job["run_now"], job["whole"], job["interrupted"]
        console.print(f"  job {job['job_id']} {job['name']} ({job['state']}): {job['pool']}, "
                      f"{whole['kwh']:.2f} kWh, "
                      f"{whole['kg_co2e'] + whole['embodied_kg']:.3f} kgCO2e, "
                      f"{whole['cost_usd']:.2f} $"
                      + (f" ({job['interrupted_runs']} unfinished run(s) included: "
                         f"{lost['kwh']:.2f} kWh)" if lost else "")
                      + (f"; run-now {job['run_now_pool']}: "
                         f"{base['kg_co2e'] + base['embodied_kg']:.3f} kgCO2e, "
                         f"{base['cost_usd']:.2f} $" if base else ""))
    p = rep["projected"]
    if p is None:
        console.print("[bold]Projected[/]: no plan yet.")
    else:
        line = (f"[bold]Projected[/], plan {p['plan_id']} ({p['created_at'][:16]} UTC, "
                f"{p['trigger']}): {p['placed']} placed, {p['unplanned']} unplanned, "
                f"{p['kwh']:,.1f} kWh, {_t(p['t_co2e'])} tCO2e, {_usd(p['cost_usd'])} $")
        if "saved" in p:
            base, saved = p["run_now"], p["saved"]
            line += (f"; against run-now ({_t(base['t_co2e'])} tCO2e, {_usd(base['cost_usd'])} "
                     f"$, {base['late']} job(s) late): saves {_t(saved['t_co2e'])} tCO2e and "
                     f"{_usd(saved['cost_usd'])} $")
        console.print(line + ".")
    if chart:
        console.print(f"Chart written to {chart}.")
