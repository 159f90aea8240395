"""The prompt of the timed workload: P tokens of a fixed text, the same for every run of a model."""

from __future__ import annotations

import numpy as np


def fixed_text() -> str:
    """English prose present on every CPython: the reference manual's topic strings in
    pydoc_data.topics, joined in key order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def prompt_ids(backend, prompt_tokens: int, batch: int, seed: int) -> tuple[np.ndarray, str]:
    """[batch, prompt_tokens] int64 ids and where they came from.

    Models without a tokenizer (synthetic weights) get seeded random ids: their speed does not depend
    on which tokens they read.
    """
    ids = backend.tokenize(fixed_text()[: 40 * prompt_tokens])
    if ids is None:
        rng = np.random.default_rng(seed)
        row = rng.integers(0, backend.vocab_size, size=prompt_tokens, dtype=np.int64)
        source = f"random ids, seed {seed}"
    else:
        if len(ids) < prompt_tokens:
            raise ValueError(f"the fixed prompt text has only {len(ids)} tokens, {prompt_tokens} asked")
        row = np.asarray(ids[:prompt_tokens], dtype=np.int64)
        source = "pydoc_data.topics, first tokens"
    return np.tile(row, (batch, 1)), source
