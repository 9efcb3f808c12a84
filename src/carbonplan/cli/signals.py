"""`carbonplan forecast`: a zone's carbon intensity ahead (or back), as a chart and a table.

Parses, makes one library call (`SignalService.forecast` or `.history`) and renders. Heavy
imports (numpy, requests, the store) happen inside the command.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated

import typer

from carbonplan.cli.common import (
    ConfigOption,
    DbOption,
    JsonOption,
    console,
    load_config,
    open_store,
    print_json,
)

if TYPE_CHECKING:
    from carbonplan.config import SiteConfig
    from carbonplan.signals.series import Series

MAX_HOURS = 24 * 31
FLAG_STYLE = {"measurement": "green", "forecast": "cyan", "estimate": "yellow", "gap": "dim"}
SPARK = "▁▂▃▄▅▆▇█"
BAR_WIDTH = 40
CHART_WIDTH = 120


def forecast(
    zone: Annotated[str, typer.Argument(
        help="Grid zone id (Electricity Maps key), e.g. DE, SE, GB, US-CAL-CISO, or a region "
             "of the site or the catalog (us-west-1: its zone).",
        show_default=False)],
    hours: Annotated[float, typer.Option(
        help="Hours to show: ahead, or back with --history.")] = 72,
    provider: Annotated[str | None, typer.Option(
        help="offline, electricitymaps, watttime, ukgrid or csv \\[default: carbon.provider of "
             "the config].", show_default=False)] = None,
    history: Annotated[bool, typer.Option(
        "--history", help="Show the past instead of the forecast.")] = False,
    slot: Annotated[str | None, typer.Option(
        help="Slot length, e.g. 1h or 30m \\[default: planner.slot of the config].",
        show_default=False)] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show a zone's carbon-intensity forecast (or --history) with its source and issue time."""
    from datetime import timedelta

    from carbonplan.errors import InputError
    from carbonplan.signals.service import SignalService
    from carbonplan.timeparse import parse_duration

    if not math.isfinite(hours) or hours <= 0:
        raise InputError("--hours", f"must be a positive number of hours, got {hours:g}")
    if hours > MAX_HOURS:
        raise InputError("--hours", f"must be at most {MAX_HOURS} (31 days), got {hours:g}")
    cfg = load_config(config)
    zone = zone_of(zone, cfg)
    slot_h = parse_duration(slot or cfg.planner.slot, "--slot" if slot else
                            "config planner.slot").total_seconds() / 3600.0
    svc = SignalService(cfg.carbon, provider=provider,
                        provider_field="--provider" if provider else "carbon.provider")
    with svc:
        p = svc.provider_for(zone)
        p.check_zone(zone)  # a missing key or unserved zone is an error before any output
        if p.cacheable:
            svc.store = open_store(db, cfg)
        now = svc.clock()
        span = timedelta(hours=hours)
        series = (svc.history(zone, now - span, now, slot_h=slot_h) if history
                  else svc.forecast(zone, now, now + span, slot_h=slot_h))
    if json_out:
        print_json({**series.to_dict(), "slot_h": slot_h})
        return
    render(series)


def zone_of(name: str, cfg: SiteConfig) -> str:
    """`name` if it is a grid zone, else the zone of the site's (or the catalog's) region of
    that name: users think in regions. Raises InputError naming `zone` otherwise."""
    from carbonplan import catalog
    from carbonplan.catalog.zones import ZONES
    from carbonplan.errors import InputError, unknown

    if name in ZONES:
        return name
    regions = {**catalog.regions(), **cfg.to_site().regions}
    if name in regions:
        return regions[name].zone
    raise InputError("zone", unknown("grid zone or region", name, set(ZONES) | set(regions)))


def render(series: Series) -> None:
    """Header with provenance, a sparkline chart, then one table row per slot with a bar."""
    from rich.table import Table
    from rich.text import Text

    from carbonplan.catalog.zones import ZONES
    from carbonplan.signals.series import FLAG_NAMES, GAP, Flag
    from carbonplan.timeparse import fmt_time

    values = series.values
    names = ["gap" if f == GAP else FLAG_NAMES[Flag(int(f))] for f in series.flags]
    what = "history" if series.kind == "history" else "forecast"
    console.print(f"[bold]{series.zone}[/] {ZONES[series.zone][0]}: carbon intensity {what}, "
                  f"gCO2e/kWh ({series.signal} signal), {series.n} slots of "
                  f"{series.step_h:g} h")
    meta = Table(box=None, show_header=False, pad_edge=False)
    meta.add_column(style="dim")
    meta.add_column()
    meta.add_row("source", series.source)
    meta.add_row("issued", fmt_time(series.issued_at))
    meta.add_row("fetched", f"{fmt_time(series.fetched_at)} ({series.origin})")
    if series.provider_until and series.provider_until < series.end:
        meta.add_row("horizon", f"provider data until {fmt_time(series.provider_until)}; "
                                "later slots blend into the zone's typical profile")
    if series.dropped:
        meta.add_row("dropped", f"{series.dropped} invalid points from the provider")
    if series.note:
        meta.add_row("note", Text(series.note, style="yellow"))
    console.print(meta)
    if series.is_estimate:
        console.print("[bold yellow]ESTIMATE[/]: the built-in offline model (typical level and "
                      "daily/seasonal shape), not a forecast; see docs/signals.md.")
    console.print()
    console.print(_sparkline(values, names))
    lo, hi = float(values.min()), float(values.max())
    times = series.times()
    console.print(f"[dim]min {lo:.0f} at {fmt_time(times[int(values.argmin())])}, "
                  f"max {hi:.0f} at {fmt_time(times[int(values.argmax())])}, "
                  f"mean {float(values.mean()):.0f}[/]")
    console.print()
    t = Table(box=None, header_style="bold", pad_edge=False)
    t.add_column("TIME (UTC)", no_wrap=True)
    t.add_column("gCO2e/kWh", justify="right")
    t.add_column("KIND")
    t.add_column("")
    for when, v, name in zip(times, values, names, strict=True):
        style = FLAG_STYLE[name]
        t.add_row(fmt_time(when), f"{v:.0f}", f"[{style}]{name}[/]",
                  f"[{style}]{_bar(v, hi)}[/]")
    console.print(t)


def _sparkline(values: object, names: list[str]) -> object:
    """One block character per slot (bucketed to CHART_WIDTH), coloured by its kind."""
    import numpy as np
    from rich.text import Text

    v = np.asarray(values, dtype=float)
    k = max(1, math.ceil(v.size / CHART_WIDTH))
    n = math.ceil(v.size / k)
    means = np.array([v[i * k:(i + 1) * k].mean() for i in range(n)])
    lo, hi = float(v.min()), float(v.max())
    span = hi - lo or 1.0
    text = Text()
    for i, m in enumerate(means):
        level = min(len(SPARK) - 1, int((m - lo) / span * len(SPARK)))
        kinds = names[i * k:(i + 1) * k]
        style = FLAG_STYLE["estimate" if "estimate" in kinds else kinds[0]]
        text.append(SPARK[level], style=style)
    return text


def _bar(v: float, hi: float) -> str:
    """A horizontal bar with eighth-block resolution, BAR_WIDTH at the maximum."""
    eighths = round(v / hi * BAR_WIDTH * 8) if hi > 0 else 0
    full, part = divmod(eighths, 8)
    return "█" * full + ("" if part == 0 else "▏▎▍▌▋▊▉"[part - 1])
