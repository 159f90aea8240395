"""Memory fit on hand-computed cases, unsupported formats with the reason, and the largest batch x context."""

import pytest

from quantscope.hardware.calibrate import Calibration
from quantscope.hardware.catalog import GPU_RESERVE_BYTES, get_hardware
from quantscope.hardware.fit import largest_fit
from quantscope.hardware.project import project
from quantscope.models.shape import shape_from_config
from quantscope.models.synthetic import config_for

pytestmark = pytest.mark.unit


def llama2_7b():
    return shape_from_config(config_for("llama2-7b"), "llama2-7b")


def hand_total(ctx: int, prompt: int = 128) -> float:
    """Llama-2-7B fp16 by hand: 6,738,415,616 params x 2 bytes; K+V per token 2 x 32 layers x 4096 x 2 bytes;
    prefill activations 128 x 2 x (2*4096 + 3*4096 + 2*11008) + fp32 logits 128 x 32000 x 4; 1 GiB reserve."""
    weights = 6_738_415_616 * 2
    kv = ctx * 2 * 32 * 4096 * 2
    acts = prompt * 2 * (2 * 4096 + 3 * 4096 + 2 * 11008) + prompt * 32000 * 4
    return weights + kv + acts + GPU_RESERVE_BYTES


def test_llama2_7b_fp16_on_a_t4_fits_at_2k_and_not_at_4k_by_hand():
    t4 = get_hardware("t4")
    for ctx, fits in ((2048, True), (4096, False)):
        p = project(llama2_7b(), t4, "torch", "none", "fp16", calibration=Calibration([]), context=ctx)
        assert p.memory_bytes == pytest.approx(hand_total(ctx))
        assert p.fits is fits and (hand_total(ctx) <= 16e9) is fits


def test_largest_context_is_where_the_hand_sum_crosses_capacity():
    r = largest_fit(llama2_7b(), get_hardware("t4"), "torch", "none", "fp16", batch=1)
    assert hand_total(r["max_context_at_batch"]) <= 16e9 < hand_total(r["max_context_at_batch"] + 1)


def test_70b_fits_an_80gb_gpu_only_quantized():
    s, a100 = shape_from_config(config_for("llama2-70b"), "70b"), get_hardware("a100-80gb-sxm")
    assert not largest_fit(s, a100, "torch", "none", "fp16")["fits"]  # 138 GB of weights
    nf4 = largest_fit(s, a100, "bnb", "nf4", "fp16")
    assert nf4["fits"] and 35e9 < nf4["weights_bytes"] < 45e9


def test_bf16_on_t4_and_fp8_on_a100_are_unsupported_with_the_reason():
    s = llama2_7b()
    t4 = project(s, get_hardware("t4"), "torch", "none", "bf16", calibration=Calibration([]))
    assert not t4.supported and "no bf16" in t4.reason and t4.decode_tps is None
    fp8 = project(s, get_hardware("a100-80gb-sxm"), "torchao", "float8-dynamic", "bf16", calibration=Calibration([]))
    assert not fp8.supported and "fp8" in fp8.reason and "Ada/Hopper" in fp8.reason
    h100 = project(s, get_hardware("h100-sxm"), "torchao", "float8-dynamic", "bf16", calibration=Calibration([]))
    assert h100.supported
