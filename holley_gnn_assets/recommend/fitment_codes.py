"""The fitment table as integer codes, factorised once for the GNN arm's scores.

A full-scale ``product_vehicle_edges`` has ~1M (vehicle, sku) rows of strings; the scorer
needs them distinct, sorted by vehicle then sku (the top-k's ties: by sku), joined to the
embedding rows, and, for the look-alike lift, in the codes ``graph/lookalike_lift`` numbers
vehicles and products by (order of first appearance, so its look-alike ties fall the same
way). Strings are factorised once here; everything after works on integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from holley_gnn_assets.graph.lookalike_lift import lift_codes


@dataclass(frozen=True)
class FitmentCodes:
    """Distinct fitment pairs sorted by vehicle, then sku. ``vehicle``/``sku``: codes into the
    sorted ``vehicles``/``skus``; ``first_vehicle``/``first_sku``: the same pairs in the codes
    of first appearance (``lookalike_lift``'s); ``product_row``: the embedding row (-1: not
    embedded); ``eligible``: per pair, the sku is eligible."""

    vehicle: np.ndarray
    sku: np.ndarray
    vehicles: pd.Index
    skus: pd.Index
    first_vehicle: np.ndarray
    first_sku: np.ndarray
    vehicles_first: pd.Index
    skus_first: pd.Index
    product_row: np.ndarray
    eligible: np.ndarray


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray, pd.Index, pd.Index]:
    """(sorted code, first-appearance code, sorted uniques, first-appearance uniques)."""
    first, uniq = pd.factorize(values)
    uniq = pd.Index(np.asarray(uniq, dtype=object))
    order = np.argsort(uniq.to_numpy(), kind="stable")
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    return np.where(first >= 0, rank[np.maximum(first, 0)], -1), first, uniq[order], uniq


def fitment_codes(product_vehicle_edges: pd.DataFrame, product_ids: Any,
                  eligible: pd.Series | None = None) -> FitmentCodes:
    """``FitmentCodes`` of ``product_vehicle_edges`` (vehicle_id, sku), the embedding's
    ``product_ids`` and ``eligible`` (sku -> bool; None: every sku)."""
    v, v_first, vehicles, vehicles_first = _codes(product_vehicle_edges["vehicle_id"])
    s, s_first, skus, skus_first = _codes(product_vehicle_edges["sku"])
    ok = (v >= 0) & (s >= 0)
    width = max(len(skus), 1)
    key = v[ok].astype(np.int64) * width + s[ok]
    order = np.argsort(key, kind="stable")
    key = key[order]
    distinct = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, bool)
    pos = np.flatnonzero(ok)[order][distinct]  # a row of each distinct pair
    srow = pd.Index(np.asarray(product_ids, dtype=object)).get_indexer(skus.to_numpy())
    sku_ok = np.ones(len(skus), dtype=bool)
    if eligible is not None:
        sku_ok = eligible.reindex(skus, fill_value=False).to_numpy(dtype=bool)
    sk = key[distinct] % width
    return FitmentCodes(
        vehicle=key[distinct] // width, sku=sk, vehicles=vehicles, skus=skus,
        first_vehicle=v_first[pos].astype(np.int64), first_sku=s_first[pos].astype(np.int64),
        vehicles_first=vehicles_first, skus_first=skus_first,
        product_row=srow[sk].astype(np.int64), eligible=sku_ok[sk])


def pair_lift(codes: FitmentCodes, pop: pd.Series, inter: pd.DataFrame, k: int) -> np.ndarray:
    """``graph/lookalike_lift``'s lift of every pair of ``codes`` (in their order) from the
    order counts ``pop`` (sku -> order_count) and the interactions ``inter`` (email_lower,
    sku, vehicle_id), over ``k`` look-alikes: the numbers ``lookalike_lift`` gives."""
    iv = codes.vehicles_first.get_indexer(inter["vehicle_id"].to_numpy(dtype=object))
    ip = codes.skus_first.get_indexer(inter["sku"].to_numpy(dtype=object))
    ok = (iv >= 0) & (ip >= 0)
    n = pop.reindex(codes.skus_first).fillna(0.0).to_numpy(dtype=float) + 0.5
    return lift_codes(codes.first_vehicle, codes.first_sku, len(codes.vehicles_first),
                      len(codes.skus_first), iv[ok], ip[ok], n, k)
