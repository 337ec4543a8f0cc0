"""Test-only reference implementation of the business rules, in pandas/numpy.

The package applies the rules once, in SQL (sql/rules/recommend.sql); this independent
implementation is the oracle the engine-agreement tests compare it with.

One definition lives in config ``rules``. Both engines apply the same order of operations and
the same tie-break, so that fed the same scores they produce the same lists row for row:

1. candidates = products that fit the user's vehicle (the caller builds them per group),
   restricted to statically eligible products (:func:`eligible_mask`: price >= min_price,
   image starts with the https prefix, not refurbished, part type not service/commodity);
2. purchase exclusion: drop every SKU the user ordered in [scoring_date - 365 d, scoring_date);
3. variant de-dup: per (user, base_sku) keep the first row in (score desc, sku asc) order;
4. part-type cap: per (user, part_type) keep the first ``max_per_part_type`` rows, same order;
5. rank per user in (score desc, sku asc) order; keep ``rank_depth`` (metrics) / ``top_k`` (output).

Purchasers are handled as the SQL engine does: every group (a vehicle, or a vehicle and tier)
is ranked once; a user whose exclusion set touches the group's list is re-ranked on its own.
Removing a SKU that is not in the group's ranked list cannot change that list (it was cut by
de-dup, the cap or the depth, and steps 3-5 only look at rows ranked above it), so only
users who bought a SKU that is in their group's list need the recomputation.
All work is vectorised over integer codes; no per-user Python loops.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from holley_gnn_assets.warehouse.schemas import OUTPUT_COLUMNS

RANKED_COLUMNS = ["email_lower", "rank", "sku", "score"]


@dataclass(frozen=True)
class Rules:
    """The ``rules`` config section, typed."""

    min_price: float
    excluded_tags: tuple[str, ...]
    service_part_types: tuple[str, ...]
    commodity_part_types: tuple[str, ...]
    image_prefix: str
    variant_suffix_regex: str
    max_per_part_type: int
    top_k: int
    rank_depth: int
    purchase_exclusion_days: int

    @classmethod
    def from_config(cls, cfg: dict) -> Rules:
        """Read ``cfg['rules']`` (and ``time.purchase_exclusion_days``), naming a missing key."""
        r = cfg.get("rules")
        if not isinstance(r, dict):
            raise ValueError("config has no 'rules' section")
        try:
            return cls(
                min_price=float(r["min_price"]),
                excluded_tags=tuple(str(t).lower() for t in r["excluded_tags"]),
                service_part_types=tuple(str(t).strip().lower() for t in r["service_part_types"]),
                commodity_part_types=tuple(
                    str(t).strip().lower() for t in r["commodity_part_types"]
                ),
                image_prefix=str(r["image_prefix"]),
                variant_suffix_regex=str(r["variant_suffix_regex"]),
                max_per_part_type=int(r["max_per_part_type"]),
                top_k=int(r["top_k"]),
                rank_depth=int(r["rank_depth"]),
                purchase_exclusion_days=int(
                    cfg.get("time", {}).get("purchase_exclusion_days", 365)
                ),
            )
        except KeyError as exc:
            raise ValueError(f"config 'rules' section lacks key {exc.args[0]!r}") from exc


def _require(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; has {list(df.columns)}")


def base_sku(skus: pd.Series, rules: Rules) -> pd.Series:
    """The SKU without one trailing colour letter when it matches ``variant_suffix_regex``."""
    s = skus.astype("string")
    hit = s.str.contains(rules.variant_suffix_regex, regex=True, na=False)
    return s.where(~hit, s.str[:-1])


def eligible_mask(products: pd.DataFrame, rules: Rules) -> pd.Series:
    """Static rules per product (price floor, https image, not refurbished/service/commodity)."""
    _require(products, ["sku", "part_type", "price", "image_url", "is_refurbished"], "products")
    price = pd.to_numeric(products["price"], errors="coerce")
    image = products["image_url"].astype("string")
    banned = set(rules.service_part_types) | set(rules.commodity_part_types)
    ok = price.ge(rules.min_price).fillna(False)
    ok &= image.str.startswith(rules.image_prefix).fillna(False).astype(bool)
    ok &= ~products["is_refurbished"].fillna(False).astype(bool)
    part = products["part_type"].astype("string").str.strip().str.lower()
    ok &= ~part.isin(banned).fillna(False).astype(bool)
    return ok.astype(bool)


class ProductCatalog:
    """Integer codes for products: code order == SKU string order (the tie-break)."""

    def __init__(self, products: pd.DataFrame, rules: Rules):
        _require(products, ["sku", "part_type"], "products")
        if products["sku"].isna().any():
            raise ValueError("products has null sku values")
        if products["sku"].duplicated().any():
            dup = products.loc[products["sku"].duplicated(), "sku"].iloc[0]
            raise ValueError(f"products has duplicate sku values (e.g. {dup!r})")
        p = products.sort_values("sku", kind="stable").reset_index(drop=True)
        self.rules = rules
        self.frame = p
        self.skus = p["sku"].astype(str).to_numpy()
        bases = p["base_sku"] if "base_sku" in p.columns else base_sku(p["sku"], rules)
        self.base_code = pd.factorize(bases.astype(str))[0].astype(np.int64)
        self.part_code = pd.factorize(p["part_type"].fillna("\x00<null>"))[0].astype(np.int64)
        self.eligible = eligible_mask(p, rules).to_numpy()
        self._index = pd.Index(self.skus)

    def codes(self, skus: pd.Series | np.ndarray, what: str = "candidates") -> np.ndarray:
        """SKU -> code; -1 for SKUs missing from the catalogue."""
        return self._index.get_indexer(pd.Index(np.asarray(skus, dtype=object))).astype(np.int64)


def rank_codes(
    key: np.ndarray,
    sku_code: np.ndarray,
    score: np.ndarray,
    catalog: ProductCatalog,
    depth: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps 3-5 on integer arrays (rows already filtered).

    Returns (key, sku, score, rank) sorted by key, then rank.
    """
    key = np.asarray(key, dtype=np.int64)
    sku_code = np.asarray(sku_code, dtype=np.int64)
    score = np.asarray(score, dtype=np.float64)
    if np.isnan(score).any():
        raise ValueError("candidate scores contain NaN")
    order = np.lexsort((sku_code, -score, key))
    k, s, sc = key[order], sku_code[order], score[order]
    n_base = int(catalog.base_code.max(initial=0)) + 1
    dedup = pd.Series(k * n_base + catalog.base_code[s]).duplicated().to_numpy()
    k, s, sc = k[~dedup], s[~dedup], sc[~dedup]
    n_part = int(catalog.part_code.max(initial=0)) + 1
    kp = pd.Series(k * n_part + catalog.part_code[s])
    nth = kp.groupby(kp.to_numpy(), sort=False).cumcount().to_numpy()
    keep = nth < catalog.rules.max_per_part_type
    k, s, sc = k[keep], s[keep], sc[keep]
    if len(k) == 0:
        return k, s, sc, np.zeros(0, dtype=np.int64)
    starts = np.r_[True, k[1:] != k[:-1]]
    pos = np.arange(len(k))
    rank = pos - np.maximum.accumulate(np.where(starts, pos, 0)) + 1
    keep = rank <= depth
    return k[keep], s[keep], sc[keep], rank[keep]


def _segments(sorted_keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, counts) per key value 0..n-1 of an ascending key array."""
    counts = np.bincount(sorted_keys, minlength=n).astype(np.int64)
    return np.cumsum(counts) - counts, counts


def _gather(users: np.ndarray, user_seg: np.ndarray, starts: np.ndarray, counts: np.ndarray):
    """For each user, the row indices of its segment: (user repeated, row index)."""
    n = counts[user_seg]
    rep = np.repeat(users, n)
    offs = np.arange(int(n.sum()), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
    return rep, np.repeat(starts[user_seg], n) + offs


def rank_groups_core(
    cand_g: np.ndarray,
    cand_s: np.ndarray,
    cand_score: np.ndarray,
    user_g: np.ndarray,
    p_user: np.ndarray,
    p_sku: np.ndarray,
    catalog: ProductCatalog,
    depth: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rank each group once; users take their group's list; purchasers are re-ranked alone.

    cand_*: group candidates (group code >= 0, catalogue sku code >= 0); ineligible rows are
    dropped here. user_g: group code per user position (-1: no group). p_user/p_sku: purchase
    pairs in the exclusion window. Returns (user position, rank, sku code, score) sorted by
    user position, then rank.
    """
    cand_g = np.asarray(cand_g, dtype=np.int64)
    cand_s = np.asarray(cand_s, dtype=np.int64)
    cand_score = np.asarray(cand_score, dtype=np.float64)
    user_g = np.asarray(user_g, dtype=np.int64)
    ok = catalog.eligible[cand_s]
    cand_g, cand_s, cand_score = cand_g[ok], cand_s[ok], cand_score[ok]
    n_groups = int(max(cand_g.max(initial=-1), user_g.max(initial=-1))) + 1
    gk, gs, gsc, gr = rank_codes(cand_g, cand_s, cand_score, catalog, depth)
    n_sku = np.int64(len(catalog.skus))
    redo = np.zeros(len(user_g), dtype=bool)
    p_user = np.asarray(p_user, dtype=np.int64)
    p_sku = np.asarray(p_sku, dtype=np.int64)
    if len(p_user):
        pg = user_g[p_user]
        hit = (pg >= 0) & np.isin(pg * n_sku + p_sku, gk * n_sku + gs)
        redo[p_user[hit]] = True
    plain = np.flatnonzero((user_g >= 0) & ~redo)
    starts, counts = _segments(gk, n_groups)
    u, rows = _gather(plain, user_g[plain], starts, counts)
    parts = [(u, gr[rows], gs[rows], gsc[rows])]
    ru = np.flatnonzero(redo)
    if len(ru):
        order = np.argsort(cand_g, kind="stable")
        cs, csc = cand_s[order], cand_score[order]
        cstarts, ccounts = _segments(cand_g[order], n_groups)
        uu, crows = _gather(ru, user_g[ru], cstarts, ccounts)
        us, usc = cs[crows], csc[crows]
        banned = np.isin(uu * n_sku + us, p_user * n_sku + p_sku)
        k2, s2, sc2, r2 = rank_codes(uu[~banned], us[~banned], usc[~banned], catalog, depth)
        parts.append((k2, r2, s2, sc2))
    u = np.concatenate([p[0] for p in parts])
    order = np.argsort(u, kind="stable")
    return tuple(np.concatenate([p[i] for p in parts])[order] for i in range(4))  # type: ignore[return-value]


def rank_with_rules(
    candidates: pd.DataFrame,
    catalog: ProductCatalog,
    depth: int,
    key: str = "key",
    exclude: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Apply rules 1-5 to long candidates [key, sku, score] -> [key, rank, sku, score].

    ``candidates`` must already be fitment-filtered; ineligible and unknown SKUs are dropped
    here. ``exclude`` holds (key, sku) pairs to drop (purchase exclusion).
    """
    _require(candidates, [key, "sku", "score"], "candidates")
    codes = catalog.codes(candidates["sku"])
    keep = codes >= 0
    keep[keep] = catalog.eligible[codes[keep]]
    kvals, kuniq = pd.factorize(candidates[key], sort=True)
    kvals = kvals.astype(np.int64)
    if exclude is not None and len(exclude):
        _require(exclude, [key, "sku"], "exclude")
        ek = kuniq.get_indexer(exclude[key])
        es = catalog.codes(exclude["sku"])
        ok = (ek >= 0) & (es >= 0)
        n = np.int64(len(catalog.skus))
        keep &= ~np.isin(kvals * n + codes, ek[ok] * n + es[ok])
    k, s, sc, r = rank_codes(
        kvals[keep], codes[keep], candidates["score"].to_numpy()[keep], catalog, depth
    )
    return pd.DataFrame(
        {key: np.asarray(kuniq, dtype=object)[k], "rank": r, "sku": catalog.skus[s], "score": sc}
    )


def purchases_in_window(
    user_purchases: pd.DataFrame, scoring_date: dt.date, days: int
) -> pd.DataFrame:
    """(email_lower, sku) ordered in [scoring_date - days, scoring_date)."""
    _require(user_purchases, ["email_lower", "sku", "last_order_ts"], "user_purchases")
    ts = pd.to_datetime(user_purchases["last_order_ts"], utc=True)
    hi = pd.Timestamp(scoring_date, tz="UTC")
    lo = hi - pd.Timedelta(days=days)
    sel = (ts >= lo) & (ts < hi)
    return user_purchases.loc[sel, ["email_lower", "sku"]].drop_duplicates()


def purchase_codes(
    purchases: pd.DataFrame | None, emails: pd.Index, catalog: ProductCatalog
) -> tuple[np.ndarray, np.ndarray]:
    """(user position in ``emails``, sku code) of purchase pairs known to both."""
    if purchases is None or len(purchases) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    pu = emails.get_indexer(purchases["email_lower"]).astype(np.int64)
    ps = catalog.codes(purchases["sku"])
    ok = (pu >= 0) & (ps >= 0)
    return pu[ok], ps[ok]


def ranked_frame(
    emails: np.ndarray,
    u: np.ndarray,
    r: np.ndarray,
    s: np.ndarray,
    sc: np.ndarray,
    catalog: ProductCatalog,
) -> pd.DataFrame:
    """The ranked long frame [email_lower, rank, sku, score] from code arrays."""
    return pd.DataFrame(
        {
            "email_lower": emails[u],
            "rank": r.astype(np.int64),
            "sku": catalog.skus[s],
            "score": sc.astype(np.float64),
        }
    )


def rank_groups_then_users(
    group_candidates: pd.DataFrame,
    user_groups: pd.DataFrame,
    catalog: ProductCatalog,
    depth: int,
    purchases: pd.DataFrame | None = None,
    group_cols: Sequence[str] = ("vehicle_id",),
) -> pd.DataFrame:
    """DataFrame form of :func:`rank_groups_core`.

    group_candidates: [*group_cols, sku, score]; user_groups: [email_lower, *group_cols];
    purchases: (email_lower, sku) pairs already restricted to the exclusion window.
    Returns the ranked long frame [email_lower, rank, sku, score] sorted by (email_lower, rank).
    """
    gcols = list(group_cols)
    _require(group_candidates, [*gcols, "sku", "score"], "group_candidates")
    _require(user_groups, ["email_lower", *gcols], "user_groups")
    if user_groups["email_lower"].duplicated().any():
        raise ValueError("user_groups has duplicate email_lower values")
    gkeys = group_candidates[gcols].drop_duplicates().reset_index(drop=True)
    gkeys["_g"] = np.arange(len(gkeys), dtype=np.int64)
    cand = group_candidates.merge(gkeys, on=gcols, how="inner")
    cs = catalog.codes(cand["sku"])
    ok = cs >= 0
    users = user_groups[["email_lower", *gcols]].sort_values("email_lower", kind="stable")
    users = users.merge(gkeys, on=gcols, how="left", sort=False)
    emails = users["email_lower"].to_numpy(dtype=object)
    user_g = users["_g"].fillna(-1).to_numpy(dtype=np.int64)
    pu, ps = purchase_codes(purchases, pd.Index(emails), catalog)
    u, r, s, sc = rank_groups_core(
        cand["_g"].to_numpy()[ok],
        cs[ok],
        cand["score"].to_numpy()[ok],
        user_g,
        pu,
        ps,
        catalog,
        depth,
    )
    return ranked_frame(emails, u, r, s, sc, catalog)


def to_output_schema(
    ranked: pd.DataFrame, users: pd.DataFrame, products: pd.DataFrame, top_k: int = 4
) -> pd.DataFrame:
    """Pivot the ranked long frame into exactly ``schemas.OUTPUT_COLUMNS``.

    One row per user with at least one recommendation (users without any eligible product are
    left out), sorted by email_lower; fewer than 4 recommendations leave the tail slots null.
    """
    _require(ranked, RANKED_COLUMNS, "ranked")
    _require(users, ["email_lower", "year", "make", "model"], "users")
    _require(products, ["sku", "price", "image_url"], "products")
    top = ranked[ranked["rank"] <= min(top_k, 4)]
    ucode, uniq = pd.factorize(top["email_lower"], sort=True)
    n = len(uniq)
    prow = pd.Index(products["sku"]).get_indexer(top["sku"])
    price = np.append(products["price"].to_numpy(dtype=np.float64), np.nan)[prow]
    image = np.append(products["image_url"].to_numpy(dtype=object), None)[prow]
    rank = top["rank"].to_numpy()
    sku = top["sku"].to_numpy(dtype=object)
    score = top["score"].to_numpy(dtype=np.float64)
    out = pd.DataFrame({"email_lower": pd.array(np.asarray(uniq, dtype=object), dtype="string")})
    u = users[["email_lower", "year", "make", "model"]].drop_duplicates("email_lower")
    urow = pd.Index(u["email_lower"]).get_indexer(out["email_lower"])
    for col in ("year", "make", "model"):
        vals = np.append(u[col].to_numpy(dtype=object), None)[urow]
        out[col] = pd.array(vals, dtype="string")
    for i in range(1, 5):
        sel = rank == i
        idx = ucode[sel]
        for col, src, kind in (
            (f"rec_part_{i}", sku, "string"),
            (f"rec{i}_price", price, "float64"),
            (f"rec{i}_score", score, "float64"),
            (f"rec{i}_image", image, "string"),
        ):
            if kind == "string":
                arr = np.full(n, None, dtype=object)
                arr[idx] = src[sel]
                out[col] = pd.array(arr, dtype="string")
            else:
                arr = np.full(n, np.nan)
                arr[idx] = src[sel]
                out[col] = arr
    return out[OUTPUT_COLUMNS]


def fitting_candidates(catalog: ProductCatalog, fitment: pd.DataFrame) -> pd.DataFrame:
    """(vehicle_id, sku) pairs of eligible products that fit each vehicle."""
    _require(fitment, ["sku", "vehicle_id"], "product_vehicle_edges")
    codes = catalog.codes(fitment["sku"])
    ok = codes >= 0
    ok[ok] = catalog.eligible[codes[ok]]
    return fitment.loc[ok, ["vehicle_id", "sku"]].drop_duplicates().reset_index(drop=True)


def python_popularity(
    tables: dict[str, pd.DataFrame], cfg: dict, scoring_date: dt.date, depth: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The SQL baseline through this reference engine (product_nodes.order_count as score)."""
    rules = Rules.from_config(cfg)
    depth = int(depth or rules.rank_depth)
    products = tables["product_nodes"]
    catalog = ProductCatalog(products, rules)
    cand = fitting_candidates(catalog, tables["product_vehicle_edges"])
    pop = products.set_index("sku")["order_count"].astype("float64")
    cand = cand.assign(score=cand["sku"].map(pop).to_numpy())
    users = tables["user_nodes"]
    users = users[users["vehicle_id"].notna()]
    purchases = purchases_in_window(
        tables["user_purchases"], scoring_date, rules.purchase_exclusion_days
    )
    ranked = rank_groups_then_users(
        cand, users[["email_lower", "vehicle_id"]], catalog, depth, purchases
    )
    recs = to_output_schema(ranked, users, products, rules.top_k)
    return recs, ranked


def python_scores(
    tables: dict[str, pd.DataFrame], cfg: dict, scores: pd.DataFrame, scoring_date: dt.date
) -> pd.DataFrame:
    """Any score table (vehicle rows and users' own rows) through this reference engine:
    a user with own rows is ranked on them alone, the others on their vehicle's rows."""
    rules = Rules.from_config(cfg)
    products = tables["product_nodes"]
    catalog = ProductCatalog(products, rules)
    fit = tables["product_vehicle_edges"][["vehicle_id", "sku"]].drop_duplicates()
    users = tables["user_nodes"]
    users = users[users["vehicle_id"].notna()][["email_lower", "vehicle_id"]]
    own = scores[scores["email_lower"].notna()]
    own = own.merge(users, on="email_lower", suffixes=("_s", ""))
    own = own.merge(fit, on=["vehicle_id", "sku"])
    own = own.assign(g="u:" + own["email_lower"].astype(str))
    veh = scores[scores["email_lower"].isna()].merge(fit, on=["vehicle_id", "sku"])
    veh = veh.assign(g="v:" + veh["vehicle_id"].astype(str))
    cand = pd.concat([veh[["g", "sku", "score"]], own[["g", "sku", "score"]]], ignore_index=True)
    has_own = users["email_lower"].isin(set(own["email_lower"]))
    users = users.assign(g=np.where(has_own, "u:" + users["email_lower"].astype(str),
                                    "v:" + users["vehicle_id"].astype(str)))
    purchases = purchases_in_window(
        tables["user_purchases"], scoring_date, rules.purchase_exclusion_days
    )
    return rank_groups_then_users(cand, users[["email_lower", "g"]], catalog, rules.rank_depth,
                                  purchases, group_cols=("g",))
