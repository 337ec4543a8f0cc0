"""Artifact storage resource: graph snapshots, checkpoints, embeddings, the model registry.

``HOLLEY_GNN_ARTIFACTS`` picks the store: ``gs://bucket/prefix`` in production (every pod sees
the same artifacts), a local folder otherwise (default ``HOLLEY_GNN_HOME/artifacts``).
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource

from holley_gnn_assets.core.gcs_storage import ArtifactStore, artifact_store
from holley_gnn_assets.core.model_registry import ModelRegistry
from holley_gnn_assets.settings import home_dir


class ArtifactsResource(ConfigurableResource):
    """Where artifacts live, plus a local working cache for files fetched from there."""

    location: str = ""

    def store(self) -> ArtifactStore:
        """The configured store."""
        loc = self.location or os.environ.get("HOLLEY_GNN_ARTIFACTS") or str(
            home_dir() / "artifacts")
        return artifact_store(loc)

    def registry(self) -> ModelRegistry:
        """The model registry kept in the store."""
        return ModelRegistry(self.store())

    def work_dir(self, *parts: str) -> Path:
        """A local working folder under the home (pod-local in production)."""
        path = home_dir().joinpath("work", *parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def fetch(self, key: str) -> Path:
        """Copy an artifact to the local cache and return its path."""
        local = home_dir() / "cache" / key
        local.parent.mkdir(parents=True, exist_ok=True)
        return Path(self.store().get_file(key, local))

    def put_dir(self, local_dir: Path, prefix: str) -> list[str]:
        """Upload every file of a folder under ``prefix``."""
        store = self.store()
        return [store.put_file(p, f"{prefix}/{p.name}") for p in sorted(local_dir.iterdir())
                if p.is_file()]

    def fetch_dir(self, prefix: str) -> Path:
        """Download every artifact under ``prefix`` into one local folder."""
        store = self.store()
        local = home_dir() / "cache" / prefix
        local.mkdir(parents=True, exist_ok=True)
        for key in store.list(prefix + "/"):
            store.get_file(key, local / key.rsplit("/", 1)[-1])
        return local
