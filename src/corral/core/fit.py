"""How much memory a model needs in llama-server: weights + KV cache + compute buffer.

Derived from the GGUF header and checked against what the engine itself reports
(``common_memory_breakdown_print``) in tests/core/test_fit.py: within 20 % for SmolLM2 and
Gemma-3, generation and embedding instances. The terms, as llama.cpp allocates them:

- weights: the tensor data, memory-mapped (about the file size);
- KV cache: per layer and cell, K and V of ``head_count_kv * key/value_length`` f16 values;
  a cell per token of context per slot; sliding-window layers (Gemma) keep only
  ``window + n_ubatch`` cells per slot, padded to 256;
- compute buffer: per token of the micro-batch (512), about ``4 * n_ff + 6 * n_embd``
  floats; an embedding instance also holds logits for every token (``n_vocab`` floats each).
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.gguf import GGUFInfo, SkippedArray
from corral.runner.protocol import LoadSpec

__all__ = ["GIB", "MemoryEstimate", "estimate_memory", "vocab_size"]

GIB = 1024**3
N_UBATCH = 512  # llama-server's default micro-batch
_F16 = 2
_F32 = 4
# Every n-th layer of these architectures attends globally; the rest use the window.
_SWA_PATTERN = {"gemma2": 2, "gemma3": 6, "gemma3n": 5}


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    weights: int
    kv_cache: int
    compute: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.compute


def _pad(n: int, to: int = 256) -> int:
    return -(-n // to) * to


def vocab_size(info: GGUFInfo) -> int:
    tokens = info.metadata.get("tokenizer.ggml.tokens")
    if isinstance(tokens, SkippedArray):
        return tokens.count
    if isinstance(tokens, list):
        return len(tokens)
    return int(info.metadata.get(f"{info.architecture}.vocab_size") or 32000)


def estimate_memory(info: GGUFInfo, weights_bytes: int, spec: LoadSpec) -> MemoryEstimate:
    arch = info.architecture
    layers = info.block_count or 0
    n_embd = info.embedding_length or 0
    kv_heads = info.head_count_kv or info.head_count or 0
    per_cell_layer = kv_heads * ((info.key_length or 0) + (info.value_length or 0)) * _F16

    ctx = spec.num_ctx
    slots = max(spec.num_parallel, 1)
    n_ubatch = spec.num_ctx if spec.embedding else N_UBATCH
    window = info.metadata.get(f"{arch}.attention.sliding_window")
    pattern = _SWA_PATTERN.get(arch)
    if isinstance(window, int) and window > 0 and pattern:
        full_layers = layers // pattern
        swa_cells = min(ctx, _pad(window + n_ubatch))
        cells = full_layers * ctx + (layers - full_layers) * swa_cells
    else:
        cells = layers * ctx
    kv_cache = cells * slots * per_cell_layer

    n_ff = info.metadata.get(f"{arch}.feed_forward_length")
    n_ff = max(n_ff) if isinstance(n_ff, list) else int(n_ff or 4 * n_embd)
    compute = n_ubatch * (4 * n_ff + 6 * n_embd) * _F32
    if spec.embedding:
        compute += n_ubatch * vocab_size(info) * _F32
    return MemoryEstimate(weights=weights_bytes, kv_cache=kv_cache, compute=compute)
