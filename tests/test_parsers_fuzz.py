"""Property tests: parsers fed random or structured input raise only their typed errors.

Complements tests/test_modelfile.py (Modelfile and name parsers on random text) and
tests/templates/test_fuzz.py (template token soup): here the GGUF reader on random and mutated
bytes, names built from the grammar, nested Go and Jinja templates, and the security inputs
(API key configuration, request bodies for the limit checks, Host headers).
"""

from __future__ import annotations

import contextlib
import random
import struct
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.api.limits import Limits, check_body
from corral.api.security import is_loopback_name
from corral.auth import KeyConfigError, load_keys
from corral.errors import GGUFError, InvalidModelName, LimitExceeded
from corral.gguf import read_gguf
from corral.names import DEFAULT_HOST, parse_name
from corral.templates import TemplateError, validate_template

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
GGUF_MAGIC = b"GGUF"


# -- GGUF -------------------------------------------------------------------------------------


def _read_bytes(tmp_path: Path, data: bytes) -> str:
    """What reading ``data`` gave: a typed error's message, or "header" for a header that
    makes sense; any other exception propagates and fails the test."""
    path = tmp_path / "fuzz.gguf"
    path.write_bytes(data)
    try:
        info = read_gguf(path)
    except GGUFError as exc:
        return exc.message
    sensible = info.version in (2, 3) and info.tensor_count >= 0 and info.parameter_count >= 0
    return "header" if sensible else f"a header that makes no sense: {info!r}"


def _well_read(outcome: str) -> bool:
    return outcome == "header" or (bool(outcome) and not outcome.startswith("a header that"))


@FUZZ
@given(data=st.binary(max_size=512))
def test_gguf_random_bytes(tmp_path: Path, data: bytes) -> None:
    assert _well_read(_read_bytes(tmp_path, data))


_HEADER = st.tuples(
    st.sampled_from([1, 2, 3, 4, 2**32 - 1]),
    st.one_of(st.integers(0, 4), st.integers(0, 2**64 - 1)),
    st.one_of(st.integers(0, 4), st.integers(0, 2**64 - 1)),
)


@FUZZ
@given(header=_HEADER, rest=st.binary(max_size=512))
def test_gguf_valid_magic_random_body(
    tmp_path: Path, header: tuple[int, int, int], rest: bytes
) -> None:
    """Past the magic, with any counts (absurd ones included) and any metadata bytes."""
    version, tensors, kvs = header
    body = GGUF_MAGIC + struct.pack("<IQQ", version, tensors, kvs) + rest
    assert _well_read(_read_bytes(tmp_path, body))


@settings(max_examples=60, deadline=None, database=None)
@given(seed=st.integers(0, 2**32 - 1), flips=st.integers(1, 16))
def test_gguf_mutated_real_header(
    smollm2_path: Path, tmp_path_factory: Any, seed: int, flips: int
) -> None:
    """The first 64 KiB of a real model with random bytes changed: still only GGUFError."""
    with smollm2_path.open("rb") as f:
        data = bytearray(f.read(64 * 1024))
    rng = random.Random(seed)
    for _ in range(flips):
        data[rng.randrange(4, 4096)] = rng.randrange(256)  # the counts and the first keys
    assert _well_read(_read_bytes(tmp_path_factory.mktemp("gguf"), bytes(data)))


# -- names ------------------------------------------------------------------------------------

_PART = st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,20}\Z")
# a first part with a dot or a colon is a host, as in Ollama: namespaces have neither
_NAMESPACE = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,20}\Z")
_HOSTNAME = st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,10}(\.[a-z0-9-]{1,10}){1,2}(:[0-9]{2,5})?\Z")


@FUZZ
@given(
    host=st.one_of(st.none(), _HOSTNAME),
    namespace=st.one_of(st.none(), _NAMESPACE),
    model=_PART,
    tag=st.one_of(st.none(), _PART),
)
def test_names_from_the_grammar_parse_and_round_trip(
    host: str | None, namespace: str | None, model: str, tag: str | None
) -> None:
    text = "/".join(p for p in (host if namespace else None, namespace, model) if p)
    text += f":{tag}" if tag else ""
    try:
        name = parse_name(text)
    except InvalidModelName as exc:
        # only names the grammar above over-approximates: dots-only parts and the like
        assert ".." in text or "/." in text or text.startswith("."), exc.message
        return
    assert name.model == model and (tag is None or name.tag == tag)
    assert parse_name(name.display) == name == parse_name(name.full)
    if host is None or namespace is None:
        assert name.host == DEFAULT_HOST
    else:
        assert name.host == host and name.namespace == namespace


@FUZZ
@given(st.text(alphabet=st.sampled_from("ab./\\:_-@ \x00%~"), max_size=40))
def test_names_never_yield_unsafe_path_parts(text: str) -> None:
    try:
        name = parse_name(text)
    except InvalidModelName:
        return
    for part in name.manifest_parts():
        assert part not in ("", ".", "..") and "/" not in part and "\\" not in part
        assert "\x00" not in part and not part.startswith(".")


# -- templates --------------------------------------------------------------------------------

_GO_ATOM = st.sampled_from(
    [".System", ".Prompt", ".Response", "$.Tools", "$x", '"s"', "1", "(len .Messages)", ".Role"]
)
_GO_PIPE = st.one_of(
    _GO_ATOM,
    st.builds(
        lambda f, a, b: f"{f} {a} {b}",
        st.sampled_from(["eq", "ne", "and", "or"]),
        _GO_ATOM,
        _GO_ATOM,
    ),
)


def _go_block(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda p, b: f"{{{{ if {p} }}}}{b}{{{{ end }}}}", _GO_PIPE, inner),
        st.builds(lambda p, b: f"{{{{ range $i, $m := {p} }}}}{b}{{{{ end }}}}", _GO_PIPE, inner),
        st.builds(
            lambda p, b: f"{{{{- with {p} -}}}}{b}{{{{ else }}}}x{{{{ end }}}}", _GO_PIPE, inner
        ),
        st.lists(inner, max_size=3).map("".join),
    )


_GO = st.recursive(
    st.one_of(st.text(max_size=5), _GO_PIPE.map(lambda p: f"{{{{ {p} }}}}")),
    _go_block,
    max_leaves=8,
)
_JINJA = st.recursive(
    st.one_of(
        st.text(max_size=5), st.sampled_from(["{{ m.content }}", "{{ bos_token }}", "{{ x|trim }}"])
    ),
    lambda inner: st.one_of(
        st.builds(lambda b: "{% for m in messages %}" + b + "{% endfor %}", inner),
        st.builds(lambda b: "{% if m.role == 'user' %}" + b + "{% else %}-{% endif %}", inner),
        st.builds(lambda a, b: a + b, inner, inner),
        st.builds(lambda b: b[: len(b) // 2], inner),  # cut anywhere: unbalanced blocks
    ),
    max_leaves=8,
)


@FUZZ
@given(st.one_of(_GO, _JINJA))
def test_nested_templates_raise_only_template_errors(text: str) -> None:
    try:
        template = validate_template(text)
    except TemplateError as exc:
        assert exc.message
        return
    assert template.syntax in ("go", "jinja")


# -- security inputs --------------------------------------------------------------------------

_JSON = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "options",
                    "num_ctx",
                    "num_predict",
                    "messages",
                    "images",
                    "content",
                    "image_url",
                    "url",
                    "max_tokens",
                    "parameters",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=20,
)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["options", "messages", "images", "max_tokens", "parameters"]), _JSON
    )
)
def test_limit_checks_raise_only_limit_exceeded(body: dict[str, Any]) -> None:
    try:
        check_body(body, Limits(1024, 16, 16, 2, 8))
    except LimitExceeded as exc:
        assert exc.status_code == 400 and exc.limit in exc.message


@FUZZ
@given(st.text(max_size=60))
def test_key_configuration_raises_only_key_config_error(text: str) -> None:
    if text.strip().startswith(("/", "~", ".")):
        text = "./" + text.strip().lstrip("/~.")  # stay inside the working directory
    with contextlib.suppress(KeyConfigError):
        ring = load_keys(text)
        assert ring or not text.strip()


@FUZZ
@given(st.text(max_size=40))
def test_host_names_are_classified_without_errors(text: str) -> None:
    assert isinstance(is_loopback_name(text), bool)
