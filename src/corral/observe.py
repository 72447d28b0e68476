"""What the server tells whoever watches it: the hooks core, scheduler and registry call.

:class:`Observer` does nothing; the app factory passes a subclass down (the Prometheus one in
:mod:`corral.api.metrics`), so nothing below the API imports prometheus-client and tests
that build a scheduler or a service by hand need no observer at all.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corral.runner.protocol import Delta

__all__ = ["NULL_OBSERVER", "Observer", "observed"]


class Observer:
    """Every hook is a no-op here; override the ones you need. Hooks must be cheap and must
    not raise: they run on the request path."""

    def generation(
        self,
        model: str,
        *,
        ttft: float | None,
        prompt_tokens: int,
        eval_tokens: int,
        eval_seconds: float,
        draft_tokens: int = 0,
        draft_accepted: int = 0,
    ) -> None:
        """One chat or generate finished: seconds from request start to the first token
        (None when no token came), the engine's token counts and generation time, and the
        tokens speculative decoding proposed and the model kept."""

    def engine_started(self, model: str) -> None:
        """An engine process started and answered for ``model``."""

    def engine_crashed(self, model: str) -> None:
        """An engine died or stopped answering and was dropped."""

    def pull_bytes(self, count: int) -> None:
        """``count`` bytes of a model were received from a registry."""

    def pull_finished(self, ok: bool) -> None:
        """A pull ended: ``ok`` is False when it failed."""


NULL_OBSERVER = Observer()


def observed(
    stream: AsyncGenerator[Delta, None], observer: Observer, model: str, started_ns: int
) -> AsyncGenerator[Delta, None]:
    """``stream`` passed through, reporting its first token and final counts to
    ``observer``; closing the result closes ``stream``. Unwrapped for the null observer."""
    if observer is NULL_OBSERVER:
        return stream
    return _observed(stream, observer, model, started_ns)


async def _observed(
    stream: AsyncGenerator[Delta, None], observer: Observer, model: str, started_ns: int
) -> AsyncGenerator[Delta, None]:
    first_ns: int | None = None
    async with contextlib.aclosing(stream):
        async for delta in stream:
            if first_ns is None and (delta.content or delta.thinking):
                first_ns = time.perf_counter_ns()
            if delta.done:
                observer.generation(
                    model,
                    ttft=None if first_ns is None else (first_ns - started_ns) / 1e9,
                    prompt_tokens=delta.prompt_tokens,
                    eval_tokens=delta.eval_tokens,
                    eval_seconds=delta.eval_ms / 1000,
                    draft_tokens=delta.draft_tokens,
                    draft_accepted=delta.draft_accepted,
                )
            yield delta
