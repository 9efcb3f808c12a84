"""The `carbonplan` command line (Typer). `main()` is the console script.

Commands live in small modules by topic and are registered here. Bad input anywhere (an
`InputError`, or a usage error from the parser) becomes one line on stderr and exit code 2; nothing
is written before all input is validated.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from carbonplan import __version__
from carbonplan.cli import daemon, execution, jobs, planning, report, setup, signals, simulate
from carbonplan.cli.common import error_line

app = typer.Typer(
    name="carbonplan",
    help="Plan deferrable GPU jobs across regions, hours, spot/on-demand and GPU/MIG sizes for "
         "less cost and carbon, without missing deadlines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold keys and tokens
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"carbonplan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    pass


app.command("init")(setup.init)
app.command("submit")(jobs.submit)
app.command("queue")(jobs.queue)
app.command("show")(jobs.show)
app.command("cancel")(jobs.cancel)
app.command("forecast")(signals.forecast)
app.command("logs")(execution.logs)
app.command("plan")(planning.plan)
app.command("demo")(planning.demo)
app.command("daemon")(daemon.daemon)
app.command("report")(report.report)
app.command("simulate")(simulate.simulate)


def _usage_error_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [typer.TyperException]
    try:  # typer releases that use click itself rather than a vendored copy
        import click

        types.append(click.ClickException)
    except ImportError:
        pass
    return tuple(types)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on `argv` and return the exit code (tests call this)."""
    from carbonplan.errors import InputError

    try:
        rv = app(args=argv, prog_name="carbonplan", standalone_mode=False)
    except InputError as exc:
        error_line(f"{exc.field}: {exc.reason}")
        return 2
    except KeyboardInterrupt:
        error_line("interrupted")
        return 130
    except _usage_error_types() as exc:
        if type(exc).__name__ == "Abort":
            return 130
        fmt = getattr(exc, "format_message", None)
        error_line(fmt() if fmt else str(exc))
        return int(getattr(exc, "exit_code", 2) or 2)
    return rv if isinstance(rv, int) else 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))
