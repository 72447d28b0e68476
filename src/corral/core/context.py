"""Fitting a chat into the context window, as Ollama does: the oldest messages go first.

A chat longer than the context keeps every system message and the latest messages that fit;
the last message is always kept. Tokens are counted with the engine's own tokenizer on the
prompt the chat renders to (so the template's markup counts too), and how many messages to
drop is found by binary search: a 200-message chat costs about ten counts, not 200.

Room is left for the answer: ``num_predict`` when the request sets a positive one, else
:data:`DEFAULT_RESERVE` tokens (at most a quarter of the context). That room is a target,
not a requirement: when the system messages and the last message fit the context but not
with the full reserve, they are sent anyway and the answer may stop early (``length``).
Only a prompt that cannot fit the context at all is refused (:class:`ContextLengthExceeded`).

Cuts happen only in front of a user message (or the last message), so the kept history
never starts with an assistant reply or a tool result whose call was dropped (several chat
templates refuse a conversation that does not alternate). Messages carrying images go
whole; on a model with a projector each image counts :data:`IMAGE_TOKENS`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from corral.errors import ContextLengthExceeded

__all__ = [
    "DEFAULT_RESERVE",
    "IMAGE_TOKENS",
    "answer_reserve",
    "fit_messages",
    "maybe_fits",
    "without_images",
]

DEFAULT_RESERVE = 1024
"""Tokens kept free for the answer when the request does not set ``num_predict``: enough
for a long chat reply (a few pages), and capped at a quarter of the context so that a small
context still keeps most of its room for history. Ollama reserves nothing, and a chat that
fills its context to the last token gets an answer cut off after a word or two."""

IMAGE_TOKENS = 768
"""What one image is counted as in the context (Ollama's estimate for CLIP projectors);
the engine's real number depends on the projector."""

# Markup a chat template adds around each message and once per prompt, in bytes, as an upper
# bound for the check that skips counting: a short chat needs no tokenizer round trip.
_TEMPLATE_BYTES_PER_MESSAGE = 64
_TEMPLATE_BYTES = 2048

Count = Callable[[list[dict[str, Any]]], Awaitable[int]]


def answer_reserve(num_predict: Any, num_ctx: int) -> int:
    """Tokens to keep free for the answer (see the module's docstring)."""
    cap = num_ctx // 4
    if isinstance(num_predict, int | float) and num_predict > 0:
        return int(min(num_predict, num_ctx - 1))
    return min(DEFAULT_RESERVE, cap)


def image_tokens(messages: Sequence[dict[str, Any]]) -> int:
    return IMAGE_TOKENS * sum(len(m.get("images") or ()) for m in messages)


def without_images(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as text only, for counting (images are counted by :func:`image_tokens`)."""
    return [{k: v for k, v in m.items() if k != "images"} for m in messages]


def maybe_fits(
    messages: Sequence[dict[str, Any]], tools: Sequence[Any] | None, budget: int
) -> bool:
    """Cheap upper bound, before any rendering: every token covers at least one byte of the
    rendered prompt, so content bytes plus generous template markup bounds the count.
    False means "count it", not "too long"."""
    size = _TEMPLATE_BYTES + len(json.dumps(list(tools or ()), ensure_ascii=False).encode())
    for message in messages:
        text = without_images([message])[0]
        size += _TEMPLATE_BYTES_PER_MESSAGE + len(json.dumps(text, ensure_ascii=False).encode())
    return size + image_tokens(messages) <= budget


def _cut_points(messages: Sequence[dict[str, Any]]) -> tuple[list[int], list[int]]:
    """(droppable indices in order, valid numbers of them to drop, ascending)."""
    last = len(messages) - 1
    droppable = [i for i, m in enumerate(messages) if m.get("role") != "system" and i != last]
    # dropping k leaves droppable[k] as the first kept non-system message (or only the last)
    cuts = [
        k
        for k in range(len(droppable) + 1)
        if k == len(droppable) or k == 0 or messages[droppable[k]].get("role") == "user"
    ]
    return droppable, cuts


def _drop(messages: Sequence[dict[str, Any]], droppable: list[int], k: int) -> list[dict[str, Any]]:
    gone = set(droppable[:k])
    return [m for i, m in enumerate(messages) if i not in gone]


async def fit_messages(
    messages: Sequence[dict[str, Any]],
    count: Count,
    *,
    num_ctx: int,
    reserve: int,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The messages to send: all of them if they fit ``num_ctx - reserve`` tokens, else the
    system messages and the fewest-dropped suffix that does. ``count`` gives the prompt
    tokens of a candidate list. Raises :class:`ContextLengthExceeded` when even the system
    messages and the last message exceed the context itself."""
    budget = max(1, num_ctx - reserve)
    messages = list(messages)
    tokens = await count(messages)
    if tokens <= budget:
        return messages
    droppable, cuts = _cut_points(messages)
    if cuts == [0]:  # nothing to drop: only system messages and the last one
        return _check_hard(messages, tokens, num_ctx, limit)
    known = {0: tokens}
    smallest = _drop(messages, droppable, cuts[-1])
    known[cuts[-1]] = await count(smallest)
    if known[cuts[-1]] > budget:
        return _check_hard(smallest, known[cuts[-1]], num_ctx, limit)
    lo, hi = 0, len(cuts) - 1  # cuts[lo] does not fit, cuts[hi] does
    while hi - lo > 1:
        mid = (lo + hi) // 2
        known[cuts[mid]] = await count(_drop(messages, droppable, cuts[mid]))
        if known[cuts[mid]] <= budget:
            hi = mid
        else:
            lo = mid
    return _drop(messages, droppable, cuts[hi])


def _check_hard(
    kept: list[dict[str, Any]], tokens: int, num_ctx: int, limit: int | None
) -> list[dict[str, Any]]:
    # the engine refuses a prompt of num_ctx tokens or more: at least one must be generated
    if tokens >= num_ctx:
        raise ContextLengthExceeded(
            tokens,
            num_ctx,
            what="the system prompt and the last message",
            verb="shorten them",
            limit=limit,
        )
    return kept
