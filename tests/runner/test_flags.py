from __future__ import annotations

from pathlib import Path

from corral.runner.flags import CACHE_REUSE_CHUNK, server_args
from corral.runner.protocol import LoadSpec


def _value(args: list[str], flag: str) -> str:
    assert args.count(flag) == 1, f"{flag} given {args.count(flag)} times in {args}"
    return args[args.index(flag) + 1]


def test_minimal_spec() -> None:
    args = server_args(LoadSpec(Path("/models/m.gguf"), num_ctx=4096), 12345)
    assert _value(args, "--host") == "127.0.0.1"
    assert _value(args, "--port") == "12345"
    assert _value(args, "-m") == "/models/m.gguf"
    assert _value(args, "-c") == "4096"
    assert _value(args, "-np") == "1"
    assert _value(args, "--cache-reuse") == str(CACHE_REUSE_CHUNK)
    for flag in ("--jinja", "--no-webui", "--metrics"):
        assert flag in args
    for flag in ("-t", "-b", "-ngl", "-mg", "--mmproj", "--load-mode", "--no-mmap"):
        assert flag not in args


def test_context_is_per_slot() -> None:
    args = server_args(LoadSpec(Path("m.gguf"), num_ctx=2048, num_parallel=4), 1)
    assert _value(args, "-c") == "8192"
    assert _value(args, "-np") == "4"


def test_all_options() -> None:
    spec = LoadSpec(
        Path("m.gguf"),
        num_ctx=1024,
        num_batch=256,
        num_gpu=0,
        main_gpu=1,
        num_thread=3,
        use_mmap=False,
        projector_path=Path("/p/mmproj.gguf"),
    )
    args = server_args(spec, 1)
    assert _value(args, "-t") == "3"
    assert _value(args, "-b") == "256"
    assert _value(args, "-ngl") == "0"  # 0 is a choice (CPU only), not "unset"
    assert _value(args, "-mg") == "1"
    # this llama-server has no --no-mmap any more: --load-mode none loads without mmap
    assert _value(args, "--load-mode") == "none"
    assert "--no-mmap" not in args
    assert _value(args, "--mmproj") == "/p/mmproj.gguf"


def test_args_are_strings() -> None:
    args = server_args(LoadSpec(Path("m.gguf"), num_ctx=512, num_gpu=99, num_thread=2), 8080)
    assert all(isinstance(a, str) for a in args)
