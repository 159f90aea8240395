"""The result store: SQLite (stdlib only) with raw samples, and exporters to JSON, CSV and Markdown."""

from quantscope.store.db import Store, default_store_path
from quantscope.store.migrations import STORE_SCHEMA


def open_store(path=None, readonly: bool = False) -> Store:
    """The store at `path`, else $QUANTSCOPE_STORE or the XDG data dir. `readonly` never creates or migrates."""
    return Store(path or default_store_path(), readonly=readonly)


__all__ = ["STORE_SCHEMA", "Store", "default_store_path", "open_store"]
