import json
import os

import pytest

from quantscope import paths
from quantscope.artifacts.cache import (
    MANIFEST,
    ArtifactCache,
    Recipe,
    conversion_facts,
    safe_label,
)

pytestmark = pytest.mark.unit


def recipe(**kw):
    base = dict(kind="demo", source_digest="ab" * 32, options={"bits": 4}, tools={"tool": "1.0"}, label="m")
    return Recipe(**{**base, **kw})


class Builder:
    """Counts builds; writes two files so the manifest covers a folder, not one file."""

    def __init__(self):
        self.calls = 0

    def __call__(self, out):
        self.calls += 1
        (out / "model.onnx").write_bytes(b"graph" * 100)
        (out / "sub").mkdir()
        (out / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 40)
        return {"weight_bytes": 10240}


def test_second_conversion_is_a_cache_hit(tmp_path):
    cache, build = ArtifactCache(tmp_path), Builder()
    first = cache.get_or_build(recipe(), build)
    second = cache.get_or_build(recipe(), build)
    assert build.calls == 1
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.path == first.path and second.meta == {"weight_bytes": 10240}
    assert second.build_s == pytest.approx(first.build_s)
    facts = second.facts()
    assert facts["cache_hit"] is True and facts["cache_saved_s"] == pytest.approx(
        max(first.build_s - second.convert_s, 0), abs=1e-3)
    assert first.facts()["cache_saved_s"] == 0.0


def test_key_covers_source_options_and_tools(tmp_path):
    cache, build = ArtifactCache(tmp_path), Builder()
    cache.get_or_build(recipe(), build)
    cache.get_or_build(recipe(options={"bits": 8}), build)
    cache.get_or_build(recipe(tools={"tool": "1.1"}), build)
    cache.get_or_build(recipe(source_digest="cd" * 32), build)
    assert build.calls == 4
    other = cache.get_or_build(recipe(label="other name"), build)  # the label names the folder only
    assert build.calls == 5 and other.key == recipe().key() and other.path.name.startswith("other_name-")


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "manifest"])
def test_corrupt_entry_is_detected_and_rebuilt(tmp_path, damage):
    cache, build = ArtifactCache(tmp_path), Builder()
    entry = cache.get_or_build(recipe(), build).path
    target = entry / "sub" / "weights.bin"
    if damage == "flip":
        data = bytearray(target.read_bytes())
        data[100] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:-7])
    elif damage == "delete":
        target.unlink()
    else:
        (entry / MANIFEST).write_text("{not json")
    assert cache.lookup(recipe()) is None
    again = cache.get_or_build(recipe(), build)
    assert build.calls == 2 and not again.cache_hit
    assert again.rebuilt and "corrupt" in again.rebuilt
    assert cache.get_or_build(recipe(), build).cache_hit  # and the rebuilt entry verifies


def test_failed_build_leaves_nothing(tmp_path):
    cache = ArtifactCache(tmp_path)

    def broken(out):
        (out / "half.bin").write_bytes(b"x")
        raise RuntimeError("converter crashed")

    with pytest.raises(RuntimeError):
        cache.get_or_build(recipe(), broken)
    leftovers = [p.name for p in (tmp_path / "demo").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []
    assert cache.lookup(recipe()) is None


def test_names_stay_inside_the_cache(tmp_path):
    cache = ArtifactCache(tmp_path / "root")
    for name in ("../../etc/passwd", "/abs/path", "..", "a/../../b", "~user", ""):
        entry = cache.entry_dir(recipe(label=name))
        assert entry.resolve().is_relative_to((tmp_path / "root").resolve())
        assert entry.parent.name == "demo"
    assert safe_label("..") == "model"
    with pytest.raises(ValueError):
        Recipe(kind="../x", source_digest="ab")


def test_manifest_naming_outside_files_is_corrupt(tmp_path):
    cache, build = ArtifactCache(tmp_path), Builder()
    entry = cache.get_or_build(recipe(), build).path
    manifest = json.loads((entry / MANIFEST).read_text())
    manifest["files"]["../../outside"] = {"bytes": 1, "sha256": "0"}
    (entry / MANIFEST).write_text(json.dumps(manifest))
    assert cache.lookup(recipe()) is None


def test_root_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert paths.cache_root("artifacts") == tmp_path / "quantscope" / "artifacts"
    assert ArtifactCache().root == tmp_path / "quantscope" / "artifacts"


def test_chain_facts(tmp_path):
    cache, build = ArtifactCache(tmp_path), Builder()
    a = cache.get_or_build(recipe(kind="export"), build)
    b = cache.get_or_build(recipe(kind="quant", source_digest=a.key), build)
    cold = conversion_facts([a, b])
    warm = conversion_facts([cache.get_or_build(recipe(kind="export"), build),
                             cache.get_or_build(recipe(kind="quant", source_digest=a.key), build)])
    assert cold["cache_hit"] is False and warm["cache_hit"] is True
    assert [c["kind"] for c in warm["conversions"]] == ["export", "quant"]
    assert os.path.isdir(warm["conversions"][1]["path"])


def test_keys_are_stable_across_versions():
    """A user's existing entries are found after an upgrade: this key was computed by the cache as it
    was before paths.py (commit 832e660); a change here orphans every cached conversion."""
    export = Recipe("onnx-export", "ab" * 32, {"kv_cache": True, "export_version": 2, "dtype": "fp32"},
                    {"torch": "2.13.0"}, label="x")
    assert export.key() == "b908a02ef17f43244e4860db1f343d14f2c2560d64da61610b4dd8ac66e3060b"


class ChainBuilder:
    """Records which steps ran and what upstream entry each one was handed."""

    def __init__(self):
        self.ran = []

    def step(self, name):
        def build(out, prev):
            self.ran.append((name, prev.kind if prev else None))
            (out / f"{name}.bin").write_bytes(name.encode() * 10)
            return {"step": name}
        return build


def test_chain_builds_each_step_once_and_a_cached_end_skips_its_upstream(tmp_path):
    cache, chain = ArtifactCache(tmp_path), ChainBuilder()
    export = recipe(kind="export")
    quant = recipe(kind="quant", source_digest=export.key())
    steps = [(export, chain.step("export")), (quant, chain.step("quant"))]
    cold = cache.get_chain(steps)
    assert chain.ran == [("export", None), ("quant", "export")]
    assert [s.kind for s in cold] == ["export", "quant"] and not any(s.cache_hit for s in cold)
    # Delete the upstream entry: a cached last step is used as is, without verifying its export.
    cache._discard(cold[0].path)
    warm = cache.get_chain(steps)
    assert [s.kind for s in warm] == ["quant"] and warm[0].cache_hit and warm[0].meta == {"step": "quant"}
    assert len(chain.ran) == 2
    # A different last step rebuilds only what is missing: here the export, then the new quant.
    other = recipe(kind="quant", source_digest=export.key(), options={"bits": 8})
    again = cache.get_chain([(export, chain.step("export")), (other, chain.step("quant8"))])
    assert chain.ran[2:] == [("export", None), ("quant8", "export")]
    assert [s.cache_hit for s in again] == [False, False]
