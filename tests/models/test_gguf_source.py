import hashlib
import json
import os
import struct
import time

import numpy as np
import pytest
from helpers.models import copy_head, one_line

from quantscope.errors import FormatError
from quantscope.models import resolve
from quantscope.models.gguf import read_header, validate_gguf
from quantscope.models.safety import file_sha256
from quantscope.paths import cache_root
from quantscope.spec import ModelSpec

pytestmark = pytest.mark.unit

BUNDLED_BYTES = 98_362_432


def write_gguf(path, tensors: dict[str, np.ndarray]):
    """A small, well-formed GGUF written by the gguf library itself."""
    from gguf import GGUFWriter

    w = GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    for name, array in tensors.items():
        w.add_tensor(name, array)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture
def small_gguf(tmp_path):
    rng = np.random.default_rng(0)
    return write_gguf(tmp_path / "small.gguf", {
        "token_embd.weight": rng.standard_normal((16, 8), dtype=np.float32),
        "blk.0.ffn_up.weight": rng.standard_normal((32, 8), dtype=np.float32),
    })


def test_small_gguf_validates(small_gguf):
    info = validate_gguf(str(small_gguf))
    assert info["architecture"] == "llama"
    assert info["tensor_count"] == 2 and info["parameter_count"] == 16 * 8 + 32 * 8
    assert info["tensor_types"] == {"F32": 2}


def test_truncated_tensor_names_the_tensor_and_the_bytes(small_gguf, tmp_path):
    size = os.path.getsize(small_gguf)
    cut = copy_head(small_gguf, tmp_path / "cut.gguf", size - 100)
    with pytest.raises(FormatError) as e:
        validate_gguf(str(cut))
    assert one_line(e) == (f"GGUF file {cut} is truncated: tensor 'blk.0.ffn_up.weight' ends at byte {size} "
                           f"but the file has {size - 100} bytes; re-copy it")


def test_bundled_validates_with_the_known_shape(bundled):
    info = validate_gguf(str(bundled))
    assert info["architecture"] == "llama" and info["version"] == 3
    assert info["tensor_count"] == 272 and info["file_bytes"] == BUNDLED_BYTES
    assert info["tensor_types"] == {"Q4_1": 210, "F32": 61, "Q8_0": 1}
    assert 134e6 < info["parameter_count"] < 135e6
    assert info["rope_freq_base"] == 100000.0


def test_bundled_truncated_to_1mb_fails_fast_in_the_metadata(bundled, tmp_path):
    cut = copy_head(bundled, tmp_path / "cut.gguf", 1 << 20)
    t0 = time.perf_counter()
    with pytest.raises(FormatError) as e:
        validate_gguf(str(cut))
    assert time.perf_counter() - t0 < 5
    msg = one_line(e)
    assert "is truncated: metadata key 'tokenizer." in msg and f"the file has {1 << 20} bytes" in msg


def test_bundled_truncated_in_the_tensor_data(bundled, tmp_path):
    cut = copy_head(bundled, tmp_path / "cut.gguf", 20_000_000)
    with pytest.raises(FormatError) as e:
        validate_gguf(str(cut))
    assert "is truncated: tensor '" in one_line(e) and "but the file has 20000000 bytes" in str(e.value)


def header(version=3, n_tensors=0, n_kv=0) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv)


@pytest.mark.parametrize("blob, words", [
    (header(n_tensors=2**40), "claims 1099511627776 tensors"),
    (header(n_kv=2**32), "metadata keys, impossible"),
    (header(version=1), "version 1"),
    (header(version=7), "version 7"),
    # one key "a": an array of u8 claiming 2**60 elements (gguf.GGUFReader would loop for ever)
    (header(n_kv=1) + struct.pack("<Q", 1) + b"a" + struct.pack("<IIQ", 9, 0, 2**60), "metadata key 'a'"),
    # an array of arrays, which llama.cpp refuses
    (header(n_kv=1) + struct.pack("<Q", 1) + b"a" + struct.pack("<IIQ", 9, 9, 1) + bytes(32),
     "array of type 9"),
])
def test_crafted_headers_are_refused_before_parsing(tmp_path, blob, words):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(blob + bytes(64))
    t0 = time.perf_counter()
    with pytest.raises(FormatError) as e:
        validate_gguf(str(bad))
    assert time.perf_counter() - t0 < 2
    assert words in one_line(e)


def test_shorter_than_the_header(tmp_path):
    short = tmp_path / "short.gguf"
    short.write_bytes(b"GGUF" + bytes(10))
    with pytest.raises(FormatError) as e:
        read_header(str(short))
    assert "is truncated: 14 bytes" in one_line(e)


def test_not_a_gguf_is_refused_by_the_cheap_check(tmp_path):
    text = tmp_path / "notes.gguf"
    text.write_text("hello, this is text and not a model at all")
    with pytest.raises(FormatError) as e:
        read_header(str(text))
    assert "is not a GGUF file" in one_line(e)


def test_resolve_gguf_gives_digest_and_size(small_gguf):
    a = resolve(ModelSpec("gguf", str(small_gguf)))
    assert a.format == "gguf" and a.path == str(small_gguf)
    assert a.digest == hashlib.sha256(small_gguf.read_bytes()).hexdigest()
    assert a.file_bytes == os.path.getsize(small_gguf)


def test_digest_cache_is_used_until_the_file_changes(small_gguf):
    real = file_sha256(small_gguf)
    index = cache_root() / "digests.json"
    known = json.loads(index.read_text())
    known[str(small_gguf)]["sha256"] = "cached"
    index.write_text(json.dumps(known))
    assert file_sha256(small_gguf) == "cached"  # the cache answered, the file was not re-read
    st = os.stat(small_gguf)
    os.utime(small_gguf, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert file_sha256(small_gguf) == real


def test_a_file_is_checked_once_per_content_and_a_bad_one_every_time(small_gguf, tmp_path, monkeypatch):
    """checked_gguf keeps validate_gguf's summary by the file's sha256: 5-7 s of GGUFReader per worker on the
    bundled model otherwise. Another content (a cut copy) is checked anew, fails, and is never kept."""
    from quantscope.models import gguf

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    calls = []
    real = gguf.validate_gguf
    monkeypatch.setattr(gguf, "validate_gguf", lambda path: calls.append(path) or real(path))
    digest = file_sha256(str(small_gguf))
    first = gguf.checked_gguf(str(small_gguf), digest)
    again = gguf.checked_gguf(str(small_gguf), digest)
    assert len(calls) == 1 and again["checked"] == "earlier (same sha256)" and again["validate_s"] == 0.0
    assert {k: v for k, v in again.items() if k not in ("checked", "validate_s")} == \
        {k: v for k, v in first.items() if k != "validate_s"}
    cut = copy_head(small_gguf, tmp_path / "cut.gguf", os.path.getsize(small_gguf) - 100)
    for _ in range(2):
        with pytest.raises(FormatError, match="truncated"):
            gguf.checked_gguf(str(cut), file_sha256(str(cut)))
    assert len(calls) == 3
    assert sorted(p.name for p in (tmp_path / "cache" / "quantscope" / "gguf-checked").iterdir()) == \
        [f"{digest}-v{gguf.CHECK_VERSION}.json"]
