"""corral: run large language models locally and in containers.

Serves an Ollama- and OpenAI-compatible HTTP API in front of llama.cpp's
``llama-server``, one engine subprocess per loaded model.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
