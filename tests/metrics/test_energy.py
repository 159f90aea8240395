"""EnergyMeter reads real counters or says why it cannot; RAPL wraparound and zone choice on a fake sysfs."""

import pytest

from quantscope.metrics.energy import POWERCAP, EnergyMeter, RaplZone, rapl_zones

pytestmark = pytest.mark.unit

MAX_UJ = 262_143_328_850  # a real package's max_energy_range_uj


def zone(root, name, label, energy_uj, max_uj=MAX_UJ):
    d = root / name
    d.mkdir(parents=True)
    (d / "name").write_text(label + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d / "energy_uj"


def test_no_powercap_gives_a_reason_not_a_number(tmp_path):
    meter = EnergyMeter(powercap=tmp_path / "powercap", nvml=False)
    reason = meter.available()
    assert reason.startswith("RAPL not exposed at") and str(tmp_path) in reason
    with pytest.raises(RuntimeError, match="not measurable"):
        meter.read()


def test_this_machine_either_reads_energy_or_says_why():
    meter = EnergyMeter()
    reason = meter.available()
    if reason is None:
        meter.start()
        sum(i * i for i in range(200_000))
        assert meter.stop() >= 0.0
        assert meter.sources
    else:
        assert reason and meter.sources == []
        if not POWERCAP.exists():
            assert "RAPL not exposed" in reason


def test_packages_are_summed_and_subzones_and_psys_ignored(tmp_path):
    pkg0 = zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    pkg1 = zone(tmp_path, "intel-rapl:1", "package-1", 5_000_000)
    core = zone(tmp_path, "intel-rapl:0/intel-rapl:0:0", "core", 0)
    psys = zone(tmp_path, "intel-rapl:2", "psys", 0)
    meter = EnergyMeter(powercap=tmp_path, nvml=False)
    assert meter.available() is None and meter.sources == ["rapl"]
    meter.start()
    pkg0.write_text("3000000\n")  # +2 J
    pkg1.write_text("5500000\n")  # +0.5 J
    core.write_text("9999999999\n")  # a sub-zone of package 0: must not be added again
    psys.write_text("9999999999\n")  # the platform zone includes the packages
    assert meter.stop() == pytest.approx(2.5)


def test_read_is_cumulative_across_a_wraparound(tmp_path):
    pkg = zone(tmp_path, "intel-rapl:0", "package-0", MAX_UJ - 1_000_000)
    meter = EnergyMeter(powercap=tmp_path, nvml=False)
    pkg.write_text(f"{MAX_UJ - 250_000}\n")
    assert meter.read() == pytest.approx(0.75)
    pkg.write_text("500000\n")  # wrapped: 0.25 J to the top, then 0.5 J
    assert meter.read() == pytest.approx(0.75 + 0.75)
    meter.start()
    pkg.write_text("2500000\n")
    assert meter.stop() == pytest.approx(2.0)


def test_wraparound_arithmetic():
    z = RaplZone("package-0", None, max_range_uj=1000, last_uj=900)
    assert z.advance(950) == 50
    assert z.advance(20) == 70  # 50 to the top, then 20
    assert z.advance(20) == 0


def test_unreadable_counter_gives_the_permission_reason(tmp_path, monkeypatch):
    zone(tmp_path, "intel-rapl:0", "package-0", 1)
    real_read = type(tmp_path).read_text

    def read_text(self, *a, **k):
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self, *a, **k)

    monkeypatch.setattr(type(tmp_path), "read_text", read_text)
    zones, reason = rapl_zones(tmp_path)
    assert zones == [] and "root only" in reason and "CVE-2020-8694" in reason


@pytest.mark.gpu
def test_nvml_energy_counter_on_a_gpu():
    pytest.importorskip("pynvml")
    meter = EnergyMeter(powercap=POWERCAP)
    if "nvml" not in meter.sources:
        pytest.skip(f"no NVML energy counter here: {meter.available()}")
    meter.start()
    import time

    time.sleep(0.5)  # an idle GPU still draws tens of watts
    assert meter.stop() > 0.0
