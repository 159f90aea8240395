"""The calibration source: never the evaluation text, deterministic, its token ids hashed."""

import re

import pytest

from quantscope.errors import UserError
from quantscope.methods.calibrated import CalibratedConfig
from quantscope.methods.calibration import CalibrationSpec, calibration_batches, docstrings_text, sha256_ids
from quantscope.quality.text import pydoc_text

pytestmark = pytest.mark.unit


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def shingles(text: str, n: int) -> set[tuple[str, ...]]:
    w = words(text)
    return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}


def test_calibration_text_shares_no_line_and_almost_no_12_word_run_with_the_evaluation_text():
    calib, _ = docstrings_text()
    evaluation = pydoc_text()
    lines = {ln.strip() for ln in calib.splitlines() if len(ln.strip()) >= 40}
    assert lines and not lines & {ln.strip() for ln in evaluation.splitlines()}
    shared = shingles(calib, 12) & shingles(evaluation, 12)
    # a few boilerplate phrases may coincide; the texts are different documents
    assert len(shared) <= 0.001 * len(shingles(calib, 12)), sorted(shared)[:5]


def test_batches_are_consecutive_windows_and_their_hash_is_stable():
    def tokenize(text):
        return [ord(c) % 100 for c in text]

    a = calibration_batches(CalibrationSpec(samples=3, seq_len=16), tokenize, 100)
    b = calibration_batches(CalibrationSpec(samples=3, seq_len=16), tokenize, 100)
    assert [len(r) for r in a.batches] == [16, 16, 16]
    assert a.batches[1][0] == tokenize(docstrings_text()[0])[16]
    assert a.info["tokens_sha256"] == b.info["tokens_sha256"] == sha256_ids(a.batches)
    assert a.info["tokenizer"] == "model tokenizer" and len(a.info["text_sha256"]) == 64
    other = calibration_batches(CalibrationSpec(samples=3, seq_len=17), tokenize, 100)
    assert other.info["tokens_sha256"] != a.info["tokens_sha256"]


def test_a_model_without_tokenizer_gets_the_texts_bytes_within_its_vocabulary():
    cal = calibration_batches(CalibrationSpec(samples=2, seq_len=8), lambda text: None, 64)
    text = docstrings_text()[0].encode()
    assert cal.batches[0] == [b % 64 for b in text[:8]]
    assert "bytes" in cal.info["tokenizer"]


def test_too_few_tokens_is_a_user_error_naming_the_params():
    with pytest.raises(UserError, match="lower calib_samples or calib_seq_len"):
        calibration_batches(CalibrationSpec(samples=100, seq_len=128), lambda t: [1] * 100, 10)


def test_a_request_beyond_the_texts_bytes_is_refused_before_any_tokenizer():
    with pytest.raises(UserError, match="bytes, so fewer tokens than 10000 x 1000"):
        CalibrationSpec(samples=10_000, seq_len=1000)
    with pytest.raises(UserError, match="calibration text has"):
        CalibratedConfig.from_params({"calib_samples": "100000"})


def test_a_calibrated_config_carries_its_calibration_as_plain_params():
    cfg = CalibratedConfig.from_params({"calib_samples": "4", "calib_seq_len": 32})
    assert cfg.calibration == CalibrationSpec(samples=4, seq_len=32)
    with pytest.raises(UserError, match="calib_samples must be >= 1"):
        CalibratedConfig(calib_samples=0)
