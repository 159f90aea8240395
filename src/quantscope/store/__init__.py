"""The result store: SQLite (stdlib only, the default) or PostgreSQL (`postgresql://…`, shared by a team),
with raw samples and the statistics derived from them, and exporters to JSON, CSV and Markdown."""

from __future__ import annotations

import os
import sys
from pathlib import Path, PurePath

from quantscope.store.db import Store, default_store_path
from quantscope.store.migrations import STORE_SCHEMA
from quantscope.store.pg import SCHEMES, is_url


def store_location(path: str | os.PathLike[str] | None = None) -> str | Path:
    """Where the store is: a PostgreSQL URL as given, else a file path; `path`, else $QUANTSCOPE_STORE or
    the XDG data dir.

    A command's `--store` arrives as a pathlib.Path, which collapses the URL's `//`
    (postgresql://h/db becomes postgresql:/h/db): the argument as typed is taken back from the command line.

    >>> store_location("postgresql://db.example/q")
    'postgresql://db.example/q'
    """
    if path is None:
        env = os.environ.get("QUANTSCOPE_STORE")
        return env if env and is_url(env) else default_store_path()
    text = str(path)
    if is_url(text):
        return text
    if isinstance(path, PurePath) and text.startswith(tuple(s[:-1] for s in SCHEMES)):
        for arg in sys.argv[1:]:
            typed = arg.split("=", 1)[1] if arg.startswith("--store=") else arg
            if is_url(typed) and str(Path(typed)) == text:
                return typed
        scheme, rest = text.split(":/", 1)
        return f"{scheme}://{rest}"
    return Path(path)


def open_store(path=None, readonly: bool = False):
    """The store at `path` (a file, or a postgresql:// URL), else $QUANTSCOPE_STORE or the XDG data dir.
    `readonly` never creates or migrates. Both kinds have the same methods (store/base.py)."""
    location = store_location(path)
    if isinstance(location, str):
        from quantscope.store.pg import PgStore

        return PgStore(location, readonly=readonly)
    return Store(location, readonly=readonly)


__all__ = ["STORE_SCHEMA", "Store", "default_store_path", "open_store", "store_location"]
