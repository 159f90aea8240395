"""The worker turns whatever a run raises into a Result, and dies promptly (with a stack) on SIGTERM."""

import json
import sys
import textwrap

import pytest

from quantscope.backends.base import Unsupported
from quantscope.errors import UserError
from quantscope.result import EnvFingerprint, Result
from quantscope.runner.isolate import outcome_result, run_job
from quantscope.runner.worker import classify, exception_result, one_line, write_result
from quantscope.spec import ModelSpec, RunSpec

ENV = EnvFingerprint("m1", "cpu", (), 1, 1, 1 << 30, None, None, "linux", "3.11", {}, "0.1.0", None)
SPEC = RunSpec(model=ModelSpec("synthetic", "tiny-llama"))


@pytest.mark.unit
@pytest.mark.parametrize("exc, status, reason", [
    (MemoryError(), "oom", "out of memory: MemoryError"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: "
                  "you tried to allocate 1099511627776 bytes."), "oom", None),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "oom", None),
    (Unsupported("Float8 dynamic activation needs CUDA sm >= 8.9"), "unsupported",
     "Float8 dynamic activation needs CUDA sm >= 8.9"),
    (UserError("model file x.gguf not found: check the path"), "failed",
     "UserError: model file x.gguf not found: check the path"),
    (ValueError("\nbad shape [3, 4]\n  at layer 7"), "failed", "ValueError: bad shape [3, 4]"),
    (RuntimeError("shape mismatch"), "failed", "RuntimeError: shape mismatch"),
])
def test_classify(exc, status, reason):
    got_status, got_reason = classify(exc)
    assert got_status == status
    assert got_reason == reason if reason else got_reason.startswith("out of memory: RuntimeError")
    assert "\n" not in got_reason


@pytest.mark.unit
def test_oom_wrapped_by_a_library_is_still_oom():
    try:
        try:
            raise MemoryError("alloc")
        except MemoryError as inner:
            raise ValueError("could not load weights") from inner
    except ValueError as outer:
        assert classify(outer)[0] == "oom"


@pytest.mark.integration
def test_torch_cpu_allocation_failure_is_recognised_as_oom():
    torch = pytest.importorskip("torch")
    try:
        torch.empty(1 << 50, dtype=torch.uint8)  # 1 PiB: refused by the allocator
    except (RuntimeError, MemoryError) as e:
        assert classify(e)[0] == "oom", f"not recognised: {one_line(e)}"
    else:
        pytest.skip("this allocator accepted a 1 PiB request")


@pytest.mark.unit
def test_exception_result_and_its_json_round_trip(tmp_path):
    r = exception_result(SPEC, MemoryError(), "2026-11-24T00:00:00+00:00", 1.5, env=ENV)
    assert (r.status, r.reason, r.duration_s) == ("oom", "out of memory: MemoryError", 1.5)
    write_result(tmp_path, r)
    assert Result.from_dict(json.loads((tmp_path / "result.json").read_text())) == r
    assert not (tmp_path / "result.json.tmp").exists()


@pytest.mark.unit
def test_write_result_of_numpy_values_and_unserialisable_info(tmp_path):
    np = pytest.importorskip("numpy")
    ok = Result(spec=SPEC, env=ENV, status="ok", info={"n": np.int64(3), "v": np.arange(2)})
    write_result(tmp_path, ok)
    assert json.loads((tmp_path / "result.json").read_text())["info"] == {"n": 3, "v": [0, 1]}
    bad = Result(spec=SPEC, env=ENV, status="ok", info={"obj": object()})
    write_result(tmp_path, bad)
    back = json.loads((tmp_path / "result.json").read_text())
    assert back["status"] == "failed" and "JSON" in back["reason"]


def fake_worker(tmp_path, execute_body: str) -> list[str]:
    """argv running the real worker main() with a stand-in measure.execute."""
    path = tmp_path / "worker_with_fake_measure.py"
    path.write_text(textwrap.dedent("""
        import sys, time, types
        fake = types.ModuleType("quantscope.runner.measure")
        def execute(spec, reference_file=None):
        {body}
        fake.execute = execute
        sys.modules["quantscope.runner.measure"] = fake
        from quantscope.runner.worker import main
        sys.exit(main())
    """).format(body=textwrap.indent(textwrap.dedent(execute_body), "    ")))
    return [sys.executable, str(path)]


@pytest.mark.integration
def test_memory_error_in_the_run_becomes_an_oom_row(tmp_path):
    argv = fake_worker(tmp_path, "raise MemoryError('could not allocate 40 GiB')")
    out = run_job({"spec": SPEC.to_dict()}, 10.0, argv=argv)
    row = outcome_result(SPEC, out, ENV)
    assert out.status == "ok"  # the worker itself ended normally and wrote its row
    assert (row.status, row.reason) == ("oom", "out of memory: MemoryError: could not allocate 40 GiB")
    assert row.spec == SPEC
    assert "Traceback" in out.stderr_tail  # the traceback is in the log, not in the row


@pytest.mark.integration
def test_hanging_run_dies_on_sigterm_with_its_stack_in_the_log(tmp_path):
    argv = fake_worker(tmp_path, """
        def load_weights_forever():
            time.sleep(60)
        load_weights_forever()
    """)
    out = run_job({"spec": SPEC.to_dict()}, 2.0, argv=argv, grace_s=2.0)
    assert out.status == "timeout"
    assert "stopped by SIGTERM" in out.reason  # no SIGKILL was needed
    assert out.wall_s < 3.0
    assert "load_weights_forever" in out.stderr_tail  # faulthandler's dump says where it hung


@pytest.mark.integration
def test_real_worker_module_reports_an_unknown_backend_as_failed():
    spec = RunSpec(model=ModelSpec("synthetic", "tiny-llama"), backend="no-such-backend")
    out = run_job({"spec": spec.to_dict()}, 60.0)
    row = outcome_result(spec, out)
    assert out.status == "ok", out.stderr_tail
    assert row.status == "failed" and "no-such-backend" in row.reason
    assert row.env.machine_id  # a real fingerprint from the worker
