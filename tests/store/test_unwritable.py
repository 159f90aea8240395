"""A store that cannot take a result is refused before any work, in one line with the reason (issue 21):
read-only file, read-only folder, full disk. As root, permissions do not bind, so the CLI runs as
`nobody` through setpriv; os.access also sees a read-only mount, which binds root too."""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers.cli import assert_one_line_error
from helpers.results import make_result, store_with

from quantscope.errors import StoreError
from quantscope.store import Store

pytestmark = pytest.mark.unit

RUN = ("run", "--model", "synthetic:tiny-llama", "--no-quality", "-p", "8", "-g", "4", "--min-reps", "1",
       "--max-reps", "2", "--warmup", "0")


@pytest.fixture
def shared_dir():
    """A folder `nobody` can enter (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="quantscope-ro-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def as_user(*args: str, store: Path, home: Path) -> subprocess.CompletedProcess:
    """The CLI in a subprocess, as `nobody` when we are root (else as ourselves), caches in `home`."""
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root without setpriv: file permissions cannot be tested")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    env = {**os.environ, "XDG_CACHE_HOME": str(home), "XDG_DATA_HOME": str(home), "HOME": str(home),
           "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([*prefix, sys.executable, "-m", "quantscope.cli", *args, "--store", str(store)],
                          capture_output=True, text=True, env=env, timeout=120)


def writable_home(root: Path) -> Path:
    home = root / "home"
    home.mkdir()
    home.chmod(0o777)
    return home


def test_run_on_a_read_only_store_file_is_refused_in_one_line_before_any_work(shared_dir):
    store = shared_dir / "results.sqlite"
    store_with(store, [make_result()])
    for p in shared_dir.iterdir():
        p.chmod(0o444)  # the store and its -wal/-shm
    shared_dir.chmod(0o777)  # the folder stays writable: only the file says no
    t0 = time.monotonic()
    p = as_user(*RUN, store=store, home=writable_home(shared_dir))
    assert_one_line_error(p, 3, "is read-only (the file)", "chmod u+w", "--store")
    assert time.monotonic() - t0 < 30  # refused at once, not after the measurement
    with Store(store, readonly=True) as st:
        assert st.count() == 1  # nothing added, nothing lost


def test_run_with_a_store_in_a_read_only_folder_is_refused_in_one_line(shared_dir):
    home = writable_home(shared_dir)
    ro = shared_dir / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    p = as_user(*RUN, store=ro / "results.sqlite", home=home)
    assert_one_line_error(p, 3, "read-only folder", str(ro), "--store")
    assert not (ro / "results.sqlite").exists()


def test_a_full_disk_is_refused_before_the_store_is_opened(tmp_path, monkeypatch):
    class Full:
        f_bavail, f_frsize = 3, 4096  # 12 KiB free

    monkeypatch.setattr(os, "statvfs", lambda _path: Full())
    with pytest.raises(StoreError, match=r"disk holding store .* is full \(12 KiB free"):
        Store(tmp_path / "results.sqlite")
    assert not (tmp_path / "results.sqlite").exists()


def test_reading_a_read_only_store_still_works(tmp_path):
    store = tmp_path / "results.sqlite"
    store_with(store, [make_result()])
    with Store(store, readonly=True) as st:  # report, compare, recommend open it like this
        assert st.count() == 1
