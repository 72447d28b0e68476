"""Which draft a model gets: named drafts checked, automatic pairing, n-gram modes, memory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np
import pytest

from corral.config import Settings
from corral.core.catalog import Catalog
from corral.core.options import load_spec
from corral.core.speculative import NGRAM_DEFAULT, Drafts
from corral.errors import InvalidOption
from corral.names import parse_name
from corral.runner.flags import server_args
from corral.store.create import file_layers, write_manifest
from corral.store.models import LocalModel, Store

VOCAB = [f"tok{i}" for i in range(300)]


def write_model(
    path: Path,
    *,
    params: int,
    tokens: list[str] = VOCAB,
    tokenizer: str = "gpt2",
    eos: int = 2,
) -> Path:
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_block_count(2)
    writer.add_context_length(2048)
    writer.add_embedding_length(64)
    writer.add_feed_forward_length(128)
    writer.add_head_count(4)
    writer.add_head_count_kv(4)
    writer.add_uint64("general.parameter_count", params)
    writer.add_tokenizer_model(tokenizer)
    writer.add_token_list(tokens)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(eos)
    writer.add_tensor("w", np.zeros(16, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "models")


@pytest.fixture
def add(store: Store, tmp_path: Path) -> Callable[..., LocalModel]:
    def add(name: str, **kwargs: object) -> LocalModel:
        path = write_model(tmp_path / f"{name.replace(':', '-')}.gguf", **kwargs)  # type: ignore[arg-type]
        digest = store.blobs.import_file(path)
        write_manifest(store, parse_name(name), file_layers(store, {path.name: digest}))
        return store.get(name)

    return add


def drafts(store: Store, default: str = "off") -> Drafts:
    return Drafts(store, Catalog(), default)


def test_named_draft_with_the_same_vocabulary(store: Store, add: Callable[..., LocalModel]) -> None:
    big = add("big:7b", params=7_000_000)
    small = add("small:1b", params=1_000_000)
    found = drafts(store).resolve(big, {"draft": "small:1b", "draft_max": 8})
    assert found is not None and found.draft is not None
    assert found.draft.model_path == small.model_path and found.draft_max == 8
    spec = load_spec(big, {}, Settings(), speculation=found)
    args = server_args(spec, 1)
    assert args[args.index("-md") + 1] == str(small.model_path)
    assert args[args.index("--spec-type") + 1] == "draft-simple"
    assert args[args.index("--spec-draft-n-max") + 1] == "8"


def test_padding_tokens_at_the_end_still_pair(store: Store, add: Callable[..., LocalModel]) -> None:
    big = add("big:7b", params=7_000_000, tokens=VOCAB + [f"[PAD{i}]" for i in range(100)])
    add("small:1b", params=1_000_000)
    assert drafts(store).mismatch(big, store.get("small:1b")) is None


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"tokens": [f"other{i}" for i in range(300)]}, "different tokens"),
        ({"tokenizer": "llama"}, "tokenizers differ (gpt2 vs llama)"),
        ({"tokens": VOCAB[:100]}, "differ in size (300 vs 100 tokens)"),
        ({"eos": 7}, "eos tokens differ"),
        ({"params": 9_000_000}, "more parameters than the model"),
    ],
)
def test_named_draft_that_cannot_draft_is_a_400(
    store: Store, add: Callable[..., LocalModel], kwargs: dict[str, object], reason: str
) -> None:
    big = add("big:7b", params=7_000_000)
    add("other:1b", **{"params": 1_000_000, **kwargs})
    with pytest.raises(InvalidOption) as caught:
        drafts(store).resolve(big, {"draft": "other:1b"})
    assert caught.value.status_code == 400
    assert reason in caught.value.message and "'other:1b' cannot draft for 'big:7b'" in (
        caught.value.message
    )


def test_missing_or_same_draft(store: Store, add: Callable[..., LocalModel]) -> None:
    big = add("big:7b", params=7_000_000)
    with pytest.raises(InvalidOption, match="draft model 'nope' not found: pull it first"):
        drafts(store).resolve(big, {"draft": "nope"})
    with pytest.raises(InvalidOption, match="it is the same model"):
        drafts(store).resolve(big, {"draft": "big:7b"})
    with pytest.raises(InvalidOption, match="needs a draft model"):
        drafts(store).resolve(big, {"speculative": "draft"})
    with pytest.raises(InvalidOption, match="takes no draft model"):
        drafts(store).resolve(big, {"speculative": "ngram", "draft": "big:7b"})


def test_auto_pairs_the_smallest_compatible(store: Store, add: Callable[..., LocalModel]) -> None:
    big = add("big:7b", params=7_000_000)
    add("big:q2", params=7_000_000)  # another quantization of it: no faster, never paired
    add("foreign:1b", params=500_000, tokens=[f"x{i}" for i in range(300)])
    add("mid:3b", params=3_000_000)
    small = add("small:1b", params=1_000_000)
    found = drafts(store, "auto").resolve(big, {})
    assert found is not None and found.draft is not None
    assert found.draft.model_path == small.model_path
    # a model without a smaller partner loads without speculation; "off" wins over auto
    assert drafts(store, "auto").resolve(small, {}) is None
    assert drafts(store, "auto").resolve(big, {"speculative": "off"}) is None
    assert drafts(store, "off").resolve(big, {}) is None  # the default: nothing paired


def test_ngram_modes(store: Store, add: Callable[..., LocalModel]) -> None:
    model = add("big:7b", params=7_000_000)
    found = drafts(store, "ngram").resolve(model, {})
    assert found is not None and found.ngram == NGRAM_DEFAULT and found.draft is None
    chosen = drafts(store).resolve(model, {"speculative": "ngram-simple"})
    assert chosen is not None and chosen.ngram == "ngram-simple"
    args = server_args(load_spec(model, {}, Settings(), speculation=chosen), 1)
    assert args[args.index("--spec-type") + 1] == "ngram-simple" and "-md" not in args
    embedding = load_spec(model, {}, Settings(), embedding=True, speculation=chosen)
    assert embedding.speculative is None  # embeddings generate nothing to guess


def test_draft_memory_counts_its_kv_cache(store: Store, add: Callable[..., LocalModel]) -> None:
    big = add("big:7b", params=7_000_000)
    add("small:1b", params=1_000_000)
    resolver = drafts(store)
    found = resolver.resolve(big, {"draft": "small:1b"})
    short = resolver.memory(load_spec(big, {"num_ctx": 512}, Settings(), speculation=found))
    long = resolver.memory(load_spec(big, {"num_ctx": 4096}, Settings(), speculation=found))
    assert short is not None and long is not None
    assert long.kv_cache == 8 * short.kv_cache and long.weights == short.weights > 0
    assert resolver.memory(load_spec(big, {}, Settings())) is None


def test_real_models_do_not_pair(
    store: Store, smollm2_path: Path, gemma_path: Path, tmp_path: Path
) -> None:
    """SmolLM2 (49152 tokens) and Gemma-3 (262144): no draft pair on this machine's models."""
    for name, path in (("smollm2:135m", smollm2_path), ("gemma3:270m", gemma_path)):
        digest = store.blobs.import_file(path)
        write_manifest(store, parse_name(name), file_layers(store, {path.name: digest}))
    gemma, smollm2 = store.get("gemma3:270m"), store.get("smollm2:135m")
    with pytest.raises(InvalidOption, match="the tokenizers differ"):
        drafts(store).resolve(gemma, {"draft": "smollm2:135m"})
    assert drafts(store, "auto").resolve(gemma, {}) is None
    assert drafts(store, "auto").resolve(smollm2, {}) is None
