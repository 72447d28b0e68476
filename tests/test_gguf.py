"""corral.gguf: real models, agreement with llama.cpp's gguf package, and hostile input."""

from __future__ import annotations

import contextlib
import math
import random
import struct
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

from corral.errors import GGUFError
from corral.gguf import (
    GGUFInfo,
    SkippedArray,
    format_parameter_size,
    quantization_name,
    read_gguf,
)

# --- hand-built GGUF files ----------------------------------------------------------------

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_CODES = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?"}
_CODES |= {U64: "Q", I64: "q", F64: "d"}


def _str(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(raw)) + raw


def _val(vtype: int, value: Any) -> bytes:
    if vtype == STRING:
        return _str(value)
    if vtype == ARRAY:
        etype, items = value
        return struct.pack("<IQ", etype, len(items)) + b"".join(_val(etype, v) for v in items)
    return struct.pack("<" + _CODES[vtype], value)


def _gguf(
    kvs: list[tuple[str, int, Any]],
    tensors: Sequence[tuple[str, list[int]]] = (),
    version: int = 3,
) -> bytes:
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, vtype, value in kvs:
        out += _str(key) + struct.pack("<I", vtype) + _val(vtype, value)
    for i, (name, dims) in enumerate(tensors):
        out += _str(name) + struct.pack(f"<I{len(dims)}Q", len(dims), *dims)
        out += struct.pack("<IQ", 0, i * 64)  # ggml type F32, data offset
    return out


SAMPLE_KVS: list[tuple[str, int, Any]] = [
    ("general.architecture", STRING, "llama"),
    ("general.name", STRING, "tiny ünïcode"),
    ("general.file_type", U32, 15),
    ("llama.context_length", U32, 4096),
    ("llama.embedding_length", U32, 256),
    ("llama.block_count", U32, 2),
    ("llama.attention.head_count", ARRAY, (I32, [4, 8])),
    ("llama.attention.head_count_kv", U8, 2),
    ("llama.rope.freq_base", F32, 10000.0),
    ("llama.eps", F64, 1e-6),
    ("llama.signed", I64, -5),
    ("llama.small", I8, -1),
    ("llama.u16", U16, 65535),
    ("llama.i16", I16, -300),
    ("llama.u64", U64, 2**63),
    ("tokenizer.ggml.add_bos_token", BOOL, True),
    ("tokenizer.ggml.tokens", ARRAY, (STRING, [f"tok{i}" for i in range(100)])),
    ("tokenizer.ggml.scores", ARRAY, (F32, [0.5] * 65)),
    ("tokenizer.ggml.few", ARRAY, (STRING, ["a", "bc"])),
    ("nested", ARRAY, (ARRAY, [(U8, [1, 2]), (U8, [])])),
    ("nested.big", ARRAY, (ARRAY, [(U16, [7] * 3)] * 70)),
    ("tokenizer.chat_template", STRING, "{{ messages }}"),
]
SAMPLE_TENSORS = [("token_embd.weight", [256, 100]), ("output_norm.weight", [256])]


@pytest.fixture
def write(tmp_path: Path) -> Iterator[Any]:
    def _write(data: bytes, name: str = "model.gguf") -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    yield _write


# --- the two real models --------------------------------------------------------------------


def test_smollm2_header(smollm2_path: Path) -> None:
    info = read_gguf(smollm2_path)
    assert info.path == smollm2_path
    assert info.version == 3
    assert info.architecture == "llama"
    assert info.file_type == 3
    assert info.quantization == "Q4_1"
    assert info.context_length == 8192
    assert info.embedding_length == 576
    assert info.block_count == 30
    assert (info.head_count, info.head_count_kv) == (9, 3)
    assert (info.key_length, info.value_length) == (64, 64)  # 576 // 9: no explicit key
    assert info.chat_template is not None and "<|im_start|>" in info.chat_template
    assert info.tensor_count == 272
    assert info.parameter_count == 134_515_008  # summed from the tensor table
    assert info.parameter_size == "134.52M"
    assert info.metadata["general.languages"] == ["en"]
    assert info.metadata["tokenizer.ggml.tokens"] == SkippedArray(STRING, 49152)
    assert info.metadata["tokenizer.ggml.token_type"] == SkippedArray(I32, 49152)
    assert info.metadata["tokenizer.ggml.merges"] == SkippedArray(STRING, 48900)


def test_gemma_header(gemma_path: Path) -> None:
    info = read_gguf(gemma_path)
    assert info.architecture == "gemma3"
    assert info.file_type == 15
    assert info.quantization == "Q4_K_M"
    assert info.context_length == 32768
    assert info.embedding_length == 640
    assert info.block_count == 18
    assert (info.head_count, info.head_count_kv) == (4, 1)
    assert (info.key_length, info.value_length) == (256, 256)  # explicit, not 640 // 4
    assert info.chat_template is None  # this GGUF ships without one
    assert info.tensor_count == 236
    assert info.parameter_count == 268_098_176
    assert info.parameter_size == "268.10M"
    assert info.metadata["tokenizer.ggml.tokens"] == SkippedArray(STRING, 262144)
    assert info.metadata["tokenizer.ggml.scores"] == SkippedArray(F32, 262144)


@pytest.mark.parametrize("model", ["smollm2_path", "gemma_path"])
def test_agrees_with_gguf_reader(model: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue(model)
    ours = read_gguf(path)
    ref = gguf.GGUFReader(path)  # slow (seconds): it decodes every array
    fields = {k: f for k, f in ref.fields.items() if not k.startswith("GGUF.")}
    assert list(ours.metadata) == list(fields)
    assert ours.tensor_count == len(ref.tensors)
    assert ours.parameter_count == sum(math.prod(int(d) for d in t.shape) for t in ref.tensors)
    for key, field in fields.items():
        value = ours.metadata[key]
        if field.types[0] != gguf.GGUFValueType.ARRAY:
            assert value == field.contents(), key
            assert type(value) is type(field.contents()), key
        elif len(field.data) > 64:
            assert value == SkippedArray(int(field.types[1]), len(field.data)), key
        else:
            assert value == field.contents(), key


def test_model_info(smollm2_path: Path) -> None:
    info = read_gguf(smollm2_path)
    model_info = info.model_info()
    assert "tokenizer.chat_template" not in model_info
    assert model_info["tokenizer.ggml.tokens"] is None
    assert model_info["tokenizer.ggml.merges"] is None
    assert model_info["general.parameter_count"] == 134_515_008
    assert model_info["general.architecture"] == "llama"
    assert model_info["llama.context_length"] == 8192
    assert model_info["general.languages"] == ["en"]
    assert set(model_info) == (set(info.metadata) - {"tokenizer.chat_template"}) | {
        "general.parameter_count"
    }


# --- synthetic files: the happy path ---------------------------------------------------------


def test_synthetic_values(write: Any) -> None:
    info = read_gguf(write(_gguf(SAMPLE_KVS, SAMPLE_TENSORS)))
    m = info.metadata
    assert m["general.name"] == "tiny ünïcode"
    assert m["llama.rope.freq_base"] == 10000.0
    assert m["llama.eps"] == 1e-6
    assert (m["llama.signed"], m["llama.small"], m["llama.i16"]) == (-5, -1, -300)
    assert (m["llama.u16"], m["llama.u64"]) == (65535, 2**63)
    assert m["tokenizer.ggml.add_bos_token"] is True
    assert m["tokenizer.ggml.tokens"] == SkippedArray(STRING, 100)
    assert m["tokenizer.ggml.scores"] == SkippedArray(F32, 65)
    assert m["tokenizer.ggml.few"] == ["a", "bc"]
    assert m["nested"] == [[1, 2], []]
    assert m["nested.big"] == SkippedArray(ARRAY, 70)
    assert info.head_count == 8  # per-layer array: the largest
    assert info.head_count_kv == 2
    assert (info.key_length, info.value_length) == (32, 32)  # 256 // 8
    assert info.quantization == "Q4_K_M"
    assert info.chat_template == "{{ messages }}"
    assert info.tensor_count == 2
    assert info.parameter_count == 256 * 100 + 256
    assert info.parameter_size == "26K"


def test_declared_parameter_count_wins(write: Any) -> None:
    kvs = [("general.parameter_count", U64, 7_241_732_096)]
    info = read_gguf(write(_gguf(kvs, SAMPLE_TENSORS)))
    assert info.parameter_count == 7_241_732_096
    assert info.parameter_size == "7.2B"


def test_empty_and_v2(write: Any) -> None:
    info = read_gguf(write(_gguf([], version=2)))
    assert (info.version, info.tensor_count, info.parameter_count) == (2, 0, 0)
    assert info.architecture == ""
    assert info.quantization == "unknown"
    for prop in ("file_type", "context_length", "embedding_length", "block_count"):
        assert getattr(info, prop) is None
    assert (info.head_count, info.key_length, info.chat_template) == (None, None, None)


def test_reads_gguf_writer_output(tmp_path: Path) -> None:
    path = tmp_path / "writer.gguf"
    writer = gguf.GGUFWriter(path, "qwen2")
    writer.add_context_length(2048)
    writer.add_embedding_length(64)
    writer.add_head_count(4)
    writer.add_key_length(24)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_token_list([f"t{i}" for i in range(500)])
    writer.add_array("custom.small", [1.5, 2.5])
    writer.add_tensor("a", np.zeros((3, 5), dtype=np.float32))
    writer.add_tensor("b", np.zeros(7, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    info = read_gguf(path)
    assert info.architecture == "qwen2"
    assert info.quantization == "Q8_0"
    assert (info.context_length, info.key_length, info.value_length) == (2048, 24, 16)
    assert info.metadata["tokenizer.ggml.tokens"] == SkippedArray(STRING, 500)
    assert info.metadata["custom.small"] == [1.5, 2.5]
    assert (info.tensor_count, info.parameter_count) == (2, 22)


# --- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0"),
        (999, "999"),
        (1500, "2K"),
        (1_000_000, "1M"),
        (134_515_008, "134.52M"),
        (268_098_176, "268.10M"),
        (7_000_000_000, "7B"),
        (7_241_732_096, "7.2B"),  # Ollama's HumanNumber: one decimal for billions
        (8_030_261_248, "8.0B"),
    ],
)
def test_format_parameter_size(count: int, text: str) -> None:
    assert format_parameter_size(count) == text


def test_quantization_names_follow_llama_cpp() -> None:
    for ftype in gguf.LlamaFileType:
        if ftype.name == "GUESSED":
            continue
        expected = "F32" if ftype.name == "ALL_F32" else ftype.name.removeprefix("MOSTLY_")
        assert quantization_name(ftype.value) == expected
    assert quantization_name(4) == "MXFP4"  # Ollama's name for the retired Q4_1_SOME_F16 slot
    assert quantization_name(999) == "unknown"


# --- hostile input ---------------------------------------------------------------------------


def assert_rejects(path: Path, match: str | None = None) -> GGUFError:
    with pytest.raises(GGUFError, match=match) as exc:
        read_gguf(path)
    return exc.value


def test_truncated_at_every_offset(write: Any) -> None:
    data = _gguf(SAMPLE_KVS, SAMPLE_TENSORS)
    assert isinstance(read_gguf(write(data)), GGUFInfo)
    for cut in range(len(data)):
        assert_rejects(write(data[:cut]))


def test_bad_magic(write: Any) -> None:
    assert_rejects(write(b"GGML" + _gguf([])[4:]), "not a GGUF")
    assert_rejects(write(b""), "truncated")


@pytest.mark.parametrize("version", [0, 1, 4, 0xFFFF])
def test_unsupported_version(write: Any, version: int) -> None:
    assert_rejects(write(_gguf([], version=version)), "version")


def test_big_endian(write: Any, tmp_path: Path) -> None:
    assert_rejects(write(b"GGUF" + struct.pack(">IQQ", 3, 0, 0)), "big-endian")
    path = tmp_path / "be.gguf"
    writer = gguf.GGUFWriter(path, "llama", endianess=gguf.GGUFEndian.BIG)
    writer.add_context_length(16)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert_rejects(path, "big-endian")


@pytest.mark.parametrize(("tensors", "kvs"), [(0, 10**6 + 1), (10**6 + 1, 0), (0, 2**64 - 1)])
def test_absurd_counts(write: Any, tensors: int, kvs: int) -> None:
    assert_rejects(write(b"GGUF" + struct.pack("<IQQ", 3, tensors, kvs) + bytes(64)), "implausible")


def test_counts_larger_than_the_file(write: Any) -> None:
    assert_rejects(write(b"GGUF" + struct.pack("<IQQ", 3, 0, 1000)), "truncated")


def _kv_raw(body: bytes) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + _str("k") + body


@pytest.mark.parametrize("length", [2**40, 2**64 - 1, (1 << 30) + 1])
def test_huge_string_length(write: Any, length: int) -> None:
    assert_rejects(write(_kv_raw(struct.pack("<IQ", STRING, length) + b"abc")), "implausibly long")


def test_string_longer_than_file(write: Any) -> None:
    assert_rejects(write(_kv_raw(struct.pack("<IQ", STRING, 10**6) + b"abc")), "truncated")


def test_huge_key_length(write: Any) -> None:
    assert_rejects(write(b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 2**62) + b"k"), "key")


@pytest.mark.parametrize("etype", [STRING, U8, ARRAY])
def test_huge_array_count(write: Any, etype: int) -> None:
    assert_rejects(write(_kv_raw(struct.pack("<IIQ", ARRAY, etype, 2**40))), "implausibly long")


def test_skipped_array_past_eof(write: Any) -> None:
    assert_rejects(write(_kv_raw(struct.pack("<IIQ", ARRAY, U64, 1000) + bytes(80))), "truncated")
    strings = struct.pack("<IIQ", ARRAY, STRING, 1000) + _str("a") * 999
    assert_rejects(write(_kv_raw(strings)), "truncated")


@pytest.mark.parametrize("vtype", [13, 255, 2**32 - 1])
def test_unknown_value_type(write: Any, vtype: int) -> None:
    assert_rejects(write(_kv_raw(struct.pack("<I", vtype) + bytes(16))), "unknown GGUF value type")
    array = struct.pack("<IIQ", ARRAY, vtype, 1) + bytes(16)
    assert_rejects(write(_kv_raw(array)), "unknown GGUF array element type")


def test_deeply_nested_arrays(write: Any) -> None:
    body = struct.pack("<I", ARRAY) + struct.pack("<IQ", ARRAY, 1) * 10 + struct.pack("<IQ", U8, 0)
    assert_rejects(write(_kv_raw(body)), "nested")


def test_duplicate_key(write: Any) -> None:
    assert_rejects(write(_gguf([("a", U8, 1), ("a", U8, 2)])), "duplicate")


def test_key_not_utf8(write: Any) -> None:
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + _str(b"\xff\xfe") + _val(U8, 1)
    assert_rejects(write(data), "UTF-8")


def test_value_not_utf8_is_replaced(write: Any) -> None:
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + _str("k") + struct.pack("<I", STRING)
    info = read_gguf(write(data + _str(b"ok\xff")))
    assert info.metadata["k"] == "ok\ufffd"


def test_too_many_dims(write: Any) -> None:
    data = _gguf([], [("t", [1] * 9)])
    assert_rejects(write(data), "dimensions")


def test_not_a_file(tmp_path: Path) -> None:
    assert_rejects(tmp_path / "missing.gguf", "does not exist")
    assert_rejects(tmp_path)  # a directory


_SMALL = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 64, 65, 97, 255]


def test_random_bytes_never_escape(write: Any) -> None:
    """Random headers and corrupted copies of a real one: GGUFError or a result, quickly."""
    rng = random.Random(20240601)
    valid = _gguf(SAMPLE_KVS, SAMPLE_TENSORS)
    start = time.monotonic()
    for i in range(300):
        if i % 2:  # small numbers of random widths, so lengths and types are often plausible
            counts = struct.pack("<IQQ", rng.choice([2, 3]), rng.randrange(4), rng.randrange(8))
            words = (struct.pack(rng.choice("BIQ"), rng.choice(_SMALL)) for _ in range(60))
            data = b"GGUF" + counts + b"".join(words)
        else:
            mutated = bytearray(valid)
            for _ in range(rng.randrange(1, 6)):
                mutated[rng.randrange(4, len(mutated))] = rng.randrange(256)
            data = bytes(mutated)
        with contextlib.suppress(GGUFError):
            read_gguf(write(data))
    assert time.monotonic() - start < 30
