"""Fast, defensive reader for the header of a GGUF file: metadata and tensor table, no weights.

Why hand-written: ``gguf.GGUFReader`` (llama.cpp's own Python package) memory-maps the
file and turns every metadata array into numpy views, 1-2 numpy objects per token and
merge, before answering a single question. Listing models or serving ``/api/show`` needs
none of that: we want the scalars and the array lengths. This reader walks the header with
``struct`` over a buffered file, reads arrays of up to 64 elements and only counts longer
ones (skipping numeric arrays with one seek, string arrays by hopping over the lengths).
It also needs no numpy, validates every count against the file size before it allocates
anything, and raises ``GGUFError`` (never anything else) for bad input.

Measured with ``.venv/bin/python benchmarks/gguf_reader.py`` (Python 3.11, 2 shared cores;
median of 5 warm parses; memory of one parse in a fresh process: peak-RSS growth and
tracemalloc peak)::

    model                          read_gguf               gguf.GGUFReader           speed-up
    SmolLM2-135M Q4_1 (98 MB)      23 ms, +0 MiB / 0.2 MiB  3158 ms, +159 / 151 MiB     138x
    Gemma-3-270M Q4_K_M (253 MB)   30 ms, +0 MiB / 0.2 MiB  14506 ms, +688 / 651 MiB    492x

Timings on the busy box vary by up to 2x between runs (best seen: 11 ms and 27 ms); the
gap never drops below two orders of magnitude. Results: docs/benchmarks.md.

Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md (v2 and v3, which only
differ from v1 in 64-bit counts; little-endian only).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from corral.errors import GGUFError

__all__ = [
    "GGUFInfo",
    "SkippedArray",
    "format_parameter_size",
    "quantization_name",
    "read_gguf",
    "read_gguf_bytes",
    "token_fingerprint",
]

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)

# Arrays longer than this are counted, not read (tokens, merges, scores...).
MAX_INLINE_ARRAY = 64
# Sanity limits: far above any real model, low enough that bad input fails fast.
MAX_KV_COUNT = 1_000_000
MAX_TENSOR_COUNT = 1_000_000
MAX_ARRAY_COUNT = 1 << 24  # the largest vocabularies are ~262k tokens
MAX_STRING = 1 << 30
MAX_KEY = 1 << 16
MAX_DIMS = 8  # ggml uses 4
MAX_NESTING = 4

_CHUNK = 1 << 16

# GGUF value types -> (struct code, size); STRING=8 and ARRAY=9 are variable-length.
_T_STRING, _T_ARRAY = 8, 9
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("B", 1),
    1: ("b", 1),
    2: ("H", 2),
    3: ("h", 2),
    4: ("I", 4),
    5: ("i", 4),
    6: ("f", 4),
    7: ("?", 1),
    10: ("Q", 8),
    11: ("q", 8),
    12: ("d", 8),
}
_STRUCTS = {t: struct.Struct("<" + code) for t, (code, _) in _SCALARS.items()}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

# llama.cpp's LLAMA_FTYPE numbering (general.file_type); 4 is MXFP4 as Ollama names it.
_FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 4: "MXFP4", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
    10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
    16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
    22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
    28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 33: "Q4_0_4_4",
    34: "Q4_0_4_8", 35: "Q4_0_8_8", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4",
    40: "Q1_0",
}  # fmt: skip


@dataclass(frozen=True)
class SkippedArray:
    """A metadata array too long to be worth reading: only its element type and length."""

    element_type: int
    count: int


def quantization_name(file_type: int) -> str:
    """``general.file_type`` as Ollama shows it ("Q4_K_M"); "unknown" for unlisted numbers."""
    return _FILE_TYPES.get(file_type, "unknown")


def format_parameter_size(count: int) -> str:
    """Ollama's ``format.HumanNumber``: 134515008 -> "134.52M", 7241732096 -> "7.2B"."""
    for scale, suffix, decimals in ((10**9, "B", 1), (10**6, "M", 2)):
        if count >= scale:
            value = count / scale
            if value == math.floor(value):
                return f"{value:.0f}{suffix}"
            return f"{value:.{decimals}f}{suffix}"
    if count >= 1000:
        return f"{count / 1000:.0f}K"
    return str(count)


@dataclass(frozen=True)
class GGUFInfo:
    """What the header of a GGUF file says about the model."""

    path: Path
    version: int
    metadata: dict[str, Any]
    tensor_count: int
    parameter_count: int
    # Where each metadata value lies in the file (start, end): lets a skipped array, such
    # as the tokens, be read later without parsing the header again.
    spans: dict[str, tuple[int, int]] = field(default_factory=dict, compare=False, repr=False)

    def _int(self, key: str) -> int | None:
        value = self.metadata.get(key)
        if isinstance(value, list):  # per-layer values (e.g. OpenELM head counts)
            value = max((v for v in value if isinstance(v, int)), default=None)
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        return value

    def _arch_int(self, suffix: str) -> int | None:
        return self._int(f"{self.architecture}.{suffix}")

    @property
    def architecture(self) -> str:
        arch = self.metadata.get("general.architecture")
        return arch if isinstance(arch, str) else ""

    @property
    def file_type(self) -> int | None:
        return self._int("general.file_type")

    @property
    def quantization(self) -> str:
        file_type = self.file_type
        return "unknown" if file_type is None else quantization_name(file_type)

    @property
    def context_length(self) -> int | None:
        return self._arch_int("context_length")

    @property
    def embedding_length(self) -> int | None:
        return self._arch_int("embedding_length")

    @property
    def block_count(self) -> int | None:
        return self._arch_int("block_count")

    @property
    def head_count(self) -> int | None:
        return self._arch_int("attention.head_count")

    @property
    def head_count_kv(self) -> int | None:
        return self._arch_int("attention.head_count_kv")

    def _head_dim(self) -> int | None:
        embedding, heads = self.embedding_length, self.head_count
        return embedding // heads if embedding and heads else None

    @property
    def key_length(self) -> int | None:
        return self._arch_int("attention.key_length") or self._head_dim()

    @property
    def value_length(self) -> int | None:
        return self._arch_int("attention.value_length") or self._head_dim()

    @property
    def chat_template(self) -> str | None:
        template = self.metadata.get("tokenizer.chat_template")
        return template if isinstance(template, str) else None

    @property
    def parameter_size(self) -> str:
        return format_parameter_size(self.parameter_count)

    def model_info(self) -> dict[str, Any]:
        """Ollama's ``/api/show`` ``model_info``: long arrays are null, no chat template."""
        info: dict[str, Any] = {
            key: None if isinstance(value, SkippedArray) else value
            for key, value in self.metadata.items()
            if key != "tokenizer.chat_template"
        }
        info["general.parameter_count"] = self.parameter_count
        return info


class _Reader:
    """Little-endian cursor over a binary file with its own buffer.

    Our own buffer (instead of many small ``read``/``seek`` calls) lets string arrays be
    skipped with one ``unpack_from`` per element; every length is checked against the file
    size first, so a corrupt count can neither allocate nor read past the end.
    """

    def __init__(self, file: BinaryIO, size: int) -> None:
        self._file = file
        self._size = size
        self._buf = b""
        self._pos = 0  # position in _buf
        self._base = 0  # file offset of _buf[0]

    @property
    def offset(self) -> int:
        return self._base + self._pos

    def _need(self, n: int, what: str) -> None:
        """Make ``n`` bytes available at ``_pos``, or fail with a truncation error."""
        if self._pos + n <= len(self._buf):
            return
        if self.offset + n > self._size:
            raise GGUFError(f"truncated GGUF file: {what} at offset {self.offset} runs past EOF")
        rest = self._buf[self._pos :]
        self._base += self._pos
        self._file.seek(self._base + len(rest))
        self._buf = rest + self._file.read(max(n - len(rest), _CHUNK))
        self._pos = 0
        if len(self._buf) < n:  # the file shrank under us
            raise GGUFError(f"truncated GGUF file: {what} at offset {self.offset} runs past EOF")

    def unpack(self, st: struct.Struct, what: str) -> Any:
        self._need(st.size, what)
        (value,) = st.unpack_from(self._buf, self._pos)
        self._pos += st.size
        return value

    def u32(self, what: str) -> int:
        value: int = self.unpack(_U32, what)
        return value

    def u64(self, what: str) -> int:
        value: int = self.unpack(_U64, what)
        return value

    def take(self, n: int, what: str) -> bytes:
        self._need(n, what)
        data = self._buf[self._pos : self._pos + n]
        self._pos += n
        return data

    def skip(self, n: int, what: str) -> None:
        if self.offset + n > self._size:
            raise GGUFError(f"truncated GGUF file: {what} at offset {self.offset} runs past EOF")
        if self._pos + n <= len(self._buf):
            self._pos += n
        else:  # drop the buffer; the next _need reads from the new offset
            self._base, self._buf, self._pos = self.offset + n, b"", 0

    def skip_strings(self, count: int, what: str) -> None:
        """Hop over ``count`` length-prefixed strings without copying them."""
        # The hot loop of the whole reader (262k tokens for Gemma): locals, not attributes.
        unpack_from = _U64.unpack_from
        buf, pos, end = self._buf, self._pos, len(self._buf)
        for _ in range(count):
            if pos + 8 > end:
                self._pos = pos
                self._need(8, what)
                buf, pos, end = self._buf, self._pos, len(self._buf)
            (n,) = unpack_from(buf, pos)
            pos += 8 + n
            if pos > end:  # the string runs past the buffer: check it and seek over it
                if n > MAX_STRING:
                    raise GGUFError(f"GGUF string of {n} bytes in {what} is implausibly long")
                self._pos = pos - n
                self.skip(n, what)
                buf, pos, end = self._buf, self._pos, len(self._buf)
        self._pos = pos


def _string(r: _Reader, what: str, limit: int = MAX_STRING) -> str:
    n = r.u64(what)
    if n > limit:
        raise GGUFError(f"GGUF string of {n} bytes in {what} is implausibly long")
    # Values are decoded leniently: one odd byte in a license text should not hide a model.
    return r.take(n, what).decode("utf-8", errors="replace")


def _value(r: _Reader, vtype: int, what: str, depth: int = 0) -> Any:
    scalar = _STRUCTS.get(vtype)
    if scalar is not None:
        return r.unpack(scalar, what)
    if vtype == _T_STRING:
        return _string(r, what)
    if vtype == _T_ARRAY:
        return _array(r, what, depth)
    raise GGUFError(f"unknown GGUF value type {vtype} in {what}")


def _array(r: _Reader, what: str, depth: int) -> list[Any] | SkippedArray:
    if depth >= MAX_NESTING:
        raise GGUFError(f"GGUF arrays nested deeper than {MAX_NESTING} in {what}")
    etype = r.u32(what)
    count = r.u64(what)
    if count > MAX_ARRAY_COUNT:
        raise GGUFError(f"GGUF array of {count} elements in {what} is implausibly long")
    if etype not in _SCALARS and etype not in (_T_STRING, _T_ARRAY):
        raise GGUFError(f"unknown GGUF array element type {etype} in {what}")
    if count <= MAX_INLINE_ARRAY:
        if etype in _SCALARS:  # one unpack for the whole array
            code, size = _SCALARS[etype]
            return list(struct.unpack(f"<{count}{code}", r.take(count * size, what)))
        return [_value(r, etype, what, depth + 1) for _ in range(count)]
    if etype in _SCALARS:
        r.skip(count * _SCALARS[etype][1], what)
    elif etype == _T_STRING:
        r.skip_strings(count, what)
    else:
        for _ in range(count):
            _array(r, what, depth + 1)
    return SkippedArray(etype, count)


def _parse(r: _Reader, path: Path) -> GGUFInfo:
    magic = r.take(4, "magic")
    if magic != GGUF_MAGIC:
        raise GGUFError(f"not a GGUF file (magic {magic!r})")
    version = r.u32("version")
    if version not in SUPPORTED_VERSIONS:
        swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
        if swapped in SUPPORTED_VERSIONS:  # bytes 00 00 00 03: written big-endian
            raise GGUFError("big-endian GGUF files are not supported")
        raise GGUFError(f"unsupported GGUF version {version} (only 2 and 3 are supported)")
    tensor_count = r.u64("tensor count")
    kv_count = r.u64("metadata count")
    if tensor_count > MAX_TENSOR_COUNT or kv_count > MAX_KV_COUNT:
        raise GGUFError(f"implausible GGUF counts: {tensor_count} tensors, {kv_count} keys")

    metadata: dict[str, Any] = {}
    spans: dict[str, tuple[int, int]] = {}
    for i in range(kv_count):
        raw_key = r.take(_check_len(r.u64(f"key #{i}"), MAX_KEY, f"key #{i}"), f"key #{i}")
        try:
            key = raw_key.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GGUFError(f"GGUF metadata key #{i} is not valid UTF-8") from exc
        if key in metadata:
            raise GGUFError(f"duplicate GGUF metadata key {key!r}")
        vtype = r.u32(key)
        start = r.offset
        metadata[key] = _value(r, vtype, key)
        spans[key] = (start, r.offset)

    counted = 0
    for i in range(tensor_count):
        what = f"tensor info #{i}"
        r.skip(_check_len(r.u64(what), MAX_KEY, what), what)  # the name
        n_dims = r.u32(what)
        if n_dims > MAX_DIMS:
            raise GGUFError(f"GGUF {what} has {n_dims} dimensions")
        counted += math.prod(r.u64(what) for _ in range(n_dims))
        r.skip(12, what)  # ggml type (u32) and data offset (u64)

    declared = metadata.get("general.parameter_count")
    if isinstance(declared, int) and not isinstance(declared, bool) and declared > 0:
        counted = declared
    return GGUFInfo(path, version, metadata, tensor_count, parameter_count=counted, spans=spans)


def _check_len(n: int, limit: int, what: str) -> int:
    if n > limit:
        raise GGUFError(f"GGUF {what} is {n} bytes long, more than {limit}")
    return n


def read_gguf(path: str | Path) -> GGUFInfo:
    """Parse the header of the GGUF file at ``path``; raise ``GGUFError`` if it is not valid."""
    path = Path(path)
    try:
        with path.open("rb", buffering=0) as file:
            return _parse(_Reader(file, os.fstat(file.fileno()).st_size), path)
    except GGUFError as exc:
        raise GGUFError(f"{path}: {exc.message}") from exc.__cause__
    except FileNotFoundError as exc:
        raise GGUFError(f"GGUF file {path} does not exist") from exc
    except (OSError, struct.error, ValueError, OverflowError, MemoryError) as exc:
        # UnicodeDecodeError is a ValueError; none of these should escape for bad input.
        raise GGUFError(f"cannot read GGUF file {path}: {exc}") from exc


def read_gguf_bytes(data: bytes, name: str = "<bytes>") -> GGUFInfo:
    """Parse a header held in memory, e.g. the first bytes of a blob fetched with a ranged
    request; a header longer than ``data`` raises ``GGUFError`` like a truncated file."""
    try:
        return _parse(_Reader(io.BytesIO(data), len(data)), Path(name))
    except GGUFError:
        raise
    except (struct.error, ValueError, OverflowError, MemoryError) as exc:
        raise GGUFError(f"cannot read GGUF header of {name}: {exc}") from exc


FINGERPRINT_TOKENS = 65536
"""The most tokens a vocabulary fingerprint covers (plenty to tell tokenizers apart). Two
models are compared over the tokens both have: models of one family often differ only in
padding tokens at the end (Qwen2.5-0.5B has 151936 tokens, Qwen2.5-7B 152064)."""


def token_fingerprint(info: GGUFInfo, limit: int = FINGERPRINT_TOKENS) -> str | None:
    """A SHA-256 over the tokenizer's name and the text of the first ``limit`` tokens,
    read from the file (the header reader skips the token array); None without a tokenizer.
    Two models with the same fingerprint tokenize text the same way, as far as a draft model
    for speculative decoding needs (about 20 ms for Gemma's 262k tokens)."""
    span = info.spans.get("tokenizer.ggml.tokens")
    if span is None:
        return None
    start, end = span
    try:
        with info.path.open("rb") as file:
            file.seek(start)
            data = file.read(end - start)
    except OSError as exc:
        raise GGUFError(f"cannot read the tokens of {info.path}: {exc}") from exc
    if len(data) < 12:
        raise GGUFError(f"{info.path}: truncated token array")
    etype, count = struct.unpack_from("<IQ", data)
    if etype != _T_STRING:
        raise GGUFError(f"{info.path}: tokenizer.ggml.tokens is not an array of strings")
    pos = 12
    for _ in range(min(count, limit)):
        if pos + 8 > len(data):
            raise GGUFError(f"{info.path}: truncated token array")
        (n,) = _U64.unpack_from(data, pos)
        pos += 8 + n
    if pos > len(data):
        raise GGUFError(f"{info.path}: truncated token array")
    digest = hashlib.sha256(str(info.metadata.get("tokenizer.ggml.model", "")).encode())
    digest.update(b"\0")
    digest.update(data[12:pos])
    return digest.hexdigest()
