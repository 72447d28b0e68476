"""Typed exceptions. Each API surface renders them its own way (see ``corral.api.errors``).

::

    CorralError                      (500)
    ├── BadRequest                   (400)
    │   ├── InvalidModelName
    │   ├── InvalidOption
    │   ├── UnsupportedFeature
    │   ├── LimitExceeded            (a request over one of the server's limits)
    │   └── ContextLengthExceeded    (a prompt that cannot fit the model's context)
    ├── Unauthorized                 (401)
    ├── Forbidden                    (403)
    ├── PayloadTooLarge              (413)
    ├── ModelNotFound                (404)
    ├── StoreError                   (500)
    │   ├── CorruptBlob
    │   └── InsufficientDiskSpace
    ├── RegistryError                (500; the registry failed or refused)
    │   ├── RegistryAuthError
    │   └── ManifestUnknown          (404)
    ├── GGUFError                    (500; 400 when the file came from the request)
    ├── EngineError                  (500)
    │   ├── EngineNotFound
    │   ├── EngineStartError
    │   │   └── EngineCrashedAtLoad  (died by a signal while loading: SIGILL, SIGSEGV ...)
    │   └── EngineCrashed
    ├── InsufficientMemory           (500)
    ├── ServerBusy                   (503)
    └── RequestCancelled             (499)

Errors are matched by type, never by message text.
"""

from __future__ import annotations


class CorralError(Exception):
    """Base of every error corral raises on purpose."""

    status_code: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(CorralError):
    """The request cannot be served as sent; the message says what to fix."""

    status_code = 400


class InvalidModelName(BadRequest):
    """A model name that does not parse (empty part, bad characters, too long)."""


class InvalidOption(BadRequest):
    """An option or parameter with a value corral cannot use."""


class UnsupportedFeature(BadRequest):
    """The model or the build cannot do what was asked (tools, images, quantize ...)."""


class LimitExceeded(BadRequest):
    """A request over one of the server's limits; ``limit`` names the setting."""

    def __init__(self, limit: str, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.param = param  # the request field, for OpenAI's error shape


class ContextLengthExceeded(BadRequest):
    """A prompt of ``prompt_tokens`` that cannot fit a context of ``num_ctx`` tokens (the
    engine must generate at least one); the message says how to make it fit."""

    def __init__(
        self,
        prompt_tokens: int,
        num_ctx: int,
        *,
        what: str = "the prompt",
        verb: str = "shorten it",
        limit: int | None = None,
    ) -> None:
        if limit is not None and num_ctx >= limit:  # raising num_ctx cannot help
            how = (
                f"{verb}, or use a model with a longer context ({limit} tokens is the most "
                "this model was trained for)"
            )
        else:
            how = (
                f"{verb} or raise num_ctx (the request's options.num_ctx, PARAMETER num_ctx in "
                "a Modelfile, or CORRAL_CONTEXT_LENGTH for the server's default)"
            )
        super().__init__(
            f"{what} ({prompt_tokens} tokens) does not fit the context ({num_ctx} tokens): {how}"
        )
        self.prompt_tokens = prompt_tokens
        self.num_ctx = num_ctx


class Unauthorized(CorralError):
    """No API key, or one the server does not know."""

    status_code = 401


class Forbidden(CorralError):
    """The caller is known but may not do this (read-only key, untrusted Host header)."""

    status_code = 403


class PayloadTooLarge(CorralError):
    """A request body over ``CORRAL_MAX_BODY_BYTES``."""

    status_code = 413


class ModelNotFound(CorralError):
    """No local model with this name."""

    status_code = 404

    def __init__(self, name: str) -> None:
        super().__init__(f'model "{name}" not found, try pulling it first')
        self.name = name


class StoreError(CorralError):
    """The model store could not be read or written."""


class CorruptBlob(StoreError):
    """A blob whose content does not match its digest."""


class InsufficientDiskSpace(StoreError):
    """Not enough free space in the store for a download."""


class RegistryError(CorralError):
    """A model registry failed, refused or answered something unusable."""


class RegistryAuthError(RegistryError):
    """The registry wants credentials we do not have, or rejected ours."""


class ManifestUnknown(RegistryError):
    """The registry has no such model or tag."""

    status_code = 404


class GGUFError(CorralError):
    """A GGUF file that is corrupt, truncated or not GGUF at all."""


class EngineError(CorralError):
    """The inference engine failed."""


class EngineNotFound(EngineError):
    """No ``llama-server`` binary could be found."""


class EngineStartError(EngineError):
    """The engine process exited or never became healthy while loading a model."""


class EngineCrashedAtLoad(EngineStartError):
    """The engine died by signal ``signum`` while loading a model."""

    def __init__(self, message: str, *, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class EngineCrashed(EngineError):
    """The engine died or stopped answering while serving a request."""


class InsufficientMemory(CorralError):
    """The model cannot fit in memory even with every other model unloaded."""


class ServerBusy(CorralError):
    """Too many pending requests."""

    status_code = 503


class RequestCancelled(CorralError):
    """The client went away before the answer was complete."""

    status_code = 499
