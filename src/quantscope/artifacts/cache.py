"""The artifact cache: every conversion is done once per (source content, options, tool versions).

An entry is a folder <root>/<kind>/<label>-<key16>/ holding the converted files and a manifest.json
written beside them with each file's sha256 and size, the recipe that made them and how long that
took. Entries are built in a temporary folder next to their final place and renamed into it
(paths.atomic_dir: atomic on one file system), so a crash leaves no half-written entry; the manifest
is verified on every reuse and a corrupt entry is thrown away and rebuilt. get_chain runs a chain of
conversions (export, then quantize) where a cached last step skips its upstream.

>>> import tempfile
>>> cache = ArtifactCache(Path(tempfile.mkdtemp()))
>>> recipe = Recipe("demo", source_digest="ab" * 32, options={"bits": 4}, tools={"tool": "1.0"})
>>> def build(out: Path) -> dict:
...     (out / "weights.bin").write_bytes(b"0123")
...     return {"weight_bytes": 4}
>>> first = cache.get_or_build(recipe, build)
>>> again = cache.get_or_build(recipe, build)
>>> (first.cache_hit, again.cache_hit, again.meta["weight_bytes"])
(False, True, 4)
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantscope import paths

# History: 1 (2026-11-24) first layout: <kind>/<label>-<key16>/ with manifest.json (sha256 per file).
CACHE_FORMAT = 1
MANIFEST = "manifest.json"
_KIND = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_label(text: str, limit: int = 48) -> str:
    """A file-name-safe label from a model name: path separators, '..' and odd characters removed.

    >>> safe_label("../../etc/passwd")
    'etc_passwd'
    >>> safe_label("HuggingFaceTB/SmolLM2-135M")
    'HuggingFaceTB_SmolLM2-135M'
    """
    label = _UNSAFE.sub("_", text).strip("._-")
    label = re.sub(r"\.{2,}", ".", label)[:limit].strip("._-")
    return label or "model"


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def tool_versions(*packages: str) -> dict[str, str]:
    """Installed versions of `packages` (dist names) for cache keys: a new tool means a new artifact."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


@dataclass(frozen=True)
class Recipe:
    """What identifies a conversion: its kind, the source's content hash, the options, the tool versions.

    `source_digest` is the sha256 of the input's content, or the key of the upstream artifact when the
    input is itself a cached conversion (a key is a pure function of the recipe, so a cached chain is
    found without rebuilding its middle steps). `label` only names the folder; it is not in the key.
    """

    kind: str
    source_digest: str
    options: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    label: str = "model"

    def __post_init__(self) -> None:
        if not _KIND.match(self.kind):
            raise ValueError(f"artifact kind {self.kind!r} must match {_KIND.pattern}")
        if not self.source_digest:
            raise ValueError("an artifact recipe needs the source's content digest")

    def identity(self) -> dict[str, Any]:
        return {"format": CACHE_FORMAT, "kind": self.kind, "source_digest": self.source_digest,
                "options": self.options, "tools": self.tools}

    def key(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class Cached:
    """A verified cache entry. `convert_s` is what this call spent (building, or looking up and
    verifying); `build_s` is what building it took when it was built."""

    path: Path
    key: str
    kind: str
    cache_hit: bool
    convert_s: float
    build_s: float
    meta: dict[str, Any]
    rebuilt: str | None = None  # why an existing entry was thrown away, if one was

    def file(self, name: str) -> Path:
        return self.path / name

    def facts(self) -> dict[str, Any]:
        """Conversion facts for load(): kept apart from the timed measurements."""
        saved = max(self.build_s - self.convert_s, 0.0) if self.cache_hit else 0.0
        out = {"kind": self.kind, "key": self.key[:16], "cache_hit": self.cache_hit,
               "convert_s": round(self.convert_s, 4), "build_s": round(self.build_s, 4),
               "cache_saved_s": round(saved, 4), "path": str(self.path)}
        if self.rebuilt:
            out["rebuilt"] = self.rebuilt
        return out


# A chain step's builder: (its output folder, the previous step's entry or None) -> meta.
ChainBuild = Callable[[Path, "Cached | None"], dict[str, Any] | None]


class CorruptEntry(Exception):
    """A cache entry failed verification (missing file, size or checksum mismatch, bad manifest)."""


class ArtifactCache:
    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else paths.cache_root("artifacts")

    def entry_dir(self, recipe: Recipe) -> Path:
        """The entry's folder, proven to lie inside the cache root (no traversal from names)."""
        return paths.inside(self.root, recipe.kind, f"{safe_label(recipe.label)}-{recipe.key()[:16]}")

    @contextmanager
    def _locked(self, entry: Path) -> Iterator[None]:
        """One builder per entry across processes (flock on a file beside the entry)."""
        entry.parent.mkdir(parents=True, exist_ok=True)
        with open(entry.parent / f".{entry.name}.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def verify(self, entry: Path, recipe: Recipe) -> dict[str, Any]:
        """The manifest of `entry` if every file it lists is there with its size and sha256."""
        try:
            manifest = json.loads((entry / MANIFEST).read_text())
        except (OSError, ValueError) as e:
            raise CorruptEntry(f"manifest unreadable ({e.__class__.__name__})") from None
        if manifest.get("key") != recipe.key():
            raise CorruptEntry("manifest key does not match the recipe")
        files = manifest.get("files")
        if not isinstance(files, dict) or not files:
            raise CorruptEntry("manifest lists no files")
        inside = entry.resolve()
        for rel, want in files.items():
            path = entry / rel
            if not path.resolve().is_relative_to(inside):
                raise CorruptEntry(f"manifest names a file outside the entry: {rel!r}")
            if not path.is_file():
                raise CorruptEntry(f"{rel} is missing")
            if path.stat().st_size != want.get("bytes"):
                size = path.stat().st_size
                raise CorruptEntry(f"{rel} has {size} bytes, its manifest says {want.get('bytes')}")
            if sha256_file(path) != want.get("sha256"):
                raise CorruptEntry(f"{rel} checksum differs from its manifest")
        return manifest

    def lookup(self, recipe: Recipe) -> Cached | None:
        """The verified entry for `recipe`, or None (absent, or corrupt: get_or_build replaces it)."""
        t0 = time.perf_counter()
        entry = self.entry_dir(recipe)
        if not entry.is_dir():
            return None
        try:
            manifest = self.verify(entry, recipe)
        except CorruptEntry:
            return None
        return self._cached(entry, recipe, manifest, True, time.perf_counter() - t0)

    def get_or_build(self, recipe: Recipe, build: Callable[[Path], dict[str, Any] | None]) -> Cached:
        """The entry for `recipe`, building it with `build(out_dir) -> meta` when absent or corrupt."""
        t0 = time.perf_counter()
        entry = self.entry_dir(recipe)
        rebuilt = None
        with self._locked(entry):
            if entry.exists():
                try:
                    manifest = self.verify(entry, recipe)
                    return self._cached(entry, recipe, manifest, True, time.perf_counter() - t0)
                except CorruptEntry as e:
                    rebuilt = f"corrupt cached artifact rebuilt: {e}"
                    self._discard(entry)
            manifest = self._build(entry, recipe, build)
        return self._cached(entry, recipe, manifest, False, time.perf_counter() - t0, rebuilt)

    def get_chain(self, steps: list[tuple[Recipe, ChainBuild]]) -> list[Cached]:
        """The entries of a chain of conversions (export, then quantize), in order, for conversion_facts.

        Each step's recipe names the previous entry's key as its source_digest, and its build gets
        (out_dir, previous entry or None). When the last step is cached it alone is returned: its
        upstream is neither verified nor rebuilt (a quantized graph is used without its export).
        """
        final = self.lookup(steps[-1][0])
        if final is not None:
            return [final]
        done: list[Cached] = []
        for recipe, build in steps:
            prev = done[-1] if done else None
            done.append(self.get_or_build(recipe, lambda out, build=build, prev=prev: build(out, prev)))
        return done

    def _build(self, entry: Path, recipe: Recipe, build: Callable[[Path], dict[str, Any] | None]) -> dict:
        from quantscope import progress

        progress.report("convert", f"{recipe.kind} of {recipe.label} (cached for later runs)")
        with paths.atomic_dir(entry) as tmp:  # the entry appears whole or not at all
            t0 = time.perf_counter()
            meta = build(tmp) or {}
            build_s = time.perf_counter() - t0
            files = {}
            for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
                rel = path.relative_to(tmp).as_posix()
                files[rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
            if not files:
                raise RuntimeError(f"the {recipe.kind} conversion wrote no files")
            manifest = {**recipe.identity(), "key": recipe.key(), "label": recipe.label, "files": files,
                        "build_s": build_s, "meta": meta,
                        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
        return manifest

    def _discard(self, entry: Path) -> None:
        """Move a bad entry aside first (atomic), then delete it."""
        trash = entry.with_name(f".{entry.name}.trash-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(entry, trash)
        shutil.rmtree(trash, ignore_errors=True)

    @staticmethod
    def _cached(entry: Path, recipe: Recipe, manifest: dict, hit: bool, spent: float,
                rebuilt: str | None = None) -> Cached:
        return Cached(path=entry, key=recipe.key(), kind=recipe.kind, cache_hit=hit, convert_s=spent,
                      build_s=float(manifest.get("build_s", 0.0)), meta=manifest.get("meta", {}),
                      rebuilt=rebuilt)


def conversion_facts(steps: list[Cached]) -> dict[str, Any]:
    """Facts of a chain of sequential conversions (export then quantize): totals plus each step.

    cache_hit is True only when nothing was converted; cache_saved_s is the build time the hits saved.
    """
    facts = [s.facts() for s in steps]
    return {
        "convert_s": round(sum(f["convert_s"] for f in facts), 4),
        "cache_hit": all(s.cache_hit for s in steps),
        "cache_saved_s": round(sum(f["cache_saved_s"] for f in facts), 4),
        "conversions": facts,
    }
