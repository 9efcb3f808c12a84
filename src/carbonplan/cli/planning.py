"""Planning commands: plan (the queue, now) and demo (a realistic queue on the built-in catalog)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from carbonplan.cli.common import (
    ConfigOption,
    DbOption,
    JsonOption,
    console,
    load_site,
    open_store,
    print_json,
)

if TYPE_CHECKING:
    from carbonplan.planning import PlanningRun

SolverOption = Annotated[str | None, typer.Option(
    "--solver", help="Integer-master backend: highs, pulp[:SOLVER], pyomo[:SOLVER] "
                     "\\[default: the config's planner.solver].", show_default=False)]
TimeLimitOption = Annotated[float | None, typer.Option(
    "--time-limit", help="Seconds for the solve \\[default: planner.time_limit_s].",
    show_default=False)]
GapOption = Annotated[float | None, typer.Option(
    "--gap", help="Stop at this relative gap to the bound, e.g. 0.01 \\[default: planner.rel_gap].",
    show_default=False)]
CarbonPriceOption = Annotated[float | None, typer.Option(
    "--carbon-price", help="$ per tCO2e in the objective \\[default: site.carbon_price_usd_per_t].",
    show_default=False)]


def _check_numbers(time_limit: float | None, gap: float | None,
                   carbon_price: float | None) -> None:
    from carbonplan.errors import InputError

    if time_limit is not None and not time_limit > 0:
        raise InputError("--time-limit", f"must be > 0, got {time_limit}")
    if gap is not None and not 0 < gap < 1:
        raise InputError("--gap", f"must be between 0 and 1, got {gap}")
    if carbon_price is not None and not carbon_price >= 0:
        raise InputError("--carbon-price", f"must be >= 0, got {carbon_price}")


def _solver_name(solver: str) -> str:
    from carbonplan.errors import InputError, unknown
    from carbonplan.planner.backends import BACKENDS

    base = solver.split(":", 1)[0]
    if base not in BACKENDS.names():
        raise InputError("--solver", unknown("solver", base, BACKENDS.names()))
    return solver


class _ProgressView:
    """A rich live line: phase, objective, bound, gap, elapsed."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress = None
        self._task = None

    def __enter__(self) -> _ProgressView:
        if self.enabled:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                      TimeElapsedColumn(), console=console, transient=True)
            self._progress.__enter__()
            self._task = self._progress.add_task("planning", total=None)
        return self

    def __call__(self, p: Any) -> None:
        if self._progress is None:
            return
        obj = f"{p.objective:,.2f}" if p.objective < float("inf") else "-"
        bound = f"{p.bound:,.2f}" if p.bound > float("-inf") else "-"
        gap = f"{100 * p.gap:.2f}%" if p.objective < float("inf") and p.bound > float(
            "-inf") else "-"
        self._progress.update(self._task, description=f"{p.phase:<10} objective {obj}  bound "
                                                      f"{bound}  gap {gap}  {p.message}")

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


def plan(
    solver: SolverOption = None,
    time_limit: TimeLimitOption = None,
    gap: GapOption = None,
    carbon_price: CarbonPriceOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and show, store nothing.")
                       ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Plan every queued job now: where, when, on what, at what cost and carbon."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from carbonplan.domain import ACTIVE_STATES, JobState
    from carbonplan.eviction_rates import for_plan, recorded
    from carbonplan.planner.build import Frozen
    from carbonplan.planning import plan_jobs
    from carbonplan.signals.service import open_signals

    _check_numbers(time_limit, gap, carbon_price)
    cfg, site = load_site(config)
    solver = _solver_name(solver or cfg.planner.solver)
    if carbon_price is not None:
        site = site.model_copy(update={"carbon_price_usd_per_t": carbon_price})
    store = open_store(db, cfg)
    now = datetime.now(UTC)
    jobs = store.list_jobs(states=ACTIVE_STATES)
    latest = store.get_plan()
    previous = {p.job_id: p for p in latest[1].placements} if latest else {}
    pools = {p.name for p in site.pools}
    frozen = {j.id: Frozen(pool=j.ran_pool, start=j.started_at or now) for j in jobs
              if j.state in (JobState.SUBMITTED, JobState.RUNNING) and j.ran_pool in pools}
    site, rates = for_plan(site, store, window_h=cfg.planner.learn_evictions_h,
                           prior_h=cfg.planner.eviction_prior_h, now=now)
    with open_signals(cfg, store) as signals, _ProgressView(not json_out) as view:
        run = plan_jobs(jobs, site, signals, now=now, slot_h=cfg.planner.slot_h,
                        horizon_h=cfg.planner.horizon_h, solver=solver,
                        time_limit=time_limit or cfg.planner.time_limit_s,
                        rel_gap=gap or cfg.planner.rel_gap, frozen=frozen, previous=previous,
                        progress=view)
    run = replace(run, plan=recorded(run.plan, rates))
    plan_id = None if dry_run or not jobs else store.save_plan(run.plan)
    if json_out:
        print_json({"plan_id": plan_id, **run.plan.model_dump(mode="json")})
        return
    if not jobs:
        console.print("No active jobs to plan.")
        return
    render_plan(run, {j.id: j for j in jobs}, plan_id)
    for pool, r in sorted(rates.items()):
        sib = r.get("siblings")
        also = (f" and {sib['interrupted']} in {sib['run_h']:,.1f} on {sib['pools']} other "
                f"pool(s) of its GPU" if sib else "")
        console.print(f"Eviction rate of {pool}: {r['learned']:.4g}/h learned from "
                      f"{r['interrupted']} interruption(s) in {r['run_h']:,.1f} run-hours{also} "
                      f"over {cfg.planner.learn_evictions} (configured {r['configured']:.4g}/h).")


def render_plan(run: PlanningRun, jobs: dict[int, Any], plan_id: int | None) -> None:
    """The schedule table, the certificate and the savings against the baselines."""
    from rich.table import Table

    plan = run.plan
    t = Table(box=None, header_style="bold", pad_edge=False,
              caption="VS RUN-NOW: this placement minus running the job now in its home region"
                      " on demand (negative saves)." if plan.placements else None,
              caption_justify="left")
    for col in ("JOB", "NAME", "POOL", "START", "END", "kWh", "kgCO2e", "$", "VS RUN-NOW"):
        t.add_column(col, justify="right" if col in ("JOB", "kWh", "kgCO2e", "$") else "left",
                     no_wrap=True)
    for p in sorted(plan.placements, key=lambda p: (p.start, p.job_id)):
        job = jobs.get(p.job_id)
        t.add_row(str(p.job_id), (job.name if job else "")[:24], p.pool, _short(p.start),
                  _short(p.end) + (f" ({len(p.segments)} parts)" if p.segments else ""),
                  f"{p.energy_kwh:,.1f}", f"{p.kg_co2e + p.embodied_kg:,.2f}",
                  f"{p.cost_usd:,.2f}", _vs_run_now(p.explanation))
    console.print(t)
    if plan.unplanned:
        console.print(f"\n[bold]Not planned[/] ({len(plan.unplanned)}):")
        for jid, why in sorted(plan.unplanned.items()):
            console.print(f"  job {jid}: {why}")
    ev = plan.details.get("evaluation", {})
    gap = f"{100 * plan.gap:.2f}%" if plan.gap == plan.gap and plan.bound > float(
        "-inf") else "n/a"
    console.print(
        f"\n[bold]Plan[/]{f' {plan_id}' if plan_id else ' (not stored)'}: {plan.status}, "
        f"objective {plan.objective:,.2f}, bound {plan.bound:,.2f}, gap {gap}, "
        f"{plan.seconds:.1f}s ({plan.solver}); {len(plan.placements)} placed, "
        f"{len(plan.unplanned)} not planned")
    saved = plan.details.get("savings", {})
    if ev:
        console.print(f"Projected: ${ev.get('cost_usd', 0):,.2f}, "
                      f"{1000 * ev.get('t_co2e', 0):,.1f} kgCO2e "
                      f"({1000 * ev.get('t_embodied', 0):,.1f} embodied), "
                      f"{ev.get('energy_kwh', 0):,.0f} kWh")
    for names, sv in same_baselines(saved, plan.details.get("baselines", {})):
        alike = "equal figures; " if len(names) > 1 else ""
        n_miss = sv["baseline_unplaced"]
        misses = (f"; it misses {n_miss} deadline{'s' if n_miss > 1 else ''} the plan meets"
                  if n_miss else "")
        console.print(f"  vs {', '.join(names)} ({alike}on the {sv['jobs_compared']} jobs both "
                      f"place): "
                      f"{_signed(sv['usd'], '$', 'saves', 'costs')} ({sv['pct_usd']:+.0f}%), "
                      f"{_signed(sv['kg_co2e'], 'kgCO2e', 'saves', 'emits')} "
                      f"({sv['pct_co2e']:+.0f}%){misses}")


def same_baselines(saved: dict[str, dict], baselines: dict[str, dict]
                   ) -> list[tuple[list[str], dict]]:
    """Baselines whose figures are all equal, together, in first-seen order: with a flat carbon
    intensity at home (the offline model is flat for non-solar grids) the temporal policies all
    run every job at once, and four equal lines read like a bug."""
    groups: dict[tuple, tuple[list[str], dict]] = {}
    for name, sv in saved.items():
        key = (tuple(sorted(sv.items())), tuple(sorted(baselines.get(name, {"": name}).items())))
        groups.setdefault(key, ([], sv))[0].append(name)
    return list(groups.values())


def _short(t: Any) -> str:
    return t.strftime("%d %H:%MZ")


def _signed(value: float, unit: str, good: str, bad: str) -> str:
    """'saves $12.00' / 'costs $3.00 more' for a baseline-minus-plan difference."""
    amount = f"${abs(value):,.2f}" if unit == "$" else f"{abs(value):,.1f} {unit}"
    return f"{good} {amount}" if value >= 0 else f"{bad} {amount} more"


def _vs_run_now(explanation: dict[str, Any]) -> str:
    """The plan's change against running the job now at home: -2.1 kg -$30 (negative saves)."""
    for alt in explanation.get("alternatives", []):
        if alt.get("label") == "run-now":
            kg, usd = -alt["delta_kg_co2e"], -alt["delta_usd"]
            return f"{kg:+,.2f} kg {'-' if usd < 0 else '+'}${abs(usd):,.2f}"
    return "-"


def demo(
    jobs: Annotated[int, typer.Option(help="Jobs in the demo queue.", min=1, max=2000)] = 40,
    seed: Annotated[int, typer.Option(help="Seed of the demo queue.")] = 7,
    time_limit: TimeLimitOption = None,
    solver: SolverOption = None,
    json_out: JsonOption = False,
) -> None:
    """Plan a realistic demo queue on the built-in catalog and carbon model (temporary store)."""
    import tempfile
    from datetime import UTC, datetime

    from carbonplan.demo import demo_queue, demo_site
    from carbonplan.planning import plan_jobs
    from carbonplan.signals.service import SignalService
    from carbonplan.store import open_store as open_db

    _check_numbers(time_limit, None, None)
    cfg, site = demo_site()
    solver = _solver_name(solver or cfg.planner.solver)
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="carbonplan-demo-") as tmp:
        store = open_db(f"{tmp}/demo.db")
        queued = store.add_jobs(demo_queue(site, now=now, n=jobs, seed=seed), actor="demo")
        if not json_out:
            console.print(f"Demo: {len(queued)} jobs on {len(site.pools)} pools in "
                          f"{len(site.regions)} regions (built-in catalog, offline carbon model:"
                          f" estimates), carbon price ${site.carbon_price_usd_per_t:.0f}/t.")
        signals = SignalService(cfg.carbon, store)
        with _ProgressView(not json_out) as view:
            run = plan_jobs(queued, site, signals, now=now,
                            slot_h=cfg.planner.slot_h, horizon_h=cfg.planner.horizon_h,
                            solver=solver, time_limit=time_limit or 20.0, rel_gap=0.005,
                            baselines=("run-now", "threshold", "lowest-window", "carbon-time",
                                       "greedy"), progress=view, trigger="demo")
        plan_id = store.save_plan(run.plan)
        if json_out:
            print_json({"plan_id": plan_id, **run.plan.model_dump(mode="json")})
            return
        render_plan(run, {j.id: j for j in queued}, plan_id)
        best = min(run.plan.details["baselines"].items(), key=lambda kv: kv[1]["objective"])
        console.print(f"Best baseline: {best[0]} (objective {best[1]['objective']:,.2f}); the "
                      f"plan's objective is {run.plan.objective:,.2f}.")
