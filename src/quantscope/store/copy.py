"""Moving runs between stores (SQLite ↔ PostgreSQL) without loss: `quantscope store copy SRC DST`.

Each run travels as its stored rows (store/base.py raw_run): the samples as their bytes, never decoded
and re-encoded, so the copy holds them byte for byte; the statistics rows too (rebuilt where the
source's are missing or of another version). Each run is one transaction in DST, so an interrupted copy
leaves whole runs only, and running it again copies the rest (`skip_duplicates`).

A run already in DST, the same (key hash, machine, start time), is a duplicate: refused before
anything is written, or skipped when asked. Ids are mapped to DST's next ids, or kept (`keep_ids`,
refused when DST uses any of them).

>>> with open_store("a.sqlite", readonly=True) as src, open_store("postgresql://db/q") as dst:  # doctest: +SKIP
...     copied = copy_runs(src, dst)   # {source id: id in DST}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quantscope.errors import UserError
from quantscope.store.stats import STATS_VERSION, figures_of


def copy_runs(src: Any, dst: Any, *, keep_ids: bool = False, skip_duplicates: bool = False,
              on_run: Callable[[int, int], None] | None = None) -> dict[int, int]:
    """Copy every run of `src` into `dst`, oldest first; {source id: destination id} of those copied."""
    from quantscope.store.db import unpack_samples

    ours = src.identities()
    theirs = dst.identities()
    dupes = {ident: i for ident, i in ours.items() if ident in theirs}
    if dupes and not skip_duplicates:
        (key, machine, started), run_id = next(iter(sorted(dupes.items(), key=lambda x: x[1])))
        raise UserError(f"{len(dupes)} run(s) of {src.path} are already in {dst.path} (e.g. run {run_id}: key "
                        f"{key[:12]} on {machine} started {started}): nothing copied; pass --skip-duplicates "
                        "to copy the others")
    skip = set(dupes.values())
    if keep_ids:
        taken = sorted((set(src.ids()) - skip) & set(dst.ids()))
        if taken:
            raise UserError(f"{dst.path} already uses run id(s) {', '.join(map(str, taken[:5]))}: nothing copied; "
                            "copy without --keep-ids to give them new ids")
    copied: dict[int, int] = {}
    for run_id in src.ids():
        if run_id in skip:
            continue
        run_row, measurement_rows, stats_rows = src.raw_run(run_id)
        have = {row[0]: row for row in stats_rows if row[1] == STATS_VERSION}
        stats_rows = [have.get(m[0]) or (m[0], STATS_VERSION, *figures_of(unpack_samples(m[6])).row())
                      for m in measurement_rows]
        new_id = dst.add_rows(run_row, measurement_rows, stats_rows, label=run_row[8],
                              run_id=run_id if keep_ids else None)
        copied[run_id] = new_id
        if on_run is not None:
            on_run(run_id, new_id)
    return copied
