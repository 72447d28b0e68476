"""Any text given as a TEMPLATE is either accepted or refused with a TemplateError (a 400)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.templates import TemplateError, validate_template

_PIECES = ["{{", "}}", "{{-", " -}}", " .System ", " .Messages ", "range ", "if ", "end", "else "]
_PIECES += ["$x := ", "$x", " eq ", '"a"', "(", ")", " | ", "len ", "x", " ", "\n", "{%", "%}"]
_PIECES += ["for m in messages", "{#", "#}", "with ", "break", ".Role", "$.Tools", "slice ", "1"]
_SOUP = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join)


@settings(max_examples=500, deadline=None, database=None)
@given(st.one_of(st.text(max_size=80), _SOUP))
def test_validate_raises_only_template_errors(text: str) -> None:
    with contextlib.suppress(TemplateError):
        validate_template(text)


def test_jinja_break_outside_a_loop() -> None:
    # Found by the test above: Jinja compiles it to Python that Python refuses.
    with pytest.raises(TemplateError, match="'break' outside loop"):
        validate_template("{% break %}")
