"""OpenAI's API on /v1, converted to and from the native pipeline (vLLM-entrypoints style).

::

    protocol   pydantic request/response models, fields in OpenAI's documented order
    convert    OpenAI requests -> native ChatRequest / GenerateRequest / EmbedRequest
    responses  native answers and streams -> OpenAI objects and chunks
    sse        server-sent events framing, errors before and during a stream
    errors     OpenAI-shaped errors for /v1/* paths
    routes     the APIRouter
"""

from corral.api.openai.errors import install_openai_error_rendering
from corral.api.openai.routes import router

__all__ = ["install_openai_error_rendering", "router"]
