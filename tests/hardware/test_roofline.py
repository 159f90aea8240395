"""The roofline: decode bound by bytes, prefill turning compute-bound at the catalog's ridge point."""

import pytest

from quantscope.hardware import roofline
from quantscope.hardware.calibrate import Calibration
from quantscope.hardware.catalog import get_hardware
from quantscope.hardware.formats import layout
from quantscope.hardware.project import project
from quantscope.models.shape import shape_from_config
from quantscope.models.synthetic import config_for

pytestmark = pytest.mark.unit

NO_DATA = Calibration([])  # every format gets the same prior shares: the roofline alone decides


def llama(name="llama3-8b"):
    return shape_from_config(config_for(name), name)


def test_bandwidth_bound_decode_scales_with_bytes():
    s, hw = llama(), get_hardware("a100-80gb-sxm")
    runs = {q: project(s, hw, "llamacpp", q, "fp32", calibration=NO_DATA, prompt=16, context=32)
            for q in ("f16", "q8_0", "q4_0")}
    assert {p.bound for p in runs.values()} == {"memory"}
    step_bytes = {q: roofline.decode_bytes(s, layout("llamacpp", q, "fp32", s), 1, 24) for q in runs}
    for q in ("q8_0", "q4_0"):
        speedup = runs[q].decode_tps / runs["f16"].decode_tps
        assert speedup == pytest.approx(step_bytes["f16"] / step_bytes[q], rel=1e-9)


def test_prefill_turns_compute_bound_at_the_ridge_the_catalog_implies():
    s, hw = llama(), get_hardware("a100-80gb-sxm")
    lay = layout("torch", "none", "bf16", s)
    # Intensity of a P-token prefill ~ 2 P N / (2 N) = P FLOPs/byte for bf16 weights; the ridge is
    # peak/bandwidth = 312e12 / 2.039e12 = 153 FLOPs/byte, scaled by the shares the projection uses.
    eff = NO_DATA.efficiency("a100-80gb-sxm", "gpu", "torch", lay.key)
    ridge = roofline.ridge_intensity(hw.peak("bf16") * eff.kappa, hw.bandwidth_Bps * eff.eta)
    crossing = None
    for prompt in range(1, 400):
        t = roofline.phase_time(roofline.prefill_bytes(s, lay, 1, prompt),
                                roofline.prefill_flops(s, 1, prompt, lay.all_logits), hw.bandwidth_Bps,
                                hw.peak("bf16"), eff.eta, eff.kappa, 0.0)
        if t.bound == "compute":
            crossing = prompt
            break
    assert crossing is not None
    intensity = roofline.prefill_flops(s, 1, crossing, lay.all_logits) / roofline.prefill_bytes(s, lay, 1, crossing)
    before = roofline.prefill_flops(s, 1, crossing - 1, lay.all_logits) / roofline.prefill_bytes(s, lay, 1,
                                                                                                  crossing - 1)
    assert before < ridge <= intensity
    assert roofline.ridge_intensity(hw.peak("bf16"), hw.bandwidth_Bps) == pytest.approx(153.0, rel=1e-3)


def test_flop_counts_follow_two_per_weight_plus_attention():
    s = llama()
    assert roofline.linear_flops(s, 1) == 2 * s.linear_params
    d_attn = s.heads * s.head_dim
    assert roofline.decode_flops(s, 1, 1000) == 2 * s.linear_params + 4 * s.layers * 1000 * d_attn
