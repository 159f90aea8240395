"""Sweeps on a Ray cluster: each configuration is one Ray task; the driver still alone writes the store.

Cluster (README): `ray start --head --resources='{"bench_slot": 1}'` on one machine and
`ray start --address=HEAD:6379 --resources='{"bench_slot": 1}'` on each other one, then
`quantscope sweep --executor ray --address HEAD:6379`. Without an address a local Ray instance with
one bench slot is started (and stopped at the end).

What a task asks for (`demands`): one CPU, a GPU when the spec runs on cuda, the accelerator type when
one is named, and `bench_slot: 1`, a custom resource each node offers once: Ray itself then runs one
measuring task per node at a time (timing needs the node to itself), no lock of ours. Inside the task
the configuration still runs in its own isolated worker with its timeout (quantscope.runner.run_spec,
looked up by its "module:attr" name in the task's process, so a test can name a fake one).

Failures: a task whose node or Ray worker died is retried once by Ray (max_retries=1), elsewhere or
on the node's return; after that the configuration is a failed row saying so. An error raised by our
code inside the task is a failed row at once, never retried (retry_exceptions=False). A task no alive
node can run (an accelerator no node has, every bench slot gone) waits `unschedulable_after_s` for one
that can, then is a failed row saying what it asked for.

The KLD reference: the reference run writes its log-prob file on the node that ran it. The task sends
the file's bytes back with its Result; the driver writes them into its own reference cache (the stored
row names that path, so `find_reference` finds it) and puts them in the object store once; each task
that compares against them gets the bytes and writes them into its own temporary folder. So any node
can run any configuration, and the reference is measured once per sweep.

>>> demands(RunSpec())
{'num_cpus': 1, 'num_gpus': 0, 'resources': {'bench_slot': 1}}
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from quantscope import paths
from quantscope.errors import UserError
from quantscope.result import EnvFingerprint, Result
from quantscope.spec import RunSpec
from quantscope.sweep.executors import Job

BENCH_SLOT = "bench_slot"
RUNNER = "quantscope.runner:run_spec"
INSTALL_HINT = "--executor ray needs Ray: pip install 'quantscope[ray]'"
NO_SLOT_HINT = ("no node of the Ray cluster offers a bench_slot: start each node with "
                "ray start ... --resources='{\"bench_slot\": 1}'")


def demands(spec: RunSpec, accelerator_type: str | None = None) -> dict[str, Any]:
    """The Ray task options one configuration needs (see the module docstring)."""
    out: dict[str, Any] = {"num_cpus": 1, "num_gpus": 1 if spec.device == "cuda" else 0,
                           "resources": {BENCH_SLOT: 1}}
    if accelerator_type:
        out["accelerator_type"] = accelerator_type
    return out


def fits(options: dict[str, Any], node_resources: dict[str, float]) -> bool:
    """Whether a node with these total resources could ever run a task with `options`.

    >>> fits(demands(RunSpec(), "H100"), {"CPU": 4, "bench_slot": 1})
    False
    """
    need = {"CPU": options["num_cpus"], "GPU": options["num_gpus"], **options["resources"]}
    if options.get("accelerator_type"):
        need[f"accelerator_type:{options['accelerator_type']}"] = 0.001  # Ray's own encoding
    return all(node_resources.get(name, 0) >= amount for name, amount in need.items() if amount)


def _resolve(name: str) -> Callable[..., Result]:
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def measure_task(spec_dict: dict[str, Any], timeout_s: float, runner: str, reference: bytes | None,
                 reference_name: str, send_reference: bool) -> tuple[dict[str, Any], bytes | None]:
    """Runs in a Ray worker on some node: the configuration in its own isolated worker.

    Returns the Result as a dict (with the node it ran on) and, for the reference run, the bytes of the
    log-prob file it wrote, which lives on this node only.
    """
    import ray

    spec = RunSpec.from_dict(spec_dict)
    with tempfile.TemporaryDirectory(prefix="quantscope-ray-") as tmp:
        reference_file = None
        if reference is not None:
            reference_file = str(Path(tmp) / reference_name)
            Path(reference_file).write_bytes(reference)
        result = _cancellable(lambda: _resolve(runner)(spec, timeout_s, reference_file=reference_file))
    data = result.to_dict()
    data["info"].update(ray_node_id=ray.get_runtime_context().get_node_id(),
                        ray_node_ip=ray.util.get_node_ip_address(), hostname=socket.gethostname())
    made = result.info.get("reference_file")
    sent = None
    if send_reference and result.status == "ok" and made and Path(made).is_file():
        sent = Path(made).read_bytes()
    return data, sent


def _cancellable(call: Callable[[], Result]) -> Result:
    """`call()` in a thread while this (the task's main) thread waits in short joins.

    Ray's graceful cancel raises KeyboardInterrupt in the task's main thread only when it next runs Python
    code, which a thread blocked waiting for the isolated worker does not do for the whole timeout. Here
    the interrupt lands within a quarter second; then every child process group (the isolated worker
    leads its own, with whatever it started) is killed and the interrupt goes on to Ray.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = call()
        except BaseException as e:  # handed to the task's thread
            box["error"] = e

    thread = threading.Thread(target=target, name="quantscope-ray-run", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.25)
    except KeyboardInterrupt:
        _kill_children()
        thread.join(10.0)
        raise
    if "error" in box:
        raise box["error"]
    return box["result"]


def _kill_children() -> None:
    import signal

    import psutil

    for child in psutil.Process().children(recursive=True):
        try:
            os.killpg(child.pid, signal.SIGKILL)  # a group leader (the isolated worker): all of its group
        except (ProcessLookupError, PermissionError):
            pass
        try:
            child.kill()
        except psutil.Error:
            pass


def fingerprint_task() -> dict[str, Any]:
    """Runs once on each node: the machine fingerprint its rows will carry."""
    from quantscope.env import fingerprint

    return asdict(fingerprint())


def _probe(address: str, timeout_s: float) -> None:
    """A one-line UserError unless something listens at `address` (ray.init itself retries for minutes)."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address!r} is not HOST:PORT, e.g. 10.0.0.5:6379 (the head's `ray start` "
                        "prints it)")
    try:
        socket.create_connection((host, int(port)), timeout=min(timeout_s, 10.0)).close()
    except OSError as e:
        raise UserError(f"no Ray cluster answers at {address} ({e.strerror or e}): start one with "
                        "`ray start --head`, or leave out --address for a local one") from None


def _bounded(call: Callable[[], object], timeout_s: float, what: str) -> None:
    """Run `call` in a daemon thread: a one-line UserError naming `what` if it fails or has not
    returned within `timeout_s`."""
    box: dict[str, BaseException] = {}

    def target() -> None:
        try:
            call()
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    thread = threading.Thread(target=target, name="quantscope-ray-connect", daemon=True)
    thread.start()
    thread.join(timeout_s)
    auth = ("" if os.environ.get("RAY_AUTH_MODE") == "token" else
            "; a cluster started by `ray start --head` wants token authentication: export RAY_AUTH_MODE=token "
            "with the head's ~/.ray/auth_token on this machine")
    if thread.is_alive():
        raise UserError(f"{what} did not answer within {timeout_s:g} s{auth}")
    if "error" in box:
        raise UserError(f"{what}: {_one_line(box['error'])}{auth}") from box["error"]


class RayExecutor:
    """Each job one Ray task across the cluster at `address` (None: a local Ray instance).

    `runner` names the function the task calls ("module:attr"), `runtime_env` is passed to ray.init
    (tests put their fake runner on PYTHONPATH with it). Every wait is bounded: connecting by
    `connect_timeout_s`, an unschedulable task by `unschedulable_after_s`, cancelling by `cancel_grace_s`.
    """

    name = "ray"

    def __init__(self, address: str | None = None, accelerator_type: str | None = None,
                 accelerators: dict[str, str] | None = None, runner: str = RUNNER,
                 runtime_env: dict[str, Any] | None = None, connect_timeout_s: float = 60.0,
                 unschedulable_after_s: float = 60.0, cancel_grace_s: float = 15.0, poll_s: float = 1.0) -> None:
        if importlib.util.find_spec("ray") is None:
            raise UserError(INSTALL_HINT)
        self.address = address
        self.accelerator_type = accelerator_type  # every task's (--accelerator-type)
        self.accelerators = dict(accelerators or {})  # configuration label -> its matrix entry's accelerator
        self.runner = runner
        self.runtime_env = runtime_env
        self.connect_timeout_s = connect_timeout_s
        self.unschedulable_after_s = unschedulable_after_s
        self.cancel_grace_s = cancel_grace_s
        self.poll_s = poll_s
        self._started_ray = False

    def accelerator(self, job: Job) -> str | None:
        """The accelerator type a job must run on: its matrix entry's, else --accelerator-type's."""
        from quantscope.present.labels import spec_label

        return self.accelerators.get(spec_label(job.spec), self.accelerator_type)

    @property
    def where(self) -> str:
        return f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"

    def connect(self) -> None:
        import ray

        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING", "log_to_driver": False,
                                  "runtime_env": self.runtime_env}
        if self.address:  # ray.init retries an address for minutes: probe it, then bound the wait
            _probe(self.address, self.connect_timeout_s)
            _bounded(lambda: ray.init(address=self.address, **kwargs), self.connect_timeout_s,
                     f"could not connect to {self.where}")
        else:  # a local instance, started in this (the main) thread as Ray expects
            ray.init(resources={BENCH_SLOT: 1}, **kwargs)
        self._started_ray = True
        if not any(n["Alive"] and n["Resources"].get(BENCH_SLOT) for n in ray.nodes()):
            self.close()
            raise UserError(NO_SLOT_HINT)

    def close(self) -> None:
        import ray

        if self._started_ray and ray.is_initialized():
            ray.shutdown()
        self._started_ray = False

    def machines(self) -> list[EnvFingerprint]:
        """The fingerprint of each machine that can measure (one small task pinned to each node), so the
        sweep skips configurations already ok on a machine of this cluster."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.connect()
        probe = ray.remote(fingerprint_task)
        refs = [probe.options(num_cpus=0, max_retries=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote() for n in ray.nodes() if n["Alive"] and n["Resources"].get(BENCH_SLOT)]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=self.connect_timeout_s)
        found: dict[str, EnvFingerprint] = {}
        for ref in ready:
            try:
                env = EnvFingerprint.from_dict(ray.get(ref))
            except ray.exceptions.RayError:  # a node that left meanwhile measures nothing either
                continue
            found.setdefault(env.machine_id, env)
        return list(found.values())

    def execute(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, Result]]:
        """Submit jobs while a bench slot is free (a reference job alone, finished before the next pull);
        yield each Result as its task ends. On Ctrl-C the outstanding tasks are cancelled."""
        import ray

        self.connect()
        task = ray.remote(measure_task)
        running: dict[Any, Job] = {}  # ObjectRef -> job
        blocked: dict[Any, float] = {}  # ObjectRef -> since when no alive node could run it
        shipped: dict[str, Any] = {}  # reference file on this machine -> its bytes in the object store
        source = iter(jobs)
        exhausted = reference_running = False
        try:
            while True:
                nodes = [n["Resources"] for n in ray.nodes() if n["Alive"]]
                slots = max(1, int(sum(r.get(BENCH_SLOT, 0) for r in nodes)))
                while not exhausted and not reference_running and len(running) < slots:
                    job = next(source, None)
                    if job is None:
                        exhausted = True
                        break
                    running[self._submit(task, job, shipped)] = job
                    reference_running = job.is_reference
                if not running:
                    break
                for ref, job in list(running.items()):
                    if any(fits(demands(job.spec, self.accelerator(job)), r) for r in nodes):
                        blocked.pop(ref, None)
                    elif time.monotonic() - blocked.setdefault(ref, time.monotonic()) > self.unschedulable_after_s:
                        ray.cancel(ref, force=True)
                        del running[ref], blocked[ref]
                        reference_running = reference_running and not job.is_reference
                        yield job, self._unschedulable(job)
                ready, _ = ray.wait(list(running), num_returns=1, timeout=self.poll_s)
                for ref in ready:
                    job = running.pop(ref)
                    blocked.pop(ref, None)
                    reference_running = reference_running and not job.is_reference
                    yield job, self._collect(ref, job)
        except BaseException:  # Ctrl-C, or the driver stopped asking: no task may outlive the sweep
            self._cancel(list(running))
            raise
        finally:
            self.close()

    def _submit(self, task, job: Job, shipped: dict[str, Any]) -> Any:
        import ray

        reference = None
        if job.reference_file and Path(job.reference_file).is_file():
            if job.reference_file not in shipped:
                shipped[job.reference_file] = ray.put(Path(job.reference_file).read_bytes())
            reference = shipped[job.reference_file]
        options = demands(job.spec, self.accelerator(job))
        return task.options(**options, max_retries=1, retry_exceptions=False).remote(
            job.spec.to_dict(), job.timeout_s, self.runner, reference,
            Path(job.reference_file or "reference.npz").name, job.is_reference)

    def _collect(self, ref, job: Job) -> Result:
        """The job's Result: the task's own, or a failed row saying what Ray reported."""
        import ray
        import ray.exceptions as rex

        try:
            data, reference_bytes = ray.get(ref)
        except rex.RayTaskError as e:  # our code raised inside the task: a row, not retried
            return self._failed(job, f"the Ray task raised {_one_line(e.cause or e)}")
        except (rex.NodeDiedError, rex.WorkerCrashedError, rex.LocalRayletDiedError, rex.OwnerDiedError,
                rex.ObjectLostError) as e:
            return self._failed(job, f"node died: the Ray worker or node running it was lost twice "
                                     f"(retried once): {_one_line(e)}")
        except rex.RayError as e:
            return self._failed(job, f"Ray could not run it: {_one_line(e)}")
        result = Result.from_dict(data)
        if job.reference_file:  # the task's copy was temporary: the row names the driver's file
            result.info["reference_file"] = job.reference_file
        if job.is_reference and reference_bytes is not None:
            node_file = Path(result.info["reference_file"])
            local = paths.cache_root("reference") / node_file.name
            if not (local.is_file() and local.read_bytes() == reference_bytes):
                local.parent.mkdir(parents=True, exist_ok=True)
                paths.write_bytes(local, reference_bytes)
            result.info.update(reference_file=str(local), reference_file_on_node=str(node_file))
        return result

    def _unschedulable(self, job: Job) -> Result:
        d = demands(job.spec, self.accelerator(job))
        asked = [f"{d['num_cpus']} CPU", *([f"{d['num_gpus']} GPU"] if d["num_gpus"] else []),
                 *(f"{k} {v:g}" for k, v in d["resources"].items()),
                 *([f"accelerator {d['accelerator_type']}"] if d.get("accelerator_type") else [])]
        return self._failed(job, f"unschedulable: no alive node of {self.where} offers {', '.join(asked)} "
                                 f"(waited {self.unschedulable_after_s:g} s)")

    def _failed(self, job: Job, reason: str) -> Result:
        from quantscope.env import fingerprint
        from quantscope.sweep.execute import now_iso

        # No node measured it: the row carries the driver's fingerprint, where the verdict was made.
        return Result(spec=job.spec, env=fingerprint(), status="failed", reason=reason, started_at=now_iso(),
                      info={"executor": "ray", "decided_on": "driver"})

    def _cancel(self, refs: list[Any]) -> None:
        """Cancel: KeyboardInterrupt in each task (its isolated worker's group is killed on the way out),
        then, after `cancel_grace_s`, force for any task still running."""
        import ray

        if not refs or not ray.is_initialized():
            return
        for ref in refs:
            ray.cancel(ref, force=False)
        _, left = ray.wait(refs, num_returns=len(refs), timeout=self.cancel_grace_s)
        for ref in left:
            ray.cancel(ref, force=True)


def _one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__
