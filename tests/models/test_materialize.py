import json
import time
from pathlib import Path

import pytest

from quantscope.models import parse_model, resolve

pytestmark = pytest.mark.integration


def test_hf_from_gguf_round_trips_rope_theta_and_caches(bundled):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")  # transformers needs it to read a GGUF
    from transformers import AutoConfig, AutoTokenizer

    from quantscope.models.materialize import PROVENANCE, hf_from_gguf

    artifact = resolve(parse_model(None))
    folder = Path(hf_from_gguf(artifact))
    assert folder.name.startswith(artifact.digest[:16] + "-tf")
    assert not [p for p in folder.parent.iterdir() if p.name.endswith(".tmp")]  # no half-written leftovers
    config = AutoConfig.from_pretrained(folder)
    assert config.rope_parameters["rope_theta"] == 100000.0
    assert (config.hidden_size, config.num_hidden_layers, config.vocab_size) == (576, 30, 49152)
    assert json.loads((folder / PROVENANCE).read_text())["source_sha256"] == artifact.digest
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert len(tokenizer("def main():")["input_ids"]) > 0

    t0 = time.perf_counter()
    assert hf_from_gguf(artifact) == str(folder)
    assert time.perf_counter() - t0 < 2.0  # a cache hit, not another dequantization
