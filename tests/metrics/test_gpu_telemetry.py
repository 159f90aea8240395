"""GPU telemetry: a fake NVML module with known answers (CI has no GPU), the clean skip without one,
and a real run where an NVIDIA GPU and nvidia-ml-py are at hand."""

import time
from types import SimpleNamespace

import pytest

from quantscope.metrics.gpu_telemetry import GpuTelemetry
from quantscope.runner.measure import gpu_telemetry
from quantscope.spec import ModelSpec, RunSpec

pytestmark = pytest.mark.unit


class FakeNvml:
    """The pynvml functions GpuTelemetry calls; power is refused (NotSupported), as on some vGPUs.
    Utilisation climbs 10 points per read; energy grows 5 J per read of the counter."""

    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1

    class NVMLError(Exception):
        pass

    def __init__(self, energy=True):
        self.reads, self.energy_mj, self.has_energy, self.shut = 0, 1_000_000.0, energy, False

    def nvmlInit(self):  # noqa: N802 - pynvml's names
        pass

    def nvmlShutdown(self):  # noqa: N802
        self.shut = True

    def nvmlDeviceGetHandleByIndex(self, i):  # noqa: N802
        return f"gpu{i}"

    def nvmlDeviceGetUtilizationRates(self, h):  # noqa: N802
        self.reads += 1
        return SimpleNamespace(gpu=min(100, 10 * self.reads), memory=40)

    def nvmlDeviceGetPowerUsage(self, h):  # noqa: N802
        raise self.NVMLError("Not Supported")

    def nvmlDeviceGetTemperature(self, h, sensor):  # noqa: N802
        return 61

    def nvmlDeviceGetClockInfo(self, h, clock):  # noqa: N802
        return 1980

    def nvmlDeviceGetMemoryInfo(self, h):  # noqa: N802
        return SimpleNamespace(used=3 << 30)

    def nvmlDeviceGetTotalEnergyConsumption(self, h):  # noqa: N802
        if not self.has_energy:
            raise self.NVMLError("Not Supported")
        self.energy_mj += 5000.0
        return self.energy_mj


def test_samples_every_reported_quantity_through_the_block_and_leaves_out_what_nvml_refuses():
    nv = FakeNvml()
    with GpuTelemetry(nvml=nv, interval_s=0.005) as tel:
        time.sleep(0.1)
    assert tel.available() is None and nv.shut
    assert tel.unsupported == ["gpu_power_w"] and "gpu_power_w" not in tel.series  # never a made-up number
    n = len(tel.times_s)
    assert n >= 3 and all(len(v) == n for v in tel.series.values())
    assert tel.times_s == sorted(tel.times_s) and tel.times_s[-1] >= 0.1
    assert set(tel.series["gpu_temp_c"]) == {61.0} and set(tel.series["gpu_mem_used_bytes"]) == {3 << 30}
    assert tel.energy_j == pytest.approx(5.0)  # one counter read at the start, one at the end
    info = tel.info(tokens=100)
    assert info["gpu_util_pct"]["peak"] == max(tel.series["gpu_util_pct"]) > info["gpu_util_pct"]["mean"]
    assert info["energy_j_per_token"] == pytest.approx(0.05)


def test_measurement_rows_carry_units_and_the_sample_times():
    with GpuTelemetry(nvml=FakeNvml(energy=False), interval_s=0.005) as tel:
        time.sleep(0.02)
    rows = {name: (unit, samples, meta) for name, unit, samples, _, meta in tel.measurements_data()}
    assert rows["gpu_sm_clock_mhz"][0] == "MHz" and rows["gpu_mem_used_bytes"][0] == "bytes"
    assert len(rows["gpu_util_pct"][2]["t_s"]) == len(rows["gpu_util_pct"][1])
    assert tel.energy_j is None and "energy_j_per_token" not in tel.info(tokens=10)


def test_without_nvml_nothing_is_sampled_and_the_reason_is_kept(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pynvml(name, *args, **kwargs):
        if name == "pynvml":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pynvml)
    with GpuTelemetry() as tel:
        pass
    assert "nvidia-ml-py" in tel.available()
    assert tel.series == {} and tel.measurements_data() == [] and tel.info()["measured"] is False


def test_a_cpu_run_takes_no_gpu_telemetry():
    with gpu_telemetry(RunSpec(model=ModelSpec("synthetic", "tiny-llama"))) as tel:
        assert tel is None


@pytest.mark.gpu
def test_real_nvml_on_a_gpu():
    pytest.importorskip("pynvml")
    tel = GpuTelemetry(interval_s=0.02)
    if tel.available():
        pytest.skip(tel.available())
    with tel:
        time.sleep(0.3)
    assert len(tel.times_s) >= 5
    assert 0 <= min(tel.series["gpu_util_pct"]) and max(tel.series["gpu_util_pct"]) <= 100
    assert 0 < max(tel.series["gpu_sm_clock_mhz"])


def test_a_cuda_run_samples_the_first_visible_gpu_through_nvml(monkeypatch):
    """The worker's seam (runner.measure.gpu_telemetry) with a fake pynvml module in sys.modules."""
    import sys

    nv = FakeNvml()
    seen = []
    real = nv.nvmlDeviceGetHandleByIndex
    monkeypatch.setattr(nv, "nvmlDeviceGetHandleByIndex", lambda i: seen.append(i) or real(i))
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    with gpu_telemetry(RunSpec(model=ModelSpec("synthetic", "tiny-llama"), device="cuda")) as tel:
        time.sleep(0.25)
    assert seen == [3] and tel.available() is None
    assert len(tel.times_s) >= 2 and tel.info(tokens=50)["energy_j_per_token"] == pytest.approx(0.1)
