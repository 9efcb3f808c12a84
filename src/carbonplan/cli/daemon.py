"""`carbonplan daemon`: the re-planning loop (one cycle with --once, for cron and tests)."""

from __future__ import annotations

from typing import Annotated

import typer

from carbonplan.cli.common import ConfigOption, DbOption, JsonOption, console, print_json


def daemon(
    executor: Annotated[str | None, typer.Option(
        help="local, slurm or ray \\[default: the config's executor.kind].",
        show_default=False)] = None,
    once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit.")] = False,
    interval: Annotated[str, typer.Option(help="Time between cycles, e.g. 5m or 10s.")] = "5m",
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", help="Serve /metrics and /healthz on this port (0: any free port).",
        show_default=False)] = None,
    metrics_host: Annotated[str, typer.Option("--metrics-host")] = "127.0.0.1",
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning")
                         ] = "info",
    db: DbOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Watch signals and the queue, re-plan when it matters, apply the changes to executors."""
    import logging

    from carbonplan.cli.common import load_site, open_store
    from carbonplan.daemon import Daemon, DaemonSettings
    from carbonplan.errors import InputError, unknown
    from carbonplan.executors import make_executor
    from carbonplan.leadership import lease_for
    from carbonplan.metrics import Metrics
    from carbonplan.signals.service import open_signals
    from carbonplan.timeparse import parse_duration

    levels = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
    if log_level not in levels:
        raise InputError("--log-level", unknown("level", log_level, levels))
    interval_s = parse_duration(interval, "--interval").total_seconds()
    if metrics_port is not None and not 0 <= metrics_port < 65536:
        raise InputError("--metrics-port", f"must be 0-65535, got {metrics_port}")
    logging.basicConfig(level=levels[log_level],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg, site = load_site(config)
    from carbonplan.executors import KINDS

    if executor is not None and executor not in KINDS:
        raise InputError("--executor", unknown("executor", executor, KINDS))
    store = open_store(db, cfg)
    ex = make_executor(cfg, store.url, executor)
    metrics = Metrics()
    server = None
    if metrics_port is not None:
        server = metrics.serve(metrics_port, metrics_host, stale_after_s=3 * interval_s + 60)
        if not json_out:
            console.print(f"metrics on http://{metrics_host}:{server.server_address[1]}/metrics")
    settings = DaemonSettings.from_config(cfg, interval_s=interval_s)
    with open_signals(cfg, store) as signals:
        d = Daemon(store, site, ex, signals, settings=settings, lease=lease_for(store.engine),
                   metrics=metrics)
        try:
            if once:
                rep = d.run_once()
                d.lease.release()
                if json_out:
                    print_json(rep.__dict__)
                else:
                    from carbonplan.daemon import _describe

                    console.print(_describe(rep))
                return
            d.run(install_signals=True)
        finally:
            if server is not None:
                server.shutdown()
