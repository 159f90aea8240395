"""The result store: SQLite (stdlib only) with raw samples, and exporters to JSON, CSV and Markdown."""

from quantscope.store.db import Store, default_store_path
from quantscope.store.migrations import STORE_SCHEMA

__all__ = ["STORE_SCHEMA", "Store", "default_store_path"]
