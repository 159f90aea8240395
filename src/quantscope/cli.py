"""The quantscope command line: one typer app. Errors are one line on stderr; --debug shows tracebacks.

Every mistake the user can make ends the same way: one line `quantscope: error: ...` on stderr and
exit 2 (3 for a store that cannot be used, 1 for a run that did not end ok). That includes the
parser's own mistakes (unknown option, missing value, bad choice), which typer raises as its
vendored click exceptions. "internal error" is kept for bugs: anything else that escapes a command.
tests/test_cli_errors.py holds each of these in a subprocess.
"""

from __future__ import annotations

import itertools
import sys
import traceback
from typing import Annotated

import typer

from quantscope.errors import QuantscopeError

_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Which quantization should I ship, and what does it cost? Measure, store, compare.",
)



def _version_callback(value: bool) -> None:
    if value:
        from quantscope.version import __version__

        typer.echo(f"quantscope {__version__}")
        raise typer.Exit(0)


@_app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version_callback,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error (allowed anywhere "
                                        "on the command line).")] = False,
) -> None:
    # --debug is taken out of sys.argv by main() before parsing, so that it works after a command's
    # own options too; it is declared here only so that --help lists it.
    del version, debug


StoreOpt = Annotated[
    str | None,  # not a Path: a postgresql:// URL keeps its '//'
    typer.Option("--store", help="Result store: an SQLite file or a postgresql:// URL (default: "
                  "$QUANTSCOPE_STORE or the XDG data dir)."),
]


@_app.command("env")
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
            from quantscope.present.units import fmt_gib

            v = fmt_gib(v)
        typer.echo(f"{k:<20} {v}")


PAGE_ROWS = 50  # rows per table page: a store of 10,000 runs lists its newest page in well under a second


@_app.command("results")
def results_cmd(
    store: StoreOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json | csv | markdown")] = "table",
    status: Annotated[str | None, typer.Option(help="Only rows with this status.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only rows of this model reference.")] = None,
    machine: Annotated[str | None, typer.Option("--machine", help="Only rows measured on this machine id.")] = None,
    backend: Annotated[str | None, typer.Option("--backend", help="Only rows of this backend.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only rows started at or after this ISO date or "
                                              "time (UTC), e.g. 2026-11-01.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many rows, newest first (the page "
                                              "size with --page).")] = None,
    page: Annotated[int | None, typer.Option(min=1, help=f"This page of rows, newest first (1 = newest; "
                                             f"{PAGE_ROWS} a page unless --limit). The table shows page 1 "
                                             "by default; the other formats stream every row.")] = None,
    wide: Annotated[bool, typer.Option("--wide", help="Every column, however wide (default: the columns "
                                                      "that fit the terminal).")] = False,
) -> None:
    """Show stored results, newest first, a page at a time. JSON carries every raw sample.

    The table fits the terminal: the columns that fit, each number whole; the caption names the
    columns left out (--wide or --format shows them). --format json/csv/markdown stream every matching
    row (a store of any size, in the memory of one row) unless --limit or --page is given.

    Example: quantscope results --backend torchao --since 2026-11-01 --page 2
    """
    from quantscope.errors import UserError
    from quantscope.store import export, open_store

    formats = {"json": export.json_chunks, "csv": export.csv_chunks, "markdown": export.markdown_chunks}
    if fmt != "table" and fmt not in formats:
        raise UserError(f"unknown format {fmt!r}: use table, json, csv or markdown")
    filters = {"status": status, "model": model, "machine_id": machine, "backend": backend,
               "since": _since(since)}
    with open_store(store, readonly=True) as st:  # reading never creates or migrates a store
        if fmt != "table" and page is None:  # streamed: rows are read a page at a time
            rows = st.iter_results(**filters)
            for chunk in formats[fmt](itertools.islice(rows, limit) if limit else rows):
                sys.stdout.write(chunk)
            sys.stdout.write("\n")
            return
        size = limit or PAGE_ROWS
        number = page or 1
        rows = st.results(limit=size, offset=(number - 1) * size, **filters)
        if fmt != "table":
            typer.echo("".join(formats[fmt](rows)))
            return
        total = st.count(**filters) if page is not None or len(rows) == size else len(rows)
        if not rows and number > 1:
            raise UserError(f"--page {number} is past the last page ({-(-total // size)} of {size} rows)")
        from quantscope.tables import results_table

        results_table(rows, wide=wide)  # inside the store: a figure that needs samples reads them
    shown_to = (number - 1) * size + len(rows)
    if total > len(rows) and not (limit and page is None):
        more = f"; next: --page {number + 1}" if shown_to < total else ""
        typer.echo(f"rows {(number - 1) * size + 1 if rows else 0}-{shown_to} of {total}{more}")


def _since(value: str | None) -> str | None:
    """--since as the ISO text started_at is compared with (UTC, as stored); one line if it is not a date.

    >>> _since("2026-11-01"), _since("2026-11-01T10:00+02:00")
    ('2026-11-01', '2026-11-01T08:00:00+00:00')
    """
    import datetime as dt

    from quantscope.errors import UserError

    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"--since takes an ISO date or time, e.g. 2026-11-01 or 2026-11-01T10:00, "
                        f"got {value!r}") from None
    if len(value) == 10:  # a date alone: from its first moment
        return value
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


# The commands kept in their own modules, in --help order: (module, attribute). A command line that
# names one imports only that one (commands import their registries for their help texts: ~170 ms
# of a start that `results` on a 10,000-run store cannot spare); --help and anything else import all.
COMMANDS = {
    "run": ("quantscope.commands.run", "run_cmd"),
    "sweep": ("quantscope.commands.sweep", "sweep_cmd"),
    "compare": ("quantscope.commands.compare", "compare_cmd"),
    "report": ("quantscope.commands.report", "report_cmd"),
    "recommend": ("quantscope.commands.recommend", "recommend_cmd"),
    "estimate": ("quantscope.commands.estimate", "estimate_cmd"),
    "fit": ("quantscope.commands.fit", "fit_cmd"),
    "plot": ("quantscope.commands.plot", "plot_cmd"),
    "search": ("quantscope.commands.search", "search_cmd"),
    "store": ("quantscope.commands.store", "store_app"),
}
_registered: set[str] = set()


def register_commands(names=None) -> typer.Typer:
    """Add the named commands (default: all) to the app, once each; returns the app."""
    import importlib

    for name in COMMANDS if names is None else names:
        if name in _registered:
            continue
        module, attr = COMMANDS[name]
        found = getattr(importlib.import_module(module), attr)
        if isinstance(found, typer.Typer):
            _app.add_typer(found, name=name)
        else:
            _app.command(name)(found)
        _registered.add(name)
    return _app


def commands_for(argv: list[str]) -> list[str] | None:
    """The command a command line names (its first word: the root takes no option with a value), or None
    (all) for --help, no command, or a word that is no command (so the parser can say so)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first in ("env", "results"):  # defined here
        return []
    return [first] if first in COMMANDS else None


def __getattr__(name: str):
    if name == "app":  # an importer (tests, plug-ins) gets every command
        return register_commands()
    raise AttributeError(name)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _usage_error(e: Exception) -> int:
    """A mistake the parser found (typer's vendored click, or click itself): one line, exit 2.

    `quantscope` alone (or a group without its command) is not a mistake: it prints the help, exit 0.
    """
    if type(e).__name__ == "NoArgsIsHelpError":  # compared by name, as typer does (both clicks have one)
        typer.echo(e.format_message())
        return 0
    ctx = getattr(e, "ctx", None)
    near = getattr(e, "possibilities", None)  # NoSuchOption: the options close to the typo
    message = f"{e.message}: did you mean {' or '.join(sorted(near))}?" if near else e.format_message()
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    print(f"quantscope: error: {_one_line(message)}{hint}", file=sys.stderr)
    return 2


def _parser_errors() -> tuple[type[Exception], ...]:
    """The exception types the parser raises for the user's mistakes: typer's own (it vendors click
    since 0.2x) and, where installed, click's (a plug-in command written against click)."""
    kinds: list[type[Exception]] = [typer.TyperException]
    try:
        import click

        kinds.append(click.ClickException)
    except ImportError:
        pass
    return tuple(kinds)


def _aborts() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [typer.Abort, KeyboardInterrupt]
    try:
        import click

        kinds.append(click.exceptions.Abort)
    except ImportError:
        pass
    return tuple(kinds)


def main() -> None:
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    try:
        code = register_commands(commands_for(sys.argv[1:]))(prog_name="quantscope", standalone_mode=False)
    except QuantscopeError as e:
        if debug:
            traceback.print_exc()
        print(f"quantscope: error: {_one_line(e)}", file=sys.stderr)
        sys.exit(e.exit_code)
    except _aborts():
        print("quantscope: interrupted", file=sys.stderr)
        sys.exit(130)
    except _parser_errors() as e:
        if debug:
            traceback.print_exc()
        sys.exit(_usage_error(e))
    except OSError as e:  # a path the user gave that cannot be read or written
        if debug:
            traceback.print_exc()
        print(f"quantscope: error: {_one_line(e)}", file=sys.stderr)
        sys.exit(2)
    except Exception as e:  # a bug: still one line, the traceback behind --debug
        if debug:
            traceback.print_exc()
        print(f"quantscope: internal error: {type(e).__name__}: {_one_line(e)} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
