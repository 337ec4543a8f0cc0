"""IO managers: Parquet/pickle files locally, GCS in production (steps in separate pods)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext
from dagster_gcp.gcs import GCSPickleIOManager, GCSResource

from holley_gnn_assets.settings import Settings
from holley_gnn_assets.storage.artifact_store import GCSArtifactStore


class LocalTablesIOManager(ConfigurableIOManager):
    """Stores asset values under ``base_dir/<asset key>.parquet`` (DataFrames) or ``.pkl``."""

    base_dir: str

    def _stem(self, context: InputContext | OutputContext) -> Path:
        key = context.asset_key.path if context.has_asset_key else [context.name]
        return Path(self.base_dir, *key)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        """Write atomically; a DataFrame becomes Parquet."""
        if obj is None:
            return
        stem = self._stem(context)
        stem.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(obj, pd.DataFrame):
            path = stem.with_suffix(".parquet")
            tmp = path.with_suffix(".parquet.tmp")
            obj.to_parquet(tmp, index=False)
            stale = stem.with_suffix(".pkl")
        else:
            path = stem.with_suffix(".pkl")
            tmp = path.with_suffix(".pkl.tmp")
            with open(tmp, "wb") as fh:
                pickle.dump(obj, fh)
            stale = stem.with_suffix(".parquet")
        os.replace(tmp, path)
        if stale.exists():
            stale.unlink()
        context.add_output_metadata({"path": str(path)})

    def load_input(self, context: InputContext) -> Any:
        """Read what handle_output wrote; a clear error when the upstream was never built."""
        stem = self._stem(context)
        if stem.with_suffix(".parquet").exists():
            return pd.read_parquet(stem.with_suffix(".parquet"))
        if stem.with_suffix(".pkl").exists():
            with open(stem.with_suffix(".pkl"), "rb") as fh:
                return pickle.load(fh)
        raise FileNotFoundError(
            f"no stored value for asset {'/'.join(context.asset_key.path)} under {self.base_dir}:"
            " materialize it first (e.g. `holley-gnn run`)"
        )


def gcs_io_manager(bucket: str, prefix: str = "dagster", project: str | None = None):
    """A configured ``GCSPickleIOManager`` writing under ``gs://bucket/prefix``."""
    if not bucket or "/" in bucket or bucket.startswith("gs:"):
        raise ValueError(f"GCS bucket {bucket!r}: give the bare bucket name, e.g. 'my-bucket'")
    return GCSPickleIOManager(
        gcs=GCSResource(project=project), gcs_bucket=bucket, gcs_prefix=prefix.strip("/")
    )


def gcs_artifact_store(
    bucket: str, prefix: str = "", resource: GCSResource | None = None
) -> GCSArtifactStore:
    """Artifact store in ``gs://bucket/prefix`` using a dagster-gcp ``GCSResource``'s client."""
    resource = resource or GCSResource()
    return GCSArtifactStore(bucket, prefix, client_factory=resource.get_client)


def io_manager_from_settings(settings: Settings) -> ConfigurableIOManager:
    """``local`` (files under the home) or ``gcs`` (bucket/prefix), per ``HOLLEY_GNN_IO``."""
    if settings.io_manager == "gcs":
        return gcs_io_manager(settings.gcs_bucket or "", settings.gcs_prefix)
    return LocalTablesIOManager(base_dir=str(settings.home / "tables"))
