"""The Ray executor on a local cluster (ray.cluster_utils.Cluster on this machine: a head with no CPUs
for tasks and two worker nodes with one bench slot each), started once for this module and stopped at
its end. Every wait is bounded. (Ray 2.60 turns a 127.0.0.1 address into the machine's own IP before
connecting, so the cluster listens there: still this machine only.)

The fake runner (tests/helpers/ray_runner.py) runs inside Ray's workers, so it is named by
"module:attr" and reaches them through the runtime_env's PYTHONPATH; one test runs a real worker.
"""

import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from helpers.results import make_spec

from quantscope.env import fingerprint
from quantscope.errors import UserError
from quantscope.spec import QualitySpec
from quantscope.sweep.execute import plan, run_sweep
from quantscope.sweep.executors import Job
from quantscope.sweep.matrix import reference_first
from quantscope.sweep.ray_executor import RayExecutor

pytestmark = pytest.mark.integration
TESTS = str(Path(__file__).resolve().parents[1])
FAKE = "helpers.ray_runner:run_spec"


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    # On two busy shared cores a raylet can wait longer than Ray's default for its agents' ports.
    os.environ.setdefault("RAY_agent_register_timeout_ms", "180000")
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "num_gpus": 0, "include_dashboard": False})
    try:
        for _ in range(2):
            c.add_node(num_cpus=1, num_gpus=0, resources={"bench_slot": 1})
        c.wait_for_nodes(timeout=60)
        yield c
    finally:
        import ray

        ray.shutdown()
        c.shutdown()


def ray_connected() -> bool:
    import ray

    return ray.is_initialized()


@pytest.fixture
def store(tmp_path):
    from quantscope.store import Store

    with Store(tmp_path / "s.sqlite") as st:
        yield st


def fake_executor(cluster, log: Path, sleep: float, **kw) -> RayExecutor:
    env = {"PYTHONPATH": TESTS, "QS_RAY_LOG": str(log), "QS_RAY_SLEEP": str(sleep)}
    return RayExecutor(address=cluster.address, runner=FAKE, runtime_env={"env_vars": env}, connect_timeout_s=60,
                       **kw)


def specs():
    """The reference (torch FP32, first) and four configurations, with a quality pass to compare."""
    return reference_first([make_spec("torch", "bf16"), make_spec("torchao", "fp32", "int8-weight-only"),
                            make_spec("ort", "fp32", "int8"), make_spec("llamacpp", "fp32", "q8_0")])


def marks(log: Path, what: str) -> dict[str, list[str]]:
    """key hash -> node ids of each `what` (start / end) the fake runner wrote."""
    out: dict[str, list[str]] = {}
    for f in log.glob(f"*.{what}"):
        out.setdefault(f.name.split(".")[0], []).append(f.read_text().split()[0])
    return out


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout_s} s")


def test_sweep_across_two_nodes_stores_each_row_once_with_its_node(cluster, store, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    log = tmp_path / "log"
    log.mkdir()
    env = fingerprint()
    workers = {n.node_id for n in cluster.worker_nodes}
    outcome = run_sweep(store, plan(store, specs(), env), env, 60.0, executor=fake_executor(cluster, log, 1.0))

    assert not ray_connected()  # the executor disconnected; the cluster runs on
    assert [r.result.status for r in outcome.rows] == ["ok"] * 5
    stored = store.results()
    assert sorted(r.spec.key_hash() for _, r in stored) == sorted(s.key_hash() for s in specs())
    nodes = {r.info["ray_node_id"] for _, r in stored}
    assert nodes == workers  # both worker nodes measured, the head (no CPUs) none
    assert {r.env.machine_id for _, r in stored} == {env.machine_id}
    for node in nodes:  # one measuring task per node at a time (bench_slot)
        spans = sorted((r.info["t0"], r.info["t1"]) for _, r in stored if r.info["ray_node_id"] == node)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    # the reference ended before any other started; its file came to the driver and went to every task
    ref = outcome.rows[0].result
    assert all(row.result.info["t0"] >= ref.info["t1"] for row in outcome.rows[1:])
    local = Path(ref.info["reference_file"])
    assert local.parent == tmp_path / "cache" / "quantscope" / "reference"
    assert local.read_bytes().decode().startswith("log-probs of ")
    for row in outcome.rows[1:]:
        assert row.result.info["reference_seen"] == local.read_bytes().decode()
        assert row.result.info["reference_file"] == str(local)
    # a second sweep on this cluster reuses every row: per machine, as a local sweep does
    again = fake_executor(cluster, log, 1.0)
    try:
        machines = again.machines()
    finally:
        again.close()
    assert [m.machine_id for m in machines] == [env.machine_id]
    assert all(s.reuse is not None for s in plan(store, specs(), env, machines=machines))


def test_lost_node_is_retried_elsewhere_and_nothing_is_lost_or_doubled(cluster, store, tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    doomed = cluster.add_node(num_cpus=1, num_gpus=0, resources={"bench_slot": 1})
    cluster.wait_for_nodes(timeout=60)
    env = fingerprint()
    off = QualitySpec(enabled=False)  # no reference: every slot busy at once
    work = [make_spec("torch", d, quality=off) for d in ("fp32", "bf16")]
    work += [make_spec("torchao", "fp32", q, quality=off) for q in ("int8-weight-only", "int8-dynamic")]

    def kill_when_busy():
        wait_for(lambda: doomed.node_id in sum(marks(log, "start").values(), []), 90, "task on the third node")
        cluster.remove_node(doomed, allow_graceful=False)

    killer = threading.Thread(target=kill_when_busy, daemon=True)
    killer.start()
    outcome = run_sweep(store, plan(store, work, env), env, 60.0, executor=fake_executor(cluster, log, 3.0))
    killer.join(5)

    assert [r.result.status for r in outcome.rows] == ["ok"] * 4
    stored = store.results()
    assert sorted(r.spec.key_hash() for _, r in stored) == sorted(s.key_hash() for s in work)
    starts = marks(log, "start")
    retried = [k for k, on in starts.items() if doomed.node_id in on]
    assert len(retried) == 1 and len(starts[retried[0]]) == 2  # Ray's one retry (max_retries=1)
    row = next(r for _, r in stored if r.spec.key_hash() == retried[0])
    assert row.info["ray_node_id"] != doomed.node_id


def test_ctrl_c_cancels_the_running_tasks_and_keeps_the_rows(cluster, store, tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    env = fingerprint()
    work = [replace(s, quality=QualitySpec(enabled=False)) for s in specs()[1:]]  # both slots start at once

    sent = []

    def interrupt():  # once a task runs: after the lost-node test, Ray may count one bench slot only
        wait_for(lambda: len(marks(log, "start")) >= 1, 60, "a running task")
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    # Python's own handler: a shell starts a background job (`make test &`, nohup) with SIGINT ignored, and
    # then the signal would never become a KeyboardInterrupt here (as tests/runner/test_isolate.py does)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=interrupt, daemon=True).start()
        outcome = run_sweep(store, plan(store, work, env), env, 60.0, executor=fake_executor(cluster, log, 60.0))
    finally:
        signal.signal(signal.SIGINT, previous)

    assert outcome.interrupted and outcome.exit_code == 130
    assert time.monotonic() - sent[0] < 20  # cancelled, not waited for (each task would take 60 s)
    # every job handed out (one per bench slot Ray counts; a node removed by the test before may still
    # count until Ray marks it dead) is an interrupted row, stored once; the rest were never started
    assert {r.result.status for r in outcome.rows} == {"interrupted"} and 1 <= len(outcome.rows) < len(work)
    assert len(store.results()) == len(outcome.rows)
    # the measuring processes (own sessions, like the isolated worker) were killed, not left running
    pids = [int(f.read_text().split()[2]) for f in log.glob("*.start")]
    assert wait_for(lambda: not any(alive(pid) for pid in pids), 15, "measuring processes ended")


def alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_real_worker_through_the_cli(cluster, tmp_path):
    from helpers.cli import assert_one_line_error, qs

    from quantscope.store import Store

    db = tmp_path / "s.sqlite"
    p = qs("sweep", "--executor", "ray", "--address", cluster.address, "-m", "synthetic:tiny-llama",
           "--backend", "torch", "--dtype", "fp32", "--dtype", "bf16", "--no-quality", "-p", "8", "-g", "4",
           "--min-reps", "1", "--max-reps", "1", "--warmup", "0", "--no-report", store=db, timeout=300)
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-3000:])
    assert f"the Ray cluster at {cluster.address}" in p.stdout
    with Store(db, readonly=True) as st:
        rows = st.results()
    assert sorted(r.status for _, r in rows) == ["ok", "ok"]
    assert {r.info["ray_node_id"] for _, r in rows} <= {n.node_id for n in cluster.worker_nodes}
    assert all(r.get("decode_tps").samples for _, r in rows)
    # bad input: an address where no cluster answers is one line, within a bounded wait
    t0 = time.monotonic()
    bad = qs("sweep", "--executor", "ray", "--address", "127.0.0.1:9", "-m", "synthetic:tiny-llama",
             "--no-quality", "--no-report", store=db, timeout=60)
    assert_one_line_error(bad, 2, "no Ray cluster answers at 127.0.0.1:9")
    assert time.monotonic() - t0 < 30


def test_an_accelerator_no_node_has_is_an_unschedulable_row_and_the_rest_runs(cluster, store, tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    env = fingerprint()
    off = QualitySpec(enabled=False)
    work = [make_spec("torch", "fp32", quality=off), make_spec("torch", "bf16", quality=off)]
    # as a matrix entry with accelerator = "H100" asks (commands/sweep.py: sweep.matrix.accelerators)
    ex = fake_executor(cluster, log, 0.1, accelerators={"torch/bf16": "H100"}, unschedulable_after_s=3)
    outcome = run_sweep(store, plan(store, work, env), env, 60.0, executor=ex)
    ran, placed = (row.result for row in outcome.rows)
    assert ran.status == "ok"
    assert placed.status == "failed" and placed.reason.startswith("unschedulable: no alive node")
    assert "accelerator H100" in placed.reason and list(marks(log, "start")) == [work[0].key_hash()]
    ex = fake_executor(cluster, log, 0.1, accelerator_type="H100", unschedulable_after_s=3)  # every task's
    assert ex.accelerator(Job(0, work[0], 1.0)) == "H100"


def test_an_error_inside_the_task_is_a_failed_row_and_not_retried(cluster, store, tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    env = fingerprint()
    off = QualitySpec(enabled=False)
    work = [make_spec("torch", "fp16", quality=off), make_spec("torch", "bf16", quality=off)]
    outcome = run_sweep(store, plan(store, work, env), env, 60.0, executor=fake_executor(cluster, log, 0.1))
    bad, good = (row.result for row in outcome.rows)
    assert bad.status == "failed" and "RuntimeError: fake runner refuses fp16" in bad.reason
    assert good.status == "ok"
    assert len(marks(log, "start")[work[0].key_hash()]) == 1  # retry_exceptions=False
    assert outcome.exit_code == 1 and len(store.results()) == 2


def test_without_ray_the_executor_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(UserError, match=r"pip install 'quantscope\[ray\]'"):
        RayExecutor()
