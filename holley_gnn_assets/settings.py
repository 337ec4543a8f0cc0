"""Settings: the YAML config plus the environment (the one place that reads either)."""

from __future__ import annotations

import copy
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
DEFAULT_CONFIG_PATH = PACKAGE_DIR / "gnn_config.yaml"
SQL_DIR = Path(os.environ.get("HOLLEY_GNN_SQL_DIR", REPO_DIR / "sql"))


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> dict:
    """Load the YAML config (``HOLLEY_GNN_CONFIG`` or the packaged default) plus overrides."""
    path = Path(path or os.environ.get("HOLLEY_GNN_CONFIG") or DEFAULT_CONFIG_PATH)
    with open(path) as fh:
        cfg = yaml.safe_load(fh)
    if overrides:
        cfg = deep_merge(cfg, overrides)
    return cfg


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


@dataclass(frozen=True)
class TimeWindows:
    """The as-of date T, cutoff C = T - test_window_days, and the derived windows."""

    as_of: dt.date
    cutoff: dt.date
    interaction_start: dt.date
    purchase_exclusion_days: int
    decay_half_life_days: float

    @classmethod
    def from_config(cls, cfg: dict, as_of: dt.date) -> TimeWindows:
        t = cfg["time"]
        return cls(
            as_of=as_of,
            cutoff=as_of - dt.timedelta(days=int(t["test_window_days"])),
            interaction_start=dt.date.fromisoformat(str(t["interaction_start"])),
            purchase_exclusion_days=int(t["purchase_exclusion_days"]),
            decay_half_life_days=float(t["decay_half_life_days"]),
        )


def parse_date(value: str, what: str) -> dt.date:
    """Parse ``YYYY-MM-DD`` with an error naming the setting."""
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise ValueError(f"{what}={value!r} is not a date in YYYY-MM-DD form") from exc


def home_dir() -> Path:
    """The artifact home (created on first use)."""
    path = Path(os.environ.get("HOLLEY_GNN_HOME", ".holley_gnn")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def warehouse_path() -> Path:
    """The configured DuckDB warehouse path (default: the demo warehouse under the home)."""
    env = os.environ.get("HOLLEY_GNN_WAREHOUSE")
    return Path(env).resolve() if env else home_dir() / "warehouse_demo.duckdb"


def warehouse_kind() -> str:
    """``duckdb`` or ``bigquery``."""
    kind = os.environ.get("HOLLEY_GNN_WAREHOUSE_KIND", "duckdb").strip().lower()
    if kind not in {"duckdb", "bigquery"}:
        raise ValueError(f"HOLLEY_GNN_WAREHOUSE_KIND={kind!r}: expected 'duckdb' or 'bigquery'")
    return kind


def as_of_override() -> dt.date | None:
    """``HOLLEY_GNN_AS_OF`` parsed, or None when unset."""
    value = os.environ.get("HOLLEY_GNN_AS_OF")
    return parse_date(value, "HOLLEY_GNN_AS_OF") if value else None
