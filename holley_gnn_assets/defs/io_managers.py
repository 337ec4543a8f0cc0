"""The IO manager of the asset values: one ``UPathIOManager``, local folder or ``gs://``.

``<base>/<asset key>/<partition key>.parquet`` for a DataFrame (``.pkl`` for anything else;
``<base>/<asset key>.<suffix>`` for an asset without partitions);
``<base>`` is ``HOME/tables`` (``HOLLEY_GNN_IO=local``) or ``gs://<bucket>/<prefix>``
(``HOLLEY_GNN_IO=gcs``, through gcsfs: steps in separate pods share it). Writes are atomic:
locally a temporary file renamed over the target; on GCS one upload of the serialised bytes
(an object appears whole or not at all). Writing one format removes the other's stale file.
An input declared with ``AssetIn(metadata={LAZY: True})`` arrives as a ``LazyValue`` that reads
the file only when called (a step that may not need the table does not pay for reading it);
``AssetIn(metadata={COLUMNS: [...]})`` reads only those columns of a stored table.
Storage stays bounded: writing partition T of an asset removes that asset's stored partitions
older than T - ``keep_partitions`` days (0 keeps all), so a daily run leaves at most that many.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import pickle
from collections.abc import Callable
from typing import Any

import pandas as pd
from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    MetadataValue,
    OutputContext,
    UPathIOManager,
)
from upath import UPath

from holley_gnn_assets.config.settings import Settings
from holley_gnn_assets.storage.artifact_store import ArtifactStore

PARQUET, PICKLE = ".parquet", ".pkl"
LOCAL_PROTOCOLS = ("", "file", "local")
LAZY = "holley_gnn/lazy"  # input metadata key: deliver a LazyValue instead of the value
COLUMNS = "holley_gnn/columns"  # input metadata key: read only these columns of a table


class LazyValue:
    """An upstream asset value read on the first call (then kept)."""

    def __init__(self, name: str, read: Callable[[], Any]) -> None:
        self.name = name
        self._read = read
        self._value: list[Any] = []

    def __call__(self) -> Any:
        """The value, read once."""
        if not self._value:
            self._value.append(self._read())
        return self._value[0]

    def __repr__(self) -> str:
        return f"LazyValue({self.name!r}, read={bool(self._value)})"


class TablesUPathIOManager(UPathIOManager):
    """Parquet for DataFrames, pickle otherwise, under a local or ``gs://`` base path."""

    extension = None  # chosen per value: see _target

    def __init__(self, base_path: UPath, keep_partitions: int = 0) -> None:
        super().__init__(base_path=base_path)
        self.keep_partitions = keep_partitions

    def _target(self, path: UPath, obj: Any) -> tuple[UPath, UPath]:
        """(file to write, stale file of the other format) for ``obj`` at ``path``."""
        parquet, pkl = path.with_suffix(PARQUET), path.with_suffix(PICKLE)
        return (parquet, pkl) if isinstance(obj, pd.DataFrame) else (pkl, parquet)

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        """Write ``obj`` atomically next to ``path`` (suffix by type); drop the stale format."""
        target, stale = self._target(path, obj)
        if target.protocol in LOCAL_PROTOCOLS:
            tmp = target.with_name(target.name + ".tmp")
            if isinstance(obj, pd.DataFrame):
                obj.to_parquet(tmp.path, index=False)
            else:
                with open(tmp.path, "wb") as fh:
                    pickle.dump(obj, fh)
            os.replace(tmp.path, target.path)
        else:
            buf = io.BytesIO()
            if isinstance(obj, pd.DataFrame):
                obj.to_parquet(buf, index=False)
            else:
                pickle.dump(obj, buf)
            target.write_bytes(buf.getvalue())  # one upload: the object appears whole
        if stale.exists():
            stale.unlink()

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        """Read what dump_to_path wrote (on first call for a lazy input, module doc); a clear
        error when the upstream was never built."""
        if (context.definition_metadata or {}).get(LAZY):
            self._located(context, path)  # a missing upstream still fails before the step runs
            return LazyValue(path.stem, lambda: self._read(context, path))
        return self._read(context, path)

    def _located(self, context: InputContext, path: UPath) -> UPath:
        """The stored file of ``path`` (either format); FileNotFoundError naming the asset."""
        for candidate in (path.with_suffix(PARQUET), path.with_suffix(PICKLE)):
            if candidate.exists():
                return candidate
        key = "/".join(context.asset_key.path) if context.has_asset_key else str(path)
        raise FileNotFoundError(
            f"no stored value for asset {key} under {self._base_path}: materialize it first "
            "(e.g. `holley-gnn run`, or select it with its upstream: `--select +<asset>`)"
        )

    def _read(self, context: InputContext, path: UPath) -> Any:
        target = self._located(context, path)
        columns = (context.definition_metadata or {}).get(COLUMNS)
        with target.open("rb") as fh:
            if target.suffix == PARQUET:
                return pd.read_parquet(fh, columns=list(columns) if columns else None)
            return pickle.load(fh)

    def get_metadata(self, context: OutputContext, obj: Any) -> dict[str, Any]:
        """The written file's path (with its suffix) replaces the suffix-less default."""
        if obj is None or not context.has_asset_key:
            return {}
        path = (self._get_paths_for_partitions(context)[context.asset_partition_key]
                if context.has_asset_partitions else self._get_path(context))
        target, _ = self._target(path, obj)
        return {"path": MetadataValue.path(str(target))}

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        """Nothing is stored for ``None`` (an asset that wrote nothing); a partition written
        removes the asset's partitions older than ``keep_partitions`` days before it."""
        if obj is None:
            return
        super().handle_output(context, obj)
        if self.keep_partitions and context.has_asset_partitions:
            removed = prune_partitions(self._get_path_without_extension(context),
                                       context.asset_partition_key, self.keep_partitions)
            if removed:
                context.log.info(f"removed {len(removed)} stored partitions older than "
                                 f"{self.keep_partitions} days: {', '.join(removed[:5])}")


def prune_partitions(asset_dir: UPath, current: str, keep_days: int) -> list[str]:
    """Remove the files of ``asset_dir`` whose daily partition key (file stem) is more than
    ``keep_days`` before ``current``; return the keys removed (sorted). Other files are kept."""
    if not asset_dir.exists():
        return []
    oldest = dt.date.fromisoformat(current) - dt.timedelta(days=keep_days)
    removed = set()
    for child in asset_dir.iterdir():
        key = child.name.split(".", 1)[0]
        try:
            day = dt.date.fromisoformat(key)
        except ValueError:
            continue
        if day < oldest and child.is_file():
            child.unlink()
            removed.add(key)
    return sorted(removed)


class TablesIOManager(ConfigurableIOManagerFactory):
    """Asset values under ``base_path`` (a folder or ``gs://bucket/prefix``).

    ``gcs_token`` is gcsfs's ``token`` (empty: Google default credentials; ``anon`` for the
    emulator, with ``STORAGE_EMULATOR_HOST`` set). ``keep_partitions``: days of partitions
    kept per asset behind the one written (``time.keep_partitions``; 0 keeps all).
    """

    base_path: str
    gcs_token: str = ""
    keep_partitions: int = 0

    def create_io_manager(self, context) -> TablesUPathIOManager:  # noqa: ANN001 (dagster API)
        """The UPath IO manager at ``base_path``."""
        options = {"token": self.gcs_token} if self.gcs_token else {}
        base = UPath(self.base_path, **options) if self.base_path.startswith("gs://") \
            else UPath(self.base_path)
        if base.protocol in LOCAL_PROTOCOLS:
            os.makedirs(base.path, exist_ok=True)
        return TablesUPathIOManager(base_path=base, keep_partitions=self.keep_partitions)


def gcs_io_manager(bucket: str, prefix: str = "dagster", token: str = "",
                   keep_partitions: int = 0) -> TablesIOManager:
    """The IO manager writing under ``gs://bucket/prefix``."""
    if not bucket or "/" in bucket or bucket.startswith("gs:"):
        raise ValueError(f"GCS bucket {bucket!r}: give the bare bucket name, e.g. 'my-bucket'")
    path = "/".join(p for p in (bucket, prefix.strip("/")) if p)
    return TablesIOManager(base_path=f"gs://{path}", gcs_token=token,
                           keep_partitions=keep_partitions)


def gcs_artifact_store(bucket: str, prefix: str = "", token: str = "") -> ArtifactStore:
    """Artifact store in ``gs://bucket/prefix`` through gcsfs, as the IO manager (``token``:
    gcsfs's, empty for Google default credentials, ``anon`` for the emulator)."""
    if not bucket or "/" in bucket or bucket.startswith("gs:"):
        raise ValueError(f"GCS bucket {bucket!r}: give the bare bucket name, e.g. 'my-bucket'")
    path = "/".join(p for p in (bucket, prefix.strip("/")) if p)
    return ArtifactStore(f"gs://{path}", **({"token": token} if token else {}))


def io_manager_from_settings(settings: Settings) -> TablesIOManager:
    """``local`` (``HOME/tables``) or ``gcs`` (bucket/prefix), per ``HOLLEY_GNN_IO``."""
    keep = settings.config.time.keep_partitions
    if settings.io_manager == "gcs":
        return gcs_io_manager(settings.gcs_bucket or "", settings.gcs_prefix, keep_partitions=keep)
    return TablesIOManager(base_path=str(settings.home / "tables"), keep_partitions=keep)
