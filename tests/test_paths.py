"""paths.py: the roots follow the environment; a write leaves the old content or the new, never half."""

import os
import stat
import subprocess
import sys

import pytest

from quantscope import paths
from quantscope.errors import UserError

pytestmark = pytest.mark.unit


def test_roots_follow_xdg_and_quantscope_store(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "QUANTSCOPE_STORE"):
        monkeypatch.delenv(name, raising=False)
    assert paths.data_root() == tmp_path / "home" / ".local" / "share" / "quantscope"
    assert paths.cache_root() == tmp_path / "home" / ".cache" / "quantscope"
    assert paths.store_path() == tmp_path / "home" / ".local" / "share" / "quantscope" / "results.sqlite"

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert paths.store_path() == tmp_path / "data" / "quantscope" / "results.sqlite"
    assert paths.cache_root("artifacts") == tmp_path / "cache" / "quantscope" / "artifacts"
    monkeypatch.setenv("QUANTSCOPE_STORE", "~/runs.sqlite")
    assert paths.store_path() == tmp_path / "home" / "runs.sqlite"
    assert not (tmp_path / "cache").exists()  # asking for a path creates nothing


def test_the_three_old_cache_roots_are_now_one(monkeypatch, tmp_path):
    from quantscope.artifacts.cache import ArtifactCache
    from quantscope.models.materialize import legacy_dequant_dir
    from quantscope.quality.reference import ReferenceKey, reference_path
    from quantscope.store import default_store_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("QUANTSCOPE_STORE", raising=False)
    assert ArtifactCache().root == paths.cache_root("artifacts")
    key = ReferenceKey("m" * 64, "t" * 64, "llama.cpp", 512, "tok", "first")
    assert reference_path(key).parent == paths.cache_root("reference")
    assert legacy_dequant_dir("ab" * 32, "5.0").parent == paths.cache_root("dequant")
    assert default_store_path() == paths.store_path()


def test_inside_refuses_paths_that_leave_the_root(tmp_path):
    assert paths.inside(tmp_path, "onnx", "model-1") == tmp_path / "onnx" / "model-1"
    for bad in ("../x", "/etc/passwd", "a/../../b"):
        with pytest.raises(UserError, match="would leave"):
            paths.inside(tmp_path, bad)
    (tmp_path / "link").symlink_to("/")
    with pytest.raises(UserError):
        paths.inside(tmp_path, "link", "etc")


def test_write_replaces_whole_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "facts.json"
    paths.write_text(target, "old")
    paths.write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["facts.json"]
    assert stat.S_IMODE(target.stat().st_mode) == paths.FILE_MODE
    paths.write_text(tmp_path / "private", "x", mode=0o600)
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600


def test_a_failed_write_keeps_the_old_content(tmp_path):
    target = tmp_path / "ref.npz"
    paths.write_bytes(target, b"old")
    with pytest.raises(RuntimeError), paths.atomic_file(target) as f:
        f.write(b"half of the new")
        raise RuntimeError("the writer failed midway")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["ref.npz"]


def test_a_writer_killed_midway_leaves_the_old_file(tmp_path):
    """kill -9 while streaming: the target still holds the old content (the temporary file may stay)."""
    target = tmp_path / "result.json"
    paths.write_text(target, "old")
    code = ("import os, signal, sys; from quantscope import paths\n"
            "with paths.atomic_file(sys.argv[1]) as f:\n"
            "    f.write(b'partial'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(target)], check=False)
    assert proc.returncode == -9
    assert target.read_text() == "old"


def test_a_temporary_name_is_not_predictable(tmp_path, monkeypatch):
    """No fixed '<name>.tmp' that another user could plant a symlink at (the old bandwidth cache did)."""
    target = tmp_path / "bandwidth.json"
    planted = tmp_path / "bandwidth.json.tmp"
    planted.symlink_to(tmp_path / "victim")
    paths.write_text(target, "{}")
    assert not (tmp_path / "victim").exists() and target.read_text() == "{}"


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    dest = tmp_path / "entry"
    with pytest.raises(RuntimeError), paths.atomic_dir(dest) as tmp:
        (tmp / "a.bin").write_bytes(b"1")
        raise RuntimeError("converter crashed")
    assert not dest.exists() and os.listdir(tmp_path) == []
    with paths.atomic_dir(dest) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.bin").write_bytes(b"2")
        assert not dest.exists()  # nothing visible until the block ends
    assert (dest / "sub" / "b.bin").read_bytes() == b"2"
    with pytest.raises(OSError), paths.atomic_dir(dest) as tmp:  # never merged into an existing entry
        (tmp / "c.bin").write_bytes(b"3")
    assert sorted(os.listdir(dest)) == ["sub"] and os.listdir(tmp_path) == ["entry"]


def test_paths_imports_nothing_of_quantscope_but_errors():
    """It sits at the bottom of the layers; what the package's own __init__ loads is not counted."""
    code = ("import sys; import quantscope; before = set(sys.modules); import quantscope.paths; "
            "print(sorted(m for m in set(sys.modules) - before if m.startswith('quantscope')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['quantscope.errors', 'quantscope.paths']"
