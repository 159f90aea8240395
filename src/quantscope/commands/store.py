"""`quantscope store …`: look after a result store (rebuild its statistics, copy runs to another store)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

Opt = typer.Option

store_app = typer.Typer(no_args_is_help=True, help="Look after a result store: its statistics table, copies "
                        "between stores (SQLite file or postgresql:// URL).")


@store_app.command("rebuild-stats")
def rebuild_stats_cmd(
    store: Annotated[str | None, Opt("--store", help="Result store: an SQLite file or a postgresql:// URL "
                                     "(default: $QUANTSCOPE_STORE or the XDG data dir).")] = None,
    missing: Annotated[bool, Opt("--missing", help="Only measurements without statistics of this version.")]
    = False,
) -> None:
    """Recompute every measurement's statistics from its raw samples (the table listings read).

    Example: quantscope store rebuild-stats --store results.sqlite
    """
    from quantscope.store import open_store

    with open_store(store) as st:
        done = st.rebuild_stats(only_missing=missing)
        typer.echo(f"rebuilt the statistics of {done} measurement{'s' if done != 1 else ''} in {st.path}")


@store_app.command("copy")
def copy_cmd(
    src: Annotated[str, typer.Argument(help="Store to copy from (SQLite file or postgresql:// URL).")],
    dst: Annotated[str, typer.Argument(help="Store to copy into (created and migrated if new).")],
    keep_ids: Annotated[bool, Opt("--keep-ids", help="Keep each run's id (refused if DST uses one of them); "
                                  "default: DST's next ids.")] = False,
    skip_duplicates: Annotated[bool, Opt("--skip-duplicates", help="Skip runs already in DST (same key, "
                                         "machine and start time) instead of refusing.")] = False,
    id_map: Annotated[Path | None, Opt("--map", help="Write {source id: new id} as JSON here.")] = None,
) -> None:
    """Copy every run of SRC into DST with its raw samples byte for byte (SQLite ↔ PostgreSQL).

    Example: quantscope store copy results.sqlite postgresql://db.example/quantscope --map ids.json
    """
    from quantscope.store import open_store
    from quantscope.store.copy import copy_runs

    with open_store(src, readonly=True) as s, open_store(dst) as d:
        copied = copy_runs(s, d, keep_ids=keep_ids, skip_duplicates=skip_duplicates)
    if id_map is not None:
        id_map.write_text(json.dumps({str(k): v for k, v in copied.items()}, indent=1) + "\n")
    same = all(k == v for k, v in copied.items())
    typer.echo(f"copied {len(copied)} run{'s' if len(copied) != 1 else ''} from {src} to {dst} "
               f"({'ids kept' if same else 'ids mapped' + (f', map in {id_map}' if id_map else '')})")
