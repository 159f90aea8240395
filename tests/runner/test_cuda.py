"""CUDA paths: run on a GPU machine, skip cleanly elsewhere; without CUDA a cuda run is `unsupported`."""

import pytest

from quantscope.runner import run_spec
from quantscope.spec import ModelSpec, QualitySpec, QuantSpec, RunSpec, WorkloadSpec


def has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def tiny(device: str) -> RunSpec:
    return RunSpec(model=ModelSpec("synthetic", "tiny-llama"), quant=QuantSpec("bf16"), device=device,
                   workload=WorkloadSpec(prompt_tokens=16, gen_tokens=8, max_seconds=2),
                   quality=QualitySpec(enabled=False))


@pytest.mark.integration
@pytest.mark.skipif(has_cuda(), reason="this machine has CUDA: the unsupported path does not apply")
def test_cuda_without_a_gpu_is_an_unsupported_row_with_the_reason():
    r = run_spec(tiny("cuda"), timeout_s=120)
    assert r.status == "unsupported"
    assert "CUDA is not available" in r.reason


@pytest.mark.gpu
@pytest.mark.skipif(not has_cuda(), reason="needs a CUDA GPU")
def test_cuda_bf16_run_measures_device_memory():
    r = run_spec(tiny("cuda"), timeout_s=300)
    assert r.status == "ok", r.reason
    assert r.get("torch_max_allocated_bytes").value > 0
    assert r.get("decode_tps").value > 0
