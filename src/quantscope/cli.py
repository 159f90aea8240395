"""The quantscope command line: one typer app. Errors are one line on stderr; --debug shows tracebacks."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from quantscope.errors import QuantscopeError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Which quantization should I ship, and what does it cost? Measure, store, compare.",
)

StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="SQLite result store (default: $QUANTSCOPE_STORE or the XDG data dir)."),
]


@app.command("env")
def env_cmd(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show this machine's fingerprint (CPU, cores, RAM, GPU, versions).

    Example: quantscope env --json
    """
    import dataclasses
    import json

    from quantscope.env import fingerprint

    fp = fingerprint()
    if json_out:
        typer.echo(json.dumps(dataclasses.asdict(fp), indent=2))
        return
    for k, v in dataclasses.asdict(fp).items():
        if k == "cpu_flags":
            v = " ".join(v)
        elif k == "packages":
            v = ", ".join(f"{n} {ver}" for n, ver in v.items())
        elif k == "ram_bytes":
            v = f"{v / (1 << 30):.1f} GiB"
        typer.echo(f"{k:<20} {v}")


@app.command("results")
def results_cmd(
    store: StoreOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json | csv | markdown")] = "table",
    status: Annotated[str | None, typer.Option(help="Only rows with this status.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many rows, newest first.")] = None,
) -> None:
    """Show stored results, newest first. JSON carries every raw sample.

    Example: quantscope results --format json --limit 1
    """
    from quantscope.errors import UserError
    from quantscope.store import export, open_store

    formats = {"json": export.to_json, "csv": export.to_csv, "markdown": export.to_markdown}
    if fmt != "table" and fmt not in formats:
        raise UserError(f"unknown format {fmt!r}: use table, json, csv or markdown")
    with open_store(store, readonly=True) as st:  # reading never creates or migrates a store
        rows = st.results(status=status, limit=limit)
    if fmt == "table":
        from quantscope.tables import results_table

        results_table(rows)
    else:
        typer.echo(formats[fmt](rows))


def _register_commands() -> None:
    from quantscope.commands.run import run_cmd

    app.command("run")(run_cmd)
    from quantscope.commands.compare import compare_cmd
    from quantscope.commands.recommend import recommend_cmd
    from quantscope.commands.report import report_cmd
    from quantscope.commands.sweep import sweep_cmd

    app.command("sweep")(sweep_cmd)
    app.command("compare")(compare_cmd)
    app.command("report")(report_cmd)
    app.command("recommend")(recommend_cmd)


_register_commands()


def main() -> None:
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    import click

    try:
        code = app(standalone_mode=False)
    except QuantscopeError as e:
        if debug:
            traceback.print_exc()
        print(f"quantscope: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        print("quantscope: interrupted", file=sys.stderr)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2)
    except KeyboardInterrupt:
        print("quantscope: interrupted", file=sys.stderr)
        sys.exit(130)
    except OSError as e:  # a path the user gave that cannot be read or written
        if debug:
            traceback.print_exc()
        print(f"quantscope: error: {e}", file=sys.stderr)
        sys.exit(2)
    except Exception as e:  # a bug: still one line, the traceback behind --debug
        if debug:
            traceback.print_exc()
        print(f"quantscope: internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)",
              file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
