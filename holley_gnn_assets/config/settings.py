"""Settings: ``gnn_config.yaml`` plus the environment, validated once into one frozen object.

This is the only module that reads the environment or the config file. ``get_settings()``
returns the :class:`Settings` of the current environment (cached per environment and config
file); ``load_settings(env=..., overrides=...)`` builds one explicitly (tests, tools).

Where defaults live: every config value has its one default in ``gnn_config.yaml`` (the schema
in ``config/schema.py`` has none); every environment-only value (home, executor, IO manager,
...) has its one default below (``DEFAULT_*``). Environment variables that override a config
value are listed in ``ENV_CONFIG_KEYS``; explicit ``overrides`` win over both.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from holley_gnn_assets.config.schema import PipelineConfig
from holley_gnn_assets.config.time_windows import TimeWindows  # noqa: F401  (re-exported)
from holley_gnn_assets.config.validation import (
    SettingsError,
    describe_errors,
    merge_sections,
)
from holley_gnn_assets.config.webhook import validate_webhook_url

PACKAGE_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = PACKAGE_DIR.parent
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent / "gnn_config.yaml"
# An installed wheel ships sql/ as package data (holley_gnn_assets/sql/); a source checkout
# (editable install, PYTHONPATH) reads the repository's top-level sql/.
SQL_DIR = PACKAGE_DIR / "sql" if (PACKAGE_DIR / "sql").is_dir() else REPO_DIR / "sql"

ENV_WAREHOUSE = "HOLLEY_GNN_WAREHOUSE"
ENV_HOME = "HOLLEY_GNN_HOME"
ENV_AS_OF = "HOLLEY_GNN_AS_OF"
ENV_CONFIG = "HOLLEY_GNN_CONFIG"
ENV_WAREHOUSE_KIND = "HOLLEY_GNN_WAREHOUSE_KIND"
ENV_BQ_PROJECT = "HOLLEY_GNN_BQ_PROJECT"
ENV_BQ_OUTPUT_PROJECT = "HOLLEY_GNN_BQ_OUTPUT_PROJECT"
ENV_BQ_STORAGE_API = "HOLLEY_GNN_BQ_STORAGE_API"
ENV_EXECUTOR = "HOLLEY_GNN_EXECUTOR"
ENV_IO = "HOLLEY_GNN_IO"
ENV_GCS_BUCKET = "HOLLEY_GNN_GCS_BUCKET"
ENV_GCS_PREFIX = "HOLLEY_GNN_GCS_PREFIX"
ENV_ARTIFACTS = "HOLLEY_GNN_ARTIFACTS"
ENV_GPU_IMAGE = "HOLLEY_GNN_GPU_IMAGE"
ENV_MLFLOW_TRACKING_URI = "MLFLOW_TRACKING_URI"
ENV_ALERT_WEBHOOK = "HOLLEY_GNN_ALERT_WEBHOOK"
ENV_RETRAIN_CRON = "HOLLEY_GNN_RETRAIN_CRON"
ENV_START_AUTOMATION = "HOLLEY_GNN_START_AUTOMATION"
ENV_DAGSTER_HOME = "DAGSTER_HOME"
ENV_FAULT_AT = "HOLLEY_GNN_FAULT_AT"
"""Tests only: kill the process (SIGKILL) at this point of the publish step."""
FAULT_POINTS = ("before_table", "after_table", "after_alias")
ENV_VARS = (
    ENV_WAREHOUSE, ENV_HOME, ENV_AS_OF, ENV_CONFIG, ENV_WAREHOUSE_KIND, ENV_BQ_PROJECT,
    ENV_BQ_OUTPUT_PROJECT, ENV_BQ_STORAGE_API, ENV_EXECUTOR, ENV_IO, ENV_GCS_BUCKET,
    ENV_GCS_PREFIX, ENV_ARTIFACTS, ENV_GPU_IMAGE, ENV_MLFLOW_TRACKING_URI, ENV_ALERT_WEBHOOK,
    ENV_RETRAIN_CRON, ENV_START_AUTOMATION, ENV_DAGSTER_HOME, ENV_FAULT_AT,
)  # fmt: skip
"""Every environment variable the package reads (README, "Configuration")."""

ENV_AS_IS = (ENV_MLFLOW_TRACKING_URI, ENV_ARTIFACTS, ENV_GCS_BUCKET, ENV_ALERT_WEBHOOK)
"""Environment-only values the settings keep as they are (when given without surrounding
whitespace): a resource can read them from the environment itself."""

ENV_CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    ENV_AS_OF: ("time", "as_of"),
    ENV_WAREHOUSE_KIND: ("warehouse", "kind"),
    ENV_BQ_PROJECT: ("warehouse", "bigquery", "project"),
    ENV_BQ_OUTPUT_PROJECT: ("warehouse", "bigquery", "output_project"),
    ENV_BQ_STORAGE_API: ("warehouse", "bigquery", "use_storage_api"),
    ENV_RETRAIN_CRON: ("schedule", "retrain_cron"),
    ENV_START_AUTOMATION: ("schedule", "start_running"),
}
"""Environment variables that override one config key each."""

DEFAULT_HOME = "~/.holley_gnn"
"""In the user's home directory: the same home (and Dagster instance) from any directory."""
DEFAULT_EXECUTOR = "in_process"
DEFAULT_IO = "local"
DEFAULT_GCS_PREFIX = "holley-gnn"
EXECUTORS = ("in_process", "multiprocess", "k8s")
IO_MANAGERS = ("local", "gcs")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}

Executor = Literal["in_process", "multiprocess", "k8s"]
IoManager = Literal["local", "gcs"]


class Settings(BaseModel):
    """The validated config (``config``, ``cfg``) and the runtime values from the environment."""

    model_config = ConfigDict(frozen=True)

    config: PipelineConfig
    config_path: Path
    home: Path
    duckdb_path: Path
    duckdb_path_from_env: bool
    executor: Executor
    io_manager: IoManager
    gcs_bucket: str | None
    gcs_prefix: str
    artifacts: str
    gpu_image: str | None
    mlflow_tracking_uri: str | None
    alert_webhook: str | None = Field(repr=False)  # may carry a token: never in a repr
    dagster_home_env: Path | None
    fault_at: str | None = None  # HOLLEY_GNN_FAULT_AT (tests): where the publish step is killed
    from_env: frozenset[str] = frozenset()
    """Process environment variables whose values these settings hold as they are (the code
    location's resources name them as ``EnvVar``); empty for settings built from a given env."""

    @property
    def cfg(self) -> dict[str, Any]:
        """The validated config as a plain dict (a fresh copy each time; dates as strings)."""
        return self.config.model_dump(mode="json")

    @property
    def warehouse_kind(self) -> str:
        """``duckdb`` or ``bigquery``."""
        return self.config.warehouse.kind

    @property
    def as_of(self) -> dt.date | None:
        """The as-of date fixed by HOLLEY_GNN_AS_OF or ``time.as_of``, else None."""
        return self.config.time.as_of

    @property
    def tracking_uri(self) -> str:
        """``MLFLOW_TRACKING_URI``, else the SQLite store under the home."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def mlflow_artifact_location(self) -> str | None:
        """Artifact root for new experiments of the local store; None for a tracking server."""
        return None if self.mlflow_tracking_uri else (self.home / "mlartifacts").as_uri()

    @property
    def dagster_home(self) -> Path:
        """``DAGSTER_HOME``, else ``<home>/dagster_home``."""
        return self.dagster_home_env or self.home / "dagster_home"


def environment_with(extra: Mapping[str, str]) -> dict[str, str]:
    """The process environment plus ``extra`` (for a child process such as ``dagster dev``)."""
    return {**os.environ, **extra}


# -- building ---------------------------------------------------------------------------------


def _env_snapshot(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The package's variables from ``env`` (default: the process environment), empty = unset."""
    source = os.environ if env is None else env
    return {k: source[k] for k in ENV_VARS if source.get(k, "").strip()}


def _read_yaml(path: Path, where: str) -> dict[str, Any]:
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise SettingsError(f"{where}: config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{where}: {path} is not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{where}: {path} does not hold a mapping of config sections")
    return data


def _set_path(cfg: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    node = cfg
    for key in keys[:-1]:
        if key not in node or not isinstance(node[key], dict):
            node[key] = {}
        node = node[key]
    node[keys[-1]] = value


def _parse_bool(name: str, raw: str, problems: list[str]) -> bool | None:
    text = raw.strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    problems.append(f"{name}={raw!r}: expected true or false (also 1/0, yes/no)")
    return None


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...],
            problems: list[str]) -> str:
    raw = env.get(name)
    value = (raw or default).strip().lower()
    if value not in choices:
        expected = ", ".join(choices[:-1]) + f" or {choices[-1]}"
        problems.append(f"{name}={raw!r}: expected {expected}")
        return default
    return value


def load_settings(env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None,
                  config_path: str | Path | None = None,
                  process_env: bool | None = None) -> Settings:
    """Build and validate settings from the YAML, ``env`` (default: os.environ), ``overrides``.

    Precedence: the YAML file < environment variables < ``overrides`` (merged section by
    section; a mapping value such as ``k8s.node_selector`` is replaced whole). Raises
    :class:`SettingsError` listing every bad value, each named by its variable or config key.
    ``process_env`` (default: ``env`` is None) says that ``env`` is the process environment.
    """
    process_env = env is None if process_env is None else process_env
    env = _env_snapshot(env)
    problems: list[str] = []
    where = "config path argument" if config_path else (
        ENV_CONFIG if env.get(ENV_CONFIG) else "packaged config")
    path = Path(config_path or env.get(ENV_CONFIG) or DEFAULT_CONFIG_PATH).expanduser().resolve()
    raw = _read_yaml(path, where)

    sources: dict[tuple[str, ...], str] = {}
    for name, keys in ENV_CONFIG_KEYS.items():
        if name in env:
            value: Any = env[name].strip()
            if name in (ENV_BQ_STORAGE_API, ENV_START_AUTOMATION):
                value = _parse_bool(name, env[name], problems)
                if value is None:
                    continue
            elif name == ENV_WAREHOUSE_KIND:
                value = value.lower()
            _set_path(raw, keys, value)
            sources[keys] = name
    if overrides:
        raw = merge_sections(raw, dict(overrides), PipelineConfig)
        for dotted_key in flatten(dict(overrides)):
            sources.pop(tuple(dotted_key.split(".")), None)
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        problems += describe_errors(exc, (), sources, env)
        config = None

    executor = _choice(env, ENV_EXECUTOR, DEFAULT_EXECUTOR, EXECUTORS, problems)
    io_manager = _choice(env, ENV_IO, DEFAULT_IO, IO_MANAGERS, problems)
    bucket = env.get(ENV_GCS_BUCKET, "").strip() or None
    if io_manager == "gcs" and bucket is None:
        problems.append(f"{ENV_GCS_BUCKET}: required when {ENV_IO}=gcs")
    if bucket is not None and ("/" in bucket or bucket.startswith("gs:")):
        problems.append(f"{ENV_GCS_BUCKET}={bucket!r}: give the bare bucket name, e.g. 'my-bucket'")
    gpu_image = env.get(ENV_GPU_IMAGE, "").strip() or None
    if gpu_image is not None and any(c.isspace() for c in gpu_image):
        problems.append(f"{ENV_GPU_IMAGE}={gpu_image!r}: an image reference has no whitespace")
    webhook = env.get(ENV_ALERT_WEBHOOK, "").strip() or None
    if webhook is not None:
        try:
            webhook = validate_webhook_url(webhook, ENV_ALERT_WEBHOOK)
        except ValueError as exc:  # the message names the variable, never the URL's secret part
            problems.append(str(exc))
    dagster_home = Path(env[ENV_DAGSTER_HOME]).expanduser() if ENV_DAGSTER_HOME in env else None
    if dagster_home is not None and not dagster_home.is_absolute():
        problems.append(f"{ENV_DAGSTER_HOME}={str(dagster_home)!r}: must be an absolute path")

    fault_at = env.get(ENV_FAULT_AT, "").strip() or None
    if fault_at is not None and fault_at not in FAULT_POINTS:
        problems.append(f"{ENV_FAULT_AT}={fault_at!r}: expected one of {', '.join(FAULT_POINTS)}")
    if problems:
        raise SettingsError(f"invalid settings (config {path}):\n  " + "\n  ".join(problems))
    home = Path(env.get(ENV_HOME, DEFAULT_HOME)).expanduser().resolve()
    duckdb_env = env.get(ENV_WAREHOUSE)
    as_is = {k for k in (*sources.values(), *ENV_AS_IS) if env.get(k, "").strip() == env.get(k)}
    return Settings(
        config=config,
        config_path=path,
        home=home,
        duckdb_path=Path(duckdb_env).expanduser().resolve() if duckdb_env
        else home / "warehouse_demo.duckdb",
        duckdb_path_from_env=bool(duckdb_env),
        executor=executor,
        io_manager=io_manager,
        gcs_bucket=bucket,
        gcs_prefix=env.get(ENV_GCS_PREFIX, DEFAULT_GCS_PREFIX).strip().strip("/"),
        artifacts=env.get(ENV_ARTIFACTS, "").strip() or str(home / "artifacts"),
        gpu_image=gpu_image,
        mlflow_tracking_uri=env.get(ENV_MLFLOW_TRACKING_URI, "").strip() or None,
        alert_webhook=webhook,
        dagster_home_env=dagster_home,
        fault_at=fault_at,
        from_env=frozenset(as_is if process_env else ()),
    )


LOCAL_RUN_KEEPS = (ENV_CONFIG, ENV_AS_OF)
"""What a local run (``settings_for_local_run``) keeps of the environment: the config file and
the as-of date; every deployment value (warehouse kind, stores, executor) is local there."""


def settings_for_local_run(home: Path, warehouse: Path,
                           overrides: Mapping[str, Any] | None = None,
                           env: Mapping[str, str] | None = None) -> Settings:
    """Settings of a run on a private home and DuckDB file (``holley-gnn variant``): the config
    of ``env`` (default: the process environment; only ``LOCAL_RUN_KEEPS``) plus ``overrides``,
    the in-process executor, the local IO manager and MLflow store under ``home``."""
    source = _env_snapshot(env)
    kept = {k: source[k] for k in LOCAL_RUN_KEEPS if k in source}
    kept |= {ENV_HOME: str(home), ENV_WAREHOUSE: str(warehouse), ENV_WAREHOUSE_KIND: "duckdb"}
    return load_settings(env=kept, overrides=overrides)


@functools.lru_cache(maxsize=16)
def _cached_settings(config_path: str | None, env_items: tuple[tuple[str, str], ...],
                     config_mtime_ns: int) -> Settings:
    del config_mtime_ns  # part of the cache key only: an edited config file is read again
    return load_settings(env=dict(env_items), config_path=config_path, process_env=True)


def get_settings(config_path: str | Path | None = None) -> Settings:
    """The settings of the current environment (and config file), validated once and cached.

    The cache key is the package's environment variables and the config file's path and
    modification time, so a changed variable gives freshly validated settings.
    """
    env = _env_snapshot()
    path = Path(config_path or env.get(ENV_CONFIG) or DEFAULT_CONFIG_PATH)
    try:
        mtime = path.expanduser().stat().st_mtime_ns
    except OSError:
        mtime = -1  # load_settings reports the missing file
    return _cached_settings(str(config_path) if config_path else None,
                            tuple(sorted(env.items())), mtime)


def clear_settings_cache() -> None:
    """Forget cached settings (the next ``get_settings()`` validates again)."""
    _cached_settings.cache_clear()


# -- helpers kept for the rest of the package ---------------------------------------------------


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> dict:
    """The validated config dict: YAML (``path``, HOLLEY_GNN_CONFIG or packaged), env, overrides."""
    if path is None and not overrides:
        return get_settings().cfg
    return load_settings(overrides=overrides, config_path=path).cfg


def deep_merge(base: dict, extra: dict) -> dict:
    """Return a copy of ``base`` with ``extra`` merged in recursively."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def flatten(cfg: dict, prefix: str = "") -> dict[str, Any]:
    """Flatten nested config into dotted keys (for MLflow params)."""
    flat: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def parse_date(value: str, what: str) -> dt.date:
    """Parse ``YYYY-MM-DD`` with an error naming the setting."""
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise ValueError(f"{what}={value!r} is not a date in YYYY-MM-DD form") from exc


def home_dir() -> Path:
    """The artifact home of the current settings (created on first use)."""
    path = get_settings().home
    path.mkdir(parents=True, exist_ok=True)
    return path


def warehouse_path() -> Path:
    """The DuckDB warehouse path (HOLLEY_GNN_WAREHOUSE, else the demo warehouse in the home)."""
    return get_settings().duckdb_path


def warehouse_kind() -> str:
    """``duckdb`` or ``bigquery`` (HOLLEY_GNN_WAREHOUSE_KIND, else ``warehouse.kind``)."""
    return get_settings().warehouse_kind


def as_of_override() -> dt.date | None:
    """The as-of date fixed by HOLLEY_GNN_AS_OF or ``time.as_of``, or None when neither is set."""
    return get_settings().as_of
