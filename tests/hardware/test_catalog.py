"""The catalog: a few entries pinned to their datasheets (dense figures, GB = 1e9), formats and bad ids."""

import pytest

from quantscope.errors import UserError
from quantscope.hardware.catalog import catalog, get_hardware

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("hw_id", "memory_gb", "bandwidth_gbps", "peaks_tflops", "tdp_w"), [
    # T4 datasheet: 16 GB GDDR6, 320 GB/s, FP32 8.1, mixed FP16 65, INT8 130 TOPS, 70 W
    ("t4", 16, 320, {"fp32": 8.1, "fp16": 65, "int8": 130}, 70),
    # A100 datasheet: 80GB SXM 2,039 GB/s; BF16 312 dense (624 is the sparse figure); 400 W
    ("a100-80gb-sxm", 80, 2039, {"fp32": 19.5, "tf32": 156, "bf16": 312, "int8": 624}, 400),
    ("a100-80gb-pcie", 80, 1935, {"bf16": 312}, 300),
    # H100 SXM datasheet prints BF16 1,979* and FP8 3,958* with sparsity: dense is half
    ("h100-sxm", 80, 3350, {"fp32": 67, "bf16": 989.5, "fp8": 1979, "int8": 1979}, 700),
    # H200: 141 GB at 4.8 TB/s, the same Hopper tensor cores as the H100 SXM
    ("h200", 141, 4800, {"bf16": 989.5, "fp8": 1979}, 700),
    # L4 datasheet prints only sparse figures: FP8 485* -> 242.5 dense
    ("l4", 24, 300, {"fp8": 242.5, "bf16": 121}, 72),
])
def test_entries_match_their_datasheets(hw_id, memory_gb, bandwidth_gbps, peaks_tflops, tdp_w):
    hw = get_hardware(hw_id)
    assert hw.memory_bytes == memory_gb * 1e9
    assert hw.bandwidth_Bps == bandwidth_gbps * 1e9
    for dtype, tflops in peaks_tflops.items():
        assert hw.peak_flops[dtype] == pytest.approx(tflops * 1e12), dtype
    assert hw.tdp_w == tdp_w


def test_every_entry_cites_a_source_for_each_figure_group():
    for hw in catalog().values():
        assert hw.source.startswith(("NVIDIA", "AMD")) and "https://" in hw.source, hw.id
        assert {"memory", "bandwidth", "peaks", "tdp"} <= set(hw.sources), hw.id


def test_every_format_a_gpu_lists_has_a_dense_peak_and_every_missing_one_a_reason():
    for hw in catalog().values():
        for fmt in hw.formats:
            assert fmt in hw.peak_flops, (hw.id, fmt)
        for fmt in ("bf16", "fp8", "fp4"):
            assert fmt in hw.formats or fmt in hw.notes, (hw.id, fmt)


@pytest.mark.parametrize(("hw_id", "compute", "why"), [
    ("t4", "bf16", "no bf16"), ("v100", "bf16", "no bf16"), ("a100-80gb-sxm", "fp8", "Ada/Hopper"),
    ("h100-sxm", "fp4", "Blackwell"),
])
def test_impossible_compute_types_say_why(hw_id, compute, why):
    reason = get_hardware(hw_id).unsupported(compute)
    assert reason is not None and why in reason and hw_id in reason


def test_fp4_only_on_blackwell():
    assert [hw.id for hw in catalog().values() if "fp4" in hw.formats] == ["b200"]


def test_unknown_id_is_one_line_naming_the_near_ids():
    with pytest.raises(UserError) as e:
        get_hardware("h100")
    msg = str(e.value)
    assert "\n" not in msg and "'h100-sxm'" in msg and "'h100-pcie'" in msg


def test_gpu_names_from_nvidia_smi_map_to_catalog_ids():
    from quantscope.hardware.catalog import catalog_id_for_gpu

    assert catalog_id_for_gpu("NVIDIA H200") == "h200"
    assert catalog_id_for_gpu("NVIDIA A10") == "a10" and catalog_id_for_gpu("Tesla T4") == "t4"
    assert catalog_id_for_gpu("NVIDIA A100 80GB PCIe") == "a100-80gb-pcie"
    assert catalog_id_for_gpu("2 x NVIDIA H100 80GB HBM3") is None  # several GPUs: not one catalog entry
    assert catalog_id_for_gpu("NVIDIA GeForce RTX 4090") is None and catalog_id_for_gpu("NVIDIA L40S") is None
