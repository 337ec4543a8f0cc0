"""The GNN arm's score table (spec section 5, fitment-filtered brute force), rules-free.

Users without their own node share one representation per vehicle (the cold-user tower on the
vehicle), so each vehicle is scored once against the products that fit it (a vehicle row of
the score table); users with their own representation (warm/hot graph users) get their own
rows. Eligibility, purchase exclusion, variants, the part-type cap and top-k are applied by the
warehouse (``sql/rules/recommend.sql``), the same for every arm.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from holley_gnn_assets.graph.lookalike_lift import interactions_with_vehicles
from holley_gnn_assets.graph.lookalikes import NEIGHBOURS
from holley_gnn_assets.recommend.fitment_codes import fitment_codes, pair_lift
from holley_gnn_assets.recommend.group_top_k import best_per_group
from holley_gnn_assets.warehouse.schemas import SCORES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VehicleLift:
    """What the look-alike lift on the vehicle rows reads (``graph/lookalike_lift``): its
    weight, the order counts (sku -> order_count), the interactions with their users'
    vehicles (``interactions_with_vehicles``) and the look-alikes pooled."""

    weight: float
    pop: pd.Series
    interactions: pd.DataFrame
    neighbours: int = NEIGHBOURS


def _vehicle_groups(ent_vehicle: np.ndarray, fit_vehicle: np.ndarray) -> tuple[np.ndarray, ...]:
    """Entities and fit rows grouped by vehicle code: (entity order, fit order, entity counts,
    fit counts, entity starts, fit starts), the counts and starts indexed by vehicle."""
    n_v = int(max(ent_vehicle.max(initial=-1), fit_vehicle.max(initial=-1))) + 1
    eo = np.argsort(ent_vehicle, kind="stable")
    fo = np.argsort(fit_vehicle, kind="stable")
    e_counts = np.bincount(ent_vehicle, minlength=n_v)
    f_counts = np.bincount(fit_vehicle, minlength=n_v)
    e_starts = np.cumsum(e_counts) - e_counts
    f_starts = np.cumsum(f_counts) - f_counts
    return eo, fo, e_counts, f_counts, e_starts, f_starts


def block_scores(
    ent_vehicle: np.ndarray,
    ent_vectors: np.ndarray,
    fit_vehicle: np.ndarray,
    fit_prow: np.ndarray,
    product_matrix: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dot products of every entity with every product fitting its vehicle, one matmul per
    vehicle. ent_vehicle/fit_vehicle are vehicle codes; returns (entity position, fit row,
    float32 score)."""
    eo, fo, e_counts, f_counts, e_starts, f_starts = _vehicle_groups(ent_vehicle, fit_vehicle)
    total = int(np.sum(e_counts.astype(np.int64) * f_counts))
    out_e = np.empty(total, dtype=np.int64)
    out_f = np.empty(total, dtype=np.int64)
    out_s = np.empty(total, dtype=np.float32)
    pos = 0
    for v in np.flatnonzero((e_counts > 0) & (f_counts > 0)):
        ei = eo[e_starts[v] : e_starts[v] + e_counts[v]]
        fi = fo[f_starts[v] : f_starts[v] + f_counts[v]]
        block = ent_vectors[ei] @ product_matrix[fit_prow[fi]].T
        n = block.size
        out_e[pos : pos + n] = np.repeat(ei, len(fi))
        out_f[pos : pos + n] = np.tile(fi, len(ei))
        out_s[pos : pos + n] = block.ravel()
        pos += n
    return out_e, out_f, out_s


def _top_k_mask(block: np.ndarray, k: int) -> np.ndarray:
    """Per row of ``block`` (columns in sku order), the ``k`` highest scores, ties by column:
    the order of the rules file (score DESC, sku ASC)."""
    if block.shape[1] <= k:
        return np.ones(block.shape, dtype=bool)
    kth = -np.partition(-block, k - 1, axis=1)[:, k - 1 : k]
    above = block > kth
    tied = block == kth
    need = k - above.sum(axis=1, keepdims=True)
    return above | (tied & (np.cumsum(tied, axis=1, dtype=np.int32) <= need))


def _top_k_cells(block: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each row's ``k[row]`` highest scores, ties by column: the top
    max(k) (``_top_k_mask``), then each row's first k of those by score DESC, column ASC."""
    r, c = np.nonzero(_top_k_mask(block, int(k.max(initial=0))))
    if not len(r) or (k == k.max()).all():
        return r, c
    best = best_per_group(r, block[r, c], c, k)
    return r[best], c[best]


def top_k_scores(
    ent_vehicle: np.ndarray,
    ent_vectors: np.ndarray,
    fit_vehicle: np.ndarray,
    fit_prow: np.ndarray,
    product_matrix: np.ndarray,
    k: int | np.ndarray,
    chunk_cells: int = 4_000_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``block_scores`` keeping each entity's ``k`` best fitting products (``k``: one for all,
    or one per entity; ties: the earlier fit row, so pass the fit rows in sku order), in chunks
    of about ``chunk_cells`` scores: memory and rows grow as entities x k, not x catalogue."""
    per_entity = np.broadcast_to(np.asarray(k, dtype=np.int64), ent_vehicle.shape)
    eo, fo, e_counts, f_counts, e_starts, f_starts = _vehicle_groups(ent_vehicle, fit_vehicle)
    outs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for v in np.flatnonzero((e_counts > 0) & (f_counts > 0)):
        ei = eo[e_starts[v] : e_starts[v] + e_counts[v]]
        fi = fo[f_starts[v] : f_starts[v] + f_counts[v]]
        products_t = np.ascontiguousarray(product_matrix[fit_prow[fi]].T)
        step = max(1, chunk_cells // len(fi))
        for lo in range(0, len(ei), step):
            rows = ei[lo : lo + step]
            block = ent_vectors[rows] @ products_t
            r, c = _top_k_cells(block, per_entity[rows])
            outs.append((rows[r], fi[c], block[r, c]))
    if not outs:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    return tuple(np.concatenate(x) for x in zip(*outs, strict=True))  # type: ignore[return-value]


def _check_embeddings(emb: Any) -> None:
    for attr in ("product_ids", "product_matrix", "group_keys", "group_matrix", "user_index",
                 "user_matrix"):
        if not hasattr(emb, attr):
            raise ValueError(f"embeddings object lacks attribute {attr!r}")
    if len(emb.product_ids) != emb.product_matrix.shape[0]:
        raise ValueError(
            f"embeddings: {len(emb.product_ids)} product_ids but product_matrix has "
            f"{emb.product_matrix.shape[0]} rows"
        )
    if len(emb.group_keys) != emb.group_matrix.shape[0]:
        raise ValueError(
            f"embeddings: {len(emb.group_keys)} group_keys but group_matrix has "
            f"{emb.group_matrix.shape[0]} rows"
        )
    missing = [c for c in ("email_lower", "vehicle_id", "source", "row")
               if c not in emb.user_index.columns]
    if missing:
        raise ValueError(f"embeddings.user_index lacks column(s) {missing}")


def gnn_score_frame(
    embeddings: Any,
    product_vehicle_edges: pd.DataFrame,
    user_candidates: int | None = None,
    eligible: pd.Series | None = None,
    group_candidates: int | None = None,
    lift: VehicleLift | None = None,
    user_allowance: pd.Series | None = None,
) -> pd.DataFrame:
    """The GNN's score table [vehicle_id, email_lower, sku, score]: one row per (vehicle,
    fitting product) for users served by their vehicle, one per (own-node user, product that
    fits the user's vehicle) for the others. With ``user_candidates`` (scale.user_candidates)
    an own-node user keeps that many rows, the best eligible (``eligible``: product_nodes'
    sku -> eligible) fitting products by score (ties: sku), so user rows grow as users x
    user_candidates; None keeps every fitting product; ``user_allowance`` (email_lower ->
    rows) adds that many more for a user. ``lift``: the look-alike lift added to
    the vehicle rows (``add_lookalike_lift``'s scores). ``group_candidates`` then keeps each
    vehicle's best eligible rows (``candidate_cut.top_candidates``' rows, without the rest)."""
    _check_embeddings(embeddings)
    for col in ("sku", "vehicle_id"):
        if col not in product_vehicle_edges.columns:
            raise ValueError(f"product_vehicle_edges lacks column {col!r}")
    t0 = time.perf_counter()
    pm = np.ascontiguousarray(embeddings.product_matrix, dtype=np.float32)
    codes = fitment_codes(product_vehicle_edges, embeddings.product_ids, eligible)
    embedded = codes.product_row >= 0
    vcode, fit_prow = codes.vehicle[embedded], codes.product_row[embedded]
    fit_sku, usable = codes.skus.to_numpy()[codes.sku[embedded]], codes.eligible[embedded]
    vindex = codes.vehicles
    keep = np.flatnonzero(usable)

    # vehicles: the group representation does not depend on the tier, one row per vehicle
    gk = embeddings.group_keys.reset_index(drop=True)
    first = ~gk["vehicle_id"].duplicated().to_numpy()
    g_vid = gk["vehicle_id"].to_numpy(dtype=object)[first]
    gm = np.ascontiguousarray(embeddings.group_matrix, dtype=np.float32)[first]
    g_veh = vindex.get_indexer(g_vid).astype(np.int64)
    has = g_veh >= 0
    ge, gf, gs = block_scores(g_veh[has], gm[has], vcode, fit_prow, pm)
    if lift is not None and lift.weight:
        if lift.weight < 0:
            raise ValueError(f"lookalike lift weight must be >= 0, got {lift.weight}")
        gs = gs.astype(np.float64) + lift.weight * pair_lift(
            codes, lift.pop, lift.interactions, lift.neighbours)[embedded][gf]
    if group_candidates is not None:
        # ties by fit row = sku order within a vehicle
        top = best_per_group(ge, gs, gf, int(group_candidates), keep=usable[gf])
        ge, gf, gs = ge[top], gf[top], gs[top]
    n_vehicle_rows = len(ge)

    # users with their own node
    idx = embeddings.user_index
    own = idx[idx["source"] == "user"]
    u_veh = vindex.get_indexer(own["vehicle_id"].to_numpy(dtype=object)).astype(np.int64)
    um = np.asarray(embeddings.user_matrix, dtype=np.float32)
    ok = u_veh >= 0
    rows = own["row"].to_numpy(dtype=np.int64)[ok]
    if user_candidates is None:
        ue, uf, us = block_scores(u_veh[ok], um[rows], vcode, fit_prow, pm)
    else:
        k_user = np.full(int(ok.sum()), int(user_candidates), dtype=np.int64)
        if user_allowance is not None:
            k_user += user_allowance.reindex(own["email_lower"].to_numpy(dtype=object)[ok]
                                             ).fillna(0).to_numpy(dtype=np.int64)
        ue, uf, us = top_k_scores(u_veh[ok], um[rows], vcode[keep], fit_prow[keep], pm, k_user)
        uf = keep[uf]
    n = n_vehicle_rows + len(ue)
    vehicle = np.full(n, None, dtype=object)
    vehicle[:n_vehicle_rows] = g_vid[has][ge]
    email = np.full(n, None, dtype=object)
    email[n_vehicle_rows:] = own["email_lower"].to_numpy(dtype=object)[ok][ue]
    out = pd.DataFrame({
        "vehicle_id": vehicle, "email_lower": email,
        "sku": np.concatenate([fit_sku[gf], fit_sku[uf]]),
        "score": np.concatenate([gs, us]).astype(np.float64)})[list(SCORES)]
    log.info("gnn scores: %d vehicle rows, %d user rows (%d users, at most %s each) in %.1fs",
             n_vehicle_rows, len(ue), int(ok.sum()), user_candidates, time.perf_counter() - t0)
    return out


def add_lookalike_lift(scores: pd.DataFrame, lift: pd.DataFrame, weight: float) -> pd.DataFrame:
    """``scores`` with ``weight`` x the look-alike count's lift (``graph/lookalike_lift``,
    [vehicle_id, sku, lift]) added to the vehicle rows (users served by their vehicle); user
    rows and pairs without a lift keep their score. ``weight`` 0 returns ``scores`` as is."""
    if weight < 0:
        raise ValueError(f"lookalike lift weight must be >= 0, got {weight}")
    if weight == 0 or not len(scores):
        return scores
    vehicle_rows = scores["email_lower"].isna().to_numpy()
    part = scores.loc[vehicle_rows, ["vehicle_id", "sku"]]
    add = part.merge(lift[["vehicle_id", "sku", "lift"]], on=["vehicle_id", "sku"], how="left")
    out = scores.copy()
    out.loc[vehicle_rows, "score"] = (scores.loc[vehicle_rows, "score"].to_numpy()
                                      + weight * add["lift"].fillna(0.0).to_numpy())
    return out


def gnn_arm_scores(
    embeddings: Any, tables: dict[str, pd.DataFrame], weight: float, neighbours: int = NEIGHBOURS,
    user_candidates: int | None = None, group_candidates: int | None = None,
) -> pd.DataFrame:
    """The GNN arm's score table: ``gnn_score_frame`` over ``tables['product_vehicle_edges']``.
    Own-node users get the ``user_candidates`` best products ``tables['product_nodes']`` marks
    eligible, plus one per product they interacted with (``interacted_products`` of
    ``tables['user_product_edges']``). The vehicle rows get ``weight`` x the look-alike lift
    over ``neighbours`` look-alikes (``product_nodes``, ``user_nodes``, ``user_product_edges``);
    with ``group_candidates`` (rules.candidate_depth) each vehicle then keeps its best eligible
    ``group_candidates`` rows (``candidate_cut``): the rules read no others, so the lists are
    the same and the rows grow as vehicles x depth, not as fitment pairs."""
    fit = tables["product_vehicle_edges"]
    eligible = None
    if user_candidates is not None or group_candidates is not None:
        eligible = tables["product_nodes"].set_index("sku")["eligible"].astype(bool)
    lift = None
    if weight:
        t0 = time.perf_counter()
        pop = tables["product_nodes"].set_index("sku")["order_count"].astype(float)
        inter = interactions_with_vehicles(tables.get("user_product_edges"),
                                           tables["user_nodes"])
        lift = VehicleLift(float(weight), pop, inter, int(neighbours))
        log.info("gnn scores: look-alike lift (%d look-alikes) x %.2f on the vehicle rows, "
                 "interactions read in %.1fs", neighbours, weight, time.perf_counter() - t0)
    allowance = (interacted_products(tables.get("user_product_edges"))
                 if user_candidates is not None else None)
    return gnn_score_frame(embeddings, fit, user_candidates, eligible, group_candidates, lift,
                           allowance)


def interacted_products(user_product_edges: pd.DataFrame | None) -> pd.Series | None:
    """Distinct products each user interacted with (email_lower -> count): a user's own rows
    get this many beyond ``scale.user_candidates``, since the purchase exclusion removes
    only products the user ordered (the interactions hold every order of their window)."""
    if user_product_edges is None:
        return None
    return user_product_edges[["email_lower", "sku"]].drop_duplicates().groupby(
        "email_lower").size()


