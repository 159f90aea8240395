"""A table of columns in a terminal: which columns fit a width, each number whole on one line, and the
rich Table itself (issue 21). The columns and their cells are present/columns.py's.
"""

from __future__ import annotations

from collections.abc import Sequence

from quantscope.analysis.summary import Summary
from quantscope.present.columns import Column, shown

# What a narrow table keeps, most important first (by column name); unnamed columns go last, in view order.
IMPORTANCE = ("run", "configuration", "status", "decode", "decode ratio", "peak RSS", "KLD", "ΔKLD", "same top-1",
              "task acc", "PPL", "model", "prefill", "prefill ratio", "weights", "file", "TTFT", "token p50 / p99",
              "device", "others' CPU", "run time", "started (UTC)")
TEXT_MIN = 12  # a text column narrower than its longest cell folds its words onto more lines (never "…")


def _header_lines(c: Column) -> list[str]:
    """A console header on two lines, the name over the unit, so the unit costs no width."""
    return [c.name, f"[{c.unit}]"] if c.unit else [c.name]


def _need(c: Column, texts: list[str]) -> int:
    """The narrowest width that shows `c` whole: every number on one line, the header's lines unbroken."""
    header = max(len(line) for line in _header_lines(c))
    longest = max((len(t) for t in texts), default=0)
    if c.text and not c.whole:
        return max(min(header, TEXT_MIN), min(longest, TEXT_MIN))
    return max(header, longest)


def table_width(needs: Sequence[int]) -> int:
    """A rich table's width for columns of these widths: one space each side, a rule between, two edges."""
    return sum(n + 3 for n in needs) + 1


def fit(columns: Sequence[Column], summaries: Sequence[Summary],
        width: int | None) -> tuple[list[Column], list[Column]]:
    """(the columns a table `width` characters wide shows, in view order; those it leaves out).

    The least important (IMPORTANCE) go first; run and configuration always stay. None: every column.
    """
    cols = shown(columns, summaries)
    if width is None:
        return cols, []
    need = {id(c): _need(c, [c.cell(s) for s in summaries]) for c in cols}
    rank = {name: i for i, name in enumerate(IMPORTANCE)}
    keep = sorted(cols, key=lambda c: rank.get(c.name, len(rank)))
    while len(keep) > 2 and table_width([need[id(c)] for c in keep]) > width:
        keep.pop()
    kept = {id(c) for c in keep}
    return [c for c in cols if id(c) in kept], [c for c in cols if id(c) not in kept]


def natural_width(columns: Sequence[Column], summaries: Sequence[Summary]) -> int:
    """How wide the table of every column is with nothing folded (for --wide)."""
    cols = shown(columns, summaries)
    return table_width([max([len(h) for h in _header_lines(c)] + [len(c.cell(s)) for s in summaries])
                        for c in cols])


def rich_table(columns: Sequence[Column], summaries: Sequence[Summary], title: str = "", width: int | None = None):
    """A rich Table of `summaries`; every cell escaped (labels and reasons are user text).

    With `width` (the console's), the columns that fit it, each number whole on one line, and a caption
    naming what was left out; without, every column. A number is never cut: its column is as wide as
    its widest cell; only words (labels, reasons) fold onto more lines.
    """
    from rich.markup import escape
    from rich.table import Table

    columns, dropped = fit(columns, summaries, width)
    rows = [[c.cell(s) for c in columns] for s in summaries]
    widths = [_need(c, [r[i] for r in rows]) for i, c in enumerate(columns)]
    if width is not None:  # the room left goes to words, so a label folds only when it must
        spare = width - table_width(widths)
        for i in range(len(columns)):
            longest = max((len(r[i]) for r in rows), default=0)
            grow = min(max(longest - widths[i], 0), max(spare, 0))
            widths[i] += grow
            spare -= grow
    caption = None
    if dropped:
        caption = f"not shown at {width} columns: {', '.join(c.name for c in dropped)} (--wide or --format for all)"
    table = Table(title=escape(title) if title else None, title_justify="left",
                  caption=escape(caption) if caption else None, caption_justify="left")
    for i, c in enumerate(columns):
        whole = not c.text or c.whole
        table.add_column(escape("\n".join(_header_lines(c))), justify="left" if c.text else "right",
                         no_wrap=whole, min_width=widths[i], overflow="fold")
    for r in rows:
        table.add_row(*(escape(v) for v in r))
    return table
