"""Anthropic's Messages API on /v1/messages, over the one native pipeline."""

from corral.api.anthropic.errors import install_anthropic_error_rendering
from corral.api.anthropic.routes import router

__all__ = ["install_anthropic_error_rendering", "router"]
