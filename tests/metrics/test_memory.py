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


def test_a_block_inside_a_block_sees_its_own_peak_and_leaves_the_outer_peak_whole():
    """load + timed work (outer) and the timed work alone (inner, reset=False): a 500 MiB spike before the
    inner block counts for the outer one only."""
    with PeakRSS() as outer:
        allocate_and_free()  # the load's transient copy
        with PeakRSS(reset=False) as inner:
            time.sleep(0.05)  # the timed work, with no new allocation
    assert not inner.hwm_reset and not inner.hwm_counted  # VmHWM did not rise inside: not inner's peak
    assert inner.increase_bytes < 0.10 * KNOWN, inner.increase_bytes / MiB
    assert abs(outer.increase_bytes - KNOWN) <= 0.10 * KNOWN, outer.increase_bytes / MiB
