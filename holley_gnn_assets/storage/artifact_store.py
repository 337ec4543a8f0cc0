"""Artifact storage: graph snapshots, training checkpoints and embeddings, through UPath/fsspec.

The same library as the IO manager (``defs/io_managers.py``): a local folder or
``gs://bucket/prefix`` (gcsfs; ``token="anon"`` with ``STORAGE_EMULATOR_HOST`` for the
emulator, Google default credentials otherwise). Keys follow spec §9 and are the same for
every backend, below the store's root: ``checkpoint_key`` (``gnn/checkpoints/{run_id}/...``),
``heterodata_key`` (``gnn/data/{run_id}/heterodata.pt``), ``embeddings_prefix``
(``gnn/embeddings/{run_id}``). The trained model itself is an MLflow model
(``model/mlflow_model.py``), not a file of this store.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from upath import UPath

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
LOCAL_PROTOCOLS = ("", "file", "local")


class ArtifactStoreError(RuntimeError):
    """A storage problem, naming the key and the store."""


def _check_run_id(run_id: str) -> str:
    if not _RUN_ID.match(str(run_id)) or ".." in str(run_id):
        raise ArtifactStoreError(f"run id {run_id!r} is not a plain name (letters, digits, _.-)")
    return str(run_id)


def checkpoint_key(run_id: str, name: str = "model.pt") -> str:
    """Key of a file ``name`` of a run's training checkpoints (the resumable checkpoint)."""
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


class ArtifactStore:
    """Run artifacts under one UPath root (a local folder or ``gs://bucket/prefix``).

    Writes are whole or absent: locally a temporary file renamed over the target; on GCS one
    object upload (an object appears only when its upload completes).
    """

    def __init__(self, location: str | Path, **storage_options: Any) -> None:
        text = str(location)
        if text.startswith("gs://"):
            bucket = text[len("gs://"):].partition("/")[0]
            if not bucket:
                raise ArtifactStoreError(f"artifact location {text!r} names no GCS bucket")
            self.root = UPath(text.rstrip("/"), **storage_options)
        else:
            self.root = UPath(Path(text).resolve())
        self.local = self.root.protocol in LOCAL_PROTOCOLS

    def _path(self, key: str) -> UPath:
        return self.root.joinpath(*check_key(key).split("/"))

    def uri(self, key: str) -> str:
        """Location of ``key`` (``file://`` or ``gs://``)."""
        path = self._path(key)
        return Path(path.path).as_uri() if self.local else str(path)

    def put_file(self, local_path: str | Path, key: str) -> str:
        """Store a local file under ``key`` (written once, whole); returns its URI."""
        src = Path(local_path)
        if not src.is_file():
            raise ArtifactStoreError(f"cannot store {src}: no such file")
        dst = self._path(key)
        if self.local:
            target = Path(dst.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            os.close(fd)
            try:
                dst.fs.put_file(str(src), tmp)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        else:
            dst.fs.put_file(str(src), dst.path)
        return self.uri(key)

    def get_file(self, key: str, local_path: str | Path) -> Path:
        """Copy ``key`` to ``local_path``; ArtifactStoreError naming it when it is missing."""
        src = self._path(key)
        if not src.is_file():
            raise ArtifactStoreError(f"artifact {self.uri(key)} not found")
        dst = Path(local_path)
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
        os.close(fd)
        try:
            src.fs.get_file(src.path, tmp)
            os.replace(tmp, dst)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return dst

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix`` (sorted; a local store's temporary dot-files left out)."""
        prefix = _check_list_prefix(prefix)
        if not self.root.exists():
            return []
        root = self.root.path.rstrip("/") + "/"
        found = self.root.fs.find(self.root.path)
        keys = (str(p)[len(root):] for p in found if str(p).startswith(root))
        return sorted(k for k in keys if k.startswith(prefix)
                      and not PurePosixPath(k).name.startswith("."))


def artifact_store(location: str | Path, **storage_options: Any) -> ArtifactStore:
    """The store at ``location``: ``gs://bucket[/prefix]`` (``storage_options`` go to gcsfs,
    e.g. ``token="anon"``) or a local folder."""
    return ArtifactStore(location, **storage_options)
