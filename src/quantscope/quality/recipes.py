"""Perplexity recipes: how a token stream is cut into windows and which (logit, token) pairs are scored.

`llama`  llama.cpp's default (ggml-org/llama.cpp tools/perplexity/perplexity.cpp, `perplexity()`):
         the text is tokenized at once, with a BOS in front when the vocab adds one
         (`common_tokenize(ctx, params.prompt, true)`); n_chunk = n_tokens / n_ctx (integer division);
         chunk i is tokens[i*n_ctx, (i+1)*n_ctx) with its first token replaced by BOS when the vocab adds
         BOS; first = n_ctx/2; the logits at positions first .. n_ctx-2 score the tokens at first+1 ..
         n_ctx-1 (`process_logits(..., tokens + start + first, n_ctx - 1 - first, ...)`), i.e. 255 per
         512-token chunk. It refuses texts shorter than 2*n_ctx tokens.
`gptq`   the GPTQ / SmoothQuant papers' evaluation (GPTQ datautils + opt.py `opt_eval`): the whole text
         tokenized once, cut into non-overlapping windows of 2048 tokens (clipped to the model's context),
         nsamples = n_tokens // seqlen; within each window logits 0 .. ctx-2 score tokens 1 .. ctx-1
         (shift_logits[:-1] vs labels[1:]), every token but a window's first. No BOS inside windows; the
         stream starts with BOS only when the tokenizer adds one (as `tokenizer(text)` does for LLaMA).

>>> p = make_plan("llama", list(range(100, 116)), ctx=8, max_tokens=6, bos_token_id=1, add_bos=False)
>>> p.windows.tolist()
[[100, 101, 102, 103, 104, 105, 106, 107], [108, 109, 110, 111, 112, 113, 114, 115]]
>>> p.first, p.targets.tolist()
(4, [[105, 106, 107], [113, 114, 115]])
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from quantscope.errors import UserError
from quantscope.spec import RECIPES, QualitySpec

GPTQ_CTX = 2048  # GPTQ opt.py / llama.py: model.seqlen = 2048
SPEC_DEFAULT_CTX = next(f.default for f in dataclasses.fields(QualitySpec) if f.name == "ctx")


@dataclass(frozen=True)
class Plan:
    """The windows fed to the model and the tokens scored in each.

    In every window, the logit at position p (first <= p <= ctx-2) scores the token windows[i, p+1].
    """

    recipe: str
    ctx: int
    first: int  # first scored logit position of each window
    bos: str  # BOS policy as applied: "each-chunk:<id>", "stream-start:<id>" or "none"
    windows: np.ndarray  # [n_windows, ctx] int64, BOS substitution applied
    stream_tokens: int  # tokens in the whole stream (BOS included), before windows were cut
    windows_available: int  # how many windows the stream would give (n_chunk_max)

    @property
    def n_windows(self) -> int:
        return int(self.windows.shape[0])

    @property
    def positions(self) -> np.ndarray:
        """Logit positions scored in each window."""
        return np.arange(self.first, self.ctx - 1)

    @property
    def targets(self) -> np.ndarray:
        """[n_windows, scored_per_window] token ids scored by the logits at `positions`."""
        return self.windows[:, self.first + 1 :]

    @property
    def scored_per_window(self) -> int:
        return self.ctx - 1 - self.first

    @property
    def tokens_scored(self) -> int:
        return self.n_windows * self.scored_per_window

    def head(self, n_windows: int) -> Plan:
        """The same plan on its first `n_windows` windows (a smaller budget is a prefix of a larger one)."""
        return dataclasses.replace(self, windows=self.windows[:n_windows])


def recipe_ctx(recipe: str, requested: int, model_ctx: int | None = None) -> int:
    """The window length a recipe uses.

    `llama` uses the requested ctx (QualitySpec.ctx, 512 by default, llama-perplexity's -c default).
    `gptq` uses 2048 when ctx is left at QualitySpec's default, else the requested ctx; either way
    clipped to the model's context length when known.
    """
    if recipe not in RECIPES:
        raise UserError(f"recipe {recipe!r} is not one of {', '.join(RECIPES)}")
    ctx = GPTQ_CTX if recipe == "gptq" and requested == SPEC_DEFAULT_CTX else requested
    return min(ctx, model_ctx) if model_ctx else ctx


def gguf_adds_bos(path: str) -> bool:
    """Whether llama.cpp adds BOS for this GGUF (models.gguf.vocab_adds_bos on its metadata)."""
    from gguf import GGUFReader  # lazy: parses the whole header (~2 s for a 49k vocabulary)

    from quantscope.models.gguf import vocab_adds_bos

    reader = GGUFReader(path)

    def field(key: str):
        f = reader.get_field(key)
        return f.contents() if f is not None else None

    return vocab_adds_bos(field)


def hf_tokenizer_adds_bos(tokenizer: object) -> bool:
    """Whether a transformers tokenizer puts BOS in front when asked for special tokens."""
    bos = getattr(tokenizer, "bos_token_id", None)
    ids = tokenizer("a")["input_ids"]  # type: ignore[operator]
    return bos is not None and len(ids) > 0 and ids[0] == bos


def _stream(text_tokens: list[int] | np.ndarray, bos_token_id: int | None, add_bos: bool) -> np.ndarray:
    ids = np.asarray(text_tokens, dtype=np.int64).reshape(-1)
    if add_bos:
        if bos_token_id is None:
            raise UserError("the vocab adds BOS but the model has no BOS token id: pass add_bos=False")
        ids = np.concatenate([np.array([bos_token_id], dtype=np.int64), ids])
    return ids


def make_plan(
    recipe: str,
    text_tokens: list[int] | np.ndarray,
    *,
    ctx: int,
    max_tokens: int,
    bos_token_id: int | None,
    add_bos: bool,
) -> Plan:
    """Cut the tokenized text into windows and choose enough of them to score >= max_tokens tokens.

    Whole windows only (as llama-perplexity's --chunks), so tokens_scored is max_tokens rounded up to a
    whole number of windows, or fewer when the text runs out.
    """
    if ctx < 8:
        raise UserError(f"ctx must be >= 8, got {ctx}")
    stream = _stream(text_tokens, bos_token_id, add_bos)
    n_max = len(stream) // ctx
    if recipe == "llama":
        first = ctx // 2
        if len(stream) < 2 * ctx:  # llama-perplexity refuses the same: "you need at least 2*n_ctx tokens"
            raise UserError(
                f"the text tokenizes to {len(stream)} tokens; the llama recipe needs at least "
                f"{2 * ctx} (2 x ctx {ctx}): use a longer text or a smaller ctx"
            )
        bos = f"each-chunk:{bos_token_id}" if add_bos else "none"
    elif recipe == "gptq":
        first = 0
        if n_max < 1:
            raise UserError(
                f"the text tokenizes to {len(stream)} tokens, fewer than one {ctx}-token window "
                "of the gptq recipe: use a longer text or a smaller ctx"
            )
        bos = f"stream-start:{bos_token_id}" if add_bos else "none"
    else:
        raise UserError(f"recipe {recipe!r} is not one of {', '.join(RECIPES)}")
    per_window = ctx - 1 - first
    n = min(max(1, math.ceil(max_tokens / per_window)), n_max)
    windows = stream[: n * ctx].reshape(n, ctx).copy()
    if recipe == "llama" and add_bos:
        windows[:, 0] = bos_token_id  # perplexity.cpp: tokens[seq_start] = llama_vocab_bos(vocab)
    return Plan(
        recipe=recipe,
        ctx=ctx,
        first=first,
        bos=bos,
        windows=windows,
        stream_tokens=len(stream),
        windows_available=n_max,
    )
