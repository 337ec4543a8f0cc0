"""The rows a run will score and rank, estimated before training, against the memory budget.

Score tables and the rules' per-user rows grow as users x candidates: a user ranked on their
own (a GNN user with their own node, or a user whose purchases touch their vehicle's list)
gets at most ``rules.candidate_depth`` rule rows, an own-node user at most
``scale.user_candidates`` GNN score rows plus one per product they interacted with, and each
vehicle one row per fitting product. The estimate is an upper bound from the export tables;
at ``scale.bytes_per_row`` bytes a row it must fit ``scale.memory_budget_gb``, else the run
stops before training with :class:`RowBudgetError` naming the estimate (a run that would
exhaust memory after training otherwise just disappears, killed by the kernel).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from holley_gnn_assets.recommend.gnn_scores import interacted_products


class RowBudgetError(RuntimeError):
    """The estimated score and rule rows exceed scale.memory_budget_gb."""


def estimate_rows(tables: Mapping[str, pd.DataFrame], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Upper bound of the per-user rows from ``user_nodes``, ``product_nodes`` and
    ``product_vehicle_edges``: users ranked alone (not cold, or with orders) x
    min(candidate_depth, their vehicle's eligible fitting products), own-node (warm/hot)
    users x min(user_candidates + their interacted products (``user_product_edges``, when
    given), the same), plus the vehicle rows (fitment pairs)."""
    depth = int(cfg["rules"]["candidate_depth"])
    per_user = int(cfg["scale"]["user_candidates"])
    users = tables["user_nodes"]
    users = users[users["vehicle_id"].notna()]
    products = tables["product_nodes"]
    eligible = set(products.loc[products["eligible"].astype(bool), "sku"])
    fit = tables["product_vehicle_edges"][["vehicle_id", "sku"]].drop_duplicates()
    n_fit = fit[fit["sku"].isin(eligible)].groupby("vehicle_id").size()
    cands = users["vehicle_id"].map(n_fit).fillna(0).to_numpy(dtype=np.int64)
    own = (users["tier"].astype(str).str.lower() != "cold").to_numpy()
    alone = own | (users["n_orders"].fillna(0).to_numpy() > 0)
    rule_rows = int(np.minimum(cands[alone], depth).sum())
    extra = np.zeros(len(users), dtype=np.int64)  # one more per interacted product
    counts = interacted_products(tables.get("user_product_edges"))
    if counts is not None:
        extra = users["email_lower"].map(counts).fillna(0).to_numpy(dtype=np.int64)
    gnn_rows = int(np.minimum(cands[own], per_user + extra[own]).sum())
    vehicle_rows = len(fit)
    total = rule_rows + gnn_rows + vehicle_rows
    gb = total * int(cfg["scale"]["bytes_per_row"]) / 1e9
    return {"users_ranked_alone": int(alone.sum()), "own_node_users": int(own.sum()),
            "max_candidates": int(n_fit.max()) if len(n_fit) else 0,
            "rule_rows": rule_rows, "gnn_user_rows": gnn_rows, "vehicle_rows": vehicle_rows,
            "rows": total, "gb": gb,
            "budget_gb": float(cfg["scale"]["memory_budget_gb"])}


def check_row_budget(tables: Mapping[str, pd.DataFrame], cfg: Mapping[str, Any]) -> dict:
    """``estimate_rows``; RowBudgetError naming the estimate when it exceeds the budget."""
    est = estimate_rows(tables, cfg)
    if est["gb"] > est["budget_gb"]:
        raise RowBudgetError(
            f"estimated {est['rows']:,} score and rule rows ({est['users_ranked_alone']:,} users "
            f"ranked alone x up to rules.candidate_depth={cfg['rules']['candidate_depth']} of "
            f"{est['max_candidates']:,} candidates = {est['rule_rows']:,}; "
            f"{est['own_node_users']:,} own-node users x up to scale.user_candidates="
            f"{cfg['scale']['user_candidates']} = {est['gnn_user_rows']:,}; "
            f"{est['vehicle_rows']:,} vehicle rows) x scale.bytes_per_row="
            f"{cfg['scale']['bytes_per_row']} = {est['gb']:.3g} GB exceed "
            f"scale.memory_budget_gb={est['budget_gb']}: stopped before training; lower "
            "rules.candidate_depth or scale.user_candidates, or raise the budget")
    return est
