"""IO manager for the embedded default: DataFrames as Parquet, other values as pickle.

Writes go to a temp file and are renamed into place, so a failed step never leaves a partial
table. Production steps that cross pods use dagster-gcp's GCS pickle IO manager instead.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext


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
