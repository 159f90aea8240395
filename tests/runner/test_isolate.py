"""run_job: every way a worker can end becomes a typed outcome, quickly, and the parent never spins."""

import json
import os
import resource
import signal
import sys
import textwrap
import threading
import time

import psutil
import pytest

from quantscope.result import EnvFingerprint, Result
from quantscope.runner.isolate import outcome_result, run_job
from quantscope.spec import ModelSpec, RunSpec

pytestmark = pytest.mark.integration  # spawns processes

ENV = EnvFingerprint("m1", "cpu", (), 1, 1, 1 << 30, None, None, "linux", "3.11", {}, "0.1.0", None)
SPEC = RunSpec(model=ModelSpec("synthetic", "tiny-llama"))


def script(tmp_path, body: str) -> list[str]:
    """argv for a tiny worker stand-in; it receives the job folder as sys.argv[1]."""
    path = tmp_path / "fake_worker.py"
    path.write_text("import json, os, signal, sys, time\njob = sys.argv[1]\n" + textwrap.dedent(body))
    return [sys.executable, str(path)]


def test_result_comes_back_and_job_folder_is_removed(tmp_path):
    argv = script(tmp_path, f"""
        payload = json.load(open(os.path.join(job, "job.json")))
        open({str(tmp_path / "where")!r}, "w").write(job)
        json.dump({{"echo": payload["x"]}}, open(os.path.join(job, "result.json"), "w"))
    """)
    out = run_job({"x": 42}, 5.0, argv=argv)
    assert (out.status, out.result, out.returncode) == ("ok", {"echo": 42}, 0)
    job_dir = (tmp_path / "where").read_text()
    assert "quantscope-job-" in job_dir
    assert not os.path.exists(job_dir)


def test_sleeping_worker_times_out_within_twice_the_limit(tmp_path):
    argv = script(tmp_path, "time.sleep(60)\n")
    out = run_job({}, 1.0, argv=argv, grace_s=1.0)
    assert out.status == "timeout"
    assert "1 s limit" in out.reason and "SIGTERM" in out.reason
    assert 1.0 <= out.wall_s < 2.0


def test_worker_ignoring_sigterm_is_killed_within_twice_the_limit(tmp_path):
    argv = script(tmp_path, """
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring SIGTERM", flush=True)
        time.sleep(60)
    """)
    out = run_job({}, 1.0, argv=argv, grace_s=5.0)  # grace is capped at the limit
    assert out.status == "timeout"
    assert "SIGKILL" in out.reason
    assert out.wall_s < 2.2  # 2x the limit, plus process start-up


def test_grandchildren_do_not_outlive_a_timeout(tmp_path):
    pid_file = tmp_path / "child.pid"
    argv = script(tmp_path, f"""
        import subprocess
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(60)
    """)
    out = run_job({}, 1.0, argv=argv, grace_s=0.5)
    assert out.status == "timeout"
    pid = int(pid_file.read_text())
    time.sleep(0.2)
    gone = not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert gone, "the worker's own child survived the timeout"


def test_segfault_is_crashed_with_the_signal_name(tmp_path):
    argv = script(tmp_path, "os.kill(os.getpid(), signal.SIGSEGV)\n")
    out = run_job({}, 5.0, argv=argv)
    assert out.status == "crashed"
    assert out.reason == "worker killed by SIGSEGV"
    assert out.returncode == -11


def test_sigkill_we_did_not_send_is_reported_as_likely_oom_with_peak_rss(tmp_path):
    argv = script(tmp_path, """
        block = bytearray(64 << 20)  # a known allocation, so the reported peak is >= 64 MiB
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    out = run_job({}, 5.0, argv=argv)
    assert out.status == "oom"
    assert "SIGKILL" in out.reason and "OOM killer" in out.reason and "peak RSS" in out.reason
    assert out.peak_rss_bytes >= 64 << 20


def test_garbage_output_and_no_result_is_failed_with_the_last_stderr_line(tmp_path):
    argv = script(tmp_path, """
        sys.stdout.write("\\x00\\xff garbage " * 1000)
        sys.stderr.write("loading...\\nsomething broke: bad header\\n")
    """)
    out = run_job({}, 5.0, argv=argv)
    assert out.status == "failed"
    assert out.reason.endswith("something broke: bad header")
    assert "without a result" in out.reason


def test_invalid_result_json_is_failed_not_an_exception(tmp_path):
    argv = script(tmp_path, 'open(os.path.join(job, "result.json"), "w").write("{not json")\n')
    out = run_job({}, 5.0, argv=argv)
    assert out.status == "failed"
    assert "unreadable result.json" in out.reason


def test_non_object_result_json_is_failed(tmp_path):
    argv = script(tmp_path, 'open(os.path.join(job, "result.json"), "w").write("[1, 2]")\n')
    out = run_job({}, 5.0, argv=argv)
    assert out.status == "failed" and "list" in out.reason


def test_chatty_worker_does_not_block(tmp_path):
    argv = script(tmp_path, """
        line = "x" * 1023 + "\\n"
        for _ in range(16 << 10):  # 16 MiB on each stream: pipes would fill and deadlock
            sys.stdout.write(line); sys.stderr.write(line)
        json.dump({}, open(os.path.join(job, "result.json"), "w"))
    """)
    out = run_job({}, 20.0, argv=argv)
    assert out.status == "ok"
    assert len(out.stderr_tail) <= 4000


def test_parent_sleeps_while_waiting(tmp_path):
    argv = script(tmp_path, "time.sleep(1.5)\n")
    before = resource.getrusage(resource.RUSAGE_SELF)
    out = run_job({}, 1.0, argv=argv, grace_s=1.0)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert out.status == "timeout"
    assert cpu_s < 0.1 * out.wall_s, f"parent used {cpu_s:.3f} s CPU in {out.wall_s:.2f} s of waiting"


def test_outcome_result_turns_a_timeout_into_a_typed_row(tmp_path):
    argv = script(tmp_path, "print('stuck in load', file=sys.stderr, flush=True); time.sleep(60)\n")
    out = run_job({}, 0.5, argv=argv, grace_s=0.5)
    row = outcome_result(SPEC, out, ENV)
    assert isinstance(row, Result)
    assert (row.status, row.spec, row.env) == ("timeout", SPEC, ENV)
    assert row.reason == out.reason and row.duration_s == out.wall_s
    assert "stuck in load" in row.info["stderr_tail"]
    json.dumps(row.to_dict())  # storable


def test_outcome_result_returns_the_workers_own_result(tmp_path):
    sent = Result(spec=SPEC, env=ENV, status="unsupported", reason="no kernel for int4 on this CPU")
    src = tmp_path / "sent.json"
    src.write_text(json.dumps(sent.to_dict()))
    argv = script(tmp_path, f"import shutil; shutil.copy({str(src)!r}, os.path.join(job, 'result.json'))\n")
    row = outcome_result(SPEC, run_job({}, 5.0, argv=argv), ENV)
    assert row == sent


def test_outcome_result_with_a_result_of_the_wrong_shape_is_failed(tmp_path):
    argv = script(tmp_path, 'json.dump({"status": "ok"}, open(os.path.join(job, "result.json"), "w"))\n')
    row = outcome_result(SPEC, run_job({}, 5.0, argv=argv), ENV)
    assert row.status == "failed" and "Result schema" in row.reason


def test_bad_timeout_is_refused():
    with pytest.raises(ValueError):
        run_job({}, 0)


@pytest.fixture
def sigint_raises():
    """Python's own SIGINT handler for the test's duration. A process started in the background by a
    non-interactive shell (`bash -c 'make test &'`) inherits SIGINT *ignored*, and no KeyboardInterrupt
    would ever come: the test must not depend on how pytest was launched."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_in_the_parent_kills_the_worker_and_propagates(tmp_path, sigint_raises):
    pid_file = tmp_path / "worker.pid"
    argv = script(tmp_path, f"open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)\n")
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        run_job({}, 30.0, argv=argv)
    timer.join()
    assert time.perf_counter() - t0 < 5.0
    pid = int(pid_file.read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
