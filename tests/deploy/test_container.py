"""The container tier: build deploy/Containerfile with podman on a base made by debootstrap (no
image can be pulled here), run it with a volume and a provisioning file that pulls from a real
docker-registry on the host's loopback, and check health, chat, a graceful ``podman stop``, and
that a new container on the same volume finds the models without downloading them again.

Part of ``make test`` (which installs podman, runc and debootstrap with apt when missing). The
image compiles llama.cpp, so the test image has one portable CPU backend
(``--build-arg CPU_VARIANTS=generic``, a few minutes on 2 cores) instead of the shipped image's
every CPU variant (``CPU_VARIANTS=all``, about 20 minutes); ``CORRAL_TEST_CPU_VARIANTS=all``
tests the shipped build. Skipped, with the reason, only where containers cannot run here: no
podman, ``podman info`` failing, no base image and no way to make one (debootstrap, root), or
``podman run --rm localhost/bookworm-py true`` failing. Timings are printed (``-s``, as in
``make test-container``), never asserted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.live import free_port
from tests.registry.servers import Registry

pytestmark = pytest.mark.container

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/bookworm-py"
IMAGE = os.environ.get("CORRAL_TEST_IMAGE", "localhost/corral:test")
# generic: one portable CPU backend (quick to compile); all: the shipped image's CPU variants
CPU_VARIANTS = os.environ.get("CORRAL_TEST_CPU_VARIANTS", "generic")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# podman 4.3 here: runc, and ulimits a rootful container can actually get (DESIGN.md section 4)
CONTAINERS_CONF = """\
[engine]
runtime = "runc"
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
"""


@dataclass
class Podman:
    env: dict[str, str]
    logs: Path

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check:
            assert result.returncode == 0, f"podman {' '.join(args)}: {result.stderr[-3000:]}"
        return result

    def healthy(self, name: str) -> bool:
        """``podman healthcheck run``: 0 healthy; stderr's systemd complaints are ignored."""
        return self("healthcheck", "run", name, check=False).returncode == 0


def _tail(result: subprocess.CompletedProcess[str]) -> str:
    """The last meaningful line of a command's output, for a skip reason."""
    lines = [
        line
        for line in (result.stderr + result.stdout).splitlines()
        if line.strip() and "unable to get systemd connection" not in line
    ]
    return lines[-1][-300:] if lines else f"exit code {result.returncode}"


@pytest.fixture(scope="session")  # set up before the registry: a skip starts nothing
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    """podman that can run a container here, or a skip that says why it cannot."""
    if not shutil.which("podman"):
        pytest.skip("container tier: podman is not installed (make test installs it with apt)")
    work = tmp_path_factory.mktemp("podman")
    conf = work / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    podman = Podman(env, work)
    info = podman("info", check=False)
    if info.returncode != 0:
        pytest.skip(f"container tier: `podman info` fails: {_tail(info)}")
    if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        if not shutil.which("debootstrap"):
            pytest.skip(f"container tier: no {BASE_IMAGE} image and no debootstrap to make one")
        if os.geteuid() != 0:
            pytest.skip(f"container tier: no {BASE_IMAGE} image, and debootstrap needs root")
        started = time.monotonic()
        result = subprocess.run(
            [str(REPO / "deploy/base-image.sh"), BASE_IMAGE],
            env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        print(f"\nbase image {BASE_IMAGE}: made in {time.monotonic() - started:.0f} s")
    trivial = podman("run", "--rm", BASE_IMAGE, "true", check=False)
    if trivial.returncode != 0:
        pytest.skip(f"container tier: `podman run --rm {BASE_IMAGE} true` fails: {_tail(trivial)}")
    return podman


@pytest.fixture(scope="module")
def image(podman: Podman) -> str:
    """The image, built from the working tree (cached layers make a rebuild quick)."""
    assert CPU_VARIANTS in ("generic", "all"), f"CORRAL_TEST_CPU_VARIANTS={CPU_VARIANTS!r}"
    secret = ["--secret", f"id=pipca,src={CA_BUNDLE}"] if CA_BUNDLE.is_file() else []
    args = [
        "build", "--pull=never", "--format", "docker",
        "--build-arg", f"BASE={BASE_IMAGE}", "--build-arg", f"CPU_VARIANTS={CPU_VARIANTS}",
        *secret, "-f", "deploy/Containerfile", "-t", IMAGE, str(REPO),
    ]  # fmt: skip
    log = podman.logs / "build.log"
    started = time.monotonic()
    with log.open("w") as out:
        result = subprocess.run(
            ["podman", *args], env=podman.env, stdout=out, stderr=subprocess.STDOUT,
            timeout=7200, cwd=REPO,
        )  # fmt: skip
    assert result.returncode == 0, log.read_text()[-5000:]
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
    print(
        f"\nimage {IMAGE} (CPU_VARIANTS={CPU_VARIANTS}): built in "
        f"{time.monotonic() - started:.0f} s, {size / 1e6:.0f} MB"
    )
    return IMAGE


@pytest.fixture
def names(podman: Podman) -> Iterator[dict[str, str]]:
    """Unique container and volume names (podman's storage is shared); removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    made = {"volume": f"corral-test-{tag}", "first": f"corral-a-{tag}", "second": f"corral-b-{tag}"}
    yield made
    for key in ("first", "second"):
        podman("rm", "-f", "-t", "0", made[key], check=False)
    podman("volume", "rm", "-f", made["volume"], check=False)


def wait_healthy(podman: Podman, name: str, limit: float = 600) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        assert state == "running", podman("logs", name, check=False).stdout[-3000:]
        if podman.healthy(name):
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(podman("logs", name, check=False).stdout[-3000:])


def chat(url: str, model: str) -> str:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello."}],
        "stream": False,
        "options": {"num_predict": 8},
    }
    response = httpx.post(url + "/api/chat", json=body, timeout=300)
    assert response.status_code == 200, response.text
    content: str = response.json()["message"]["content"]
    return content


def test_image_provisions_serves_stops_and_keeps_models(
    podman: Podman,
    image: str,
    names: dict[str, str],
    registry: Registry,
    published: str,
    tmp_path: Path,
) -> None:
    # the CPU backends the build argument asked for, next to llama-server (loaded at run time)
    files = podman("run", "--rm", "--entrypoint", "ls", image, "/opt/llama/bin").stdout.split()
    cpu = sorted(name for name in files if name.startswith("libggml-cpu"))
    if CPU_VARIANTS == "generic":
        assert cpu == ["libggml-cpu.so"], files
    else:
        assert len(cpu) > 1 and "libggml-cpu.so" not in cpu, files

    provision = tmp_path / "provision.yaml"
    provision.write_text(
        "models:\n"
        f"  - name: {published}\n"
        "    preload: true\n"
        "  - name: terse\n"
        f"    from: {published}\n"
        "    system: Answer in one short sentence.\n"
    )
    provision.chmod(0o644)
    mounts = [
        "-v", f"{names['volume']}:/var/lib/corral",
        "-v", f"{provision}:/etc/corral/provision.yaml:ro",
        "-e", "CORRAL_PROVISION=/etc/corral/provision.yaml",
        "-e", "CORRAL_NUM_THREADS=2",
    ]  # fmt: skip

    # 1. first start: host network, so the registry on the host's 127.0.0.1 is reachable
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    podman(
        "run", "-d", "--name", names["first"], "--network", "host",
        "-e", f"CORRAL_HOST=127.0.0.1:{port}", *mounts, image,
    )  # fmt: skip
    first_ready = wait_healthy(podman, names["first"])
    start_to_ready = time.monotonic() - started
    assert httpx.get(url + "/health/ready").json() == {"status": "ready"}
    models = {m["name"] for m in httpx.get(url + "/api/tags").json()["models"]}
    assert models == {published, "terse:latest"}
    assert [m["name"] for m in httpx.get(url + "/api/ps").json()["models"]] == [published]
    assert chat(url, "terse")
    assert "assets/app.js" in httpx.get(url + "/ui/").text  # the built web UI is in the image
    health = podman("exec", names["first"], "corral", "health")  # exit 0, or this fails
    assert json.loads(health.stdout) == {"status": "ready"}
    inside = podman("exec", names["first"], "corral", "list").stdout
    assert "terse:latest" in inside
    assert podman("exec", names["first"], "id", "-u").stdout.strip() == "10001"
    # the image builds llama.cpp's RPC server for `corral worker` (exit 0, or this fails)
    podman("exec", names["first"], "test", "-x", "/opt/llama/bin/ggml-rpc-server")
    refused = podman("exec", names["first"], "corral", "worker", "--host", "0.0.0.0", check=False)
    assert refused.returncode == 2 and "no authentication" in refused.stderr
    top = podman("top", names["first"], "args").stdout
    assert "llama-server" in top  # the preloaded engine runs

    # 2. podman stop: SIGTERM, graceful shutdown, engines stopped, exit 0 (not 137 after 10 s)
    stop_started = time.monotonic()
    podman("stop", "-t", "30", names["first"], timeout=60)
    stop_seconds = time.monotonic() - stop_started
    state = json.loads(podman("inspect", names["first"]).stdout)[0]["State"]
    assert state["ExitCode"] == 0, podman("logs", names["first"]).stdout[-3000:]
    logs = podman("logs", names["first"]).stdout + podman("logs", names["first"]).stderr
    (podman.logs / "first-container.log").write_text(logs)
    assert "Application shutdown complete" in logs
    assert "provisioned terse:latest: created" in logs

    # 3. a new container on the same volume: bridge network with a published port, read-only
    #    root file system; the registry is unreachable from here, so a download would fail
    port2 = free_port()
    url2 = f"http://127.0.0.1:{port2}"
    started = time.monotonic()
    podman(
        "run", "-d", "--name", names["second"], "-p", f"127.0.0.1:{port2}:11434",
        "--read-only", "-e", "CORRAL_SHUTDOWN_GRACE=120", *mounts, image,
    )  # fmt: skip
    wait_healthy(podman, names["second"])
    restart_to_ready = time.monotonic() - started
    logs = podman("logs", names["second"]).stdout + podman("logs", names["second"]).stderr
    assert f"provisioned {published}: present" in logs
    assert "provisioned terse:latest: present" in logs
    assert chat(url2, "terse")
    (podman.logs / "second-container.log").write_text(logs)
    skipped_in = logs.split("provisioning finished in ", 1)[1].split(" s")[0]
    present = re.findall(r"provisioned (\S+): present(?:, loaded)? \(([0-9.]+) s\)", logs)
    assert [name for name, _ in present] == [published, "terse:latest"]

    # 4. podman stop during a streamed answer: the answer still finishes, then corral exits 0
    #    (a generous grace: on a busy 2-core machine 120 tokens can take many seconds)
    body = {
        "model": published,
        "prompt": "".join(f"{n}\n" for n in range(1, 21)),  # raw text that goes on and on
        "raw": True,
        "options": {"num_predict": 120, "temperature": 0},
    }
    with httpx.stream("POST", url2 + "/api/generate", json=body, timeout=300) as response:
        lines = response.iter_lines()
        first = json.loads(next(lines))  # the request is in flight now
        stopper = threading.Thread(
            target=podman, args=("stop", "-t", "150", names["second"]), kwargs={"timeout": 180}
        )
        stopper.start()
        try:
            rest = [json.loads(line) for line in lines if line]
        finally:
            stopper.join()
            logs = podman("logs", names["second"]).stdout + podman("logs", names["second"]).stderr
            (podman.logs / "second-container-stop.log").write_text(logs)
    assert first["done"] is False and rest[-1]["done"] is True, rest[-1:]
    assert rest[-1]["done_reason"] == "length" and rest[-1]["eval_count"] == 120  # not cut
    state = json.loads(podman("inspect", names["second"]).stdout)[0]["State"]
    assert state["ExitCode"] == 0
    assert "Waiting for connections to close" in logs  # SIGTERM came mid-answer
    print(
        f"\ncontainer: first start to healthy {start_to_ready:.1f} s "
        f"(health polled {first_ready:.1f} s), podman stop {stop_seconds:.1f} s (exit 0), "
        f"new container on the volume to healthy {restart_to_ready:.1f} s, "
        f"re-provisioning {skipped_in} s in all (per model: "
        + ", ".join(f"{name} {seconds} s" for name, seconds in present)
        + "; the first includes loading it, preload: true)"
    )
