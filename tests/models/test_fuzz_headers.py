"""Fuzz: a few hundred mutated GGUF and safetensors headers each end in a one-line FormatError (or are
still valid files) within a time bound, never another exception, a hang or a crash.

The mutants come from tests/helpers/fuzz.py (truncations; counts, lengths, offsets, types and dims set to
edge values; bit flips; malformed safetensors JSON). They run in a child process so that a hang or a
crash is a failed test naming the case, not a stuck CI job. A fixed seed keeps CI reproducible; set
QUANTSCOPE_FUZZ_SEED and QUANTSCOPE_FUZZ_CASES to explore more (found so far, and fixed: a deeply nested
safetensors header raised RecursionError; a non-UTF-8 GGUF string raised UnicodeDecodeError).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import assert_one_line_error, qs

pytestmark = pytest.mark.unit

TESTS = Path(__file__).resolve().parents[1]
CASES = int(os.environ.get("QUANTSCOPE_FUZZ_CASES", "150"))  # per format: 300 mutants in all
SEED = int(os.environ.get("QUANTSCOPE_FUZZ_SEED", "20"))
PER_CASE_S = 2.0  # a check reads a few bytes of a tiny file: milliseconds; seconds would mean a loop
ALL_CASES_S = 60.0


def test_mutated_headers_give_one_line_errors_in_bounded_time(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    try:
        p = subprocess.run([sys.executable, "-m", "helpers.fuzz", str(tmp_path), str(CASES), str(SEED)], env=env,
                           capture_output=True, text=True, timeout=ALL_CASES_S)
        hung = None
    except subprocess.TimeoutExpired:
        p, hung = None, True
    lines = [json.loads(line) for line in (tmp_path / "cases.jsonl").read_text().splitlines()]
    started = [r for r in lines if r.get("started")]
    done = [r for r in lines if "outcome" in r]
    if hung or len(done) < len(started):
        last = started[-1]
        pytest.fail(f"the checks hung or crashed on {last['format']} case {last['case']}: {last['mutation']} "
                    f"(seed {SEED}); stderr: {p.stderr[-500:] if p else 'timed out'}")
    assert p.returncode == 0, p.stderr[-2000:]
    assert len(done) == 2 * CASES
    bugs = [f"{r['format']} {r['mutation']}: {r['message']}" for r in done if r["outcome"] == "bug"]
    assert not bugs, "\n".join(bugs[:10])
    slow = [f"{r['format']} {r['mutation']}: {r['seconds']:.2f} s" for r in done if r["seconds"] > PER_CASE_S]
    assert not slow, slow
    for r in done:
        if r["outcome"] != "ok":
            assert r["message"] and "\n" not in r["message"], r
    for fmt in ("gguf", "safetensors"):  # the mutants reach the checks: most are refused, as they should be
        refused = sum(r["format"] == fmt and r["outcome"] == "FormatError" for r in done)
        assert refused > CASES // 2, (fmt, refused)


@pytest.mark.parametrize(("offset", "value", "needle"), [
    (4, 7, "has version 7"),
    (8, 2**40, "claims 1099511627776 tensors"),
    (16, 2**60, "metadata keys, impossible"),
])
def test_cli_refuses_a_corrupt_gguf_header_before_any_worker(tmp_path, offset, value, needle):
    import struct

    from helpers.fuzz import valid_gguf

    data = bytearray(valid_gguf(tmp_path / "ok.gguf").read_bytes())
    struct.pack_into("<I" if offset == 4 else "<Q", data, offset, value)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(bytes(data))
    store = tmp_path / "s.sqlite"
    p = qs("run", "--model", str(bad), "--no-quality", store=store, env={"XDG_CACHE_HOME": str(tmp_path / "c")})
    assert_one_line_error(p, 2, needle)
    assert not store.exists()


def test_found_by_the_fuzzer_non_utf8_gguf_string_and_nested_safetensors_header(tmp_path):
    import struct

    from helpers.fuzz import valid_gguf

    from quantscope.errors import FormatError
    from quantscope.models.gguf import validate_gguf
    from quantscope.models.safety import check_safetensors

    data = valid_gguf(tmp_path / "ok.gguf").read_bytes()
    assert data.count(b"fuzz") == 1  # general.name = "fuzz"
    bad = tmp_path / "name.gguf"
    bad.write_bytes(data.replace(b"fuzz", b"\xff\xfe\xfd\xfc"))
    with pytest.raises(FormatError, match="metadata key 'general.name' cannot be read"):
        validate_gguf(str(bad))
    raw = b"[" * 100_000
    nested = tmp_path / "nested.safetensors"
    nested.write_bytes(struct.pack("<Q", len(raw)) + raw)
    with pytest.raises(FormatError, match="not valid JSON"):
        check_safetensors(nested)
