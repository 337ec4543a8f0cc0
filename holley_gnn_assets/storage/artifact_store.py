"""Artifact storage: model checkpoints and graph snapshots, on local disk or in GCS.

Keys follow spec §9 and are the same for both stores, below an optional prefix:
``checkpoint_key`` (``gnn/checkpoints/{run_id}/model.pt`` and files beside it),
``heterodata_key`` (``gnn/data/{run_id}/heterodata.pt``), ``embeddings_prefix``
(``gnn/embeddings/{run_id}``). ``artifact_store("gs://bucket/prefix")`` or
``artifact_store("/some/dir")`` picks the store.
The GCS store takes a ``google.cloud.storage.Client`` or a factory for one (e.g. dagster-gcp's
``GCSResource.get_client``); without either it builds a default client (ADC credentials).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, runtime_checkable

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


class ArtifactStoreError(RuntimeError):
    """A storage problem, naming the key and the store."""


def _check_run_id(run_id: str) -> str:
    if not _RUN_ID.match(str(run_id)) or ".." in str(run_id):
        raise ArtifactStoreError(f"run id {run_id!r} is not a plain name (letters, digits, _.-)")
    return str(run_id)


def checkpoint_key(run_id: str, name: str = "model.pt") -> str:
    """Key of a run's model checkpoint (spec §9), or of another file ``name`` beside it
    (the resumable training checkpoint, the training curves)."""
    return check_key(f"gnn/checkpoints/{_check_run_id(run_id)}/{name}")


def embeddings_prefix(run_id: str) -> str:
    """Key prefix of the embedding files a run computed."""
    return f"gnn/embeddings/{_check_run_id(run_id)}"


def heterodata_key(run_id: str) -> str:
    """Key of a run's graph snapshot (spec §9)."""
    return f"gnn/data/{_check_run_id(run_id)}/heterodata.pt"


def check_key(key: str) -> str:
    """A relative POSIX key without empty, '.' or '..' parts; raises ArtifactStoreError."""
    parts = str(key).split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ArtifactStoreError(f"artifact key {key!r} must be relative, like 'gnn/x/model.pt'")
    return str(PurePosixPath(key))


def _check_list_prefix(prefix: str) -> str:
    prefix = str(prefix or "").lstrip("/")
    if any(p in (".", "..") for p in prefix.split("/")):
        raise ArtifactStoreError(f"listing prefix {prefix!r} must not contain '.' or '..' parts")
    return prefix


def _check_prefix(prefix: str) -> str:
    prefix = str(prefix or "").strip("/")
    return check_key(prefix) if prefix else ""


@runtime_checkable
class ArtifactStore(Protocol):
    """Where run artifacts live. Keys are relative POSIX paths."""

    def put_file(self, local_path: str | Path, key: str) -> str:
        """Upload a local file under ``key``; returns the stored object's URI."""

    def get_file(self, key: str, local_path: str | Path) -> Path:
        """Download ``key`` to ``local_path``; raises ArtifactStoreError when missing."""

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""

    def list(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix`` (sorted)."""

    def uri(self, key: str) -> str:
        """Location of ``key`` (``file://`` or ``gs://``)."""


def _atomic_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LocalArtifactStore:
    """Artifacts under a local directory (the embedded default and tests)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def put_file(self, local_path: str | Path, key: str) -> str:
        src = Path(local_path)
        if not src.is_file():
            raise ArtifactStoreError(f"cannot store {src}: no such file")
        _atomic_copy(src, self._path(key))
        return self.uri(key)

    def get_file(self, key: str, local_path: str | Path) -> Path:
        src = self._path(key)
        if not src.is_file():
            raise ArtifactStoreError(f"artifact {key!r} not found in {self.root}")
        dst = Path(local_path)
        _atomic_copy(src, dst)
        return dst

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        prefix = _check_list_prefix(prefix)
        if not self.root.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix) and not Path(k).name.startswith("."))


class GCSArtifactStore:
    """Artifacts in ``gs://bucket/prefix/...`` through google-cloud-storage."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        client: Any | None = None,
        client_factory: Callable[[], Any] | None = None,
        timeout_s: float = 300.0,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ArtifactStoreError(f"GCS bucket name {bucket!r} is not a bucket name")
        self.bucket_name = bucket
        self.prefix = _check_prefix(prefix)
        self._client = client
        self._client_factory = client_factory
        self.timeout_s = timeout_s

    @property
    def client(self) -> Any:
        """The storage client (made on first use)."""
        if self._client is None:
            if self._client_factory is not None:
                self._client = self._client_factory()
            else:
                from google.cloud import storage

                self._client = storage.Client()
        return self._client

    def _name(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _blob(self, key: str) -> Any:
        return self.client.bucket(self.bucket_name).blob(self._name(key))

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket_name}/{self._name(key)}"

    def put_file(self, local_path: str | Path, key: str) -> str:
        src = Path(local_path)
        if not src.is_file():
            raise ArtifactStoreError(f"cannot store {src}: no such file")
        self._blob(key).upload_from_filename(str(src), timeout=self.timeout_s)
        return self.uri(key)

    def get_file(self, key: str, local_path: str | Path) -> Path:
        from google.api_core.exceptions import NotFound

        dst = Path(local_path)
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
        os.close(fd)
        try:
            self._blob(key).download_to_filename(tmp, timeout=self.timeout_s)
            os.replace(tmp, dst)
        except NotFound as exc:
            raise ArtifactStoreError(f"artifact {self.uri(key)} not found") from exc
        finally:
            Path(tmp).unlink(missing_ok=True)
        return dst

    def exists(self, key: str) -> bool:
        return bool(self._blob(key).exists(timeout=self.timeout_s))

    def list(self, prefix: str = "") -> list[str]:
        prefix = _check_list_prefix(prefix)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        blobs = self.client.list_blobs(
            self.bucket_name, prefix=full or None, timeout=self.timeout_s
        )
        cut = len(self.prefix) + 1 if self.prefix else 0
        return sorted(b.name[cut:] for b in blobs)


def artifact_store(location: str | Path, **gcs_kwargs: Any) -> ArtifactStore:
    """``gs://bucket[/prefix]`` gives a GCSArtifactStore; anything else a local directory."""
    text = str(location)
    if text.startswith("gs://"):
        bucket, _, prefix = text[len("gs://") :].partition("/")
        return GCSArtifactStore(bucket, prefix, **gcs_kwargs)
    return LocalArtifactStore(text)
