"""The worker tells the parent what it is doing (issue 21): phases through a file in the job folder,
polled by the parent while it waits; and the live view `quantscope run` draws from them."""

import sys

import pytest

from quantscope import progress
from quantscope.display import RunProgress
from quantscope.runner.isolate import run_job

pytestmark = pytest.mark.unit

# A worker stand-in that reports three phases, a little apart, then writes its result.
PHASED = """
import json, sys, time
from quantscope import progress
job = sys.argv[1]
progress.start(job + "/progress.json")
progress.report("load", "loading x")
time.sleep(0.8)
progress.report("reps", "rep 1 of 1-2", decode_tps=40.0, ci_rel=None, ci_target=0.02)
time.sleep(0.8)
progress.report("quality", "window 1 of 2 (8 tokens each)", tokens_per_s=100.0)
time.sleep(0.8)
open(job + "/result.json", "w").write("{}")
"""


def test_the_parent_sees_each_phase_the_worker_reports_while_it_runs():
    seen = []
    out = run_job({}, 30.0, argv=[sys.executable, "-c", PHASED], on_progress=seen.append)
    assert out.status == "ok"
    assert [r["phase"] for r in seen] == ["load", "reps", "quality"]
    assert seen[1]["decode_tps"] == 40.0 and seen[2]["tokens_per_s"] == 100.0


def test_without_a_callback_the_parent_only_sleeps_in_wait_and_the_worker_still_ends_ok():
    out = run_job({}, 30.0, argv=[sys.executable, "-c", PHASED])
    assert out.status == "ok"


def test_reports_within_a_phase_are_throttled_and_a_new_phase_is_written_at_once(tmp_path):
    target = tmp_path / "progress.json"
    progress.start(target)
    try:
        progress.report("reps", "rep 1")
        progress.report("reps", "rep 2")  # within WRITE_EVERY_S of the first: skipped
        assert progress.read(target)["detail"] == "rep 1"
        progress.report("quality", "window 1")
        assert progress.read(target)["phase"] == "quality"
    finally:
        progress.start(None)
    assert progress.read(tmp_path / "missing.json") is None


def test_the_live_view_prints_each_finished_phase_with_its_time_on_a_terminal():
    from io import StringIO

    from rich.console import Console

    buf = StringIO()
    console = Console(file=buf, force_terminal=True, width=100, color_system=None)
    with RunProgress(console=console) as view:
        view.on_progress({"phase": "load", "detail": "loading tiny-llama with torch"})
        view.on_progress({"phase": "reps", "detail": "rep 2 of 3-10", "decode_tps": 41.23, "ci_rel": 0.031,
                          "ci_target": 0.02})
    text = buf.getvalue()
    for phrase in ("start", "load", "loading tiny-llama with torch", "reps",
                   "rep 2 of 3-10: decode 41.23 tok/s, 95% CI ±3.1 % (target 2 %)"):
        assert phrase in text, text


def test_the_live_view_draws_nothing_when_not_a_terminal_or_quiet():
    from io import StringIO

    from rich.console import Console

    for console, quiet in ((Console(file=StringIO(), force_terminal=False), False),
                           (Console(file=StringIO(), force_terminal=True), True)):
        with RunProgress(quiet=quiet, console=console) as view:
            view.on_progress({"phase": "load", "detail": "loading"})
        assert console.file.getvalue() == ""
