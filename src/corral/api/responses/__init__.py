"""The OpenAI Responses API (``/v1/responses``) over corral's native chat service."""
