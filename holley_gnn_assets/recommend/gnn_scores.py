"""GNN batch scoring: fitment-filtered brute force (spec section 5) plus the shared rules.

Users without their own edges share one representation per (vehicle, tier) group, so each
group is scored and ranked once against the eligible products that fit its vehicle; users with
their own representation (warm/hot, few) are scored individually. Purchase exclusion is applied
on top only for users whose purchases touch their group's list (see ``rules``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from holley_gnn_assets.recommend import rules as R

log = logging.getLogger(__name__)


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
    n_v = int(max(ent_vehicle.max(initial=-1), fit_vehicle.max(initial=-1))) + 1
    eo = np.argsort(ent_vehicle, kind="stable")
    fo = np.argsort(fit_vehicle, kind="stable")
    e_counts = np.bincount(ent_vehicle, minlength=n_v)
    f_counts = np.bincount(fit_vehicle, minlength=n_v)
    e_starts = np.cumsum(e_counts) - e_counts
    f_starts = np.cumsum(f_counts) - f_counts
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


def _check_embeddings(emb: Any) -> None:
    for attr in ("product_ids", "product_matrix", "group_keys", "group_matrix", "user_index"):
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
    R._require(
        emb.user_index,
        ["email_lower", "vehicle_id", "tier", "source", "row"],
        "embeddings.user_index",
    )


def score_gnn(
    embeddings: Any,
    tables: dict[str, pd.DataFrame],
    cfg: dict,
    scoring_date: dt.date,
    depth: int | None = None,
    only_users: Iterable[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every user with a vehicle; return (recommendations [OUTPUT_COLUMNS], ranked long).

    tables: ``product_nodes``, ``user_nodes``, ``product_vehicle_edges``, ``user_purchases``.
    scoring_date: purchase exclusion covers [scoring_date - 365 d, scoring_date).
    depth: ranked list length (default ``rules.rank_depth``).
    only_users: score just these email_lower values (evaluation's test users); default all.
    """
    for name in ("product_nodes", "user_nodes", "product_vehicle_edges", "user_purchases"):
        if name not in tables:
            raise ValueError(f"score_gnn: tables lacks {name!r}")
    _check_embeddings(embeddings)
    rules = R.Rules.from_config(cfg)
    depth = int(depth or rules.rank_depth)
    t0 = time.perf_counter()
    catalog = R.ProductCatalog(tables["product_nodes"], rules)
    pm = np.ascontiguousarray(embeddings.product_matrix, dtype=np.float32)
    # eligible fitting products that have an embedding
    fit = R.fitting_candidates(catalog, tables["product_vehicle_edges"])
    prow = pd.Index(np.asarray(embeddings.product_ids, dtype=object)).get_indexer(fit["sku"])
    fit = fit[prow >= 0]
    fit_prow = prow[prow >= 0].astype(np.int64)
    fit_s = catalog.codes(fit["sku"])
    vcode, vuniq = pd.factorize(fit["vehicle_id"])
    vindex = pd.Index(vuniq)

    # users with a vehicle, sorted by email: positions are the output order
    idx = embeddings.user_index
    if only_users is not None:
        idx = idx[idx["email_lower"].isin(pd.Index(list(only_users)))]
    idx = idx.sort_values("email_lower", kind="stable").reset_index(drop=True)
    if idx["email_lower"].duplicated().any():
        raise ValueError("embeddings.user_index has duplicate email_lower values")
    emails = idx["email_lower"].to_numpy(dtype=object)
    is_group = (idx["source"] == "group").to_numpy()
    rows = idx["row"].to_numpy(dtype=np.int64)
    purchases = R.purchases_in_window(
        tables["user_purchases"], scoring_date, rules.purchase_exclusion_days
    )
    pu, ps = R.purchase_codes(purchases, pd.Index(emails), catalog)

    # groups: one ranking per (vehicle, tier) representation
    gk = embeddings.group_keys.reset_index(drop=True)
    g_veh = vindex.get_indexer(gk["vehicle_id"]).astype(np.int64)
    gm = np.ascontiguousarray(embeddings.group_matrix, dtype=np.float32)
    has = g_veh >= 0
    ge, gf, gscore = block_scores(g_veh[has], gm[has], vcode.astype(np.int64), fit_prow, pm)
    g_pos = np.flatnonzero(has)[ge]
    user_g = np.where(is_group, rows, -1)
    t1 = time.perf_counter()
    u1, r1, s1, sc1 = R.rank_groups_core(
        g_pos, fit_s[gf], gscore, user_g, pu[is_group[pu]], ps[is_group[pu]], catalog, depth
    )
    # users with their own representation: scored and ranked one by one (vectorised)
    own = np.flatnonzero(~is_group)
    u_veh = vindex.get_indexer(idx["vehicle_id"].to_numpy()[own]).astype(np.int64)
    um = np.asarray(embeddings.user_matrix, dtype=np.float32)
    ok = u_veh >= 0
    oe, of, oscore = block_scores(
        u_veh[ok], um[rows[own][ok]], vcode.astype(np.int64), fit_prow, pm
    )
    ou, os_ = own[ok][oe], fit_s[of]
    n_sku = np.int64(len(catalog.skus))
    keep = catalog.eligible[os_] & ~np.isin(ou * n_sku + os_, pu * n_sku + ps)
    u2, s2, sc2, r2 = R.rank_codes(ou[keep], os_[keep], oscore[keep], catalog, depth)
    u = np.concatenate([u1, u2])
    order = np.argsort(u, kind="stable")
    ranked = R.ranked_frame(
        emails,
        u[order],
        np.concatenate([r1, r2])[order],
        np.concatenate([s1, s2])[order],
        np.concatenate([sc1, sc2])[order],
        catalog,
    )
    t2 = time.perf_counter()
    recs = R.to_output_schema(ranked, tables["user_nodes"], tables["product_nodes"], rules.top_k)
    log.info(
        "score_gnn: %d groups, %d own-embedding users, %d users with recs; "
        "dot products %.1fs, rules %.1fs, output %.1fs",
        len(gk),
        len(own),
        len(recs),
        t1 - t0,
        t2 - t1,
        time.perf_counter() - t2,
    )
    return recs, ranked
