"""Two sweeps on one store share the work (issue 21): each configuration is claimed before it runs and
the machine's measuring slot held while it runs, so each is measured once and never two at a time."""

import subprocess
import sys
import threading
import time

import pytest
from helpers.results import make_result, make_spec

from quantscope.env import fingerprint
from quantscope.store import Store
from quantscope.store.claims import SLOT, Claims, alive, process_started
from quantscope.sweep.execute import plan, run_sweep

SPECS = [make_spec(dtype=d) for d in ("fp32", "bf16", "fp16")] + [make_spec("ort", quant="int8")]


class SlowRunner:
    """A fake run_spec that takes a while and records how many runs overlap."""

    def __init__(self, env, seconds=0.3):
        self.env, self.seconds = env, seconds
        self.lock = threading.Lock()
        self.running = self.most = 0
        self.calls: list[str] = []

    def __call__(self, spec, timeout_s=900.0, reference_file=None):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.calls.append(spec.label)
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
        return make_result(spec, env=self.env)


def one_sweep(path, env, out, specs=SPECS):
    with Store(path) as st:  # one Store per thread, as per process
        out.append(run_sweep(st, plan(st, specs, env), env, timeout=60.0))


def no_quality(spec):
    from dataclasses import replace

    return replace(spec, quality=replace(spec.quality, enabled=False))


@pytest.mark.unit
def test_two_sweeps_started_together_measure_each_configuration_once_and_never_at_once(tmp_path, monkeypatch):
    env = fingerprint()
    runner = SlowRunner(env)
    monkeypatch.setattr("quantscope.runner.run_spec", runner)
    path = tmp_path / "s.sqlite"
    Store(path).close()  # created (and migrated) once, as the first sweep would
    specs = [no_quality(s) for s in SPECS]
    outs: list = []
    threads = [threading.Thread(target=one_sweep, args=(path, env, outs, specs)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(runner.calls) == sorted(s.label for s in specs)  # each configuration measured once
    assert runner.most == 1  # never two at the same time
    assert [len(o.rows) for o in outs] == [4, 4] and all(o.exit_code == 0 for o in outs)
    # each sweep reports every configuration; what the other measured, it took as reused
    assert sum(not r.reused for o in outs for r in o.rows) == 4
    with Store(path, readonly=True) as st:
        assert sorted(r.spec.label for _, r in st.results()) == sorted(s.label for s in specs)
    with Claims(path, env.machine_id) as c:  # every claim released at the end
        assert c._conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0


@pytest.mark.unit
def test_a_stale_claim_of_a_dead_sweep_is_taken_over(tmp_path, monkeypatch):
    env = fingerprint()
    runner = SlowRunner(env, seconds=0.0)
    monkeypatch.setattr("quantscope.runner.run_spec", runner)
    path = tmp_path / "s.sqlite"
    Store(path).close()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not alive(dead.pid, "")
    spec = no_quality(SPECS[0])
    with Claims(path, env.machine_id) as c:  # what a sweep killed with -9 leaves behind
        for key in (spec.key_hash(), SLOT):
            c._conn.execute("INSERT INTO claims VALUES (?, ?, 'gone', ?, '', ?, '2026-11-29T00:00:00+00:00')",
                            (key, env.machine_id, dead.pid, c.host))
    outs: list = []
    one_sweep(path, env, outs, [spec])
    assert runner.calls == [spec.label] and outs[0].rows[0].result.status == "ok"


@pytest.mark.unit
def test_a_live_claim_is_not_taken_and_names_its_holder(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path).close()
    with Claims(path, "m") as a, Claims(path, "m") as b:
        assert a.claim("k") is None and a.claim("k") is None  # ours, and still ours
        holder = b.claim("k")
        assert holder is not None and holder.pid == a.pid and f"pid {a.pid} on {a.host}" in str(holder)
        a.release("k")
        assert b.claim("k") is None
    assert process_started(1) != "" or sys.platform != "linux"


@pytest.mark.integration
@pytest.mark.slow
def test_two_sweep_commands_started_together_on_one_store_measure_each_configuration_once(tmp_path):
    """The real thing: two `quantscope sweep` processes on synthetic:tiny-llama with a tiny workload."""
    import os

    store = tmp_path / "s.sqlite"
    argv = [sys.executable, "-m", "quantscope.cli", "sweep", "--model", "synthetic:tiny-llama", "--dtype", "fp32",
            "--dtype", "bf16", "--no-quality", "-p", "8", "-g", "4", "--min-reps", "1", "--max-reps", "2",
            "--warmup", "0", "--no-report", "--store", str(store)]
    Store(store).close()
    env = {**os.environ, "COLUMNS": "120"}
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    with Store(store, readonly=True) as st:
        rows = [r for _, r in st.results()]
    assert sorted(r.spec.quant.dtype for r in rows) == ["bf16", "fp32"]  # one row per configuration
    assert all(r.status == "ok" for r in rows)
    # never two at once: one measurement ends before the other starts (started_at has 1 s resolution)
    import datetime as dt

    spans = sorted((dt.datetime.fromisoformat(r.started_at).timestamp(), r.duration_s) for r in rows)
    (s1, d1), (s2, _) = spans
    assert s2 >= s1 + d1 - 1.0, spans


@pytest.mark.unit
def test_a_single_run_waits_while_a_sweep_holds_the_machine(tmp_path, monkeypatch):
    from quantscope.api import measure

    env = fingerprint()
    runner = SlowRunner(env, seconds=0.0)
    started = []
    monkeypatch.setattr("quantscope.runner.run_spec", lambda *a, **k: (started.append(time.monotonic()),
                                                                       runner(*a, **k))[1])
    path = tmp_path / "s.sqlite"
    Store(path).close()
    holding, released = threading.Event(), []

    def sweep_measuring():  # a sweep in another thread holds the slot for a second (sqlite: one thread each)
        with Claims(path, env.machine_id) as sweep:
            assert sweep.claim(SLOT) is None
            holding.set()
            time.sleep(1.0)
            released.append(time.monotonic())
            sweep.release(SLOT)

    t = threading.Thread(target=sweep_measuring)
    t.start()
    assert holding.wait(30)
    said = []
    run_id, result = measure(no_quality(make_spec(model_ref="tiny-llama", model_source="synthetic")), path,
                             say=said.append)
    t.join()
    assert result.status == "ok" and started[0] >= released[0]
    assert any(line.startswith("waiting: another sweep (pid ") for line in said), said
