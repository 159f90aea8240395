"""Fixtures shared by the converted-runtime tests (ONNX Runtime, llama.cpp) on the tiny synthetic llama."""

import numpy as np
import pytest

from quantscope.spec import ModelSpec, RunSpec

TINY = ModelSpec("synthetic", "tiny-llama")


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory):
    """One artifact cache per test module, so a conversion is shared by the tests that reuse it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg")))
        yield


@pytest.fixture(scope="module")
def reference():
    """Torch FP32 logits of a fixed random sequence (the tiny model's reference)."""
    from quantscope.backends.torch.backend import TorchBackend
    from quantscope.models import resolve

    torch_backend = TorchBackend()
    torch_backend.load(RunSpec(model=TINY), resolve(TINY))
    seq = np.random.default_rng(1).integers(0, 256, 48)
    return seq, torch_backend.logits(seq)
