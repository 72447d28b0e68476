"""Template errors: all are 400s, raised when a template is validated at create time, or,
for what only shows with real input (a template's own ``raise_exception``), at chat time."""

from __future__ import annotations

from corral.errors import BadRequest

__all__ = ["TemplateError", "TemplateLimitError", "UnsupportedTemplate"]


class TemplateError(BadRequest):
    """A template that does not parse or fails to render; the message starts with
    Ollama's ``template error:`` and names the line when one is known."""

    def __init__(self, message: str, line: int = 0) -> None:
        where = f"line {line}: " if line else ""
        super().__init__(f"template error: {where}{message}")
        self.line = line


class UnsupportedTemplate(TemplateError):
    """Valid Go-template syntax that corral's translator does not handle; ``construct`` names it."""

    def __init__(self, construct: str, line: int = 0, hint: str = "") -> None:
        detail = f" ({hint})" if hint else ""
        super().__init__(f"unsupported template construct '{construct}'{detail}", line)
        self.construct = construct


class TemplateLimitError(TemplateError):
    """Rendering ran past a limit (time, loop iterations, output size)."""
