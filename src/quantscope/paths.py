"""Where quantscope keeps its files, and the one way it writes them: whole or not at all.

Roots (XDG base directory spec; the environment is read on every call, so tests can redirect it):
  data_root()   $XDG_DATA_HOME/quantscope   (~/.local/share/quantscope)  measured facts worth keeping
  cache_root()  $XDG_CACHE_HOME/quantscope  (~/.cache/quantscope)        anything that can be rebuilt
  store_path()  $QUANTSCOPE_STORE, else data_root()/results.sqlite

Writes: a file is written to a temporary sibling (an unpredictable name from mkstemp, in the same
folder so the rename stays on one file system), flushed and fsynced, then os.replace'd over its
target; a folder is built in a temporary sibling and renamed into place. A reader, or a process
killed at any point, sees the old content or the new, never half of it. This module sits at the
bottom of the layers: it imports nothing of quantscope but errors.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> write_text(folder / "a.json", '{"ok": true}').read_text()
'{"ok": true}'
>>> with atomic_dir(folder / "entry") as tmp:
...     _ = (tmp / "w.bin").write_bytes(b"0123")
>>> sorted(p.name for p in folder.iterdir())
['a.json', 'entry']
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from quantscope.errors import UserError

STORE_FILE = "results.sqlite"
# A written file's permissions: what open() gives under the usual umask 022. mkstemp alone would make
# it 0600, which hides a shared report or cache from the other users of a group-owned folder.
FILE_MODE = 0o644


def _xdg(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    return Path(value).expanduser() if value else default


def data_root() -> Path:
    """$XDG_DATA_HOME/quantscope (XDG default ~/.local/share): what is measured, not rebuilt."""
    return _xdg("XDG_DATA_HOME", Path.home() / ".local" / "share") / "quantscope"


def cache_root(*parts: str) -> Path:
    """$XDG_CACHE_HOME/quantscope[/parts] (XDG default ~/.cache); not created here.

    `parts` are fixed names chosen by the code ("artifacts", "reference"); a name that comes from a
    model goes through `inside` instead.
    """
    return _xdg("XDG_CACHE_HOME", Path.home() / ".cache").joinpath("quantscope", *parts)


def store_path() -> Path:
    """The default result store: $QUANTSCOPE_STORE, else data_root()/results.sqlite."""
    explicit = os.environ.get("QUANTSCOPE_STORE")
    return Path(explicit).expanduser() if explicit else data_root() / STORE_FILE


def inside(root: Path, *parts: str) -> Path:
    """root/parts, refused with a UserError when it would resolve outside `root` (.., /abs, links).

    >>> inside(Path("/cache"), "onnx", "model-1")
    PosixPath('/cache/onnx/model-1')
    >>> inside(Path("/cache"), "../etc")
    Traceback (most recent call last):
    ...
    quantscope.errors.UserError: path /cache/../etc would leave /cache; rename the model
    """
    path = root.joinpath(*parts)
    real = root.resolve()
    if not path.resolve().is_relative_to(real):
        raise UserError(f"path {path} would leave {root}; rename the model")
    return path


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX: the directory entry is data of the directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not every file system lets a directory be opened; the rename itself is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path: Path | str, binary: bool = True, mode: int = FILE_MODE) -> Iterator[IO]:
    """An open temporary sibling of `path`; on a clean exit it is fsynced and renamed onto `path`.

    For writers that stream (numpy.savez, json.dump). An exception discards the temporary file and
    leaves `path` as it was.

    >>> with atomic_file(Path(tempfile.mkdtemp()) / "x.bin") as f:
    ...     _ = f.write(b"whole or nothing")
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", encoding=None if binary else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_bytes(path: Path | str, data: bytes, mode: int = FILE_MODE) -> Path:
    """Write `data` to `path` atomically (see atomic_file); returns the path."""
    with atomic_file(path, binary=True, mode=mode) as f:
        f.write(data)
    return Path(path)


def write_text(path: Path | str, text: str, mode: int = FILE_MODE) -> Path:
    """Write `text` (UTF-8) to `path` atomically (see atomic_file); returns the path."""
    with atomic_file(path, binary=False, mode=mode) as f:
        f.write(text)
    return Path(path)


@contextmanager
def atomic_dir(dest: Path | str) -> Iterator[Path]:
    """A fresh temporary sibling folder of `dest`, renamed onto `dest` when the block succeeds.

    Every file in it is fsynced before the rename, so after a power cut the folder is either absent or
    holds its full files. The rename fails (FileExistsError or OSError) if `dest` exists and is not an
    empty folder: deciding whether an existing folder may be replaced is the caller's (it holds the
    lock). On any failure the temporary folder is removed.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        yield tmp
        for path in tmp.rglob("*"):
            if path.is_file() and not path.is_symlink():
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(dest.parent)
