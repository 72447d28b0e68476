"""Speculative decoding: which draft model, or which n-gram mode, a model loads with.

A draft proposes a few tokens and the target checks them all in one batch, keeping those it
would have generated itself: the answer is the target's, sooner when the guesses are good.
A draft model must tokenize text exactly as the target does; the n-gram modes need no draft
and guess from what the context already holds (rewrites, summaries, code edits).

What a model gets, by the usual precedence (request options, then the model's parameters,
then ``CORRAL_SPECULATIVE``): ``speculative`` picks the mode, ``draft`` names a model in the
store. ``auto`` pairs a smaller local model with the same vocabulary, where there is one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from corral.core.catalog import Catalog
from corral.core.fit import MemoryEstimate, estimate_memory, vocab_size
from corral.errors import GGUFError, InvalidModelName, InvalidOption, ModelNotFound
from corral.gguf import FINGERPRINT_TOKENS
from corral.runner.protocol import LoadSpec
from corral.store.models import LocalModel, Store

__all__ = ["MAX_VOCAB_DIFFERENCE", "NGRAM_DEFAULT", "NGRAM_TYPES", "Drafts", "Speculation"]

NGRAM_DEFAULT = "ngram-mod"
"""What ``speculative ngram`` means: of the engine's n-gram types, the one that helped most
on rewrites without slowing free chat in benchmarks/speculative.py (docs/benchmarks.md)."""

MAX_VOCAB_DIFFERENCE = 128
"""llama.cpp's own limit: a draft's vocabulary may be this many tokens longer or shorter
(families differ in padding tokens at the end)."""

NGRAM_TYPES = ("ngram-simple", "ngram-mod", "ngram-cache", "ngram-map-k", "ngram-map-k4v")


@dataclass(frozen=True, slots=True)
class Speculation:
    """What to load besides the model: a draft model, or an n-gram type of the engine."""

    draft: LocalModel | None = None
    ngram: str | None = None
    draft_max: int | None = None
    draft_min: int | None = None
    draft_p_min: float | None = None


class Drafts:
    """Resolves a model's speculation against the store; built once by the app factory."""

    def __init__(self, store: Store, catalog: Catalog, default: str = "off") -> None:
        self.store = store
        self.catalog = catalog
        self.default = default  # CORRAL_SPECULATIVE

    def resolve(self, model: LocalModel, options: dict[str, Any]) -> Speculation | None:
        """The speculation for ``model`` with these merged options; a 400 names what is wrong
        with a draft (missing, another vocabulary) or a mode."""
        name = options.get("draft")
        mode = options.get("speculative") or ("draft" if name else self.default)
        if mode == "off":
            return None
        if mode == "ngram" or mode in NGRAM_TYPES:
            if name:
                raise InvalidOption(
                    f"speculative {mode} guesses from the context and takes no draft model; "
                    f"drop draft '{name}' or set speculative draft"
                )
            return Speculation(ngram=NGRAM_DEFAULT if mode == "ngram" else mode)
        if mode == "draft":
            if not name:
                raise InvalidOption(
                    "speculative draft needs a draft model: set the 'draft' option "
                    "(PARAMETER draft <name> or DRAFT <name> in the Modelfile)"
                )
            draft = self._named(model, name)
        elif mode == "auto":
            found = self._named(model, name) if name else self.pair(model)
            if found is None:
                return None
            draft = found
        else:
            raise InvalidOption(f"invalid value for option 'speculative': {mode!r}")
        return Speculation(
            draft=draft,
            draft_max=options.get("draft_max"),
            draft_min=options.get("draft_min"),
            draft_p_min=options.get("draft_p_min"),
        )

    def _named(self, model: LocalModel, name: str) -> LocalModel:
        try:
            draft = self.store.get(name)
        except ModelNotFound:
            raise InvalidOption(
                f"draft model '{name}' not found: pull it first (corral pull {name})"
            ) from None
        except InvalidModelName as exc:
            raise InvalidOption(f"draft model: {exc.message}") from None
        problem = self.mismatch(model, draft)
        if problem:
            raise InvalidOption(
                f"'{name}' cannot draft for '{model.name.display}': {problem}; a draft must "
                "share the model's vocabulary (usually a smaller model of the same family)"
            )
        return draft

    def mismatch(self, target: LocalModel, draft: LocalModel) -> str | None:
        """Why ``draft`` cannot draft for ``target``, or None when it can."""
        if draft.model_digest == target.model_digest:
            return "it is the same model"
        want, have = self.catalog.gguf(target), self.catalog.gguf(draft)
        if have.parameter_count > want.parameter_count:
            return "it has more parameters than the model (a draft must be faster to help)"
        kinds = [str(i.metadata.get("tokenizer.ggml.model", "")) for i in (want, have)]
        if kinds[0] != kinds[1]:
            return f"the tokenizers differ ({kinds[0] or 'none'} vs {kinds[1] or 'none'})"
        sizes = vocab_size(want), vocab_size(have)
        if abs(sizes[0] - sizes[1]) > MAX_VOCAB_DIFFERENCE:
            return f"the vocabularies differ in size ({sizes[0]} vs {sizes[1]} tokens)"
        common = min(*sizes, FINGERPRINT_TOKENS)  # the tokens both have (padding aside)
        prints = self.catalog.fingerprint(target, common), self.catalog.fingerprint(draft, common)
        if prints[0] is None or prints[1] is None:
            return "a GGUF header holds no tokens"
        if prints[0] != prints[1]:
            return "the vocabularies hold different tokens"
        for key in ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"):
            if want.metadata.get(key) != have.metadata.get(key):
                return f"{key.rsplit('.', 1)[1].removesuffix('_token_id')} tokens differ"
        return None

    def pair(self, model: LocalModel) -> LocalModel | None:
        """For ``auto``: the smallest model in the store with at most half the parameters of
        ``model`` that can draft for it (the smallest guesses fastest; another quantization
        of the same model is no faster); None when there is none."""
        params = self.catalog.gguf(model).parameter_count
        found: list[tuple[int, LocalModel]] = []
        for candidate in self.store.list():
            try:
                count = self.catalog.gguf(candidate).parameter_count
                small = count * 2 <= params and not candidate.adapter_paths
                if small and self.mismatch(model, candidate) is None:
                    found.append((count, candidate))
            except GGUFError:
                continue  # a broken file in the store is not this request's problem
        return min(found, key=lambda pair: (pair[0], pair[1].size))[1] if found else None

    def memory(self, spec: LoadSpec) -> MemoryEstimate | None:
        """What the draft of ``spec`` adds: its weights, and a KV cache as long as the
        target's (the engine gives the draft the same context per slot)."""
        if spec.draft_path is None:
            return None
        info = self.catalog.gguf_file(spec.draft_path)
        as_model = dataclasses.replace(spec, model_path=spec.draft_path, draft_path=None)
        return estimate_memory(info, spec.draft_path.stat().st_size, as_model)
