"""PeakRSS measures a known allocation of its own process within +-10 %."""

import time

import numpy as np
import pytest

from quantscope.metrics.memory import PeakRSS, read_vmhwm

pytestmark = pytest.mark.unit

MiB = 1 << 20
KNOWN = 500 * MiB


def allocate_and_free(hold_s: float = 0.0) -> None:
    block = np.ones(KNOWN // 8)  # np.ones writes every page: all of it becomes resident
    time.sleep(hold_s)
    del block


def test_peak_of_a_500_mib_allocation_is_within_10_percent():
    with PeakRSS() as rss:
        allocate_and_free()
    assert rss.hwm_counted  # the kernel's high-water mark covered the block
    assert abs(rss.increase_bytes - KNOWN) <= 0.10 * KNOWN, rss.increase_bytes / MiB


def test_sampling_alone_sees_an_allocation_held_longer_than_the_interval(tmp_path):
    missing = tmp_path / "no-such-dir" / "file"  # no /proc files: the sampler is the only source
    with PeakRSS(interval_s=0.01, status=missing, clear_refs=missing) as rss:
        allocate_and_free(hold_s=0.2)
    assert not rss.hwm_reset and not rss.hwm_counted
    assert abs(rss.increase_bytes - KNOWN) <= 0.10 * KNOWN, rss.increase_bytes / MiB
    times = [t for t, _ in rss.samples]
    assert len(times) >= 10 and times == sorted(times)


def test_an_old_peak_before_the_block_is_not_counted_when_the_reset_is_refused(tmp_path):
    allocate_and_free()  # raises this process's lifetime VmHWM by 500 MiB
    with PeakRSS(clear_refs=tmp_path / "no-such-dir" / "clear_refs") as rss:
        time.sleep(0.05)
    assert not rss.hwm_reset
    assert rss.increase_bytes < 50 * MiB


def test_vmhwm_is_read_in_bytes():
    hwm = read_vmhwm()
    if hwm is None:
        pytest.skip("no /proc/self/status here")
    assert hwm > 10 * MiB  # a Python process with numpy loaded
