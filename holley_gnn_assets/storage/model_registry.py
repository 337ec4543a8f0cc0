"""Which trained model scoring uses: the MLflow Model Registry.

Every trained model is a registered version of ``REGISTERED_MODEL`` whose source is the MLflow
model (pyfunc flavour, signature, weights and graph snapshot: ``model/mlflow_model.py``) logged
under ``model`` in its training run, tagged with the Dagster run key, the artifact key of its
graph snapshot, the config hash and, once evaluated, its cold Hit Rate@4. The alias
``champion`` names the version scoring uses (``models:/NAME@champion``).
Promotion (spec §10) moves the alias only when the candidate was measured (cold test users
exist) and its cold Hit Rate@4 is not worse than the champion's by more than a tolerance; the
caller moves it only after the output table was written, so the two never disagree. Rollback
moves the alias back to the version it replaced. Works on MLflow's local SQLite store and on
an MLflow server alike.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from holley_gnn_assets.model.mlflow_model import (
    ARTIFACT_PATH,
    HeteroGATRecommender,
    load_recommender,
)

REGISTERED_MODEL = "holley-gnn-heterogat"
CHAMPION = "champion"
_TAGS = ("run_id", "graph_key", "fingerprint", "config_hash", "mlflow_run_id",
         "best_val_mrr", "cold_hr4", "previous_champion", "registered_at", "promoted_at",
         "lookalike_lift_weight", "lookalike_lift_neighbours")


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a candidate should become the champion, and why."""

    promoted: bool
    reason: str
    candidate_cold_hr4: float | None
    current_cold_hr4: float | None


class ModelRegistry:
    """Registered versions of the GNN and the ``champion`` alias, over an MLflow client."""

    def __init__(self, client: MlflowClient, name: str = REGISTERED_MODEL) -> None:
        self.client = client
        self.name = name

    def _ensure_model(self) -> None:
        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            try:
                self.client.create_registered_model(
                    self.name, description="HeteroGAT over the vehicle-fitment graph")
            except MlflowException:  # created meanwhile by another process
                self.client.get_registered_model(self.name)

    def _record(self, mv: Any) -> dict[str, Any]:
        tags = dict(mv.tags or {})
        rec: dict[str, Any] = {"version": str(mv.version), "source": mv.source,
                               "aliases": list(getattr(mv, "aliases", []) or [])}
        for key in _TAGS:
            if key in tags:
                rec[key] = tags[key]
        for key in ("cold_hr4", "best_val_mrr", "lookalike_lift_weight"):  # "none": no figure
            if key in rec:
                rec[key] = None if rec[key] == "none" else float(rec[key])
        if "lookalike_lift_neighbours" in rec:
            rec["lookalike_lift_neighbours"] = int(rec["lookalike_lift_neighbours"])
        return rec

    def register(self, mlflow_run_id: str, run_key: str, info: dict[str, Any],
                 artifact_path: str = ARTIFACT_PATH) -> dict[str, Any]:
        """Register the MLflow model logged under ``artifact_path`` of ``mlflow_run_id`` as a
        version tagged with the Dagster run key and ``info`` (artifact keys, hashes, metrics)."""
        self._ensure_model()
        source = f"{self.client.get_run(mlflow_run_id).info.artifact_uri}/{artifact_path}"
        tags = {"run_id": run_key, "mlflow_run_id": mlflow_run_id,
                "registered_at": dt.datetime.now(dt.UTC).isoformat(),
                **{k: str(v) for k, v in info.items() if k in _TAGS}}
        mv = self.client.create_model_version(self.name, source, run_id=mlflow_run_id,
                                              tags=tags)
        return self._record(mv)

    def versions(self) -> list[dict[str, Any]]:
        """Every registered version, newest first."""
        try:
            found = self.client.search_model_versions(f"name = '{self.name}'")
        except MlflowException:
            return []
        return sorted((self._record(mv) for mv in found), key=lambda r: -int(r["version"]))

    def latest(self) -> dict[str, Any] | None:
        """The newest registered version."""
        versions = self.versions()
        return versions[0] if versions else None

    def champion(self) -> dict[str, Any] | None:
        """The version the ``champion`` alias points at (the one scoring uses), or None."""
        try:
            return self._record(self.client.get_model_version_by_alias(self.name, CHAMPION))
        except MlflowException:
            return None

    def model_for_scoring(self) -> dict[str, Any] | None:
        """The champion, else the newest version (before any promotion)."""
        return self.champion() or self.latest()

    def uri(self, record: dict[str, Any]) -> str:
        """``models:/NAME@champion`` for the champion, else ``models:/NAME/VERSION``."""
        if CHAMPION in record["aliases"]:
            return f"models:/{self.name}@{CHAMPION}"
        return f"models:/{self.name}/{record['version']}"

    def download(self, record: dict[str, Any], dst: str | Path) -> Path:
        """Download a version's MLflow model folder into ``dst``; FileNotFoundError for a
        version registered without one (before models were logged with a flavour)."""
        uri = self.client.get_model_version_download_uri(self.name, record["version"])
        out = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))
        if not (out / "MLmodel").is_file():
            raise FileNotFoundError(
                f"model version {record['version']} of {self.name} has no MLflow model "
                f"(no MLmodel at {uri}): it predates flavoured models; retrain to register one")
        return out

    def load(self, record: dict[str, Any], dst: str | Path) -> HeteroGATRecommender:
        """The version's pyfunc model (downloaded into ``dst``), ready to ``predict``; its
        ``model`` and ``bundle`` are the HeteroGAT and the graph it was trained on."""
        return load_recommender(self.download(record, dst))

    def decide(self, version: str, cold_hr4: float | None, tolerance: float) -> PromotionDecision:
        """Whether ``version`` should become the champion; no side effect but the version's
        ``cold_hr4`` tag (its measurement, or ``none``)."""
        self.client.set_model_version_tag(self.name, version, "cold_hr4",
                                          "none" if cold_hr4 is None else str(cold_hr4))
        current = self.champion()
        current_hr = None if current is None else current.get("cold_hr4")
        if current is not None and current["version"] == str(version):
            return PromotionDecision(True, "already the champion", cold_hr4, current_hr)
        if cold_hr4 is None:
            return PromotionDecision(False, "no cold test users: nothing measured, not promoted "
                                     "and the output table is not written", None, current_hr)
        if current_hr is not None and cold_hr4 < current_hr - tolerance:
            return PromotionDecision(
                False,
                f"cold HR@4 {cold_hr4:.4f} is worse than the champion's {current_hr:.4f} "
                f"by more than {tolerance}: previous model stays",
                cold_hr4, current_hr,
            )
        reason = ("first measured model" if current is None else
                  f"cold HR@4 {cold_hr4:.4f} vs champion {current_hr}: within tolerance or better")
        return PromotionDecision(True, reason, cold_hr4, current_hr)

    def promote(self, version: str) -> dict[str, Any]:
        """Move the ``champion`` alias to ``version`` (remembering the one it replaces)."""
        current = self.champion()
        if current is not None and current["version"] != str(version):
            self.client.set_model_version_tag(self.name, version, "previous_champion",
                                              current["version"])
        self.client.set_model_version_tag(self.name, version, "promoted_at",
                                          dt.datetime.now(dt.UTC).isoformat())
        self.client.set_registered_model_alias(self.name, CHAMPION, version)
        return self.champion() or {}

    def rollback(self) -> dict[str, Any]:
        """Move ``champion`` back to the version the current champion replaced."""
        current = self.champion()
        if current is None or not current.get("previous_champion"):
            raise ValueError(f"{self.name}: no previous champion to roll back to")
        self.client.set_registered_model_alias(self.name, CHAMPION, current["previous_champion"])
        return self.champion() or {}
