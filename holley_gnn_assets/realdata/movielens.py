"""MovieLens-100K as a source-contract DuckDB warehouse: real behaviour nobody generated.

Mapping (``build_movielens_warehouse``):

- vehicle = the user's occupation (21 segments): year ``2000``, make ``MovieLens``, model the
  occupation (the export upper-cases: vehicle_id ``2000|MOVIELENS|STUDENT``). Every movie fits
  every segment (21 x n_items fitment rows), so fitment carries no information.
- product = movie: sku ``ML`` + the item id zero-padded to 4 digits (ends in a digit, never
  matches the variant regex ``[0-9][BRGP]$``; checked against ``rules.variant_suffix_regex``),
  PartType = the first genre of the item (``unknown`` when none), price 59.99 and an
  ``https://`` image for all (every movie passes the static rules), no tags, title
  ``<title> (<year>)``.
- user: user_id ``ML<id>``, email ``ml<id>@example.com`` (synthetic, never logged), one
  attribute row dated one day before the first (shifted) rating.
- time: ratings are shifted by whole days (time of day kept). ``split="temporal"`` (default):
  the last rating falls on as_of - 1 day; ratings in [cutoff, as_of) are the test window,
  earlier ones are training behaviour. ``split="per_user"``: the last rating falls on
  cutoff - 1 day; each user's last 20% of ratings (by time, ties by item id) are the test part,
  re-timed into the test window in their order; the rest stay before the cutoff.
- training behaviour (before the cutoff): rating >= 4 -> ``added_to_cart`` (weight 3), else
  ``product_viewed`` (1). Orders: the ratings >= 4 before the cutoff, one order per user and
  UTC day (they drive order_count, the SQL baseline's popularity, and co-purchase edges).
- test set: each test-part rating >= 4 is a CLICKED treatment row (a SENT and a VIEWED row
  per user-day campaign before the first click, as the synthetic writer does); test-part
  ratings < 4 are left out.
- cold users: real newcomers (no rating before the cutoff) plus a seeded ``cold_share`` of the
  users who have both training ratings and test clicks, whose training ratings (events and
  orders) are dropped: they keep only their segment, as a cold Holley user keeps a vehicle.
- ``synth_truth.world`` holds as_of/cutoff/interaction_start (the pipeline reads its as-of
  from there) with ``scale='movielens'``; there is no ``synth_truth.vehicle_preference``
  (no planted truth, so the report has no oracle arm).

Why temporal is the default: nothing from after the cutoff reaches training or popularity,
and the cold users include genuine newcomers. On ML-100K the last 30 days hold ~9.5k ratings
>= 4 (>= eval.min_test_clicks); ``per_user`` (the classic leave-last-out protocol) tests every
user but lets later ratings of other users shape the popularity a test user is ranked by.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.realdata.movielens_files import read_movielens
from holley_gnn_assets.synth.writer import CONTRACT_TABLES, TRUTH_TABLES, atomic_duckdb, write_table

DAY = 86_400
HOUR = 3_600
DEFAULT_AS_OF = dt.date(2026, 11, 1)
SPLITS = ("temporal", "per_user")
PER_USER_TEST_SHARE = 0.2
PRICE = 59.99
YEAR, MAKE = "2000", "MovieLens"
VERSION = "movielens-1"


def _epoch(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def _stamps(seconds: np.ndarray | pd.Series) -> np.ndarray:
    return pd.to_datetime(np.asarray(seconds, dtype=np.int64), unit="s").to_numpy()


def _ints(df: pd.DataFrame, col: str, where: str) -> np.ndarray:
    values = pd.to_numeric(df[col].str.strip(), errors="coerce")
    bad = values.isna() | (values != values.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{where}.{col}: {df[col].iloc[row]!r} (row {row + 1}) is not an integer")
    return values.to_numpy().astype(np.int64)


def _ratings(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    inter = raw["inter"]
    df = pd.DataFrame({"user": _ints(inter, "user_id", "inter"),
                       "item": _ints(inter, "item_id", "inter"),
                       "ts": _ints(inter, "timestamp", "inter")})
    df["rating"] = pd.to_numeric(inter["rating"].str.strip(), errors="coerce").to_numpy()
    if df["rating"].isna().any():
        raise ValueError("inter.rating: a value is not a number")
    known_users = set(_ints(raw["user"], "user_id", "user").tolist())
    known_items = set(_ints(raw["item"], "item_id", "item").tolist())
    for col, known, kind in (("user", known_users, "user"), ("item", known_items, "item")):
        unknown = sorted(set(df[col].tolist()) - known)
        if unknown:
            raise ValueError(f"inter: {len(unknown)} {col} id(s) not in the .{kind} file, "
                             f"e.g. {unknown[:3]}")
    if df.empty:
        raise ValueError("inter: no ratings")
    return df.sort_values(["user", "ts", "item"], kind="stable").reset_index(drop=True)


def _split(df: pd.DataFrame, split: str, as_of_s: int, cutoff_s: int,
           start_s: int) -> tuple[pd.DataFrame, int]:
    """Shift the timeline, mark the test part (column ``test``); returns (frame, shift days)."""
    last = int(df["ts"].max())
    end_day = (as_of_s if split == "temporal" else cutoff_s) - DAY
    shift = end_day - (last // DAY) * DAY
    df = df.assign(ts=df["ts"] + shift)
    if int(df["ts"].min()) < start_s:
        first = dt.datetime.fromtimestamp(int(df["ts"].min()), dt.UTC).date()
        raise ValueError(f"the shifted MovieLens timeline starts {first}, before "
                         "time.interaction_start; pick a later as_of")
    if split == "temporal":
        return df.assign(test=df["ts"] >= cutoff_s), shift // DAY
    rank = df.groupby("user").cumcount().to_numpy()
    size = df.groupby("user")["item"].transform("size").to_numpy()
    n_test = np.round(size * PER_USER_TEST_SHARE).astype(np.int64)
    k = rank - (size - n_test)  # 0.. n_test-1 on the test part
    test = k >= 0
    span = as_of_s - cutoff_s - 2 * HOUR
    frac = (k[test] + 0.5) / n_test[test]
    ts = df["ts"].to_numpy().copy()
    ts[test] = cutoff_s + HOUR + (frac * span).astype(np.int64)
    return df.assign(ts=ts, test=test), shift // DAY


def _held_out(df: pd.DataFrame, cold_share: float, seed: int) -> np.ndarray:
    """Seeded cold_share of the users with training ratings and test clicks (sorted ids)."""
    clicks = set(df.loc[df["test"] & (df["rating"] >= 4), "user"].tolist())
    history = set(df.loc[~df["test"], "user"].tolist())
    pool = np.array(sorted(clicks & history), dtype=np.int64)
    n = int(round(cold_share * len(pool)))
    rng = np.random.default_rng([int(seed), 100])
    return np.sort(rng.choice(pool, n, replace=False)) if n else np.array([], dtype=np.int64)


def _sku(item: np.ndarray | pd.Series) -> np.ndarray:
    return ("ML" + pd.Series(np.asarray(item)).astype(str).str.zfill(4)).to_numpy(dtype=object)


def _uid(user: np.ndarray | pd.Series) -> np.ndarray:
    return ("ML" + pd.Series(np.asarray(user)).astype(str)).to_numpy(dtype=object)


def _email(user: np.ndarray | pd.Series) -> np.ndarray:
    return ("ml" + pd.Series(np.asarray(user)).astype(str) + "@example.com").to_numpy(dtype=object)


def _catalogue(raw: dict[str, pd.DataFrame], variant_regex: str) -> dict[str, pd.DataFrame]:
    item, users = raw["item"], raw["user"]
    ids = _ints(item, "item_id", "item")
    sku = _sku(ids)
    clash = [s for s in sku if re.search(variant_regex, s)]
    if clash:
        raise ValueError(f"sku(s) {clash[:3]} match rules.variant_suffix_regex {variant_regex!r}")
    genre = item["class"].str.split().str[0].fillna("unknown").replace("", "unknown")
    year = item["release_year"].str.strip()
    title = item["movie_title"].str.strip() + np.where(year != "", " (" + year + ")", "")
    occupations = sorted(users["occupation"].str.strip().str.upper().unique())
    if "" in occupations:
        raise ValueError("user.occupation: an empty occupation (every user needs a segment)")
    return {
        "data_company_1950.import_items": pd.DataFrame({
            "sku": sku, "PartType": genre.to_numpy(dtype=object), "price": PRICE,
            "image_url": "https://example.com/movielens/" + sku + ".jpg",
            "title": title.to_numpy(dtype=object)}),
        "data_company_1950.import_items_tags": pd.DataFrame(
            {"sku": pd.Series([], dtype=object), "tag": pd.Series([], dtype=object)}),
        "data_company_1950.vehicle_product_fitment_data": pd.DataFrame({
            "sku": np.repeat(sku, len(occupations)), "year": YEAR, "make": MAKE.upper(),
            "model": np.tile(np.asarray(occupations, dtype=object), len(sku))}),
    }


def _behaviour(raw: dict[str, pd.DataFrame], df: pd.DataFrame,
               held: np.ndarray) -> dict[str, pd.DataFrame]:
    users = raw["user"]
    uid = _ints(users, "user_id", "user")
    first = df.groupby("user")["ts"].min().reindex(uid).fillna(df["ts"].min()).astype(np.int64)
    attrs = pd.DataFrame({"user_id": _uid(uid), "email": _email(uid), "v1_year": YEAR,
                          "v1_make": MAKE,
                          "v1_model": users["occupation"].str.strip().to_numpy(dtype=object),
                          "updated_at": _stamps(first.to_numpy() - DAY)})
    train = df[~df["test"] & ~df["user"].isin(held)]
    site = pd.DataFrame({
        "user_id": _uid(train["user"]),
        "event_name": np.where(train["rating"] >= 4, "added_to_cart", "product_viewed"),
        "sku": _sku(train["item"]), "event_timestamp": _stamps(train["ts"])})
    bought = train[train["rating"] >= 4]
    day = bought["ts"] // DAY
    order_ts = bought.groupby([bought["user"], day])["ts"].transform("min")
    orders = pd.DataFrame({
        "order_id": ("ML" + bought["user"].astype(str) + "-"
                     + pd.to_datetime(day * DAY, unit="s").dt.strftime("%Y%m%d")).to_numpy(),
        "email": _email(bought["user"]), "sku": _sku(bought["item"]), "quantity": 1,
        "order_date": _stamps(order_ts), "unit_price": PRICE})
    clicks = df[df["test"] & (df["rating"] >= 4)]
    cday = clicks["ts"] // DAY
    trt = ("TML" + pd.to_datetime(cday * DAY, unit="s").dt.strftime("%Y%m%d")).to_numpy(
        dtype=object)
    camp = (pd.DataFrame({"user": clicks["user"].to_numpy(), "trt": trt,
                          "ts": clicks["ts"].to_numpy()})
            .groupby(["user", "trt"], as_index=False)["ts"].min())
    parts = [
        (camp["user"], camp["trt"], "SENT", None, camp["ts"] - 2 * HOUR),
        (camp["user"], camp["trt"], "VIEWED", None, camp["ts"] - HOUR),
        (clicks["user"], trt, "CLICKED", _sku(clicks["item"]), clicks["ts"]),
    ]
    treat = pd.concat([pd.DataFrame({
        "user_id": _uid(u), "treatment_id": np.asarray(t, dtype=object),
        "interaction_type": kind, "sku": sku if sku is not None else None,
        "interaction_timestamp": _stamps(ts)}) for u, t, kind, sku, ts in parts],
        ignore_index=True)
    treat = treat.sort_values(["interaction_timestamp", "user_id"], kind="stable")
    return {
        "company_1950.ingestion_unified_attributes_schema_incremental": attrs,
        "company_1950.ingestion_unified_schema_incremental": site.reset_index(drop=True),
        "company_1950.treatment_interaction": treat.reset_index(drop=True),
        "data_company_1950.import_orders": orders.reset_index(drop=True),
    }


def _tiers(df: pd.DataFrame, held: np.ndarray, n_users: int) -> dict[str, int]:
    train = df[~df["test"] & ~df["user"].isin(held)]
    hot = set(train.loc[train["rating"] >= 4, "user"].tolist())
    warm = set(train["user"].tolist()) - hot
    return {"cold": n_users - len(hot) - len(warm), "warm": len(warm), "hot": len(hot)}


def build_movielens_warehouse(
    source: Path, out: Path, *, cold_share: float = 0.2, seed: int = 0,
    split: str = "temporal", as_of: dt.date = DEFAULT_AS_OF,
) -> dict[str, Any]:
    """Write MovieLens-100K from ``source`` (the recbole wheel/zip or a directory with
    ``ml-100k.{inter,item,user}``) as a source-contract DuckDB warehouse at ``out``
    (replaced atomically); see the module docstring for the mapping. Deterministic per
    (source, cold_share, seed, split, as_of). Returns the row counts and split figures."""
    t0 = time.perf_counter()
    if not 0.0 <= float(cold_share) < 1.0:
        raise ValueError(f"cold_share={cold_share!r} must be in [0, 1)")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: choose one of {SPLITS}")
    cfg = load_config()
    days = int(cfg["time"]["test_window_days"])
    start = dt.date.fromisoformat(str(cfg["time"]["interaction_start"]))
    cutoff = as_of - dt.timedelta(days=days)
    raw = read_movielens(source)
    df, shift_days = _split(_ratings(raw), split, _epoch(as_of), _epoch(cutoff), _epoch(start))
    held = _held_out(df, float(cold_share), seed)
    tables = {**_catalogue(raw, str(cfg["rules"]["variant_suffix_regex"])),
              **_behaviour(raw, df, held)}
    n_users = len(raw["user"])
    tiers = _tiers(df, held, n_users)
    treat = tables["company_1950.treatment_interaction"]
    clicks = treat[treat["interaction_type"] == "CLICKED"]
    n_products = len(tables["data_company_1950.import_items"])
    n_vehicles = int(raw["user"]["occupation"].str.strip().str.upper().nunique())
    params = {"source": Path(source).name, "cold_share": float(cold_share), "split": split,
              "shift_days": int(shift_days), "n_held_out": int(len(held))}
    world = pd.DataFrame([{
        "as_of": as_of, "cutoff": cutoff, "interaction_start": start, "seed": int(seed),
        "signal": None, "scale": "movielens", "n_users": n_users, "n_products": n_products,
        "n_vehicles": n_vehicles, "n_groups": None, "n_clusters": None,
        "n_warm": tiers["warm"], "n_hot": tiers["hot"], "n_test_clicks": len(clicks),
        "generator_version": VERSION, "params": json.dumps(params, sort_keys=True)}])
    rows: dict[str, int] = {}
    with atomic_duckdb(out) as con:
        for name, cols in CONTRACT_TABLES.items():
            rows[name] = write_table(con, name, cols, tables[name])
        rows["synth_truth.world"] = write_table(
            con, "synth_truth.world", TRUTH_TABLES["synth_truth.world"], world)
    test_users = set(clicks["user_id"].tolist())
    return {
        "rows": rows, "as_of": as_of, "cutoff": cutoff, "split": split, "seed": int(seed),
        "cold_share": float(cold_share), "shift_days": int(shift_days), "n_users": n_users,
        "n_products": n_products, "n_vehicles": n_vehicles, "n_test_clicks": len(clicks),
        "n_test_users": len(test_users), "n_held_out": int(len(held)),
        "n_cold_test_users": len(test_users - set(tables[
            "company_1950.ingestion_unified_schema_incremental"]["user_id"].tolist())),
        "tiers": tiers, "path": str(out), "seconds": round(time.perf_counter() - t0, 2),
    }
