"""The compact reference store: round trip, atomic write, keyed lookup, budget coverage, size."""

import numpy as np
import pytest
from helpers.quality import CharModel, text_of

from quantscope.errors import FormatError
from quantscope.quality.quality_pass import run_quality
from quantscope.quality.reference import (
    ReferenceKey,
    load_reference,
    read_reference,
    reference_path,
    save_reference,
)
from quantscope.spec import QualitySpec

pytestmark = pytest.mark.unit


@pytest.fixture
def ref(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(text_of(2000))
    spec = QualitySpec(recipe="llama", ctx=32, max_tokens=200, text=f"file:{path}")
    _, data = run_quality(
        CharModel(vocab=97), spec, model_digest="abc", tokenizer_name="chars", entries_per_token=16
    )
    return data


def test_round_trip_keeps_every_array_and_the_key(ref, tmp_path):
    path = save_reference(ref, tmp_path / "store")
    assert path == reference_path(ref.key, tmp_path / "store") and path.suffix == ".npz"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    back = load_reference(ref.key, max_tokens=200, root=tmp_path / "store")
    assert back is not None and back.key == ref.key and back.first == ref.first
    for name in ("windows", "nll", "counts", "ids", "logp", "tail_logp"):
        got, want = getattr(back, name), getattr(ref, name)
        assert got.dtype == want.dtype and np.array_equal(got, want), name
    assert back.meta["tokens_scored"] == ref.tokens_scored == 14 * 15  # ceil(200 / 15) whole windows


def test_lookup_by_key_and_budget(ref, tmp_path):
    save_reference(ref, tmp_path)
    other = ReferenceKey(**{**ref.key.__dict__, "model_digest": "zzz"})
    assert load_reference(other, root=tmp_path) is None
    assert load_reference(ref.key, max_tokens=100, root=tmp_path) is not None  # a prefix serves
    assert load_reference(ref.key, max_tokens=10_000, root=tmp_path) is None  # text allows more: recompute
    assert ref.key.same_eval(other) and not ref.key.same_eval(ReferenceKey(**{**ref.key.__dict__, "ctx": 64}))


def test_a_corrupt_file_is_a_one_line_format_error(ref, tmp_path):
    path = save_reference(ref, tmp_path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(FormatError, match="delete it") as err:
        read_reference(path)
    assert "\n" not in str(err.value)


def test_reference_files_live_in_the_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    key = ReferenceKey("m" * 64, "t" * 64, "llama.cpp", 512, "tok", "first")
    assert reference_path(key).parent == tmp_path / "quantscope" / "reference"


def test_compact_size_per_token(ref):
    # on average 16 (uint16 id, float16 log-p) entries + int32 count + float32 tail + float32 nll
    assert ref.ids.dtype == np.uint16 and ref.logp.dtype == np.float16
    assert ref.entries_per_token == pytest.approx(16, abs=1) and (ref.counts >= 1).all()
    assert ref.bytes_per_token == pytest.approx(16 * 4 + 12, abs=4)


def test_default_entry_budget_stays_within_a_twentieth_of_a_uint16_vocab_row():
    from quantscope.quality.kld import entry_budget

    assert entry_budget(49152) == 1024 and 1024 * 4 + 12 <= 49152 * 2 / 20
    assert entry_budget(32000) * 4 + 12 <= 32000 * 2 / 20 and entry_budget(50) == 1
