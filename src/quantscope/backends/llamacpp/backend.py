"""llama.cpp through llama-cpp-python's low-level API (ctypes): a GGUF as given, or made and quantized here.

quant "none": a GGUF source as it is; an HF or synthetic source as F32 / F16 / BF16 by --dtype.
quant "<llama.cpp type>" (q8_0, q6_k, q5_k_m, q4_k_m, q4_0, iq4_xs, f16, ... every LLAMA_FTYPE the
library offers): llama_model_quantize from an F32 GGUF written from the reference weights, or with
--qparam requantize=true from the source GGUF itself (llama-quantize --allow-requantize).
The types are typed configs (methods/llamacpp_configs.py); backend options (part of the run's key:
n_threads, n_batch, n_ubatch, flash_attn, type_k, type_v) are typed in options.py.

The timed calls follow llama-bench (tools/llama-bench/llama-bench.cpp, test_prompt / test_gen):
the prompt goes in n_batch chunks through llama_decode with only the last position's logits, a
generation step is one llama_decode of a one-token batch; nothing else runs in between except the
argmax over the last logits. A batch of B > 1 is B independent sequences (seq ids 0..B-1, as
llama.cpp's batched example and llama-batched-bench): the B prompts go in together, flattened into
n_batch chunks, and a generation step is one llama_decode of B tokens, one per sequence; the context
holds B sequences of the run's length (n_seq_max = B). The high-level `Llama.eval` path does
per-token bookkeeping in Python that costs about a quarter of llama-bench's decode speed on this
model (FACTS.md).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import numpy as np

from quantscope.backends.base import Unsupported
from quantscope.backends.llamacpp.options import FLASH, LlamaCppOptions
from quantscope.env import physical_cores
from quantscope.errors import FormatError, UserError
from quantscope.methods import METHODS, check_quant, config_from_spec
from quantscope.models.base import ModelArtifact
from quantscope.spec import QuantSpec, RunSpec

DTYPE_TARGET = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}


def target_type(spec: RunSpec, source_format: str) -> str:
    """Which GGUF the run uses: "asis", "f32"/"f16" (written here) or a llama.cpp type name."""
    method = spec.quant.method.lower()
    if method == "none":
        if source_format == "gguf":
            if spec.quant.dtype != "fp32":
                raise UserError(f"a GGUF source runs as it is with --quant none; for a {spec.quant.dtype} "
                                f"file written from its weights use --quant {DTYPE_TARGET[spec.quant.dtype]}")
            return "asis"
        return DTYPE_TARGET[spec.quant.dtype]
    if spec.quant.dtype != "fp32":
        raise UserError(f"--dtype {spec.quant.dtype} means nothing with llama.cpp type {method}: drop it")
    return method


def llamacpp_options(spec: RunSpec) -> LlamaCppOptions:
    """The typed options of `spec`; the method's params are checked by its config (--qparam requantize)."""
    opts = LlamaCppOptions.parse("llamacpp", spec.options)
    check_quant("llamacpp", _lower(spec.quant))
    return opts


def _lower(quant: QuantSpec) -> QuantSpec:
    return replace(quant, method=quant.method.lower())  # llama-quantize's names are case-insensitive


def requantize(spec: RunSpec) -> bool:
    if spec.quant.method == "none":
        return False
    return config_from_spec(_lower(spec.quant), "llamacpp").requantize  # type: ignore[attr-defined]


def ggml_type(name: str) -> int:
    import llama_cpp

    value = getattr(llama_cpp, f"GGML_TYPE_{str(name).upper()}", None)
    if value is None:
        raise UserError(f"unknown KV cache type {name!r}: use a ggml type name such as f16, q8_0 or q4_0")
    return value


class LlamaCppBackend:
    name = "llamacpp"

    def __init__(self) -> None:
        self.model: Any = None
        self.ctx: Any = None
        self.vocab: Any = None
        self.batch: Any = None
        self.n_vocab = 0
        self.n_batch = 0
        self.n_ctx = 0
        self.mem: Any = None
        self._log: Any = None
        self.has_vocab = False
        self.tokenizer_source = "none"
        self.tokenizer_facts: dict[str, Any] = {}
        self.hf_tokenizer: Any = None
        self.fallback_bos: int | None = None
        self.n_seq = 1
        self.pos: np.ndarray | None = None  # next position of each sequence (batches > 1)
        self._seq_layout: np.ndarray | None = None  # the seq ids last written into self.batch
        self.last_logits: np.ndarray | None = None  # [B, V] of the last batched step (tests compare them)

    # --- capability ------------------------------------------------------------------------------
    def supports(self, spec: RunSpec) -> str | None:
        try:
            import llama_cpp
        except ImportError:
            return "llama-cpp-python is not installed: pip install llama-cpp-python (quantscope[llamacpp])"

        from quantscope.backends.llamacpp.convert import llama_ftypes

        method = spec.quant.method.lower()
        types = llama_ftypes()
        if method != "none" and (method not in types or method not in METHODS.names("llamacpp")):
            return f"llama.cpp offers no file type {method!r}; it has: {', '.join(sorted(types))}"
        if spec.quant.overrides:  # a per-tensor policy (backends/llamacpp/policy.py)
            from quantscope.backends.llamacpp.policy import policy_reason

            reason = policy_reason(spec.quant)
            if reason:
                return reason
        llamacpp_options(spec)
        if spec.device == "cuda" and not llama_cpp.llama_supports_gpu_offload():
            return (f"llama-cpp-python {llama_cpp.__version__} here is built without GPU offload "
                    "(llama_supports_gpu_offload() is false): rebuild it with CMAKE_ARGS=-DGGML_CUDA=on")
        return None

    # --- loading ------------------------------------------------------------------------------------
    def load(self, spec: RunSpec, artifact: ModelArtifact) -> dict[str, Any]:
        try:
            return self._load(spec, artifact)
        except BaseException:
            self.close()  # frees what was made and puts the library's log handler back
            raise

    def _load(self, spec: RunSpec, artifact: ModelArtifact) -> dict[str, Any]:
        import llama_cpp as L

        from quantscope.backends.llamacpp.convert import captured_log, ensure_gguf, log_errors

        opts = llamacpp_options(spec)
        target = target_type(spec, artifact.format)
        again = requantize(spec)
        if again and artifact.format != "gguf":
            raise UserError("--qparam requantize=true quantizes a GGUF source's own tensors; "
                            "this source is not a GGUF")
        if spec.quant.overrides:  # one type per tensor: written from the F32 GGUF (policy.py)
            from quantscope.backends.llamacpp.policy import ensure_policy_gguf

            path, facts, file_meta = ensure_policy_gguf(artifact, spec.seed, spec.quant)
            target = "policy"
        else:
            path, facts, file_meta = ensure_gguf(artifact, spec.seed, target, again)
        threads = opts.n_threads or spec.workload.threads or physical_cores()
        # llama.cpp's log is kept (not printed) from here to close(): its errors go into our messages.
        self._log = captured_log()
        log = self._log.__enter__()
        mparams = L.llama_model_default_params()
        mparams.n_gpu_layers = -1 if spec.device == "cuda" else 0
        self.model = L.llama_model_load_from_file(str(path).encode(), mparams)
        if not self.model:
            raise FormatError(f"llama.cpp could not load {path} ({log_errors(log) or 'no reason given'}); "
                              "re-copy or re-convert the GGUF")
        wl = spec.workload
        per_seq = max(wl.prompt_tokens + wl.gen_tokens, spec.quality.ctx if spec.quality.enabled else 0)
        self.n_seq = wl.batch
        self.n_ctx = per_seq * self.n_seq  # each sequence gets the run's length (split per seq by llama.cpp)
        cparams = L.llama_context_default_params()
        cparams.n_ctx = self.n_ctx
        cparams.n_seq_max = self.n_seq
        # llama.cpp's defaults (n_batch 2048, n_ubatch 512) unless set: llama-bench's defaults too
        cparams.n_batch = opts.n_batch or cparams.n_batch
        cparams.n_ubatch = opts.n_ubatch or cparams.n_ubatch
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.flash_attn_type = FLASH[opts.flash_attn]
        cparams.no_perf = True
        for name in ("type_k", "type_v"):
            if getattr(opts, name) is not None:
                setattr(cparams, name, ggml_type(getattr(opts, name)))
        self.ctx = L.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            reason = log_errors(log) or "no reason given"
            raise Unsupported(f"llama.cpp refused the context settings: {reason}")
        self.n_batch = L.llama_n_batch(self.ctx)
        self.mem = L.llama_get_memory(self.ctx)
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self._one = (L.llama_token * 1)()
        self._one_batch = L.llama_batch_get_one(self._one, 1)
        self.batch = L.llama_batch_init(self.n_batch, 0, 1)
        self._set_seq_ids(np.zeros(self.n_batch, dtype=np.int32))  # one sequence: seq 0 everywhere
        self._setup_tokenizer(artifact, file_meta)
        return {**facts, "threads": threads, "n_ctx": self.n_ctx, "n_batch": self.n_batch,
                "n_ubatch": L.llama_n_ubatch(self.ctx), "flash_attn": opts.flash_attn,
                "n_seq_max": L.llama_n_seq_max(self.ctx),
                "gguf_file": str(path), "gguf_type": target, "tokenizer": self.tokenizer_source,
                "tokenizer_conversion": self.tokenizer_facts, "file_bytes": os.path.getsize(path),
                "gguf_tensor_types": file_meta.get("tensor_types"),
                "bits_per_weight_2d": file_meta.get("bits_per_weight_2d"),
                "llama_cpp_python": L.__version__,
                "llama_system_info": L.llama_print_system_info().decode(errors="replace").strip()}

    def _setup_tokenizer(self, artifact: ModelArtifact, file_meta: dict[str, Any]) -> None:
        """The reference's tokenizer (the HF folder's) for GGUF and HF sources, so the quality pass
        sees the torch reference's token ids; llama.cpp's own vocabulary tokenizes the pydoc text
        differently from transformers' conversion of the same GGUF (they part at token 11,659 on
        SmolLM2). A synthetic model has neither."""
        import llama_cpp as L

        from quantscope.models.materialize import gguf_tokenizer_dir, hf_tokenizer

        self.has_vocab = L.llama_vocab_type(self.vocab) != L.LLAMA_VOCAB_TYPE_NONE
        self.fallback_bos = file_meta.get("bos_token_id")
        folder = artifact.path if artifact.format == "hf" else None
        if artifact.format == "gguf":
            entry = gguf_tokenizer_dir(artifact)
            folder, self.tokenizer_facts = entry.path, entry.facts()
        found = hf_tokenizer(folder, self.fallback_bos) if folder else None
        if found:
            self.hf_tokenizer, self.fallback_bos = found
        self.tokenizer_source = "hf" if found else "llama.cpp" if self.has_vocab else "none"

    # --- the timed calls -------------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int] | None:
        import llama_cpp as L

        if self.hf_tokenizer is not None:
            return self.hf_tokenizer.encode(text, add_special_tokens=False).ids
        if not self.has_vocab:
            return None
        data = text.encode()
        buf = (L.llama_token * (len(data) + 8))()
        n = L.llama_tokenize(self.vocab, data, len(data), buf, len(buf), False, False)
        if n < 0:
            raise RuntimeError(f"llama_tokenize needed {-n} tokens for {len(data)} bytes")
        return list(buf[:n])

    @property
    def vocab_size(self) -> int:
        return int(self.n_vocab)

    @property
    def bos_token_id(self) -> int | None:
        import llama_cpp as L

        if self.has_vocab and self.hf_tokenizer is None:
            bos = L.llama_vocab_bos(self.vocab)
            return None if bos == L.LLAMA_TOKEN_NULL else int(bos)
        return self.fallback_bos

    def _decode(self, batch: Any) -> None:
        import llama_cpp as L

        rc = L.llama_decode(self.ctx, batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc} (1: no KV slot, < 0: error), n_ctx {self.n_ctx}")

    def _argmax_last(self) -> np.ndarray:
        import llama_cpp as L

        row = np.ctypeslib.as_array(L.llama_get_logits_ith(self.ctx, -1), shape=(self.n_vocab,))
        return np.array([int(row.argmax())], dtype=np.int64)

    def _set_seq_ids(self, seq: np.ndarray) -> None:
        """seq_id[i][0] for the batch's first len(seq) slots, written only where they change (a ctypes
        pointer per slot: a Python loop, kept out of steps whose layout repeats)."""
        old = self._seq_layout
        for i in range(len(seq)):
            if old is None or i >= len(old) or old[i] != seq[i]:
                self.batch.seq_id[i][0] = int(seq[i])
        merged = seq if old is None or len(old) <= len(seq) else np.concatenate([seq, old[len(seq):]])
        self._seq_layout = merged.copy()

    def _views(self) -> tuple[np.ndarray, ...]:
        b = self.batch
        return tuple(np.ctypeslib.as_array(p, shape=(self.n_batch,)) for p in (b.token, b.pos, b.n_seq_id, b.logits))

    def _rows(self, n: int) -> np.ndarray:
        import llama_cpp as L

        return np.ctypeslib.as_array(L.llama_get_logits(self.ctx), shape=(n, self.n_vocab))

    def prefill(self, input_ids: np.ndarray) -> np.ndarray:
        """llama-bench test_prompt: clear the cache, the prompt in n_batch chunks, last logits only.
        B > 1 prompts: the B sequences flattened into the same chunks, each one's last logits kept."""
        import llama_cpp as L

        if np.asarray(input_ids).shape[0] > 1:
            return self._prefill_many(np.asarray(input_ids))
        ids = np.ascontiguousarray(np.asarray(input_ids)[0], dtype=np.int32)
        L.llama_memory_clear(self.mem, False)
        for start in range(0, len(ids), self.n_batch):
            chunk = ids[start:start + self.n_batch]
            self._decode(L.llama_batch_get_one(chunk.ctypes.data_as(L.llama_token_p), len(chunk)))
        return self._argmax_last()

    def _prefill_many(self, ids: np.ndarray) -> np.ndarray:
        import llama_cpp as L

        n_seq, length = ids.shape
        if n_seq > self.n_seq:
            raise ValueError(f"{n_seq} prompts, but the context was made for {self.n_seq} sequences")
        L.llama_memory_clear(self.mem, False)
        flat = np.ascontiguousarray(ids, dtype=np.int32).reshape(-1)
        seqs = np.repeat(np.arange(n_seq, dtype=np.int32), length)
        positions = np.tile(np.arange(length, dtype=np.int32), n_seq)
        last = positions == length - 1
        tok, pos, nseq, want = self._views()
        out = np.empty((n_seq, self.n_vocab), dtype=np.float32)
        for start in range(0, len(flat), self.n_batch):
            n = min(self.n_batch, len(flat) - start)
            part = slice(start, start + n)
            tok[:n], pos[:n], nseq[:n], want[:n] = flat[part], positions[part], 1, last[part]
            self._set_seq_ids(seqs[part])
            self.batch.n_tokens = n
            self._decode(self.batch)
            kept = seqs[part][last[part]]
            if len(kept):
                out[kept] = self._rows(len(kept))
        self.pos = np.full(n_seq, length, dtype=np.int32)
        self.last_logits = out
        return out.argmax(-1).astype(np.int64)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """llama-bench test_gen: one token, one llama_decode (positions follow the cache).
        B > 1: one llama_decode of B tokens, token b at the next position of sequence b."""
        step = np.asarray(tokens).reshape(-1)
        if len(step) > 1:
            return self._decode_many(step)
        self._one[0] = int(step[0])
        self._decode(self._one_batch)
        return self._argmax_last()

    def _decode_many(self, step: np.ndarray) -> np.ndarray:
        n = len(step)
        if self.pos is None or len(self.pos) != n:
            raise RuntimeError(f"decode of {n} tokens needs a prefill of {n} prompts first")
        tok, pos, nseq, want = self._views()
        tok[:n], pos[:n], nseq[:n], want[:n] = step, self.pos, 1, 1
        self._set_seq_ids(np.arange(n, dtype=np.int32))
        self.batch.n_tokens = n
        self._decode(self.batch)
        self.pos += 1
        rows = self._rows(n)
        self.last_logits = rows
        return rows.argmax(-1).astype(np.int64)

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        """Every position's logits (the batch's logits flags all set), from an empty cache."""
        import llama_cpp as L

        ids = np.asarray(tokens, dtype=np.int32).reshape(-1)
        if len(ids) > self.n_ctx:
            raise ValueError(f"{len(ids)} tokens do not fit the context of {self.n_ctx}: raise quality ctx")
        L.llama_memory_clear(self.mem, False)
        out = np.empty((len(ids), self.n_vocab), dtype=np.float32)
        b = self.batch
        tok, pos, nseq, want = self._views()
        for start in range(0, len(ids), self.n_batch):
            n = min(self.n_batch, len(ids) - start)
            tok[:n], pos[:n], nseq[:n], want[:n] = ids[start:start + n], np.arange(start, start + n), 1, 1
            self._set_seq_ids(np.zeros(n, dtype=np.int32))
            b.n_tokens = n
            self._decode(b)
            out[start:start + n] = self._rows(n)
        return out

    # --- facts ----------------------------------------------------------------------------------------
    def weight_bytes(self) -> int:
        import llama_cpp as L

        return int(L.llama_model_size(self.model))  # bytes of all tensors as loaded (llama.h)

    def device_memory(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        import llama_cpp as L

        if self.batch is not None:
            L.llama_batch_free(self.batch)
        if self.ctx:
            L.llama_free(self.ctx)
        if self.model:
            L.llama_model_free(self.model)
        self.batch = self.ctx = self.model = None
        self._seq_layout = self.pos = None
        if self._log is not None:
            self._log.__exit__(None, None, None)
            self._log = None


__all__ = ["LlamaCppBackend"]
