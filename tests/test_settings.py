"""The one settings object: YAML + environment, one default per key, bad values named."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from holley_gnn_assets.config import settings as settings_mod
from holley_gnn_assets.config.schema import PipelineConfig, Toleration
from holley_gnn_assets.config.settings import (
    DEFAULT_CONFIG_PATH,
    ENV_VARS,
    SettingsError,
    get_settings,
    load_settings,
)

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "holley_gnn_assets"
YAML = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No package variable set except a private home."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOLLEY_GNN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# -- one default per key -----------------------------------------------------------------------


def _model_fields(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Dotted name -> field of every leaf of the schema (sections recursed into)."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel) and sub is not Toleration:
            out.update(_model_fields(sub, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = field
    return out


def _yaml_keys(data: dict, leaves: set[str], prefix: str = "") -> set[str]:
    """Dotted keys of the YAML, descending only into sections (mapping values are leaves)."""
    out: set[str] = set()
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name not in leaves:
            out |= _yaml_keys(value, leaves, name + ".")
        else:
            out.add(name)
    return out


def test_the_yaml_holds_exactly_the_schema_keys_and_the_schema_no_defaults() -> None:
    fields = _model_fields(PipelineConfig)
    yaml_keys = _yaml_keys(YAML, set(fields))
    assert yaml_keys == set(fields), (yaml_keys ^ set(fields))
    with_default = [name for name, field in fields.items() if not field.is_required()]
    assert with_default == [], "config defaults belong in gnn_config.yaml only"


def test_defaults_come_from_the_yaml_and_settings_py(clean_env: Path) -> None:
    s = load_settings()
    cfg = s.cfg
    assert cfg["warehouse"]["bigquery"] == YAML["warehouse"]["bigquery"]
    assert cfg["warehouse"]["bigquery"]["use_storage_api"] is False
    assert cfg["k8s"] == YAML["k8s"] and cfg["rules"] == YAML["rules"]
    assert cfg["time"]["as_of"] is None and s.as_of is None
    assert cfg["time"]["interaction_start"] == YAML["time"]["interaction_start"]
    assert (s.executor, s.io_manager, s.warehouse_kind) == ("in_process", "local", "duckdb")
    assert s.home == clean_env.resolve()
    assert s.duckdb_path == s.home / "warehouse_demo.duckdb" and not s.duckdb_path_from_env
    assert s.artifacts == str(s.home / "artifacts")
    assert s.tracking_uri == f"sqlite:///{s.home / 'mlflow.db'}"
    assert s.mlflow_artifact_location == (s.home / "mlartifacts").as_uri()
    assert s.dagster_home == s.home / "dagster_home"
    assert (s.gpu_image, s.alert_webhook, s.gcs_bucket) == (None, None, None)
    assert s.config_path == DEFAULT_CONFIG_PATH.resolve()


def test_cfg_is_a_fresh_plain_dict(clean_env: Path) -> None:
    s = get_settings()
    cfg = s.cfg
    cfg["training"]["epochs"] = -1
    del cfg["k8s"]
    assert s.cfg["training"]["epochs"] == YAML["training"]["epochs"] and "k8s" in s.cfg
    assert settings_mod.load_config()["training"]["epochs"] == YAML["training"]["epochs"]


# -- the environment ---------------------------------------------------------------------------


def test_environment_overrides(tmp_path: Path) -> None:
    env = {
        "HOLLEY_GNN_HOME": str(tmp_path / "h"),
        "HOLLEY_GNN_WAREHOUSE": str(tmp_path / "w.duckdb"),
        "HOLLEY_GNN_AS_OF": "2026-03-01",
        "HOLLEY_GNN_WAREHOUSE_KIND": " BigQuery ",
        "HOLLEY_GNN_BQ_PROJECT": "proj-a",
        "HOLLEY_GNN_BQ_OUTPUT_PROJECT": "proj-b",
        "HOLLEY_GNN_BQ_STORAGE_API": "yes",
        "HOLLEY_GNN_EXECUTOR": "K8S",
        "HOLLEY_GNN_IO": "gcs",
        "HOLLEY_GNN_GCS_BUCKET": "bucket-x",
        "HOLLEY_GNN_GCS_PREFIX": "/pre/fix/",
        "HOLLEY_GNN_ARTIFACTS": "gs://bucket-x/art",
        "HOLLEY_GNN_GPU_IMAGE": "reg/img:cuda",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "HOLLEY_GNN_ALERT_WEBHOOK": "https://hooks.example.com/T/SECRET",
        "HOLLEY_GNN_RETRAIN_CRON": "30 4 * * 2",
        "DAGSTER_HOME": str(tmp_path / "dh"),
        "UNRELATED": "ignored",
    }
    s = load_settings(env=env)
    bq = s.cfg["warehouse"]["bigquery"]
    assert (bq["project"], bq["output_project"]) == ("proj-a", "proj-b")
    assert bq["use_storage_api"] is True
    assert s.warehouse_kind == "bigquery" and s.cfg["warehouse"]["kind"] == "bigquery"
    assert s.as_of == dt.date(2026, 3, 1) and s.cfg["time"]["as_of"] == "2026-03-01"
    assert s.cfg["schedule"]["retrain_cron"] == "30 4 * * 2"
    assert (s.executor, s.io_manager, s.gcs_bucket, s.gcs_prefix) == ("k8s", "gcs", "bucket-x",
                                                                      "pre/fix")
    assert s.home == (tmp_path / "h").resolve() and s.duckdb_path_from_env
    assert s.duckdb_path == (tmp_path / "w.duckdb").resolve()
    assert s.artifacts == "gs://bucket-x/art" and s.gpu_image == "reg/img:cuda"
    assert s.tracking_uri == "http://mlflow:5000" and s.mlflow_artifact_location is None
    assert s.alert_webhook == env["HOLLEY_GNN_ALERT_WEBHOOK"] and "SECRET" not in repr(s)
    assert s.dagster_home == tmp_path / "dh"


def test_config_file_from_env_and_overrides_win(tmp_path: Path) -> None:
    custom = settings_mod.deep_merge(YAML, {"training": {"epochs": 3}, "time": {"as_of": None}})
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(custom))
    env = {"HOLLEY_GNN_CONFIG": str(path), "HOLLEY_GNN_AS_OF": "2026-03-01"}
    s = load_settings(env=env)
    assert s.config_path == path.resolve() and s.cfg["training"]["epochs"] == 3
    won = load_settings(env=env, overrides={"time": {"as_of": "2025-12-24"},
                                            "training": {"negatives": {"uniform": 0.5}}})
    assert won.as_of == dt.date(2025, 12, 24)
    assert won.cfg["training"]["negatives"] == {**YAML["training"]["negatives"], "uniform": 0.5}
    assert won.cfg["training"]["epochs"] == 3


def test_get_settings_is_cached_per_environment(clean_env: Path, monkeypatch, tmp_path) -> None:
    first = get_settings()
    assert get_settings() is first
    monkeypatch.setenv("HOLLEY_GNN_EXECUTOR", "multiprocess")
    second = get_settings()
    assert second is not first and second.executor == "multiprocess"
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(YAML))
    monkeypatch.setenv("HOLLEY_GNN_CONFIG", str(path))
    assert get_settings().cfg["training"]["epochs"] == YAML["training"]["epochs"]
    edited = settings_mod.deep_merge(YAML, {"training": {"epochs": 7}})
    path.write_text(yaml.safe_dump(edited))
    stat = path.stat()
    import os

    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert get_settings().cfg["training"]["epochs"] == 7


# -- bad values are refused, each named ----------------------------------------------------------


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("HOLLEY_GNN_EXECUTOR", "x",
         "HOLLEY_GNN_EXECUTOR='x': expected in_process, multiprocess or k8s"),
        ("HOLLEY_GNN_IO", "s3", "HOLLEY_GNN_IO='s3': expected local or gcs"),
        ("HOLLEY_GNN_BQ_STORAGE_API", "maybe", "HOLLEY_GNN_BQ_STORAGE_API='maybe': expected"),
        ("HOLLEY_GNN_AS_OF", "2026-02-30", "HOLLEY_GNN_AS_OF='2026-02-30' (time.as_of)"),
        ("HOLLEY_GNN_WAREHOUSE_KIND", "postgres",
         "HOLLEY_GNN_WAREHOUSE_KIND='postgres' (warehouse.kind)"),
        ("HOLLEY_GNN_RETRAIN_CRON", "0 3 * *",
         "HOLLEY_GNN_RETRAIN_CRON='0 3 * *' (schedule.retrain_cron): not a valid 5-field cron"),
        ("HOLLEY_GNN_GCS_BUCKET", "gs://b", "HOLLEY_GNN_GCS_BUCKET='gs://b': give the bare"),
        ("HOLLEY_GNN_GPU_IMAGE", "reg/img :x", "HOLLEY_GNN_GPU_IMAGE='reg/img :x'"),
        ("DAGSTER_HOME", "relative/dir", "DAGSTER_HOME='relative/dir': must be an absolute path"),
    ],
)
def test_bad_environment_values_are_named(var: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(env={var: value})
    assert expected in str(err.value)


def test_every_problem_is_reported_at_once_and_secrets_stay_out() -> None:
    env = {"HOLLEY_GNN_EXECUTOR": "x", "HOLLEY_GNN_IO": "gcs",
           "HOLLEY_GNN_ALERT_WEBHOOK": "ftp://hooks.example.com/SECRET-TOKEN"}
    with pytest.raises(SettingsError) as err:
        load_settings(env=env)
    text = str(err.value)
    assert "HOLLEY_GNN_EXECUTOR='x'" in text
    assert "HOLLEY_GNN_GCS_BUCKET: required when HOLLEY_GNN_IO=gcs" in text
    assert "HOLLEY_GNN_ALERT_WEBHOOK must be an https:// URL" in text
    assert "SECRET-TOKEN" not in text


def test_plain_http_webhook_is_refused_at_load_without_echoing_it() -> None:
    env = {"HOLLEY_GNN_ALERT_WEBHOOK": "http://hooks.example.com/services/T0/SECRET-TOKEN"}
    with pytest.raises(SettingsError) as err:
        load_settings(env=env)
    text = str(err.value)
    assert "HOLLEY_GNN_ALERT_WEBHOOK must be an https:// URL" in text and "clear text" in text
    assert "SECRET-TOKEN" not in text and "/services" not in text
    assert load_settings(env={"HOLLEY_GNN_ALERT_WEBHOOK": "http://127.0.0.1:9/x"}).alert_webhook


@pytest.mark.parametrize("key", ["dataset", "table", "staging_dataset"])
def test_output_identifiers_are_refused_at_load_naming_the_key(key: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(env={}, overrides={"output": {key: "x; DROP TABLE y"}})
    assert f"output.{key}='x; DROP TABLE y'" in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"training": {"epoch": 3}}, "training.epoch: unknown key"),
        ({"training": {"device": "tpu"}}, "training.device='tpu'"),
        ({"training": {"positive_weight": "max"}}, "training.positive_weight='max'"),
        ({"rules": {"variant_suffix_regex": "[0-9"}}, "rules.variant_suffix_regex='[0-9'"),
        ({"training": {"negatives": {"fitment": 0.0}}},
         "training.negatives: the negative shares are all 0"),
        ({"eval": {"alpha": 1.5}}, "eval.alpha=1.5"),
        ({"qa": {"min_share_with_recs": 2}}, "qa.min_share_with_recs=2"),
        ({"schedule": {"timezone": "Mars/Olympus"}}, "schedule.timezone='Mars/Olympus'"),
        ({"k8s": {"tolerations": [{"key": "a", "effect": "Sometimes"}]}},
         "k8s.tolerations[0].effect='Sometimes'"),
        ({"output": {"table": ""}}, "output.table=''"),
        ({"shedule": {}}, "shedule: unknown key"),
    ],
)
def test_bad_config_values_are_named(overrides: dict, expected: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(env={}, overrides=overrides)
    assert expected in str(err.value)


def test_missing_key_and_missing_file_are_named(tmp_path: Path) -> None:
    broken = settings_mod.deep_merge(YAML, {})
    del broken["k8s"]["train_cpu"]
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    with pytest.raises(SettingsError, match=r"k8s\.train_cpu: missing"):
        load_settings(env={"HOLLEY_GNN_CONFIG": str(path)})
    with pytest.raises(SettingsError, match="HOLLEY_GNN_CONFIG: config file .* does not exist"):
        load_settings(env={"HOLLEY_GNN_CONFIG": str(tmp_path / "absent.yaml")})


# -- everything else takes its values from the settings -----------------------------------------


def test_only_settings_py_reads_the_environment() -> None:
    pattern = re.compile(r"os\.environ|getenv|from os import .*environ|\benviron\[")
    readers = [
        f"{path.relative_to(REPO)}:{n}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert readers, readers
    assert all(r.startswith("holley_gnn_assets/config/settings.py:") for r in readers), readers


def test_resources_executor_and_io_manager_from_one_settings_object(tmp_path: Path) -> None:
    from dagster import in_process_executor

    from holley_gnn_assets.defs.executor import executor_from_settings
    from holley_gnn_assets.defs.io_managers import TablesIOManager
    from holley_gnn_assets.defs.resources import pipeline_resources

    local = load_settings(env={"HOLLEY_GNN_HOME": str(tmp_path)})
    res = pipeline_resources(local)
    assert isinstance(res["io_manager"], TablesIOManager)
    assert res["io_manager"].base_path == str(tmp_path.resolve() / "tables")
    assert res["warehouse"].kind == "duckdb"
    assert res["warehouse"].bq_project == YAML["warehouse"]["bigquery"]["project"]
    assert res["warehouse"].bq_use_storage_api is False
    assert res["pipeline"].config_path == str(DEFAULT_CONFIG_PATH.resolve())
    assert res["mlflow"].tracking_uri == local.tracking_uri
    assert res["artifacts"].location == str(tmp_path.resolve() / "artifacts")
    assert executor_from_settings(local) is in_process_executor

    prod = load_settings(env={"HOLLEY_GNN_EXECUTOR": "k8s", "HOLLEY_GNN_IO": "gcs",
                              "HOLLEY_GNN_GCS_BUCKET": "b", "HOLLEY_GNN_GCS_PREFIX": "dagster",
                              "HOLLEY_GNN_WAREHOUSE_KIND": "bigquery",
                              "HOLLEY_GNN_BQ_PROJECT": "p1", "HOLLEY_GNN_AS_OF": "2026-01-05"})
    res = pipeline_resources(prod)
    assert isinstance(res["io_manager"], TablesIOManager)
    assert res["io_manager"].base_path == "gs://b/dagster"
    assert (res["warehouse"].kind, res["warehouse"].bq_project) == ("bigquery", "p1")
    assert res["io_manager"].keep_partitions == YAML["time"]["keep_partitions"]
    from holley_gnn_assets.defs.partitions import run_date

    assert run_date(prod) == dt.date(2026, 1, 5)  # the date of the runs it creates
    executor = executor_from_settings(prod)
    assert executor.name == "k8s"  # dagster-k8s k8s_job_executor, configured (defs/executor.py)
    step = executor.config_schema.resolve_config({}).value["config"]["step_k8s_config"]
    assert step["container_config"]["resources"]["requests"]["cpu"] == YAML["k8s"]["step_cpu"]


def test_an_empty_warehouse_resource_takes_the_settings_values(clean_env: Path, monkeypatch):
    from holley_gnn_assets.defs.resources import WarehouseResource

    monkeypatch.setenv("HOLLEY_GNN_WAREHOUSE_KIND", "bigquery")
    wh = WarehouseResource().get()
    bq = YAML["warehouse"]["bigquery"]
    assert (wh._project, wh.company_dataset, wh.location) == (bq["project"],
                                                              bq["company_dataset"], "US")
    assert wh.use_storage_api is False
    wh = WarehouseResource(bq_use_storage_api=True, bq_project="other").get()
    assert (wh._project, wh.use_storage_api) == ("other", True)


def test_local_instance_needs_no_dagster_home_variable(clean_env: Path, monkeypatch) -> None:
    import os

    from holley_gnn_assets.commands.runner import local_instance

    instance = local_instance()
    try:
        assert Path(instance.root_directory) == clean_env.resolve() / "dagster_home"
        assert "DAGSTER_HOME" not in os.environ
    finally:
        instance.dispose()


def test_cli_names_a_missing_configured_warehouse(clean_env: Path, monkeypatch, tmp_path):
    from holley_gnn_assets.commands.cli import _ensure_warehouse

    monkeypatch.setenv("HOLLEY_GNN_WAREHOUSE", str(tmp_path / "none.duckdb"))
    with pytest.raises(SystemExit, match="HOLLEY_GNN_WAREHOUSE=.*none.duckdb does not exist"):
        _ensure_warehouse()


# -- SQL as package data -------------------------------------------------------------------------


def test_pyproject_lists_every_package_and_ships_sql() -> None:
    conf = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(p.parent.relative_to(REPO).parts) for p in PACKAGE.rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert set(conf["packages"]) == on_disk | {"holley_gnn_assets.sql"}
    assert conf["package-dir"] == {"holley_gnn_assets.sql": "sql"}
    assert "**/*.sql" in conf["package-data"]["holley_gnn_assets.sql"]
    assert settings_mod.SQL_DIR == REPO / "sql"  # a source checkout reads the repository's sql/


@pytest.mark.slow
def test_an_installed_wheel_finds_its_sql(tmp_path: Path) -> None:
    """Build the wheel from a copy of the project, install it, load SQL through the package."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("holley_gnn_assets", "sql"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "w"),
                    str(src)], check=True, timeout=300, capture_output=True)
    (wheel,) = (tmp_path / "w").glob("*.whl")
    target = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, timeout=300, capture_output=True)
    shipped = sorted(str(p.relative_to(target / "holley_gnn_assets" / "sql"))
                     for p in (target / "holley_gnn_assets" / "sql").rglob("*.sql"))
    in_repo = sorted(str(p.relative_to(REPO / "sql")) for p in (REPO / "sql").rglob("*.sql"))
    assert shipped == in_repo
    probe = ("from holley_gnn_assets.config import settings; "
             "from holley_gnn_assets.warehouse.sql import load_sql; print(settings.SQL_DIR); "
             "print(len(load_sql('gnn/export_nodes.sql')))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, check=True, timeout=120,
                         capture_output=True, text=True,
                         env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin",
                              "HOLLEY_GNN_HOME": str(tmp_path / "home")}).stdout.split()
    assert out[0] == str(target / "holley_gnn_assets" / "sql")
    assert int(out[1]) > len((REPO / "sql" / "gnn" / "export_nodes.sql").read_text())


def test_the_default_home_does_not_depend_on_the_working_directory(
        clean_env: Path, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HOLLEY_GNN_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    homes = set()
    for cwd in (tmp_path, REPO):
        monkeypatch.chdir(cwd)
        homes.add(load_settings().home)
    assert homes == {(tmp_path / "user" / ".holley_gnn").resolve()}


def test_ui_opens_the_instance_holley_gnn_run_records_into(clean_env: Path) -> None:
    """``holley-gnn ui`` runs ``dagster dev`` on the settings' instance and the checkout's
    workspace, with DAGSTER_HOME set for the child only."""
    from holley_gnn_assets.commands.runner import prepare_instance_dir
    from holley_gnn_assets.commands.ui import dev_command

    settings = load_settings()
    cmd = dev_command(settings, "127.0.0.1", 3999)
    assert cmd[1:4] == ["-m", "dagster", "dev"]
    assert cmd[cmd.index("-w") + 1] == str(REPO / "workspace.yaml")
    assert cmd[-4:] == ["-h", "127.0.0.1", "-p", "3999"]
    path = prepare_instance_dir(settings)
    assert path == clean_env.resolve() / "dagster_home" and (path / "dagster.yaml").is_file()
