"""`quantscope plot NAME`: one view of the report alone, as an SVG or PNG file (a figure for a slide).

The command parses and prints; the views are report/views.py's registry, drawn from the same rows the
report would use (the newest comparable sweep, or --model/--like/--group), projected on --hardware.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quantscope.errors import UserError

Opt = typer.Option
FORMATS = ("svg", "png", "pdf")


def plot_cmd(
    name: Annotated[str | None, typer.Argument(help="The view to draw (see --list).")] = None,
    out: Annotated[Path | None, Opt("--out", "-o", help="File to write: .svg, .png or .pdf "
                                    "(default NAME.svg).")] = None,
    list_views: Annotated[bool, Opt("--list", help="Name every view and what it shows.")] = False,
    model: Annotated[str | None, Opt("--model", "-m", help="Only rows of this model.")] = None,
    like: Annotated[str | None, Opt("--like", help="The rows comparable with this run id or key prefix.")] = None,
    group: Annotated[int | None, Opt("--group", help="This comparable group (1 = newest).")] = None,
    hardware: Annotated[list[str] | None, Opt("--hardware", help="Also draw each row projected onto these "
                                              "catalog ids (comma-separated), hatched/hollow.")] = None,
    store: Annotated[Path | None, Opt("--store", help="SQLite result store.")] = None,
) -> None:
    """Write one view of the report alone.

    Example: quantscope plot dashboard --out dashboard.png --hardware t4,h200
    """
    from quantscope.report.views import get_view, view_names

    if list_views:
        for n in view_names():
            typer.echo(f"{n:<20} {get_view(n).title}")
        return
    if name is None:
        raise UserError("name a view (quantscope plot --list names them)")
    view = get_view(name)  # a typo fails here with the near name, before the store is read
    out = out or Path(f"{name}.svg")
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise UserError(f"--out {out}: use a .svg, .png or .pdf file")
    import io

    from quantscope import paths
    from quantscope.advise.group import load_group
    from quantscope.commands.estimate import split
    from quantscope.report.build import projections
    from quantscope.store import open_store

    with open_store(store, readonly=True) as st:
        chosen = load_group(st, model, like, group)
    projected, notes = projections(chosen.rows, split(hardware))
    fig = view.draw(chosen.rows, projected)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=150, metadata={"Date": None} if fmt == "svg" else None)
    path = paths.write_bytes(out, buf.getvalue(), mode=0o644)
    for line in chosen.lines() + notes:
        typer.echo(line)
    typer.echo(f"{name}: {path.resolve()}")
