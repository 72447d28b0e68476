"""The Jinja sandbox every template renders in, with limits on time, loops and output.

Why these limits: a template is code that runs on every chat request, written by whoever may
create models. ``ImmutableSandboxedEnvironment`` already blocks attribute tricks, mutation of
the context and ``range()`` beyond 100,000 items, but a nested loop or a recursive macro can
still spin for hours. So, per render:

- every ``{% for %}`` iterable is wrapped (the template's AST is rewritten before it is
  compiled) and every call goes through :meth:`LimitedSandbox.call`; both count steps
  (``MAX_STEPS``) and check a wall-clock deadline (``timeout`` seconds, default 2);
- ``*``, ``**`` and ``%`` are intercepted so ``'x' * 10**9`` or a ``%0999999999d`` format
  fails before it allocates; the padding filters (``center``, ``indent``, ``wordwrap``) check
  their widths the same way;
- output is produced as a stream and cut off past ``MAX_OUTPUT`` characters.

Memory is capped only indirectly (steps, sizes); a template cannot open files, import or
reach Python internals. Chosen limits are far above any real chat template: the largest
library templates render a 1,000-message chat in well under 100 ms and 20,000 steps.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from corral.templates.errors import TemplateLimitError

__all__ = ["MAX_OUTPUT", "MAX_STEPS", "Budget", "LimitedSandbox", "guard_loops", "render_limited"]

MAX_STEPS = 1_000_000  # loop iterations + calls per render
MAX_OUTPUT = 32 * 1024 * 1024  # characters of prompt
MAX_SIZE = 1_000_000  # longest string or list one operation may build
DEFAULT_TIMEOUT = 2.0


@dataclass
class Budget:
    deadline: float
    steps: int = MAX_STEPS

    def spend(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise TemplateLimitError(f"rendering took more than {MAX_STEPS} steps")
        if self.steps % 256 == 0 and time.monotonic() > self.deadline:
            raise TemplateLimitError("rendering took too long")


_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "template_budget", default=None
)


def _spend() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.spend()


def _check_size(size: int, what: str) -> None:
    if size > MAX_SIZE:
        raise TemplateLimitError(f"{what} would build {size} items (limit {MAX_SIZE})")


_WIDTH = re.compile(r"%[-+ #0]*(\d+)?(?:\.(\d+))?")


def _check_format(fmt: Any) -> None:
    if isinstance(fmt, str):
        for width, precision in _WIDTH.findall(fmt):
            _check_size(int(width or 0) + int(precision or 0), "a format")


def _sized(filter_: Callable[..., Any], name: str) -> Callable[..., Any]:
    def checked(value: Any, *args: Any, **kwargs: Any) -> Any:
        for arg in (*args, *kwargs.values()):
            if isinstance(arg, int) and not isinstance(arg, bool):
                _check_size(abs(arg), f"|{name}")
        return filter_(value, *args, **kwargs)

    return checked


class GenerationTag(Extension):
    """transformers' ``{% generation %}`` (marks assistant text for training masks) renders
    its body; some chat templates use it."""

    tags = {"generation"}  # noqa: RUF012 (Jinja's own declaration is a plain class set)

    def parse(self, parser: Parser) -> list[nodes.Node]:
        next(parser.stream)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """An immutable sandbox that counts steps and refuses huge values."""

    intercepted_binops = frozenset(["*", "**", "%"])

    def __init__(self, **options: Any) -> None:
        options.setdefault("extensions", [loopcontrols, GenerationTag])
        super().__init__(**options)
        for name in ("center", "indent", "wordwrap"):
            self.filters[name] = _sized(self.filters[name], name)
        for name in ("lipsum", "cycler", "joiner"):  # not needed by any chat template
            self.globals.pop(name, None)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _spend()
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(count, int):
                    _check_size(len(seq) * count, "'*'")
        elif operator == "**" and isinstance(right, int | float) and abs(right) > 1000:
            raise TemplateLimitError("exponent larger than 1000")
        elif operator == "%":
            _check_format(left)
        return super().call_binop(context, operator, left, right)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend()
        return super().call(__context, __obj, *args, **kwargs)

    def loop_guard(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            _spend()
            yield item


def guard_loops(tree: nodes.Template) -> nodes.Template:
    """Route every ``for`` loop's iterable through ``environment.loop_guard``: an environment
    attribute, so no template variable can shadow it."""
    for loop in tree.find_all(nodes.For):
        loop.iter = nodes.Call(
            nodes.EnvironmentAttribute("loop_guard"), [loop.iter], [], None, None
        )
    return tree


def render_limited(generate: Callable[[], Iterator[str]], timeout: float = DEFAULT_TIMEOUT) -> str:
    """Run a template's ``generate`` under a fresh budget; join its output up to the cap."""
    token = _budget.set(Budget(deadline=time.monotonic() + timeout))
    try:
        parts: list[str] = []
        size = 0
        for part in generate():
            size += len(part)
            if size > MAX_OUTPUT:
                raise TemplateLimitError(f"prompt longer than {MAX_OUTPUT} characters")
            parts.append(part)
        return "".join(parts)
    finally:
        _budget.reset(token)
