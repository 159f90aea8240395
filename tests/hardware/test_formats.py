"""Bytes per weight come from the real formats: llama.cpp blocks, torchao scales, bnb absmax blocks."""

import pytest

from quantscope.hardware.formats import GGML_BLOCKS, ggml_bpw, layout, shape_like
from quantscope.models.shape import shape_from_config
from quantscope.models.synthetic import config_for

pytestmark = pytest.mark.unit


def test_ggml_block_table_matches_the_gguf_package():
    constants = pytest.importorskip("gguf.constants")
    for name, (block, size) in GGML_BLOCKS.items():
        assert constants.GGML_QUANT_SIZES[constants.GGMLQuantizationType[name]] == (block, size), name


@pytest.mark.parametrize(("name", "bytes_per_32"), [("Q4_0", 18), ("Q4_1", 20), ("Q5_0", 22), ("Q5_1", 24),
                                                    ("Q8_0", 34)])
def test_legacy_blocks_are_a_fp16_scale_plus_packed_values(name, bytes_per_32):
    assert ggml_bpw(name) * 32 == bytes_per_32


def test_k_quants_fall_back_when_rows_are_not_multiples_of_256():
    smol = shape_from_config(config_for("smollm2-135m"))  # width 576 (FACTS.md)
    assert layout("llamacpp", "q4_k_m", "fp32", smol).linear_bpw == pytest.approx(22 / 32)  # Q5_0
    assert layout("llamacpp", "q4_k_s", "fp32", shape_like()).linear_bpw == pytest.approx(144 / 256)


def test_llama3_8b_gguf_sizes_match_published_files():
    # bartowski/Meta-Llama-3-8B-Instruct-GGUF: Q4_0 4.66 GB, Q8_0 8.54 GB, Q4_K_M 4.92 GB
    s = shape_from_config(config_for("llama3-8b"))
    for quant, gb in (("q4_0", 4.66), ("q8_0", 8.54), ("q4_k_m", 4.92)):
        assert layout("llamacpp", quant, "fp32", s).weight_bytes(s) / 1e9 == pytest.approx(gb, rel=0.02), quant


def test_scales_are_counted():
    s = shape_like(hidden=4096)
    assert layout("torchao", "int4-weight-only", "bf16", s, (("group_size", 32),)).linear_bpw == 0.5 + 4 / 32
    assert layout("bnb", "nf4", "fp16", s).linear_bpw == 0.5 + 4 / 64  # fp32 absmax per 64
    dq = layout("bnb", "nf4", "fp16", s, (("double_quant", True),)).linear_bpw
    assert (dq - 0.5) * 8 == pytest.approx(0.127, abs=1e-3)  # QLoRA: 0.127 bits per parameter
    assert layout("torchao", "int8-weight-only", "bf16", s).linear_bpw == 1 + 2 / 4096


def test_weight_only_keeps_the_head_and_embedding_in_the_run_dtype():
    s = shape_from_config(config_for("llama2-7b"))
    lay = layout("torchao", "int8-weight-only", "bf16", s)
    expected = s.block_linear_params * (1 + 2 / 4096) + 2 * s.embed_params * 2 + s.norm_params * 2
    assert lay.weight_bytes(s) == int(expected)


def test_ort_int8_bytes_follow_its_scheme():
    shape = shape_like(hidden=576)
    blockwise = layout("ort", "int8", "fp32", shape)  # the default scheme: MatMulNBits at 8 bits, block 32
    assert blockwise.linear_bpw == pytest.approx(1 + 4 / 32) and blockwise.key == "ort/int8"
    wide = layout("ort", "int8", "fp32", shape, (("scheme", "blockwise"), ("block_size", 128)))
    assert wide.linear_bpw == pytest.approx(1 + 4 / 128)
    per_tensor = layout("ort", "int8", "fp32", shape, (("scheme", "dynamic"),))
    assert per_tensor.linear_bpw == 1 and per_tensor.key == "ort/int8-dynamic"  # another kernel, fitted apart
    assert layout("ort", "int8", "fp32", shape, (("scheme", "static"),)).linear_bpw == pytest.approx(1 + 5 / 576)


@pytest.mark.parametrize(("backend", "quant", "stored_mib"), [
    ("ort", "none", 621.1), ("ort", "int8", 252.4), ("ort", "int4", 188.3),
    ("ortgenai", "none", 515.1), ("ortgenai", "int8", 254.4), ("ortgenai", "int4", 82.3)])
def test_onnx_layouts_weigh_what_the_stored_graphs_of_the_bundled_model_weigh(backend, quant, stored_mib):
    """The default sweep's stored weight sizes (MiB) on this 135M shape: within 3 %."""
    smol = shape_from_config(config_for("smollm2-135m"))
    assert layout(backend, quant, "fp32", smol).weight_bytes(smol) / 2**20 == pytest.approx(stored_mib, rel=0.03)
