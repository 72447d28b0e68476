"""Chat templates from Modelfiles: Jinja (Hugging Face style) or Ollama's Go templates,
rendered in a time- and size-limited Jinja sandbox.

Go templates are translated to Jinja (see :mod:`corral.templates.gotojinja` for the mapping
and :mod:`corral.templates.sandbox` for the limits). :func:`validate_template` is what
``/api/create`` calls, so a template corral cannot render is refused when the model is
created, with an error naming the construct and line.
"""

from __future__ import annotations

from corral.templates.errors import TemplateError, TemplateLimitError, UnsupportedTemplate
from corral.templates.render import (
    ChatTemplate,
    Syntax,
    compile_template,
    detect_syntax,
    render_prompt,
)

__all__ = [
    "ChatTemplate",
    "Syntax",
    "TemplateError",
    "TemplateLimitError",
    "UnsupportedTemplate",
    "compile_template",
    "detect_syntax",
    "render_prompt",
    "validate_template",
]

_SAMPLE = [{"role": "user", "content": "Hello"}]


def validate_template(text: str) -> ChatTemplate:
    """Compile ``text`` and render a one-message chat with it; raise :class:`TemplateError`
    (a 400) for anything that would fail at chat time with ordinary input."""
    template = compile_template(text)
    template.render(_SAMPLE)
    return template
