import pytest

from corral.errors import InvalidModelName
from corral.names import parse_name


@pytest.mark.parametrize(
    ("text", "full", "display"),
    [
        ("smollm2", "registry.ollama.ai/library/smollm2:latest", "smollm2:latest"),
        ("smollm2:135m", "registry.ollama.ai/library/smollm2:135m", "smollm2:135m"),
        ("me/mine:v1", "registry.ollama.ai/me/mine:v1", "me/mine:v1"),
        ("127.0.0.1:5000/library/m:1", "127.0.0.1:5000/library/m:1", "127.0.0.1:5000/library/m:1"),
        ("localhost:5000/m", "localhost:5000/library/m:latest", "localhost:5000/library/m:latest"),
        ("hf.co/org/repo:Q4_K_M", "hf.co/org/repo:Q4_K_M", "hf.co/org/repo:Q4_K_M"),
        ("https://example.com/ns/m:t", "example.com/ns/m:t", "example.com/ns/m:t"),
    ],
)
def test_parse_fills_ollama_defaults(text: str, full: str, display: str) -> None:
    name = parse_name(text)
    assert name.full == full
    assert name.display == display


def test_names_compare_case_insensitively_by_key() -> None:
    assert parse_name("SmolLM2:135M").key == parse_name("smollm2:135m").key


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "required"),
        ("   ", "required"),
        ("a//b", "empty part"),
        ("/model", "empty part"),
        ("model:", "tag after ':' is empty"),
        ("a/b/c/d", "too many slashes"),
        ("../etc/passwd", "'..' is not allowed"),
        ("library/..:x", "'..' is not allowed"),
        ("-bad", "must start with a letter or digit"),
        ("m:-tag", "tag"),
        ("m\\x", "backslash"),
        ("m\x00", "control character"),
        ("a" * 600, "longer than 512"),
        ("host name/ns/m", "host"),
    ],
)
def test_invalid_names_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(InvalidModelName) as info:
        parse_name(text)
    assert why in info.value.message
    assert info.value.status_code == 400


def test_no_valid_name_has_a_path_traversal_part() -> None:
    for text in ["a.b/c.d/e.f:g.h", "x/y", "m:1.0"]:
        parts = parse_name(text).manifest_parts()
        assert all(p not in ("", ".", "..") and "/" not in p for p in parts)
