"""Runs compared (spec §9): config hash, config diff against the previous run, and a table of
the last runs' cold-tier GNN-SQL delta and decision.

The records are the eval runs of the MLflow experiment (``tags.stage = 'eval'``): each run
tags its ``config_hash``, its ``config_change`` against the run before it and its
``decision``, logs the full validated config as the artifact :data:`CONFIG_ARTIFACT`, and
its per-tier deltas as metrics (``tiers.cold.delta_hit_rate_at_4``,
``tiers.cold.bootstrap_ci95.lo``...).
Nothing here talks to MLflow or Dagster: the caller passes the runs (objects with
``info``/``data`` as ``MlflowClient.search_runs`` returns them) and the previous config.

Keys outside the experiment (where and how it runs, not what it measures) are left out of the
hash and the diff: :data:`NOT_COMPARED`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from holley_gnn_assets.config.settings import flatten

NOT_COMPARED = ("k8s.", "retries.", "schedule.", "alerts.", "output.", "comparison.",
                "regression.", "ab_test.",
                "training.reuse_freed_memory")
"""Prefixes of flattened keys that do not change the experiment: pod sizes, retries, the
schedule, alert delivery, where the output is written, this table's length, the allocator."""
CONFIG_ARTIFACT = "comparison/config.json"
TAG_HASH, TAG_CHANGE, TAG_DECISION = "config_hash", "config_change", "decision"
SHORT_HASH = 10
MAX_CHANGES_SHOWN = 3


def experiment_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The flattened config (``model.hidden_dim``...) without :data:`NOT_COMPARED`, values as
    JSON gives them back (dates as ISO strings, tuples as lists)."""
    flat = json.loads(json.dumps(flatten(dict(cfg)), default=str))
    return {k: v for k, v in sorted(flat.items()) if not k.startswith(NOT_COMPARED)}


def config_hash(cfg: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of :func:`experiment_config` (64 hex digits)."""
    blob = json.dumps(experiment_config(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Keys added, removed and changed (``[old, new]``) from config ``old`` to ``new``."""
    a, b = experiment_config(old), experiment_config(new)
    return {
        "added": {k: b[k] for k in b if k not in a},
        "removed": {k: a[k] for k in a if k not in b},
        "changed": {k: [a[k], b[k]] for k in a if k in b and a[k] != b[k]},
    }


def describe_diff(diff: Mapping[str, Any], limit: int = MAX_CHANGES_SHOWN) -> str:
    """Compact text of a diff: ``model.hidden_dim 256->128; +new.key=1; -old.key``."""
    def text(value: Any) -> str:
        return json.dumps(value) if isinstance(value, list | dict) else str(value)

    parts = [f"{k} {text(o)}->{text(n)}" for k, (o, n) in diff["changed"].items()]
    parts += [f"+{k}={text(v)}" for k, v in diff["added"].items()]
    parts += [f"-{k}" for k in diff["removed"]]
    if not parts:
        return "no change"
    more = f" (+{len(parts) - limit} more)" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more


def tier_deltas(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """GNN - SQL Hit Rate@4 per tier with its clustered 95% interval (None where unmeasured)."""
    return {tier: {"n_users": block.get("n_users"), "delta": block.get("delta_hit_rate@4"),
                   "ci95": list(block.get("bootstrap_ci95") or [None, None])}
            for tier, block in report.get("tiers", {}).items()}


def metric_tier_deltas(metrics: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """:func:`tier_deltas` read back from a run's MLflow metrics
    (``tiers.cold.delta_hit_rate_at_4``, ``tiers.cold.bootstrap_ci95.lo``...)."""
    names = [k.split(".") for k in metrics]
    tiers = sorted(p[1] for p in names if len(p) == 3 and p[0] == "tiers"
                   and p[2] == "delta_hit_rate_at_4")
    m = {k.removeprefix("tiers."): v for k, v in metrics.items()}
    return {t: {"n_users": m.get(f"{t}.n_users"), "delta": m.get(f"{t}.delta_hit_rate_at_4"),
                "ci95": [m.get(f"{t}.bootstrap_ci95.lo"), m.get(f"{t}.bootstrap_ci95.hi")]}
            for t in tiers}


@dataclass(frozen=True)
class RunRecord:
    """One eval run as the history table shows it; None where the run did not record it."""

    run_id: str
    name: str
    started: dt.datetime
    config_hash: str | None
    config_change: str | None
    decision: str | None
    tiers: dict[str, dict[str, Any]]

    @classmethod
    def from_run(cls, run: Any) -> RunRecord:
        """From an MLflow ``Run`` (its ``info`` and ``data``)."""
        tags = run.data.tags
        return cls(
            run_id=run.info.run_id, name=run.info.run_name or run.info.run_id[:8],
            started=dt.datetime.fromtimestamp(run.info.start_time / 1000, dt.UTC),
            config_hash=tags.get(TAG_HASH), config_change=tags.get(TAG_CHANGE),
            decision=tags.get(TAG_DECISION), tiers=metric_tier_deltas(run.data.metrics))

    def missing(self) -> list[str]:
        """The comparison records this run lacks (a run from before comparisons, or one whose
        logging failed)."""
        return [name for name, value in ((TAG_HASH, self.config_hash),
                                         (TAG_CHANGE, self.config_change),
                                         (TAG_DECISION, self.decision)) if value is None]


def compare_with_previous(cfg: Mapping[str, Any], previous: RunRecord | None,
                          previous_config: Mapping[str, Any] | None) -> dict[str, Any]:
    """This run's config hash and its diff against the previous eval run's config.

    ``previous_config`` is that run's :data:`CONFIG_ARTIFACT` (None when it has none): then
    nothing is compared and ``change`` says why.
    """
    out: dict[str, Any] = {"config_hash": config_hash(cfg), "previous_run": None, "diff": None}
    if previous is None:
        return {**out, "change": "first run: nothing to compare"}
    out["previous_run"] = {"run_id": previous.run_id, "name": previous.name,
                           "config_hash": previous.config_hash}
    if previous_config is None:
        return {**out, "change": f"not compared: previous run {previous.name} has no "
                                 f"config record ({CONFIG_ARTIFACT})"}
    out["diff"] = config_diff(previous_config, cfg)
    return {**out, "change": describe_diff(out["diff"])}


def _interval(tier: Mapping[str, Any] | None) -> str:
    delta = (tier or {}).get("delta")
    if delta is None:
        return "n/a"
    lo, hi = tier["ci95"]
    bounds = "n/a" if lo is None or hi is None else f"{lo:+.4f}, {hi:+.4f}"
    return f"{delta:+.4f} [{bounds}]"


def history_frame(current: RunRecord, previous: Sequence[RunRecord], n: int) -> pd.DataFrame:
    """The last ``n`` runs, newest (this run) first: date, run, config hash, change, cold delta
    with its 95% interval, decision. A run without its records says so in ``config change``."""
    rows = []
    for rec in [current, *previous][:n]:
        lacks = rec.missing()
        change = rec.config_change if not lacks else \
            f"not compared: run has no {', '.join(lacks)} record"
        rows.append({
            "date (UTC)": rec.started.strftime("%Y-%m-%d %H:%M"),
            "run": rec.name + (" (this run)" if rec is current else ""),
            "config hash": rec.config_hash[:SHORT_HASH] if rec.config_hash else "n/a",
            "config change vs previous run": change,
            "cold delta HR@4 [95% CI]": _interval(rec.tiers.get("cold")),
            "decision": rec.decision or "n/a",
        })
    return pd.DataFrame(rows)


def history_markdown(frame: pd.DataFrame) -> str:
    """The history table as Markdown (``|`` in cells escaped)."""
    cells = frame.map(lambda v: str(v).replace("|", r"\|"))
    return "## Runs compared (newest first)\n\n" + cells.to_markdown(index=False) + "\n"
