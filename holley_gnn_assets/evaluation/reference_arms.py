"""Reference arms for the evaluation, as score tables (ranked by the same SQL rules).

- ``global_pop``: order_count of every product, no fitment filter (``global_scores``): what
  fitment alone is worth;
- ``vehicle_pop``: per vehicle, the distinct users of that vehicle with a cart or order
  (user_product_edges.max_event_weight >= 3) before the cutoff, shrunk toward global popularity:
  score = c_vs + m * order_count_s / sum(order_count), m = eval.vehicle_pop_shrinkage (the
  simplest per-vehicle graph statistic, the bar the GNN must clear);
- ``lookalike_pop``: the count the GNN's own pooling makes possible, without a model: each
  vehicle's k fitment look-alikes (``graph/lookalikes.py``; k = the model's validation choice,
  ``training/lift_weight.py``, 20 = the ones the GNN's ``pooled`` propagation reads where no
  model says), their owners' distinct users per product (O_vs) against what
  the order counts predict for each look-alike's interactions (E_vs, ``graph/lookalike_lift``):
  score = log(order_count_s + 0.5) + log((O_vs + 0.5) / (E_vs + 0.5)). Truth-free, so it reads
  the same on real data. The GNN arm adds this lift to its vehicle scores with a weight
  chosen on validation (``training/lift_weight.py``), so this arm is the count alone;
- ``recent_pop``: popularity within fitment over the last N days before the cutoff (orders of
  ``product_order_days``, ties by all-time count), N chosen on validation from
  ``recent.pop_days`` (``graph/recent_demand.py``): what one change to the SQL ranking gives;
- ``oracle``: the synthetic world's planted preference (``synth_truth.vehicle_preference``),
  times each product's ``time_factor`` where the world records one (demand at the test window);
- ``oracle_observed``: the oracle with each product's true demand replaced by its observed
  order count, log prob_vs + log((order_count_s + 0.5) / demand_s): the world's structure
  (vehicle groups, product clusters, affinities) known exactly, popularity only as SQL measures
  it. What the structure is worth on top of the order counts; a model that also estimates
  popularity from views, carts and clicks can pass it (needs ``synth_truth.products.demand``).
- ``oracle_fitted``: the world's vehicle groups and product clusters known, each (group,
  cluster) lift counted from the training interactions: log n_s + log((O_gc + a) / (E_gc + a)),
  n_s = order_count_s + 0.5, E_gc = each vehicle's interactions spread over its fitting
  products by order share (needs ``group_id`` and ``cluster`` in the truth);
- ``oracle_grouped``: the same count with the vehicle groups known and every product its own
  cell (no clusters): what finding the vehicle groups exactly is worth to a count, the bound
  of ``lookalike_pop``'s pooling.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from holley_gnn_assets.graph.lookalike_lift import (
    PSEUDO_COUNT,
    interactions_with_vehicles,
    lookalike_lift,
)
from holley_gnn_assets.graph.lookalikes import NEIGHBOURS
from holley_gnn_assets.graph.recent_demand import Fitment, RecentChoice, recent_pop_counts
from holley_gnn_assets.warehouse.schemas import SCORES

RecentPop = tuple[pd.Series, RecentChoice]
"""``recent_pop``'s score per sku and the validated choice of its window."""

# arm -> whether its scores are global (no fitment rule)
REFERENCE_ARMS = {"global_pop": True, "vehicle_pop": False, "lookalike_pop": False,
                  "recent_pop": False, "oracle": False, "oracle_observed": False,
                  "oracle_fitted": False, "oracle_grouped": False}
# oracle_fitted's pseudo-count, the look-alike count's (one form of count); measured on three
# demo worlds (signal 3): a = 0.3, 1 and 3 move its cold headroom share by at most 3 points
FITTED_PSEUDO_COUNT = PSEUDO_COUNT


def _frame(vehicle_id: object, sku: pd.Series, score: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"vehicle_id": vehicle_id, "email_lower": None,
                         "sku": sku.to_numpy(dtype=object),
                         "score": score.astype("float64").to_numpy()})[list(SCORES)]


def reference_scores(
    tables: dict[str, pd.DataFrame], cfg: dict, truth: pd.DataFrame | None = None,
    lookalikes: int = NEIGHBOURS, recent: RecentPop | None = None,
) -> dict[str, pd.DataFrame]:
    """Score tables of the reference arms from the export tables (``product_nodes``,
    ``product_vehicle_edges``, ``user_nodes``, ``user_product_edges``, ``product_order_days``)
    and the truth; ``lookalikes``: the look-alike count's pool (the model's validation choice);
    ``recent``: ``recent_pop(tables, cfg)`` when the caller already has it."""
    products = tables["product_nodes"]
    pop = products.set_index("sku")["order_count"].astype(float)
    out = {"global_pop": _frame(None, pop.index.to_series(), pop)}

    fit = tables["product_vehicle_edges"][["vehicle_id", "sku"]].drop_duplicates()
    upe = tables.get("user_product_edges")
    users = tables["user_nodes"][["email_lower", "vehicle_id"]].dropna()
    if upe is not None and len(upe):
        strong = upe[upe["max_event_weight"] >= 3][["email_lower", "sku"]].drop_duplicates()
        strong = strong.merge(users, on="email_lower")
        counts = strong.groupby(["vehicle_id", "sku"]).size().rename("c").reset_index()
    else:
        counts = pd.DataFrame({"vehicle_id": [], "sku": [], "c": []})
    # every distinct (user, product) interaction with the user's vehicle, read by the counts
    # below (lookalike_pop, oracle_fitted, oracle_grouped)
    inter = interactions_with_vehicles(upe, tables["user_nodes"])
    m = float(cfg["eval"]["vehicle_pop_shrinkage"])
    share = pop / max(pop.sum(), 1.0)
    vp = fit.merge(counts, on=["vehicle_id", "sku"], how="left")
    vp["score"] = vp["c"].fillna(0.0).astype(float) + m * vp["sku"].map(share).fillna(0.0)
    out["vehicle_pop"] = _frame(vp["vehicle_id"].to_numpy(dtype=object), vp["sku"], vp["score"])
    out["lookalike_pop"] = _lookalike_pop(fit, pop, inter, lookalikes)
    recent = recent if recent is not None else recent_pop(tables, cfg)
    if recent is not None:
        rp = fit.assign(score=fit["sku"].map(recent[0]).fillna(0.0).to_numpy())
        out["recent_pop"] = _frame(rp["vehicle_id"].to_numpy(dtype=object), rp["sku"],
                                   rp["score"])

    if truth is not None and len(truth):
        missing = [c for c in ("vehicle_id", "sku", "prob") if c not in truth.columns]
        if missing:
            raise ValueError(f"truth lacks column(s) {missing}")
        cols = ["vehicle_id", "sku", "prob"] + [
            c for c in ("demand", "group_id", "cluster", "time_factor") if c in truth.columns]
        oc = fit.merge(truth[cols], on=["vehicle_id", "sku"])
        if "time_factor" in oc.columns:  # demand that moves: the truth at the test window
            oc["prob"] = oc["prob"] * oc["time_factor"].fillna(1.0)
        out["oracle"] = _frame(oc["vehicle_id"].to_numpy(dtype=object), oc["sku"], oc["prob"])
        if "demand" in oc.columns:
            ob = oc[(oc["demand"] > 0) & (oc["prob"] > 0)]
            score = (np.log(ob["prob"]) + np.log(ob["sku"].map(pop).fillna(0.0) + 0.5)
                     - np.log(ob["demand"]))
            out["oracle_observed"] = _frame(ob["vehicle_id"].to_numpy(dtype=object), ob["sku"],
                                            score)
        if {"group_id", "cluster"} <= set(oc.columns):
            out["oracle_fitted"] = _oracle_fitted(
                oc[["vehicle_id", "sku", "group_id", "cluster"]], pop, inter)
        if "group_id" in oc.columns:
            grouped = oc[["vehicle_id", "sku", "group_id"]].assign(cluster=oc["sku"])
            out["oracle_grouped"] = _oracle_fitted(grouped, pop, inter)
    return out


def _oracle_fitted(fit: pd.DataFrame, pop: pd.Series, inter: pd.DataFrame) -> pd.DataFrame:
    """``oracle_fitted`` (``oracle_grouped``: cluster = sku) scores (module doc) from the
    fitment rows with their true group_id and cluster, the order counts and the distinct
    training interactions with their users' vehicles (email_lower, sku, vehicle_id)."""
    fit = fit.assign(n=fit["sku"].map(pop).fillna(0.0).to_numpy() + 0.5)
    fit["p"] = fit["n"] / fit.groupby("vehicle_id")["n"].transform("sum")
    share = fit.groupby(["vehicle_id", "group_id", "cluster"])["p"].sum().rename("share")
    cols = ["vehicle_id", "sku", "group_id", "cluster"]
    inter = inter.merge(fit[cols], on=["vehicle_id", "sku"])
    observed = inter.groupby(["group_id", "cluster"]).size().rename("O")
    per_vehicle = inter.groupby("vehicle_id").size().rename("m")
    expected = share.reset_index().merge(per_vehicle, on="vehicle_id")
    expected = (expected["share"] * expected["m"]).groupby(
        [expected["group_id"], expected["cluster"]]).sum().rename("E")
    cells = pd.concat([observed, expected], axis=1).fillna(0.0)
    a = FITTED_PSEUDO_COUNT
    cells["affinity"] = np.log((cells["O"] + a) / (cells["E"] + a))
    fit = fit.merge(cells["affinity"].reset_index(), on=["group_id", "cluster"], how="left")
    score = np.log(fit["n"]) + fit["affinity"].fillna(0.0)
    return _frame(fit["vehicle_id"].to_numpy(dtype=object), fit["sku"], score)


def _lookalike_pop(
    fit: pd.DataFrame, pop: pd.Series, inter: pd.DataFrame, k: int
) -> pd.DataFrame:
    """``lookalike_pop`` scores: log n_s + the look-alike count's lift (``graph/lookalike_lift``,
    ``k`` look-alikes) of every fitting (vehicle, sku) pair in ``fit``."""
    lift = lookalike_lift(fit, pop, inter, k)
    return _frame(lift["vehicle_id"].to_numpy(dtype=object), lift["sku"],
                  lift["log_n"] + lift["lift"])


def recent_pop(tables: dict[str, pd.DataFrame], cfg: dict) -> RecentPop | None:
    """``recent_pop``'s score per sku and its choice of N days (validated within fitment), once
    per evaluation; None without ``product_order_days``."""
    days = tables.get("product_order_days")
    if days is None:
        return None
    skus = pd.Index(tables["product_nodes"]["sku"])
    return recent_pop_counts(days, skus, cfg["recent"],
                             Fitment.from_tables(tables, cfg["rules"]["top_k"]))


def recent_pop_summary(recent: RecentPop | None, cfg: dict) -> dict | None:
    """``recent_pop``'s chosen window and every candidate's validation MRR (for the report);
    None without ``product_order_days``."""
    if recent is None:
        return None
    choice = recent[1]
    return {"days": choice.value, "holdout_days": int(cfg["recent"]["holdout_days"]),
            "val_mrr": {str(k): round(v, 6) for k, v in choice.val_mrr.items()}}
