"""Finds email addresses anywhere in an MLflow store: every file under the artifact root (zip
members such as torch's pickles decoded one by one, graph snapshots loaded and their id lists
read), the tracking database file, and every run's params, tags and metric names and every
registered model version's tags (read through MlflowClient)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from mlflow import MlflowClient

EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


def _masked(address: str) -> str:
    """``a***@domain``: where a leak is, without printing the address into test logs."""
    return f"{address[:1]}***@{address.split('@', 1)[1]}"


def _in_bytes(where: str, blob: bytes) -> list[str]:
    return [f"{where}: {_masked(m.group().decode('latin-1'))}"
            for m in EMAIL.finditer(blob)][:3]


def _strings(value: Any) -> list[str]:
    """Every string inside nested dicts/lists/tuples (keys too)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def emails_in_file(path: Path) -> list[str]:
    """Email addresses in the file's bytes, in its zip members, and (``.pt``) in the strings of
    its torch pickle."""
    found = _in_bytes(str(path), path.read_bytes())
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                found += _in_bytes(f"{path}!{name}", z.read(name))
    if path.suffix == ".pt":  # the strings inside the torch pickle (graph ids, configs)
        payload = torch.load(path, map_location="cpu", weights_only=True)
        found += [f"{path} (loaded): {_masked(s)}" for s in _strings(payload)
                  if EMAIL.search(s.encode("utf-8"))][:3]
    return found


def emails_in_artifacts(root: Path) -> tuple[list[str], int]:
    """Email addresses found in the files under ``root``, and how many files were read."""
    files = [p for p in sorted(root.rglob("*")) if p.is_file()]
    return [hit for p in files for hit in emails_in_file(p)], len(files)


def emails_in_tracking(client: MlflowClient) -> list[str]:
    """Email addresses in runs' params, tags and metric names and in model versions' tags."""
    texts: list[str] = []
    for exp in client.search_experiments():
        for run in client.search_runs([exp.experiment_id]):
            d = run.data
            texts += [f"run {run.info.run_id} {k}={v}" for k, v in
                      (*d.params.items(), *d.tags.items(), *((m, "") for m in d.metrics))]
    for mv in client.search_model_versions():
        texts += [f"model version {mv.version} {k}={v}" for k, v in (mv.tags or {}).items()]
        texts.append(f"model version {mv.version} source={mv.source}")
    return [f"{t.split('=', 1)[0]}=<email address>" for t in texts
            if EMAIL.search(t.encode("utf-8"))]
