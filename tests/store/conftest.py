"""A real PostgreSQL for the store's tests: a throwaway cluster in a temp dir, started once per session
(initdb + pg_ctl, a unix socket in that dir, no TCP), one fresh database per test, stopped at the end.

initdb refuses to run as root, so under root the cluster belongs to the `postgres` user (Debian's
package creates it). Tests skip, with one line, only when the binaries or psycopg are absent.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest


def _bin_dir() -> Path | None:
    found = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)),
                                            None)
    return Path(found).parent if found else None


def _as_owner(cmd: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *cmd] if owner else cmd


@pytest.fixture(scope="session")
def pg_server():
    """(admin URL, URL template) of a running cluster; skips when PostgreSQL or psycopg is missing."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    pytest.importorskip("psycopg", reason="psycopg 3 not installed: pip install 'quantscope[postgres]'")
    owner = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no `postgres` user to own the test cluster")
        owner = "postgres"
    root = Path(tempfile.mkdtemp(prefix="quantscope-pg-"))
    if owner:
        shutil.chown(root, owner)
    data, log = root / "data", root / "log"
    subprocess.run(_as_owner([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "quantscope",
                              "-E", "UTF8", "--no-sync"], owner), check=True, capture_output=True)
    opts = f"-k {root} -c listen_addresses='' -c max_connections=50"
    subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "start"],
                             owner), check=True, capture_output=True)
    host = quote(str(root), safe="")
    try:
        yield f"postgresql:///postgres?host={host}&user=quantscope", f"postgresql:///{{db}}?host={host}&user=quantscope"
    finally:
        subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], owner),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


_numbers = itertools.count()


@pytest.fixture
def pg_url(pg_server):
    """The URL of a fresh, empty database on the session's cluster."""
    import psycopg

    admin, template = pg_server
    name = f"t{os.getpid()}_{next(_numbers)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # a name made above, not input
    yield template.format(db=name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
