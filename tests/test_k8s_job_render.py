"""Render the Kubernetes Job the k8s_job_executor would launch for a step, offline.

The rendering follows dagster_k8s.executor.K8sStepHandler (0.29.27): the run launcher's
container context (here: the settings of k8s/helm/values.yaml), deep-merged with the step's
``dagster-k8s/config`` op tag, then ``construct_dagster_k8s_job``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import kubernetes
import kubernetes_validate
import pytest
import yaml
from dagster_k8s import DagsterK8sJobConfig, construct_dagster_k8s_job
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import UserDefinedDagsterK8sConfig, get_user_defined_k8s_config

from holley_gnn_assets.defs.k8s_tags import (
    GPU_IMAGE_ENV,
    K8S_CONFIG_TAG,
    TRAINING_PRIORITY_CLASS,
    cpu_op_tags,
    gpu_op_tags,
)
from holley_gnn_assets.settings import load_config

VALUES = Path(__file__).resolve().parents[1] / "k8s" / "helm" / "values.yaml"
RUN_IMAGE = "registry.example/holley-gnn/user-code:cpu-test"
GPU = "nvidia.com/gpu"


@pytest.fixture(autouse=True)
def _no_gpu_image_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GPU_IMAGE_ENV, raising=False)


def gnn_model_op_tags() -> Mapping[str, Any]:
    """The gnn_model asset's op tags.

    Swap point: once holley_gnn_assets.definitions exists, return the real asset's tags, e.g.
    ``defs.get_assets_def("gnn_model").op.tags``.
    """
    return gpu_op_tags(load_config())


def step_tags(op_tags: Mapping[str, Any]) -> Mapping[str, str]:
    """The string tags Dagster stores for an op declared with ``op_tags`` (dicts become JSON)."""

    @dg.asset(op_tags=dict(op_tags))
    def probe() -> None:
        """Carrier for the tags only."""

    return probe.op.tags


def run_launcher_context() -> K8sContainerContext:
    """Container context of the K8sRunLauncher as k8s/helm/values.yaml configures it."""
    values = yaml.safe_load(VALUES.read_text())
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    return K8sContainerContext(
        image_pull_policy=launcher["imagePullPolicy"],
        service_account_name=values["global"]["serviceAccountName"],
        env_config_maps=[ref["name"] for ref in launcher["envConfigMaps"]],
        env_secrets=[ref["name"] for ref in launcher["envSecrets"]],
        namespace=launcher["jobNamespace"],
        resources=launcher.get("resources"),
    )


def render_step_job(op_tags: Mapping[str, Any]) -> kubernetes.client.V1Job:
    """The V1Job of one step whose op carries ``op_tags`` (as the k8s_job_executor builds it)."""
    step_config = get_user_defined_k8s_config(step_tags(op_tags))
    context = run_launcher_context().merge(K8sContainerContext(run_k8s_config=step_config))
    job_config = DagsterK8sJobConfig(
        job_image=RUN_IMAGE,
        dagster_home="/opt/dagster/dagster_home",
        instance_config_map="dagster-instance",
        postgres_password_secret="dagster-postgresql-secret",
    )
    return construct_dagster_k8s_job(
        job_config=job_config,
        args=["dagster", "api", "execute_step"],
        job_name="dagster-step-test",
        component="step_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/op": "test"},
    )


def container_of(job: kubernetes.client.V1Job) -> kubernetes.client.V1Container:
    (container,) = job.spec.template.spec.containers
    return container


def assert_valid_k8s(job: kubernetes.client.V1Job) -> None:
    """The rendered Job passes the Kubernetes 1.32 schema in strict mode."""
    body = kubernetes.client.ApiClient().sanitize_for_serialization(job)
    kubernetes_validate.validate(body, "1.32.0", strict=True)


# ---------------------------------------------------------------- GPU step


def test_gpu_step_job_requests_a_gpu_on_a_gpu_node() -> None:
    k8s = load_config()["k8s"]
    job = render_step_job(gnn_model_op_tags())
    pod = job.spec.template.spec
    resources = container_of(job).resources
    assert resources.limits[GPU] == "1"
    assert resources.requests[GPU] == "1"
    assert resources.requests["cpu"] == str(k8s["train_cpu"])
    # The step's memory overrides the run launcher's smaller default on the same key.
    assert resources.limits["memory"] == resources.requests["memory"] == k8s["train_memory"]
    assert pod.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    gpu_tolerations = [t for t in pod.tolerations if t.key == GPU]
    assert len(gpu_tolerations) == 1
    assert (gpu_tolerations[0].operator, gpu_tolerations[0].effect) == ("Exists", "NoSchedule")
    assert pod.priority_class_name == TRAINING_PRIORITY_CLASS
    assert_valid_k8s(job)


def test_gpu_step_keeps_run_settings() -> None:
    job = render_step_job(gnn_model_op_tags())
    container = container_of(job)
    assert job.spec.template.spec.service_account_name == "holley-gnn"
    assert container.image == RUN_IMAGE  # no HOLLEY_GNN_GPU_IMAGE set
    env_from = {(e.config_map_ref or e.secret_ref).name for e in container.env_from}
    assert env_from == {"holley-gnn-env", "holley-gnn-secrets"}


def test_gpu_image_from_env_replaces_the_run_image(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda_image = "registry.example/holley-gnn/user-code:cuda-test"
    monkeypatch.setenv(GPU_IMAGE_ENV, cuda_image)
    job = render_step_job(gnn_model_op_tags())
    assert container_of(job).image == cuda_image
    assert_valid_k8s(job)


# ---------------------------------------------------------------- CPU steps


@pytest.mark.parametrize(
    "op_tags",
    [cpu_op_tags(load_config(), "4", "16Gi"), {}],
    ids=["cpu_op_tags", "no_tags"],
)
def test_cpu_step_job_has_no_gpu(op_tags: Mapping[str, Any]) -> None:
    job = render_step_job(op_tags)
    pod = job.spec.template.spec
    resources = container_of(job).resources
    for amounts in (resources.requests or {}, resources.limits or {}):
        assert GPU not in amounts
    assert not pod.node_selector
    assert not pod.tolerations
    assert pod.priority_class_name is None
    assert_valid_k8s(job)


def test_cpu_op_tags_set_the_step_resources() -> None:
    resources = container_of(render_step_job(cpu_op_tags({}, "4", "16Gi"))).resources
    assert resources.requests == {"cpu": "4", "memory": "16Gi"}
    assert resources.limits == {"memory": "16Gi"}


# ---------------------------------------------------------------- bad input


def test_dagster_rejects_a_malformed_k8s_tag() -> None:
    tags = {K8S_CONFIG_TAG: {"container_config": {}, "pod_spec": {"node_selector": {}}}}
    with pytest.raises(dg.DagsterInvalidConfigError):
        get_user_defined_k8s_config(step_tags(tags))


@pytest.mark.parametrize(
    ("k8s_override", "message"),
    [
        ({"gpu_count": 0}, "k8s.gpu_count"),
        ({"train_memory": "lots"}, "k8s.train_memory"),
        ({"tolerations": [{"key": GPU, "efect": "NoSchedule"}]}, r"k8s.tolerations\[0\]"),
        ({"node_selector": ["cloud.google.com/gke-accelerator"]}, "k8s.node_selector"),
    ],
)
def test_gpu_op_tags_names_the_bad_setting(k8s_override: dict[str, Any], message: str) -> None:
    cfg = load_config(overrides={"k8s": k8s_override})
    with pytest.raises(ValueError, match=message):
        gpu_op_tags(cfg)


def test_gpu_op_tags_needs_the_k8s_section() -> None:
    cfg = load_config()
    del cfg["k8s"]
    with pytest.raises(ValueError, match="'k8s'"):
        gpu_op_tags(cfg)


def test_gpu_op_tags_accept_camel_case_toleration_seconds() -> None:
    toleration = {"key": GPU, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}
    cfg = load_config(overrides={"k8s": {"tolerations": [toleration]}})
    (rendered,) = render_step_job(gpu_op_tags(cfg)).spec.template.spec.tolerations
    assert rendered.toleration_seconds == 60


def test_user_defined_config_round_trip_is_lossless() -> None:
    """The tag survives Dagster's JSON round trip unchanged (nothing silently dropped)."""
    tags = gnn_model_op_tags()
    parsed = get_user_defined_k8s_config(step_tags(tags))
    expected = UserDefinedDagsterK8sConfig.from_dict(tags[K8S_CONFIG_TAG])
    assert parsed.container_config == expected.container_config
    assert parsed.pod_spec_config == expected.pod_spec_config
