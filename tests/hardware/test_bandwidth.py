"""The STREAM-like benchmark: correct kernels, STREAM byte counting, plausible numbers, cached once."""

import json
import time

import pytest

from quantscope.errors import UserError
from quantscope.hardware import bandwidth
from quantscope.hardware.bandwidth import machine_bandwidth, measure_bandwidth

pytestmark = pytest.mark.unit

MiB = 1 << 20


def test_small_measurement_has_every_kernel_and_is_verified():
    bw = measure_bandwidth(threads=2, array_bytes=16 * MiB, reps=2)
    for key in ("copy_Bps", "triad_Bps", "read_Bps"):
        assert 1e8 < bw[key] < 1e13, (key, bw[key])
    assert bw["threads"] == 2 and bw["array_bytes"] == 16 * MiB
    assert "copy 2, triad 3, read 1" in bw["method"]
    assert 0.0 < bw["on_cpu_fraction"] <= 1.05 and bw["other_cpu_load"] >= 0.0
    assert isinstance(bw["contended"], bool)


def test_bytes_follow_the_stream_convention(monkeypatch):
    # With every kernel taking exactly 1 s, bytes/s equals the bytes each kernel is credited with.
    real = bandwidth._best_time
    monkeypatch.setattr(bandwidth, "_best_time", lambda *args: (1.0, real(*args)[1]))
    bw = measure_bandwidth(threads=1, array_bytes=8 * MiB, reps=1)
    assert (bw["copy_Bps"], bw["triad_Bps"], bw["read_Bps"]) == (16 * MiB, 24 * MiB, 8 * MiB)


def test_triad_blocks_cover_uneven_splits():
    np = pytest.importorskip("numpy")
    n = bandwidth.TRIAD_BLOCK_ELEMS * 3 + 7
    a, b, c = np.zeros(n), np.full(n, 2.0), np.arange(n, dtype=float)
    for part in bandwidth._chunks(n, 3):
        bandwidth._triad(a, b, c, part)
    assert np.array_equal(a, b + bandwidth.TRIAD_SCALAR * c)


@pytest.mark.slow
def test_full_size_measurement_is_plausible_and_quick():
    t0 = time.perf_counter()
    bw = measure_bandwidth(threads=2)
    elapsed = time.perf_counter() - t0
    assert elapsed < 15, elapsed  # about a second alone; generous for a shared 2-core machine
    assert bw["array_bytes"] == bandwidth.ARRAY_BYTES
    # DDR4/DDR5 servers: a few to a few hundred GB/s. A number outside this is a counting bug.
    for key in ("copy_Bps", "triad_Bps", "read_Bps"):
        assert 1e9 < bw[key] < 2e12, (key, bw[key])


def fake_measurements(monkeypatch, contended=(False,)):
    """Replace the benchmark by canned results (contended or not, in turn); returns the call log."""
    calls = []

    def fake_measure(threads):
        calls.append(threads)
        busy = contended[min(len(calls), len(contended)) - 1]
        return {"copy_Bps": 4e10, "triad_Bps": 3e10, "read_Bps": 3e10 + len(calls), "threads": threads,
                "array_bytes": 1, "reps": 1, "method": "fake", "contended": busy}

    monkeypatch.setattr(bandwidth, "measure_bandwidth", fake_measure)
    monkeypatch.setattr(bandwidth, "RETRY_PAUSE_S", 0.0)
    return calls


def test_machine_bandwidth_is_measured_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    calls = fake_measurements(monkeypatch)
    first = machine_bandwidth("abc123", 2)
    second = machine_bandwidth("abc123", 2)
    assert calls == [2] and first == second
    path = tmp_path / "quantscope" / "bandwidth-abc123-t2.json"
    stored = json.loads(path.read_text())
    assert stored["machine_id"] == "abc123" and stored["measured_at"] and stored["method"]
    machine_bandwidth("abc123", 1)  # another thread count is another measurement
    assert calls == [2, 1]


def test_corrupt_or_foreign_cache_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    fake_measurements(monkeypatch)
    path = tmp_path / "quantscope" / "bandwidth-abc123-t1.json"
    path.parent.mkdir(parents=True)
    path.write_text("{truncated")
    assert machine_bandwidth("abc123", 1)["read_Bps"] > 0
    data = json.loads(path.read_text())
    data["machine_id"] = "other"
    path.write_text(json.dumps(data))
    assert machine_bandwidth("abc123", 1)["machine_id"] == "abc123"
    data = json.loads(path.read_text())
    del data["contended"]  # written before contention was checked: not trusted
    data["read_Bps"] = 1.0
    path.write_text(json.dumps(data))
    assert machine_bandwidth("abc123", 1)["read_Bps"] > 1.0


def test_a_disturbed_measurement_is_retried_and_never_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    calls = fake_measurements(monkeypatch, contended=(True, False))
    got = machine_bandwidth("abc123", 2)
    assert calls == [2, 2] and not got["contended"] and got["attempts"] == 2
    assert (tmp_path / "quantscope" / "bandwidth-abc123-t2.json").exists()

    calls = fake_measurements(monkeypatch, contended=(True,))
    got = machine_bandwidth("abc123", 4)
    assert len(calls) == bandwidth.ATTEMPTS and got["contended"]
    assert got["read_Bps"] == 3e10 + bandwidth.ATTEMPTS  # the fastest of the disturbed attempts
    assert not (tmp_path / "quantscope" / "bandwidth-abc123-t4.json").exists()


@pytest.mark.parametrize("bad", ["../../etc/x", "", "a/b", "x" * 100])
def test_machine_id_cannot_escape_the_data_folder(tmp_path, monkeypatch, bad):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    with pytest.raises(UserError):
        machine_bandwidth(bad, 1)


def test_threads_must_be_positive():
    with pytest.raises(UserError):
        measure_bandwidth(0)


def test_a_kernel_that_skips_work_is_caught(monkeypatch):
    monkeypatch.setattr(bandwidth, "_triad", lambda a, b, c, s: None)  # "infinitely fast", wrong
    with pytest.raises(RuntimeError, match="wrong values"):
        measure_bandwidth(threads=1, array_bytes=4 * MiB, reps=1)
