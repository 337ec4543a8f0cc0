"""Which trained model scoring uses: a small JSON registry in the artifact store.

The registry lives beside the checkpoints (local folder or ``gs://``), so every pod sees it:
``gnn/registry/latest.json`` names the newest trained model, ``gnn/registry/promoted.json``
the one scoring uses. Promotion (spec §10): a new model replaces the
promoted one only if its cold Hit Rate@4 is not worse by more than a tolerance; the first model
is promoted when it has been evaluated. Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from holley_gnn_assets.storage.artifact_store import ArtifactStore, checkpoint_key

REGISTRY_PREFIX = "gnn/registry"


@dataclass(frozen=True)
class PromotionDecision:
    """Outcome of a promotion attempt."""

    promoted: bool
    reason: str
    candidate_cold_hr4: float | None
    current_cold_hr4: float | None


class ModelRegistry:
    """Tracks the latest trained and the promoted model (records hold artifact keys)."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    def _read(self, name: str) -> dict[str, Any] | None:
        key = f"{REGISTRY_PREFIX}/{name}"
        if not self.store.exists(key):
            return None
        with tempfile.TemporaryDirectory() as tmp:
            path = self.store.get_file(key, Path(tmp) / name)
            return json.loads(Path(path).read_text())

    def _write(self, name: str, payload: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_text(json.dumps(payload, indent=2, default=str))
            self.store.put_file(path, f"{REGISTRY_PREFIX}/{name}")

    @staticmethod
    def model_key(run_id: str) -> str:
        """Artifact key of the model trained by ``run_id`` (spec §9)."""
        return checkpoint_key(run_id)

    def record_trained(self, run_id: str, info: dict[str, Any]) -> None:
        """Remember the newest trained model."""
        self._write("latest.json", {"run_id": run_id, "model_key": self.model_key(run_id),
                                    "trained_at": dt.datetime.now(dt.UTC).isoformat(), **info})

    def latest(self) -> dict[str, Any] | None:
        """The newest trained model's record."""
        return self._read("latest.json")

    def promoted(self) -> dict[str, Any] | None:
        """The promoted model's record (the one scoring uses)."""
        return self._read("promoted.json")

    def model_for_scoring(self) -> dict[str, Any] | None:
        """Promoted model, else the latest trained one (before any evaluation)."""
        return self.promoted() or self.latest()

    def consider(
        self, run_id: str, cold_hr4: float | None, tolerance: float, info: dict[str, Any]
    ) -> PromotionDecision:
        """Promote ``run_id`` unless its cold HR@4 trails the promoted one's by > tolerance."""
        current = self.promoted()
        current_hr = None if current is None else current.get("cold_hr4")
        if current is not None and current.get("run_id") == run_id:
            return PromotionDecision(True, "already the promoted model", cold_hr4, current_hr)
        if cold_hr4 is None:
            return PromotionDecision(False, "no cold-user evaluation: not promoted", None,
                                     current_hr)
        if current_hr is not None and cold_hr4 < current_hr - tolerance:
            return PromotionDecision(
                False,
                f"cold HR@4 {cold_hr4:.4f} is worse than the promoted model's {current_hr:.4f} "
                f"by more than {tolerance}: previous model stays",
                cold_hr4, current_hr,
            )
        self._write("promoted.json", {
            "run_id": run_id, "model_key": self.model_key(run_id), "cold_hr4": cold_hr4,
            "promoted_at": dt.datetime.now(dt.UTC).isoformat(), **info,
        })
        reason = ("first evaluated model" if current is None else
                  f"cold HR@4 {cold_hr4:.4f} vs promoted {current_hr}: within tolerance or better")
        return PromotionDecision(True, reason, cold_hr4, current_hr)
