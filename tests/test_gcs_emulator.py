"""The artifact store (UPath/fsspec): local folder and GCS (gcsfs on gcp-storage-emulator), same
behaviour; and the IO manager on both."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetIn, asset, materialize

from holley_gnn_assets.defs.io_managers import LAZY, LazyValue
from holley_gnn_assets.storage.artifact_store import (
    ArtifactStore,
    ArtifactStoreError,
    artifact_store,
    checkpoint_key,
    embeddings_prefix,
    heterodata_key,
)

pytest_plugins = ["emulators"]


def test_keys_follow_the_spec() -> None:
    assert checkpoint_key("run-42") == "gnn/checkpoints/run-42/model.pt"
    assert heterodata_key("abc_1") == "gnn/data/abc_1/heterodata.pt"
    assert checkpoint_key("r", "training_curves.png") == "gnn/checkpoints/r/training_curves.png"
    assert embeddings_prefix("r-1") == "gnn/embeddings/r-1"
    for bad in ["", "../x", "a/b", "..", " x"]:
        with pytest.raises(ArtifactStoreError, match="run id"):
            checkpoint_key(bad)
        with pytest.raises(ArtifactStoreError, match="run id"):
            embeddings_prefix(bad)
    with pytest.raises(ArtifactStoreError, match="artifact key"):
        checkpoint_key("r", "../escape.pt")


def test_artifact_store_picks_by_location(tmp_path: Path) -> None:
    gcs = artifact_store("gs://my-bucket/ml/dev", token="anon")
    assert gcs.root.protocol == "gs" and not gcs.local
    assert gcs.uri(checkpoint_key("r1")) == "gs://my-bucket/ml/dev/gnn/checkpoints/r1/model.pt"
    local = artifact_store(tmp_path)
    assert local.local and local.uri("a/b.pt") == (tmp_path / "a" / "b.pt").as_uri()
    with pytest.raises(ArtifactStoreError, match="names no GCS bucket"):
        artifact_store("gs://")


def _checkpoint(tmp_path: Path, size: int = 300_000) -> tuple[Path, bytes]:
    payload = os.urandom(size)
    path = tmp_path / "model.pt"
    path.write_bytes(payload)
    return path, payload


def _round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    src, payload = _checkpoint(tmp_path)
    key = checkpoint_key("run-1")
    assert not store.exists(key)
    uri = store.put_file(src, key)
    assert uri.endswith("gnn/checkpoints/run-1/model.pt")
    assert store.exists(key)
    store.put_file(src, heterodata_key("run-1"))
    store.put_file(src, checkpoint_key("run-2"))
    assert store.list("gnn/checkpoints/") == [checkpoint_key("run-1"), checkpoint_key("run-2")]
    assert store.list("gnn/data") == [heterodata_key("run-1")]
    got = store.get_file(key, tmp_path / "down" / "model.pt")
    assert got.read_bytes() == payload
    with pytest.raises(ArtifactStoreError, match="run-9"):
        store.get_file(checkpoint_key("run-9"), tmp_path / "missing.pt")
    assert not (tmp_path / "missing.pt").exists()
    with pytest.raises(ArtifactStoreError, match="must be relative"):
        store.put_file(src, "../escape.pt")


def test_local_store_round_trip(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    _round_trip(store, tmp_path)
    assert (tmp_path / "artifacts" / "gnn" / "checkpoints" / "run-1" / "model.pt").is_file()


@pytest.mark.bigquery
def test_gcs_store_round_trip_through_the_emulator(emulator_environment, gcs_client,
                                                   tmp_path) -> None:
    """gcsfs (as the IO manager) on the emulator; read back with google-cloud-storage."""
    bucket = emulator_environment["bucket"]
    store = artifact_store(f"gs://{bucket}/ml/test-round-trip", token="anon")
    _round_trip(store, tmp_path)
    names = sorted(b.name for b in gcs_client.list_blobs(bucket, prefix="ml/test-round-trip/"))
    assert "ml/test-round-trip/gnn/checkpoints/run-1/model.pt" in names
    blob = gcs_client.bucket(bucket).get_blob("ml/test-round-trip/gnn/checkpoints/run-1/model.pt")
    assert blob.size == 300_000


@pytest.mark.bigquery
def test_gcs_artifact_store_shares_the_io_managers_bucket(emulator_environment,
                                                          tmp_path) -> None:
    """``gcs_artifact_store`` (bucket + prefix, as ``gcs_io_manager``) and the resource."""
    from holley_gnn_assets.defs.io_managers import gcs_artifact_store
    from holley_gnn_assets.defs.resources import ArtifactsResource

    bucket = emulator_environment["bucket"]
    with pytest.raises(ValueError, match="bare bucket name"):
        gcs_artifact_store(f"gs://{bucket}")
    store = gcs_artifact_store(bucket, "ml/resource", token="anon")
    src, payload = _checkpoint(tmp_path, 1000)
    store.put_file(src, checkpoint_key("r"))
    assert store.get_file(checkpoint_key("r"), tmp_path / "back.pt").read_bytes() == payload
    resource = ArtifactsResource(location=f"gs://{bucket}/ml/resource", gcs_token="anon",
                                 home=str(tmp_path / "home"))
    assert resource.fetch(checkpoint_key("r")).read_bytes() == payload


def _io_round_trip(io_manager):
    """A DataFrame asset and a dict asset through ``io_manager``; the downstream reads both."""
    frame = pd.DataFrame({"sku": pd.array(["a", "b"], dtype="string"), "n": [1, 2],
                          "ts": pd.to_datetime(["2026-01-01", "2026-01-02"])})

    @asset
    def table() -> pd.DataFrame:
        return frame

    @asset
    def summary(table: pd.DataFrame) -> dict:
        return {"rows": len(table), "skus": list(table["sku"])}

    @asset
    def reader(table: pd.DataFrame, summary: dict) -> int:
        pd.testing.assert_frame_equal(table, frame)
        return summary["rows"] * 2

    result = materialize([table, summary, reader], resources={"io_manager": io_manager})
    assert result.success and result.output_for_node("reader") == 4
    assert result.output_for_node("summary") == {"rows": 2, "skus": ["a", "b"]}
    return result


@pytest.mark.bigquery
def test_tables_io_manager_round_trips_through_gs(emulator_environment) -> None:
    """The UPath IO manager on gs:// (gcsfs on the emulator): Parquet and pickle objects."""
    import pickle

    from holley_gnn_assets.defs.io_managers import gcs_io_manager

    bucket = emulator_environment["bucket"]
    io_manager = gcs_io_manager(bucket, "dagster-test", token="anon")
    result = _io_round_trip(io_manager)
    paths = [ev.materialization.metadata["path"].value
             for ev in result.get_asset_materialization_events()]
    assert f"gs://{bucket}/dagster-test/table.parquet" in paths
    from google.cloud import storage

    client = storage.Client.create_anonymous_client()
    client._connection.API_BASE_URL = emulator_environment["STORAGE_EMULATOR_HOST"]
    names = {b.name for b in client.list_blobs(bucket, prefix="dagster-test/")}
    assert {"dagster-test/table.parquet", "dagster-test/summary.pkl",
            "dagster-test/reader.pkl"} <= names
    blob = client.bucket(bucket).blob("dagster-test/summary.pkl")
    assert pickle.loads(blob.download_as_bytes()) == {"rows": 2, "skus": ["a", "b"]}

    @asset(name="summary")
    def unpicklable() -> object:
        return lambda: None  # pickling fails before anything is uploaded

    failed = materialize([unpicklable], resources={"io_manager": io_manager},
                         raise_on_error=False)
    assert not failed.success
    assert pickle.loads(blob.download_as_bytes()) == {"rows": 2, "skus": ["a", "b"]}


def test_tables_io_manager_local_layout_and_atomic_write(tmp_path: Path) -> None:
    """Locally: HOME/tables/<asset>.parquet|.pkl; a failed write keeps the previous file."""
    import pickle

    from holley_gnn_assets.defs.io_managers import TablesIOManager

    io_manager = TablesIOManager(base_path=str(tmp_path / "tables"))
    _io_round_trip(io_manager)
    files = sorted(p.name for p in (tmp_path / "tables").iterdir())
    assert files == ["reader.pkl", "summary.pkl", "table.parquet"]

    @asset(name="summary")
    def unpicklable() -> object:
        return lambda: None

    assert not materialize([unpicklable], resources={"io_manager": io_manager},
                           raise_on_error=False).success
    stored = pickle.loads((tmp_path / "tables" / "summary.pkl").read_bytes())
    assert stored == {"rows": 2, "skus": ["a", "b"]}


def test_lazy_input_is_read_on_call_only(tmp_path: Path) -> None:
    """``AssetIn(metadata={LAZY: True})``: the step gets a LazyValue that reads the stored
    file when called (not before) and once; a never-built upstream still fails the step."""
    from holley_gnn_assets.defs.io_managers import TablesIOManager

    io_manager = TablesIOManager(base_path=str(tmp_path / "tables"))
    stored = tmp_path / "tables" / "table.parquet"

    @asset
    def table() -> pd.DataFrame:
        return pd.DataFrame({"n": [1, 2]})

    @asset(ins={"table": AssetIn(metadata={LAZY: True})})
    def reader(table: LazyValue) -> list[int]:
        assert isinstance(table, LazyValue)
        pd.DataFrame({"n": [7]}).to_parquet(stored)  # replaced after the step started
        first = table()
        stored.unlink()  # read once: the second call does not touch the file
        return list(first["n"]) + list(table()["n"])

    result = materialize([table, reader], resources={"io_manager": io_manager})
    assert result.output_for_node("reader") == [7, 7]

    empty = TablesIOManager(base_path=str(tmp_path / "empty"))
    failed = materialize([table, reader], resources={"io_manager": empty}, raise_on_error=False,
                         selection=["reader"])
    assert not failed.success
    errors = [ev.event_specific_data.error.to_string() for ev in failed.all_events
              if ev.is_step_failure]
    assert errors and "no stored value for asset table" in errors[0]


def test_an_input_reads_only_its_columns(tmp_path: Path) -> None:
    """``AssetIn(metadata={COLUMNS: [...]})``: the step gets only those columns of the stored
    table, lazily or not."""
    from holley_gnn_assets.defs.io_managers import COLUMNS, TablesIOManager

    io_manager = TablesIOManager(base_path=str(tmp_path / "tables"))

    @asset
    def wide() -> pd.DataFrame:
        return pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [0.5, 1.5]})

    @asset(ins={"wide": AssetIn(metadata={COLUMNS: ["c", "a"]})})
    def narrow(wide: pd.DataFrame) -> list[str]:
        return list(wide.columns)

    @asset(ins={"wide": AssetIn(metadata={LAZY: True, COLUMNS: ["b"]})})
    def lazy_narrow(wide: LazyValue) -> list[str]:
        return list(wide().columns)

    result = materialize([wide, narrow, lazy_narrow], resources={"io_manager": io_manager})
    assert result.output_for_node("narrow") == ["c", "a"]
    assert result.output_for_node("lazy_narrow") == ["b"]
