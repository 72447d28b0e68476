"""Modelfiles: parse Ollama's format, type its PARAMETERs, and write one back.

The grammar follows Ollama's parser (``parser/parser.go``): one instruction per line, names
case-insensitive, ``#`` comments only at the start of a line, values that run to the end of
the line unless quoted with ``"`` or ``\"\"\"`` (both may span lines; a quoted value ends at the
first newline where the trimmed text so far ends with its closing quote). There are no escape
sequences, so :func:`format_value` picks, for each value, a quoting that reads back exactly.

Deviations, all on the lenient side: CRLF counts as one line break, control characters are
kept (Ollama drops them), MESSAGE roles are case-insensitive, and errors say which line and
what to fix (``line 3: unknown instruction 'FORM'``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from corral.errors import BadRequest, InvalidModelName, InvalidOption
from corral.names import parse_name
from corral.store.manifests import MediaType
from corral.store.models import LocalModel, Store

__all__ = [
    "DEPRECATED_PARAMETERS",
    "PARAMETER_TYPES",
    "SPECULATIVE_MODES",
    "FromSource",
    "Modelfile",
    "ModelfileError",
    "coerce_parameters",
    "format_value",
    "parse_modelfile",
    "parse_parameter",
    "render_modelfile",
    "resolve_from",
    "show_modelfile",
]


class ModelfileError(BadRequest):
    """A Modelfile that does not parse; ``line`` is 1-based (0 when no line applies)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


# Ollama's option table (api/types.go Options + Runner), plus num_parallel and the mirostat
# trio, which corral's engine still honours. A name outside it is an error, as in Ollama.
PARAMETER_TYPES: dict[str, type] = {
    **dict.fromkeys(
        ["num_ctx", "num_batch", "num_gpu", "main_gpu", "num_thread", "num_parallel"], int
    ),
    **dict.fromkeys(["num_keep", "seed", "num_predict", "top_k", "repeat_last_n", "mirostat"], int),
    **dict.fromkeys(
        ["top_p", "min_p", "typical_p", "temperature", "repeat_penalty", "presence_penalty"], float
    ),
    **dict.fromkeys(["frequency_penalty", "mirostat_tau", "mirostat_eta"], float),
    "use_mmap": bool,
    "stop": list,
    # speculative decoding (corral's own; see corral.core.speculative)
    "draft": str,  # a model in the store that drafts tokens for this one (DRAFT name)
    "speculative": str,  # one of SPECULATIVE_MODES
    "draft_max": int,
    "draft_min": int,
    "draft_p_min": float,
}
SPECULATIVE_MODES = (
    "off", "auto", "draft", "ngram", "ngram-simple", "ngram-mod", "ngram-cache", "ngram-map-k",
    "ngram-map-k4v",
)  # fmt: skip
"""``off``; ``auto``: a smaller local model with the same vocabulary drafts, if there is one;
``draft``: the ``draft`` model; ``ngram`` and the engine's own n-gram types: no draft model,
tokens are guessed from what the context already holds."""
# Accepted and dropped with a warning, as Ollama's CLI does.
DEPRECATED_PARAMETERS = frozenset(
    ["penalize_newline", "low_vram", "f16_kv", "logits_all", "vocab_only", "use_mlock"]
)

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # Go's strconv.ParseBool
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_parameter(name: str, value: str) -> Any:
    """A PARAMETER's text as its typed value; :class:`InvalidOption` names what is wrong."""
    kind = PARAMETER_TYPES.get(name)
    if kind is None:
        raise InvalidOption(f"unknown parameter '{name}'")
    if kind is int and _INT.fullmatch(value):
        return int(value)
    if kind is float and _FLOAT.fullmatch(value):
        return float(value)
    if kind is bool and value in _TRUE | _FALSE:
        return value in _TRUE
    if kind is list:
        return [value]
    if kind is str:
        if name == "speculative" and value not in SPECULATIVE_MODES:
            raise InvalidOption(
                f"invalid value for parameter 'speculative': {value!r}; "
                f"expected one of {', '.join(SPECULATIVE_MODES)}"
            )
        if not value:
            raise InvalidOption(f"parameter '{name}' needs a value")
        return value
    raise InvalidOption(f"invalid {kind.__name__} value for parameter '{name}': {value!r}")


def coerce_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """``parameters`` of an API request, checked against the same table and typed the same."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        kind = PARAMETER_TYPES.get(name)
        if kind is None:
            if name in DEPRECATED_PARAMETERS:
                continue
            raise InvalidOption(f"unknown parameter '{name}'")
        if isinstance(value, str) and kind is not list:
            out[name] = parse_parameter(name, value.strip())
        elif kind is list and (isinstance(value, str) or _str_list(value)):
            out[name] = [value] if isinstance(value, str) else list(value)
        elif kind is bool and isinstance(value, bool):
            out[name] = value
        elif kind is int and _is_int(value):
            out[name] = int(value)
        elif kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
        else:
            raise InvalidOption(f"invalid {kind.__name__} value for parameter '{name}': {value!r}")
    return out


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


@dataclass
class Modelfile:
    """What a Modelfile asks for, in the shape of ``/api/create``'s fields."""

    from_: list[str] = field(default_factory=list)  # each FROM, in order (model + projector)
    adapters: list[str] = field(default_factory=list)
    template: str | None = None
    system: str | None = None
    licenses: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def create_fields(self) -> dict[str, Any]:
        """The ``/api/create`` fields that need no file handling (FROM and ADAPTER do)."""
        fields: dict[str, Any] = {
            "template": self.template,
            "system": self.system,
            "license": self.licenses or None,
            "parameters": self.parameters or None,
            "messages": self.messages or None,
        }
        return {k: v for k, v in fields.items() if v is not None}


_INSTRUCTIONS = (
    "from", "parameter", "template", "system", "adapter", "license", "message", "draft",
)  # fmt: skip
_UNSUPPORTED = ("renderer", "parser")  # newer Ollama instructions corral lacks
_ROLES = ("system", "user", "assistant")
_WORD = re.compile(r"[^\s]+")
_NAME = re.compile(r"[A-Za-z0-9_]+")


class _Cursor:
    def __init__(self, text: str) -> None:
        self.text = text.removeprefix("\ufeff").replace("\r\n", "\n")
        self.pos = 0
        self.line = 1

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.line += self.text[self.pos] == "\n"
            self.pos += 1

    def word(self, pattern: re.Pattern[str]) -> str:
        match = pattern.match(self.text, self.pos)
        if not match:
            return ""
        self.pos = match.end()
        return match.group()

    def at_value(self) -> bool:
        """True when a space separates what was read from a value on the same line."""
        return self.pos < len(self.text) and self.text[self.pos] in " \t"


def _value_end(text: str, start: int) -> tuple[str, int] | None:
    """The value starting at ``start`` and the index just after it, or None if unterminated.

    Ollama's rule: at each newline (and at the end), trim the text so far; it ends the value
    when it is unquoted or when it both opens and closes with the same quote.
    """
    lead = start
    while lead < len(text) and text[lead] in " \t":
        lead += 1
    if text.startswith('"""', lead):
        opening, minimum = '"""', 6
    elif text.startswith('"', lead):
        opening, minimum = '"', 2
    else:
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        return text[start:end].strip(), end
    last = lead  # one past the last non-whitespace character seen so far
    pos = lead
    while True:
        nl = text.find("\n", pos)
        stop = len(text) if nl < 0 else nl
        segment_end = stop
        while segment_end > pos and text[segment_end - 1].isspace():
            segment_end -= 1
        if segment_end > pos:
            last = segment_end
        if last - lead >= minimum and text.endswith(opening, lead, last):
            return text[lead + len(opening) : last - len(opening)], stop
        if nl < 0:
            return None
        pos = nl + 1


def _instructions(text: str) -> Iterator[tuple[str, str, str, int]]:
    """(instruction, sub-name, value, line) for each instruction, lower-cased names."""
    cur = _Cursor(text)
    while True:
        cur.skip(" \t\n\r")
        if cur.pos >= len(cur.text):
            return
        line = cur.line
        if cur.text[cur.pos] == "#":
            end = cur.text.find("\n", cur.pos)
            cur.pos = len(cur.text) if end < 0 else end
            continue
        word = cur.word(_WORD)
        name = word.lower()
        if name in _UNSUPPORTED:
            raise ModelfileError(f"instruction '{word}' is not supported by corral", line)
        if name not in _INSTRUCTIONS:
            expected = ", ".join(n.upper() for n in _INSTRUCTIONS)
            raise ModelfileError(f"unknown instruction '{word}'; expected one of {expected}", line)
        if not cur.at_value():
            raise ModelfileError(f"{word.upper()} needs a value", line)
        cur.skip(" \t")
        sub = ""
        if name in ("parameter", "message"):
            what = "a parameter name" if name == "parameter" else "a role"
            sub = cur.word(_NAME)
            if not sub or not cur.at_value():
                raise ModelfileError(f"{word.upper()} needs {what} and a value", line)
            cur.skip(" \t")
        found = _value_end(cur.text, cur.pos)
        if found is None:
            raise ModelfileError(f"{word.upper()} has an unterminated quoted value", line)
        value, end = found
        cur.line += cur.text.count("\n", cur.pos, end)
        cur.pos = end
        yield name, sub, value, line


def parse_modelfile(text: str) -> Modelfile:
    """Parse a Modelfile; raise :class:`ModelfileError` (a 400) naming the line at fault."""
    mf = Modelfile()
    for name, sub, value, line in _instructions(text):
        if name == "from":
            if not value:
                raise ModelfileError("FROM needs a model name or a path", line)
            mf.from_.append(value)
        elif name == "adapter":
            mf.adapters.append(value)
        elif name == "template":
            mf.template = value
        elif name == "system":
            mf.system = value
        elif name == "license":
            mf.licenses.append(value)
        elif name == "message":
            if sub.lower() not in _ROLES:
                raise ModelfileError(
                    f"MESSAGE role '{sub}' must be one of system, user, assistant", line
                )
            mf.messages.append({"role": sub.lower(), "content": value})
        elif name == "draft":  # DRAFT name: the same as PARAMETER draft name
            _add_parameter(mf, "draft", value, line)
        else:
            _add_parameter(mf, sub, value, line)
    if not mf.from_:
        raise ModelfileError("no FROM line")
    return mf


def _add_parameter(mf: Modelfile, name: str, value: str, line: int) -> None:
    if name in DEPRECATED_PARAMETERS:
        mf.warnings.append(f"line {line}: parameter {name} is deprecated and was ignored")
        return
    try:
        typed = parse_parameter(name, value)
    except InvalidOption as exc:
        raise ModelfileError(exc.message, line) from None
    if isinstance(typed, list):  # repeated list parameters accumulate, others: last wins
        mf.parameters.setdefault(name, []).extend(typed)
    else:
        mf.parameters[name] = typed


# -- writing ---------------------------------------------------------------------------------


def format_value(value: str, *, strict: bool = True) -> str:
    """``value`` as Modelfile text that parses back to exactly ``value``.

    Raises :class:`ModelfileError` for the rare value no quoting can carry (a line inside it
    ends with both quote styles' terminators); with ``strict=False`` it returns Ollama's best
    effort, triple quotes, instead.
    """
    quoted = [f'"{value}"', f'"""{value}"""']
    if "\n" in value:  # templates read best between triple quotes
        quoted.reverse()
    for candidate in [value, *quoted] if value else quoted:
        if _value_end(candidate + "\n", 0) == (value, len(candidate)):
            return candidate
    if not strict:
        return f'"""{value}"""'
    raise ModelfileError(f"this value cannot be written in a Modelfile: {value[:60]!r}")


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if not isinstance(value, float) else repr(value)


def render_modelfile(mf: Modelfile, header: list[str] | None = None, *, strict: bool = True) -> str:
    """Modelfile text for ``mf``; :func:`parse_modelfile` of it gives ``mf`` back.
    ``strict=False`` never raises (see :func:`format_value`)."""

    def q(value: str) -> str:
        return format_value(value, strict=strict)

    lines = [f"# {h}" if h else "#" for h in header or []]
    if lines:
        lines.append("")
    lines += [f"FROM {q(v)}" for v in mf.from_]
    lines += [f"ADAPTER {q(v)}" for v in mf.adapters]
    if mf.template is not None:
        lines.append(f"TEMPLATE {q(mf.template)}")
    if mf.system is not None:
        lines.append(f"SYSTEM {q(mf.system)}")
    for name, value in mf.parameters.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"PARAMETER {name} {q(_param_text(item))}")
    lines += [f"LICENSE {q(v)}" for v in mf.licenses]
    lines += [f"MESSAGE {m['role']} {q(m['content'])}" for m in mf.messages]
    return "\n".join(lines) + "\n"


def show_modelfile(store: Store, model: LocalModel) -> str:
    """``/api/show``'s ``modelfile``: FROM the blob paths, and only the model's own layers (a
    template the GGUF carries is not written), so ``create`` from it gives the same model."""
    layers = model.manifest.layers

    def paths(*media: str) -> list[str]:
        return [str(store.blobs.path(x.digest)) for x in layers if x.media_type in media]

    mf = Modelfile(
        from_=paths(MediaType.MODEL, MediaType.PROJECTOR),
        adapters=paths(MediaType.ADAPTER),
        template=model.template,
        system=model.system,
        licenses=[
            store.blobs.path(x.digest).read_text("utf-8")
            for x in layers
            if x.media_type == MediaType.LICENSE
        ],
        parameters=dict(model.params),
        messages=[
            {"role": str(m.get("role", "")), "content": str(m.get("content", ""))}
            for m in model.messages
        ],
    )
    header = [
        'Modelfile generated by "corral show"',
        "To build a new Modelfile based on this, replace FROM with:",
        f"FROM {model.name.display}",
    ]
    return render_modelfile(mf, header, strict=False)


# -- FROM ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FromSource:
    """What a FROM (or ADAPTER) names: a model in the store, or a local GGUF file."""

    kind: Literal["model", "file"]
    name: str = ""
    path: Path | None = None


def _expand(value: str, base_dir: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _looks_like_path(value: str) -> bool:
    return value.startswith((".", "/", "~")) or value.lower().endswith(".gguf")


def resolve_from(value: str, base_dir: Path) -> FromSource:
    """Resolve a FROM value the way the CLI must: a GGUF file, a directory holding exactly one
    GGUF, else a model name. Relative paths are taken from ``base_dir`` (the Modelfile's)."""
    path = _expand(value, base_dir)
    if path.is_file():
        return FromSource("file", path=path)
    if path.is_dir():
        ggufs = sorted(p for p in path.glob("*.gguf") if p.is_file())
        if len(ggufs) != 1:
            found = f"{len(ggufs)} GGUF files" if ggufs else "no GGUF file"
            raise ModelfileError(f"FROM {value}: the directory holds {found}; name one file")
        return FromSource("file", path=ggufs[0])
    if _looks_like_path(value):
        raise ModelfileError(f"FROM {value}: no such file or directory ({path})")
    try:
        return FromSource("model", name=parse_name(value).display)
    except InvalidModelName as exc:
        raise ModelfileError(f"FROM {value}: {exc.message}") from None
