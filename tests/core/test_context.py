"""Fitting a chat into the context: what is dropped, how many counts it takes, when it refuses."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from corral.core.context import (
    DEFAULT_RESERVE,
    IMAGE_TOKENS,
    answer_reserve,
    fit_messages,
    image_tokens,
    maybe_fits,
)
from corral.errors import ContextLengthExceeded

Messages = list[dict[str, Any]]


class Counter:
    """One token per character of the contents plus 4 per message, and the calls made."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    async def __call__(self, messages: Messages) -> int:
        self.calls.append(len(messages))
        return sum(len(m.get("content", "")) + 4 for m in messages)


def chat(turns: int, size: int = 100, system: str = "Be brief.") -> Messages:
    out: Messages = [{"role": "system", "content": system}] if system else []
    for i in range(turns):
        out.append({"role": "user", "content": f"q{i}".ljust(size, ".")})
        out.append({"role": "assistant", "content": f"a{i}".ljust(size, ".")})
    out.append({"role": "user", "content": "Say hi"})
    return out


def fit(messages: Messages, counter: Counter, num_ctx: int, reserve: int) -> Messages:
    return asyncio.run(fit_messages(messages, counter, num_ctx=num_ctx, reserve=reserve))


def test_a_chat_that_fits_is_sent_whole_after_one_count() -> None:
    counter = Counter()
    messages = chat(3)
    assert fit(messages, counter, num_ctx=4096, reserve=1024) == messages
    assert counter.calls == [len(messages)]


def test_the_oldest_turns_go_and_system_and_last_stay() -> None:
    counter = Counter()
    messages = chat(60)  # 60 turns of 2 x 104 tokens: about 12,500 tokens
    kept = fit(messages, counter, num_ctx=4096, reserve=1024)
    assert kept[0] == messages[0] and kept[-1] == {"role": "user", "content": "Say hi"}
    assert kept[1]["role"] == "user"  # whole turns: never an orphaned assistant reply first
    assert kept[1:] == messages[len(messages) - len(kept) + 1 :]  # a suffix of the history
    tokens = asyncio.run(Counter()(kept))
    assert tokens <= 4096 - 1024
    # the fewest dropped: one more turn would not fit
    one_more = [messages[0], *messages[len(messages) - len(kept) - 1 :]]
    assert asyncio.run(Counter()(one_more)) > 4096 - 1024
    # binary search: the whole, the smallest, then log2(61 cut points) probes
    assert len(counter.calls) <= 2 + 6


def test_two_hundred_messages_need_a_handful_of_counts() -> None:
    counter = Counter()
    kept = fit(chat(100, size=200), counter, num_ctx=2048, reserve=512)
    assert len(counter.calls) <= 10
    assert asyncio.run(Counter()(kept)) <= 2048 - 512


def test_system_messages_anywhere_are_kept() -> None:
    counter = Counter()
    messages = chat(30)
    messages.insert(7, {"role": "system", "content": "Answer in French."})
    kept = fit(messages, counter, num_ctx=1024, reserve=256)
    assert [m["content"] for m in kept if m["role"] == "system"] == [
        "Be brief.",
        "Answer in French.",
    ]
    assert kept[-1]["content"] == "Say hi"


def test_the_cut_skips_tool_results_and_replies() -> None:
    """A kept history starting with a tool result (its call dropped) would confuse templates."""
    messages: Messages = [{"role": "system", "content": "s"}]
    for i in range(20):
        messages += [
            {"role": "user", "content": f"u{i}".ljust(60)},
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f"}}]},
            {"role": "tool", "content": "r".ljust(60)},
            {"role": "assistant", "content": "a".ljust(60)},
        ]
    messages.append({"role": "user", "content": "last"})
    kept = fit(messages, Counter(), num_ctx=900, reserve=200)
    assert kept[1]["role"] == "user" and len(kept) < len(messages)


def test_only_system_and_last_message_when_that_is_all_that_fits() -> None:
    messages = chat(10, size=300, system="x" * 500)
    messages[-1]["content"] = "y" * 400
    kept = fit(messages, Counter(), num_ctx=1024, reserve=256)
    assert kept == [messages[0], messages[-1]]  # 908 tokens: over the budget, within the context


def test_nothing_fits_is_a_400_naming_the_sizes() -> None:
    counter = Counter()
    messages = chat(10, system="x" * 5000)
    with pytest.raises(ContextLengthExceeded) as info:
        fit(messages, counter, num_ctx=4096, reserve=1024)
    error = info.value
    assert error.status_code == 400
    assert (error.prompt_tokens, error.num_ctx) == (5004 + 10, 4096)
    assert "(5014 tokens)" in error.message and "(4096 tokens)" in error.message
    assert "raise num_ctx" in error.message
    assert counter.calls == [len(messages), 2]  # the whole chat, then system + last


def test_a_single_message_too_long_is_a_400() -> None:
    with pytest.raises(ContextLengthExceeded):
        fit([{"role": "user", "content": "z" * 300}], Counter(), num_ctx=256, reserve=64)


def test_images_go_with_their_message() -> None:
    messages = chat(4, size=50)
    messages[1]["images"] = ["aGk="]

    async def count(candidate: Messages) -> int:
        return await Counter()(candidate) + image_tokens(candidate)

    kept = asyncio.run(fit_messages(messages, count, num_ctx=1024, reserve=256))
    assert messages[1] not in kept and all("images" not in m for m in kept)
    assert image_tokens(messages) == IMAGE_TOKENS


@pytest.mark.parametrize(
    ("num_predict", "num_ctx", "expected"),
    [
        (None, 4096, DEFAULT_RESERVE),
        (-1, 4096, DEFAULT_RESERVE),
        (-2, 4096, DEFAULT_RESERVE),
        (0, 4096, DEFAULT_RESERVE),
        (None, 2048, 512),  # a quarter of a small context
        (None, 32768, DEFAULT_RESERVE),
        (100, 4096, 100),
        (3000, 4096, 3000),
        (10_000, 4096, 4095),
    ],
)
def test_answer_reserve(num_predict: int | None, num_ctx: int, expected: int) -> None:
    assert answer_reserve(num_predict, num_ctx) == expected


def test_maybe_fits_is_a_cheap_upper_bound() -> None:
    assert maybe_fits(chat(1, size=10), None, 3072)
    assert not maybe_fits(chat(20), None, 3072)
    assert not maybe_fits([{"role": "user", "content": "hi", "images": ["x"]}], None, 500)


def test_at_the_models_own_limit_the_400_does_not_say_raise_num_ctx() -> None:
    messages = chat(10, system="x" * 5000)
    with pytest.raises(ContextLengthExceeded) as info:
        asyncio.run(fit_messages(messages, Counter(), num_ctx=4096, reserve=1024, limit=4096))
    assert "raise num_ctx" not in info.value.message
    assert "4096 tokens is the most this model was trained for" in info.value.message
