"""Render the Kubernetes Job the k8s_job_executor would launch for a step, offline.

The rendering follows dagster_k8s.executor.K8sStepHandler (0.29.27): the run launcher's
container context (here: the settings of k8s/helm/values.yaml), merged with the configured
executor's ``step_k8s_config`` (``defs/executor.py``: every step's CPU/memory default), then
deep-merged with the step's ``dagster-k8s/config`` op tag, then with the executor's
``per_step_k8s_config`` of the step's op (``gnn_model``: the GPU), then
``construct_dagster_k8s_job``.
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

from holley_gnn_assets.config.settings import (
    SettingsError,
    get_settings,
    load_config,
    load_settings,
)
from holley_gnn_assets.defs.k8s_tags import (
    GPU_IMAGE_ENV,
    K8S_CONFIG_TAG,
    TRAINING_PRIORITY_CLASS,
    cpu_op_tags,
    gpu_op_tags,
)

VALUES = Path(__file__).resolve().parents[1] / "k8s" / "helm" / "values.yaml"
RUN_IMAGE = "registry.example/holley-gnn/user-code:cpu-test"
GPU = "nvidia.com/gpu"


@pytest.fixture(autouse=True)
def _no_gpu_image_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GPU_IMAGE_ENV, raising=False)


def gnn_model_op_tags() -> Mapping[str, Any]:
    """The gnn_model step's GPU config (the executor's ``per_step_k8s_config``), as op tags."""
    return gpu_op_tags(get_settings())


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


def render_step_job(
    op_tags: Mapping[str, Any], executor_step_config: Mapping[str, Any] | None = None,
    per_step: Mapping[str, Any] | None = None,
) -> kubernetes.client.V1Job:
    """The V1Job of one step whose op carries ``op_tags`` (as the k8s_job_executor builds it),
    under an executor configured with ``executor_step_config`` (its ``step_k8s_config``) and
    ``per_step`` (its ``per_step_k8s_config`` entry for the step's op)."""
    step_config = get_user_defined_k8s_config(step_tags(op_tags))
    executor = UserDefinedDagsterK8sConfig.from_dict(dict(executor_step_config or {}))
    override = UserDefinedDagsterK8sConfig.from_dict(dict(per_step or {}))
    context = (run_launcher_context()
               .merge(K8sContainerContext(run_k8s_config=executor))
               .merge(K8sContainerContext(run_k8s_config=step_config))
               .merge(K8sContainerContext(run_k8s_config=override)))
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
    k8s = get_settings().cfg["k8s"]
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
    [cpu_op_tags("4", "16Gi"), {}],
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
    resources = container_of(render_step_job(cpu_op_tags("4", "16Gi"))).resources
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
        ({"gpu_count": True}, "k8s.gpu_count"),
        ({"train_memory": "lots"}, "k8s.train_memory"),
        ({"tolerations": [{"key": GPU, "efect": "NoSchedule"}]}, r"k8s.tolerations\[0\]"),
        ({"node_selector": ["cloud.google.com/gke-accelerator"]}, "k8s.node_selector"),
    ],
)
def test_bad_k8s_settings_are_named(k8s_override: dict[str, Any], message: str) -> None:
    # refused when the settings are built ...
    with pytest.raises(SettingsError, match=message):
        load_settings(overrides={"k8s": k8s_override})
    # ... and when op tags are asked of a hand-made config dict
    cfg = load_config()
    cfg["k8s"].update(k8s_override)
    with pytest.raises(SettingsError, match=message):
        gpu_op_tags(cfg)


def test_gpu_op_tags_needs_the_k8s_section() -> None:
    cfg = load_config()
    del cfg["k8s"]
    with pytest.raises(ValueError, match="'k8s'"):
        gpu_op_tags(cfg)
    with pytest.raises(SettingsError, match="k8s=None"):
        load_settings(overrides={"k8s": None})


def test_gpu_op_tags_accept_camel_case_toleration_seconds() -> None:
    toleration = {"key": GPU, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}
    settings = load_settings(overrides={"k8s": {"tolerations": [toleration]}})
    (rendered,) = render_step_job(gpu_op_tags(settings)).spec.template.spec.tolerations
    assert rendered.toleration_seconds == 60


def test_op_tags_follow_a_custom_settings_object() -> None:
    """Every value of the GPU step's pod comes from the settings object passed in."""
    custom = {
        "gpu_resource": "nvidia.com/gpu", "gpu_count": 2, "train_cpu": "12",
        "train_memory": "48Gi", "node_selector": {"pool": "a100"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml",
                         "effect": "NoSchedule"}],
    }  # fmt: skip
    image = "registry.example/holley-gnn/user-code:cuda-custom"
    settings = load_settings(env={GPU_IMAGE_ENV: image}, overrides={"k8s": custom})
    job = render_step_job(gpu_op_tags(settings))
    pod, container = job.spec.template.spec, container_of(job)
    assert container.resources.limits[GPU] == container.resources.requests[GPU] == "2"
    assert container.resources.requests["cpu"] == "12"
    assert container.resources.limits["memory"] == "48Gi"
    assert container.image == image
    assert pod.node_selector == {"pool": "a100"}
    (toleration,) = pod.tolerations
    assert (toleration.key, toleration.value, toleration.operator) == ("dedicated", "ml", "Equal")
    assert_valid_k8s(job)
    # the packaged settings give the packaged values: nothing leaks between settings objects
    default_job = render_step_job(gpu_op_tags(load_settings(env={})))
    assert container_of(default_job).resources.requests["cpu"] == "8"
    assert container_of(default_job).image == RUN_IMAGE


def test_the_gpu_step_config_comes_from_the_settings_build_defs_receives() -> None:
    """build_defs(settings) puts the GPU config of *its* settings on gnn_model (the executor's
    per_step_k8s_config); the asset itself carries none (nothing read at import time)."""
    from holley_gnn_assets.definitions import build_defs
    from holley_gnn_assets.defs.assets.model import gnn_model

    settings = load_settings(env={"HOLLEY_GNN_EXECUTOR": "k8s"},
                             overrides={"k8s": {"gpu_count": 3, "node_selector": {"pool": "x"}}})
    executor = build_defs(settings).resolve_job_def("full_retrain_job").executor_def
    per_step = executor.config_schema.resolve_config({}).value["config"]["per_step_k8s_config"]
    assert set(per_step) == {"gnn_model"}
    assert (UserDefinedDagsterK8sConfig.from_dict(per_step["gnn_model"])
            == UserDefinedDagsterK8sConfig.from_dict(gpu_op_tags(settings)[K8S_CONFIG_TAG]))
    pod = render_step_job({}, None, per_step["gnn_model"])
    assert container_of(pod).resources.limits[GPU] == "3"
    assert pod.spec.template.spec.node_selector == {"pool": "x"}
    assert K8S_CONFIG_TAG not in gnn_model.op.tags


def test_user_defined_config_round_trip_is_lossless() -> None:
    """The tag survives Dagster's JSON round trip unchanged (nothing silently dropped)."""
    tags = gnn_model_op_tags()
    parsed = get_user_defined_k8s_config(step_tags(tags))
    expected = UserDefinedDagsterK8sConfig.from_dict(tags[K8S_CONFIG_TAG])
    assert parsed.container_config == expected.container_config
    assert parsed.pod_spec_config == expected.pod_spec_config


# ---------------------------------------------------------------- the configured executor


def prod_defs_and_step_config() -> tuple[dg.Definitions, dict[str, Any], dict[str, Any]]:
    """build_defs() for HOLLEY_GNN_EXECUTOR=k8s and its executor's resolved step_k8s_config
    and per_step_k8s_config."""
    from holley_gnn_assets.definitions import build_defs

    settings = load_settings(env={"HOLLEY_GNN_EXECUTOR": "k8s", "HOLLEY_GNN_IO": "gcs",
                                  "HOLLEY_GNN_GCS_BUCKET": "bucket-x"})
    defs = build_defs(settings)
    executor = defs.get_repository_def().get_job("full_retrain_job").executor_def
    assert executor.name == "k8s"
    config = executor.config_schema.resolve_config({}).value["config"]
    assert config["retries"] == {"enabled": {}}
    return defs, config["step_k8s_config"], config["per_step_k8s_config"]


@pytest.mark.parametrize("node", ["recommendations_table", "gnn_recommendations_qa",
                                  "sql_baseline_recommendations_qa"])
def test_untagged_steps_get_the_executor_defaults(node: str) -> None:
    """The output step and a check step, without op tags, request k8s.step_cpu/step_memory."""
    defs, step_config, per_step = prod_defs_and_step_config()
    k8s = get_settings().config.k8s
    in_job = "publish_job" if node == "recommendations_table" else "full_retrain_job"
    raw = defs.get_job_def(in_job).graph.node_named(node).definition.tags
    assert K8S_CONFIG_TAG not in raw and node not in per_step  # the executor's default
    job = render_step_job(json_tags(raw), step_config)
    resources = container_of(job).resources
    assert resources.requests == {"cpu": k8s.step_cpu, "memory": k8s.step_memory}
    assert resources.limits == {"memory": k8s.step_memory}
    assert not job.spec.template.spec.node_selector
    assert_valid_k8s(job)


def test_step_tags_override_the_executor_defaults_and_gpu_only_on_gnn_model() -> None:
    defs, step_config, per_step = prod_defs_and_step_config()
    job = defs.get_job_def("full_retrain_job")
    with_gpu = []
    for node in job.graph.node_dict:
        tags = json_tags(job.graph.node_named(node).definition.tags)
        resources = container_of(render_step_job(tags, step_config,
                                                 per_step.get(node))).resources
        if GPU in (resources.limits or {}):
            with_gpu.append(node)
    assert with_gpu == ["gnn_model"]
    k8s = get_settings().config.k8s
    gpu = container_of(render_step_job(gnn_model_op_tags(), step_config)).resources
    assert gpu.requests["cpu"] == k8s.train_cpu and gpu.limits["memory"] == k8s.train_memory
    export = json_tags(job.graph.node_named("node_tables").definition.tags)
    assert container_of(render_step_job(export, step_config)).resources.requests["cpu"] == "4"


def json_tags(tags: Mapping[str, str]) -> dict[str, Any]:
    """Op tags as declared: the ``dagster-k8s/config`` tag parsed back from its JSON string."""
    import json

    return {K8S_CONFIG_TAG: json.loads(tags[K8S_CONFIG_TAG])} if K8S_CONFIG_TAG in tags else {}


def test_retry_policies_from_the_settings() -> None:
    defs, _, _ = prod_defs_and_step_config()
    retries = get_settings().config.retries
    policies = {node: job.graph.node_named(node).definition.retry_policy
                for job in map(defs.get_job_def, ("full_retrain_job", "publish_job"))
                for node in job.graph.node_dict}
    warehouse_steps = ["node_tables", "edge_tables", "test_tables", "gnn_recommendations",
                       "sql_baseline_recommendations", "recommendations_table"]
    for node in warehouse_steps:
        assert policies[node].max_retries == retries.warehouse_max_retries, node
        assert policies[node].backoff == dg.Backoff.EXPONENTIAL
    assert policies["gnn_model"].max_retries == retries.training_max_retries
    assert policies["gnn_recommendations_qa"] is None  # checks are not retried
