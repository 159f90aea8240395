"""On the bundled model (SmolLM2-135M, loaded through the torch backend, ~20 s): smoothing alone,
with the calibration source's own batches, changes the FP32 logits by < 1e-4 relative."""

import time

import pytest

from quantscope.methods.smoothquant.mappings import groups_for
from quantscope.methods.smoothquant.smooth import Observer, smooth_groups
from quantscope.spec import QuantSpec, RunSpec

pytestmark = pytest.mark.integration

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def backend():
    from quantscope.backends.torch.backend import TorchBackend
    from quantscope.models import parse_model, resolve

    try:
        model = parse_model(None)
        artifact = resolve(model)
    except Exception as e:  # noqa: BLE001 - no bundled model here: nothing to test
        pytest.skip(f"the bundled model is not available: {e}")
    b = TorchBackend()
    b.load(RunSpec(model=model, backend="torch", quant=QuantSpec(dtype="fp32")), artifact)
    return b


def test_smoothing_alone_changes_bundled_fp32_logits_by_less_than_1e_4(backend):
    from quantscope.methods.calibration import CalibrationSpec, calibration_batches

    model = backend.model
    cal = calibration_batches(CalibrationSpec(samples=8, seq_len=128), backend.tokenize, backend.vocab_size)
    x = torch.tensor([backend.tokenize("The quick brown fox jumps over the lazy dog. " * 8)[:64]])
    with torch.no_grad():
        before = model(input_ids=x).logits.float()
    groups = groups_for(model)
    assert len(groups) == 60  # 30 layers x (input_layernorm -> q,k,v; post_attention_layernorm -> gate,up)
    obs = Observer()
    for g in groups:
        obs.watch_output(g.norm_name, g.norm, keep=False)
    t0 = time.perf_counter()
    with torch.no_grad():
        for row in cal.batches:
            model(input_ids=torch.tensor([row]))
    obs.remove()
    chosen = smooth_groups(groups, obs, 0.5, static=False, selected=lambda n: True)
    print(f"calibration of 8 x 128 tokens and the fold: {time.perf_counter() - t0:.1f} s")
    assert len(chosen) == 60
    with torch.no_grad():
        after = model(input_ids=x).logits.float()
    rel = float((after - before).norm() / before.norm())
    print(f"relative change of the logits: {rel:.2e}")
    assert rel < 1e-4
