"""Source: random-weight models with real architectures' shapes, for speed and memory at sizes not here.

Each entry is the model's published config.json (hub file at the time of writing), trimmed of
fields that only describe the training run. Shapes decide speed; the weights are random, so a
synthetic model has no meaningful quality. Add an architecture by adding one entry.

>>> artifact = resolve(ModelSpec("synthetic", "tiny-llama"))
>>> artifact.config["hidden_size"], artifact.synthetic
(64, True)
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from quantscope.models.base import ModelArtifact
from quantscope.registry import Registry
from quantscope.spec import ModelSpec

_LLAMA3_COMMON = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0,
    "vocab_size": 128256,
}


# openai-community/gpt2 config.json, shared by the GPT-2 family (n_layer differs)
_GPT2_COMMON = {
    "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "activation_function": "gelu_new",
    "bos_token_id": 50256, "eos_token_id": 50256, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05,
    "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_positions": 1024, "vocab_size": 50257,
}

# meta-llama/Llama-2-7b-hf config.json fields shared by the Llama-2 family and TinyLlama
_LLAMA2_COMMON = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "bos_token_id": 1, "eos_token_id": 2,
    "hidden_act": "silu", "initializer_range": 0.02, "max_position_embeddings": 4096, "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0, "tie_word_embeddings": False, "vocab_size": 32000,
}


def _llama3_rope(factor: float) -> dict[str, Any]:
    return {"factor": factor, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192, "rope_type": "llama3"}


ARCHITECTURES: dict[str, dict[str, Any]] = {
    # meta-llama/Llama-3.2-1B config.json
    "llama-1b": {**_LLAMA3_COMMON, "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
                 "num_attention_heads": 32, "head_dim": 64, "tie_word_embeddings": True,
                 "rope_scaling": _llama3_rope(32.0)},
    # meta-llama/Llama-3.2-3B config.json
    "llama-3b": {**_LLAMA3_COMMON, "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28,
                 "num_attention_heads": 24, "head_dim": 128, "tie_word_embeddings": True,
                 "rope_scaling": _llama3_rope(32.0)},
    # meta-llama/Llama-3.1-8B config.json
    "llama-8b": {**_LLAMA3_COMMON, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                 "num_attention_heads": 32, "head_dim": 128, "tie_word_embeddings": False,
                 "rope_scaling": _llama3_rope(8.0)},
    # Qwen/Qwen2.5-0.5B config.json (q/k/v projections carry a bias in this architecture)
    "qwen2-0.5b": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "attention_dropout": 0.0,
                   "bos_token_id": 151643, "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896,
                   "initializer_range": 0.02, "intermediate_size": 4864, "max_position_embeddings": 32768,
                   "max_window_layers": 24, "num_attention_heads": 14, "num_hidden_layers": 24,
                   "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
                   "sliding_window": 32768, "tie_word_embeddings": True, "use_sliding_window": False,
                   "vocab_size": 151936},
    # HuggingFaceTB/SmolLM2-135M config.json: the bundled model's shape
    "smollm2-135m": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False,
                     "attention_dropout": 0.0, "bos_token_id": 0, "eos_token_id": 0, "head_dim": 64,
                     "hidden_act": "silu", "hidden_size": 576, "initializer_range": 0.041666666666666664,
                     "intermediate_size": 1536, "max_position_embeddings": 8192, "mlp_bias": False,
                     "num_attention_heads": 9, "num_hidden_layers": 30, "num_key_value_heads": 3,
                     "rms_norm_eps": 1e-05, "rope_theta": 100000.0, "tie_word_embeddings": True,
                     "vocab_size": 49152},
    # distilbert/distilgpt2 config.json (GPT-2 layout: fused c_attn, 4x MLP, learned positions)
    "distilgpt2": {**_GPT2_COMMON, "n_layer": 6},
    # openai-community/gpt2 config.json; microsoft/DialoGPT-small has the same shape
    "gpt2": {**_GPT2_COMMON, "n_layer": 12},
    "dialogpt-small": {**_GPT2_COMMON, "n_layer": 12},
    # TinyLlama/TinyLlama-1.1B-Chat-v1.0 config.json
    "tinyllama-1.1b": {**_LLAMA2_COMMON, "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
                       "num_attention_heads": 32, "num_key_value_heads": 4, "max_position_embeddings": 2048},
    # meta-llama/Llama-2-7b-hf, -13b-hf, -70b-hf config.json
    "llama2-7b": {**_LLAMA2_COMMON, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                  "num_attention_heads": 32, "num_key_value_heads": 32},
    "llama2-13b": {**_LLAMA2_COMMON, "hidden_size": 5120, "intermediate_size": 13824, "num_hidden_layers": 40,
                   "num_attention_heads": 40, "num_key_value_heads": 40},
    "llama2-70b": {**_LLAMA2_COMMON, "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
                   "num_attention_heads": 64, "num_key_value_heads": 8},
    # meta-llama/Meta-Llama-3-8B and -70B config.json (no rope scaling, 8k context)
    "llama3-8b": {**_LLAMA3_COMMON, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                  "num_attention_heads": 32, "max_position_embeddings": 8192, "tie_word_embeddings": False},
    "llama3-70b": {**_LLAMA3_COMMON, "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
                   "num_attention_heads": 64, "max_position_embeddings": 8192, "tie_word_embeddings": False},
    # mistralai/Mistral-7B-v0.1 config.json
    "mistral-7b": {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "bos_token_id": 1,
                   "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
                   "intermediate_size": 14336, "max_position_embeddings": 32768, "num_attention_heads": 32,
                   "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
                   "sliding_window": 4096, "tie_word_embeddings": False, "vocab_size": 32000},
    # Qwen/Qwen2.5-7B config.json
    "qwen2.5-7b": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "attention_dropout": 0.0,
                   "bos_token_id": 151643, "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 3584,
                   "initializer_range": 0.02, "intermediate_size": 18944, "max_position_embeddings": 131072,
                   "max_window_layers": 28, "num_attention_heads": 28, "num_hidden_layers": 28,
                   "num_key_value_heads": 4, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
                   "sliding_window": 131072, "tie_word_embeddings": False, "use_sliding_window": False,
                   "vocab_size": 152064},
    # not a published model: the smallest llama that exercises GQA, for tests
    "tiny-llama": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
                   "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 2048,
                   "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": True,
                   "vocab_size": 256, "bos_token_id": 0, "eos_token_id": 1},
}

architectures: Registry[dict[str, Any]] = Registry("synthetic architecture")
for _name, _config in ARCHITECTURES.items():
    architectures.add(_name, _config)


def config_for(name: str) -> dict[str, Any]:
    """A copy of the architecture's config; an unknown name is a UserError naming the near one."""
    return copy.deepcopy(architectures.get(name))


def resolve(spec: ModelSpec) -> ModelArtifact:
    config = config_for(spec.ref)
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return ModelArtifact(
        format="synthetic",
        config=config,
        arch=spec.ref,
        digest=hashlib.sha256(blob).hexdigest(),  # identifies the shape; there are no weight files
        synthetic=True,
    )
