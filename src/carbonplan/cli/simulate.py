"""`carbonplan simulate`: replay a past job trace under the planner and the baseline policies."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from carbonplan.cli.common import (
    ConfigOption,
    JsonOption,
    check_output_file,
    console,
    load_site,
    print_json,
)
from carbonplan.cli.planning import CarbonPriceOption, _check_numbers, _solver_name


def simulate(
    trace: Annotated[str, typer.Argument(help="Job trace: a CSV (docs/simulate.md: submit, "
                                              "hours, deadline or deadline_h, gpus, ...) or "
                                              "`sacct -P` output.")],
    policy: Annotated[list[str] | None, typer.Option(
        "--policy", help="Policy to replay (repeat for several) \\[default: all: carbonplan, "
                         "run-now, threshold, lowest-window, carbon-time, greedy].",
        show_default=False)] = None,
    since: Annotated[str | None, typer.Option(help="Only jobs submitted from this ISO time.",
                                              show_default=False)] = None,
    until: Annotated[str | None, typer.Option(help="Only jobs submitted before this ISO time.",
                                              show_default=False)] = None,
    forecast: Annotated[str, typer.Option(
        help="What plans know of carbon: 'persistence' (each hour as the same hour of the "
             "last day seen) or 'perfect' (what happened).")] = "persistence",
    replan_h: Annotated[float, typer.Option("--replan-h", help="Hours between re-plans.")
                        ] = 1.0,
    time_limit: Annotated[float, typer.Option(help="Seconds per plan of the planner.")] = 2.0,
    gap: Annotated[float, typer.Option(help="Relative gap at which a plan stops.")] = 0.01,
    solver: Annotated[str, typer.Option(help="Integer-master backend: highs, pulp, pyomo.")
                      ] = "highs",
    carbon_price: CarbonPriceOption = None,
    evictions: Annotated[bool, typer.Option(
        "--evictions/--no-evictions",
        help="Replay spot evictions at each pool's rate (seeded), or charge spot runs their "
             "expected rework in $ as plans do.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the eviction draws.")] = 0,
    eviction_rate: Annotated[float | None, typer.Option(
        "--eviction-rate", help="Evictions happen at this rate per hour on every spot pool, "
                                "while plans still assume the configured rates (what a "
                                "mis-estimated rate costs).", show_default=False)] = None,
    slack_h: Annotated[float | None, typer.Option(
        "--slack-h", help="sacct traces: deadline = submit + run time + max(this, "
                          "--slack-factor x run time); default 12.", show_default=False)
    ] = None,
    slack_factor: Annotated[float | None, typer.Option(
        "--slack-factor", help="sacct traces: see --slack-h; default 1.",
        show_default=False)] = None,
    runs_csv: Annotated[str | None, typer.Option(
        "--runs", help="Also write every job's run (or miss) under every policy to this CSV.",
        show_default=False)] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """What carbon-aware placement would have saved on a past trace: every policy replays it
    online (a job is known from its submission on), charged the carbon that happened."""
    from carbonplan.errors import InputError
    from carbonplan.sim import POLICIES, load_trace
    from carbonplan.sim import simulate as run
    from carbonplan.timeparse import parse_time

    policies = list(dict.fromkeys(policy or POLICIES))
    _check_numbers(time_limit, gap, carbon_price)
    _solver_name(solver)
    if runs_csv is not None:
        check_output_file(runs_csv, "--runs", (".csv",))
    start = parse_time(since, "--since") if since else None
    end = parse_time(until, "--until") if until else None
    if start and end and end <= start:
        raise InputError("--until", f"must be after --since ({start.isoformat()})")
    cfg, site = load_site(config)
    if carbon_price is not None:
        site = site.model_copy(update={"carbon_price_usd_per_t": carbon_price})
    data = load_trace(trace, site, since=start, until=end, slack_h=slack_h,
                      slack_factor=slack_factor)
    from carbonplan.signals.service import open_signals

    with open_signals(cfg) as signals, _progress(json_out) as progress:
        sim = run(data, site, signals, policies=policies, slot_h=cfg.planner.slot_h,
                  replan_h=replan_h, horizon_h=cfg.planner.horizon_h, forecast=forecast,
                  solver=solver, time_limit=time_limit, rel_gap=gap, evictions=evictions,
                  seed=seed, eviction_rate=eviction_rate, progress=progress)
    summary = sim.summary()
    if runs_csv is not None:
        summary["runs_csv"] = {"path": runs_csv, "rows": sim.write_runs(runs_csv)}
    summary["rejected_rows"] = {str(k): v for k, v in data.rejected.items()}
    summary["skipped_rows"] = data.skipped
    if json_out:
        print_json(summary)
        return
    render(summary)
    if runs_csv is not None:
        console.print(f"{summary['runs_csv']['rows']} rows written to {runs_csv}.")


class _progress:
    """A rich progress bar per policy on stderr (nothing with --json)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.bar, self.tasks = quiet, None, {}

    def __enter__(self) -> Any:
        if self.quiet:
            return None
        from rich.progress import Progress

        from carbonplan.cli.common import err_console

        self.bar = Progress(console=err_console, transient=True)
        self.bar.start()
        return self

    def __call__(self, policy: str, done: float) -> None:
        if policy not in self.tasks:
            self.tasks[policy] = self.bar.add_task(f"replaying: {policy}", total=1.0)
        self.bar.update(self.tasks[policy], completed=done)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def render(s: dict[str, Any]) -> None:
    from rich.table import Table

    st = s["settings"]
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(s["skipped_rows"].items()))
    skipped = f"; sacct lines skipped: {skipped}" if skipped else ""
    if not s["jobs"]:
        why = "; ".join(f"row {n}: {r}" for n, r in list(s["rejected_rows"].items())[:3])
        console.print(f"No job to replay: {s['rejected']} row(s) rejected"
                      + (f" ({why}{'; ...' if s['rejected'] > 3 else ''})" if why else "")
                      + f"{skipped}, none left in the period.")
        return
    console.print(f"[bold]Simulated[/] {s['jobs']} jobs from {s['start'][:16]} UTC until the last "
                  f"deadline ({s['end'][:16]}), re-planned every {st['replan_h']:g} h, "
                  f"{st['forecast']} forecast, carbon price ${st['carbon_price_usd_per_t']:g}/t; "
                  f"{s['rejected']} row(s) rejected (the site could not meet their deadline "
                  f"even alone){skipped}.")
    table = Table()
    for col in ("policy", "ran", "missed", "evicted", "kWh", "tCO2e", "$", "mean wait h",
                "vs run-now tCO2e", "vs run-now $", "plan s (max)"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for r in s["policies"]:
        vs = r.get("vs_run_now")
        table.add_row(r["policy"], str(r["jobs"]), str(r["missed"]),
                      str(r["evictions"]) if st["evictions"] else "-", f"{r['kwh']:,.1f}",
                      f"{r['t_co2e']:,.4f}", f"{r['cost_usd']:,.2f}", f"{r['mean_wait_h']:.1f}",
                      f"{-vs['saved_pct_co2e']:+.1f}%" if vs else "",
                      f"{-vs['saved_pct_usd']:+.1f}%" if vs else "",
                      f"{r['mean_plan_s']:.2f} ({r['max_plan_s']:.2f})")
    console.print(table)
    console.print("vs run-now: change over the jobs both ran (negative saves). Missed: still "
                  "waiting at the deadline (a real site would run them late). "
                  + ("Evicted: spot attempts cut short (their kWh, tCO2e and $ are counted; "
                     f"seed {st['seed']}"
                     + (f"; evictions at {st['eviction_rate_per_h']:g}/h on every spot pool, "
                        "plans assuming the configured rates"
                        if st.get("eviction_rate_per_h") is not None else "")
                     + ")." if st["evictions"] else
                     "Spot evictions not replayed: spot runs pay their expected rework."))
    planner = next((r for r in s["policies"] if "max_gap" in r), None)
    if planner is not None:
        console.print(f"Planner: {planner['plans']} plans, certified gap at most "
                      f"{100 * planner['max_gap']:.2f}% (mean {100 * planner['mean_gap']:.2f}%).")
