"""The catalogue (products with part types, clusters, prices, titles, colour variants) and its
fitment to the vehicles, by scope (model, group, family, era, universal, none)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from holley_gnn_assets.synth.product_names import BRANDS, COLOURS, PART_TYPES
from holley_gnn_assets.synth.sampling import csr, expand, zipf_weights
from holley_gnn_assets.synth.vehicles import Vehicles

# model: one make/model over a window of years (crosses eras); group: most vehicles of one
# engine family x era; family: a window of the family's years; era: one era across families
SCOPES = ("model", "group", "family", "era", "universal", "none")


@dataclass
class Catalogue:
    """Products (index j). Colour variants of one base item share its fitment and cluster."""

    sku: np.ndarray
    item: np.ndarray  # base item of the product
    part_type: np.ndarray  # index into part_type_names
    part_type_names: np.ndarray
    part_type_kind: np.ndarray  # 0 ordinary, 1 service, 2 commodity
    cluster: np.ndarray
    attract: np.ndarray  # global attractiveness p_j (Zipf)
    price: np.ndarray  # float, nan = missing
    image_url: np.ndarray  # object, None = null
    title: np.ndarray
    scope: np.ndarray  # index into SCOPES (of the base item)
    is_variant: np.ndarray  # sku carries a colour letter

    @property
    def n(self) -> int:
        return len(self.sku)


def _part_types(params: dict[str, Any], rules: dict[str, Any], rng: np.random.Generator):
    service = list(rules["service_part_types"])
    commodity = list(rules["commodity_part_types"])
    n_ord = int(params["n_part_types"]) - len(service) - len(commodity)
    pool = [p for p in PART_TYPES if p not in service + commodity]
    if not 1 <= n_ord <= len(pool):
        raise ValueError(
            f"n_part_types must lie in [{len(service) + len(commodity) + 1}, "
            f"{len(pool) + len(service) + len(commodity)}]"
        )
    ordinary = [pool[i] for i in np.sort(rng.choice(len(pool), n_ord, replace=False))]
    pt_names = np.array(ordinary + service + commodity, dtype=object)
    kind = np.array([0] * n_ord + [1] * len(service) + [2] * len(commodity))
    return pt_names, kind


def build_catalogue(
    params: dict[str, Any], rules: dict[str, Any], veh: Vehicles, rng: np.random.Generator
) -> tuple[Catalogue, np.ndarray, np.ndarray]:
    """Products plus their fitment: returns (catalogue, fit_vehicle, fit_product), unique pairs."""
    n_products, k = int(params["n_products"]), int(params["n_clusters"])
    pt_names, pt_kind = _part_types(params, rules, rng)
    n_pt = len(pt_names)
    pt_code = rng.choice(np.arange(100, 1000), n_pt, replace=False)
    pt_home = rng.integers(0, k, n_pt)
    pt_price = np.where(
        pt_kind == 0,
        rng.lognormal(np.log(170), 0.6, n_pt),
        np.where(
            pt_kind == 2, rng.lognormal(np.log(18), 0.4, n_pt), rng.lognormal(np.log(90), 0.5, n_pt)
        ),
    )
    ord_w = rng.gamma(1.0, 1.0, n_pt) * (pt_kind == 0)
    ord_w /= ord_w.sum()

    # base items; variant items expand to 2-3 colour skus (+ the plain base sku half the time)
    m = n_products
    sc = rng.random(m) < float(params["service_commodity_share"])
    pt = np.where(sc, rng.choice(np.flatnonzero(pt_kind > 0), m), rng.choice(n_pt, m, p=ord_w))
    variant = (rng.random(m) < float(params["variant_family_share"])) & ~sc
    has_base = rng.random(m) < 0.5
    size = np.where(variant, rng.integers(2, 4, m) + has_base, 1)
    cum = np.cumsum(size)
    n_items = int(np.searchsorted(cum, n_products)) + 1
    size = size[:n_items].copy()
    size[-1] -= int(cum[n_items - 1] - n_products)
    pt, variant, has_base, sc = pt[:n_items], variant[:n_items], has_base[:n_items], sc[:n_items]
    cluster_i = np.where(rng.random(n_items) < 0.6, pt_home[pt], rng.integers(0, k, n_items))
    attract_i = zipf_weights(n_items, float(params["product_zipf"]), rng) * np.where(sc, 3.0, 1.0)

    # scope and home unit of each item
    shares = np.array(
        [
            params["scope_group"],
            params["scope_family"],
            params["scope_era"],
            params["scope_universal"],
            params["scope_none"],
        ],
        dtype=float,
    )
    probs = np.concatenate([[1.0 - shares.sum()], shares])
    scope = np.where(sc, SCOPES.index("universal"), rng.choice(len(SCOPES), n_items, p=probs))
    n_groups, n_fam = veh.n_groups, len(veh.family_names)
    g_w = np.bincount(veh.group, minlength=n_groups) / veh.n
    f_w = np.bincount(veh.family, minlength=n_fam) / veh.n
    e_w = np.bincount(veh.era, minlength=veh.n_eras) / veh.n
    m_w = np.bincount(veh.model_id) / veh.n
    home = np.zeros(n_items, dtype=np.int64)
    for s, w in (("model", m_w), ("group", g_w), ("family", f_w), ("era", e_w)):
        mask = scope == SCOPES.index(s)
        home[mask] = rng.choice(len(w), int(mask.sum()), p=w)
    q = np.select(
        [scope == SCOPES.index(s) for s in ("model", "group", "family", "era", "universal")],
        [
            rng.uniform(*params["cover_model"], n_items),
            rng.uniform(*params["cover_group"], n_items),
            rng.uniform(*params["cover_family"], n_items),
            rng.uniform(*params["cover_era"], n_items),
            np.where(
                sc,
                rng.uniform(*params["cover_service"], n_items),
                rng.uniform(*params["cover_universal"], n_items),
            ),
        ],
        default=0.0,
    )
    # model- and family-scope items fit a contiguous window of the family's years
    lo_frac = rng.uniform(0.0, 0.6, n_items)
    hi_frac = np.minimum(1.0, lo_frac + rng.uniform(0.3, 1.0, n_items))

    units = {
        "model": csr(veh.model_id, int(veh.model_id.max()) + 1),
        "group": csr(veh.group, n_groups),
        "family": csr(veh.family, n_fam),
        "era": csr(veh.era, veh.n_eras),
        "universal": csr(np.zeros(veh.n, dtype=np.int64), 1),
    }
    pair_i, pair_v = [], []
    for s, (ptr, members) in units.items():
        items = np.flatnonzero(scope == SCOPES.index(s))
        unit = np.zeros(len(items), dtype=np.int64) if s == "universal" else home[items]
        pos, v = expand(unit, ptr, members)
        keep = rng.random(len(v)) < q[items][pos]
        if s in ("family", "model"):
            fi = veh.family[v]
            width = veh.family_last[fi] - veh.family_first[fi]
            rel = veh.year[v] - veh.family_first[fi]
            keep &= (rel >= lo_frac[items][pos] * width) & (rel <= hi_frac[items][pos] * width)
        pair_i.append(items[pos][keep])
        pair_v.append(v[keep])
    pi, pv = np.concatenate(pair_i), np.concatenate(pair_v)

    # every vehicle fits at least a few items: top up sparse vehicles with random fitting items
    per_v = np.bincount(pv, minlength=veh.n)
    sparse = np.flatnonzero(per_v < 5)
    if len(sparse):
        fitting = np.flatnonzero(scope != SCOPES.index("none"))
        add_v = np.repeat(sparse, 5)
        pi = np.concatenate([pi, rng.choice(fitting, len(add_v))])
        pv = np.concatenate([pv, add_v])
    pair = np.unique(pv * n_items + pi)
    pv, pi = pair // n_items, pair % n_items

    # products: expand items to skus
    item = np.repeat(np.arange(n_items), size)
    start = np.repeat(np.cumsum(size) - size, size)
    pos = np.arange(len(item)) - start
    letters = np.array(list(COLOURS), dtype=object)
    offset = rng.integers(0, 4, n_items)
    colour_pos = pos - has_base[item]
    is_var = variant[item] & (colour_pos >= 0)
    letter = np.where(is_var, letters[(offset[item] + np.maximum(colour_pos, 0)) % 4], "")
    number = rng.choice(np.arange(100_000, 1_000_000), n_items, replace=False)
    s_suffix = np.where(~variant & ~sc & (rng.random(n_items) < 0.04), "S", "")
    base = np.char.add(np.char.add(pt_code[pt].astype(str), "-"), number.astype(str)).astype(object)
    sku = base[item] + letter + s_suffix[item]
    pt_p = pt[item]
    attract = attract_i[item] * np.where(is_var, rng.uniform(0.4, 1.0, len(item)), 1.0)

    price_i = np.round(pt_price[pt] * rng.lognormal(0.0, 0.5, n_items)) - 0.01
    price_i = np.maximum(price_i, 0.99)
    u = rng.random(n_items)
    price_i = np.where(
        u < 0.01, np.nan, np.where(u < 0.015, np.where(u < 0.0125, 0.0, -1.0), price_i)
    )
    price = price_i[item]
    u = rng.random(n_items)[item]
    url = "://images.holley.example/" + sku + ".jpg"
    image = np.where(u < 0.90, "https" + url, np.where(u < 0.95, "http" + url, ""))
    image = image.astype(object)
    image[u >= 0.975] = None
    brand = np.array(BRANDS, dtype=object)[rng.integers(0, len(BRANDS), n_items)]
    colour = np.array([""] + [f" - {c}" for c in COLOURS.values()], dtype=object)
    cidx = np.where(is_var, (offset[item] + np.maximum(colour_pos, 0)) % 4 + 1, 0)
    title = brand[item] + " " + pt_names[pt_p] + " " + base[item] + colour[cidx]

    cat = Catalogue(
        sku=sku,
        item=item,
        part_type=pt_p,
        part_type_names=pt_names,
        part_type_kind=pt_kind,
        cluster=cluster_i[item],
        attract=attract,
        price=price,
        image_url=image,
        title=title,
        scope=scope[item],
        is_variant=is_var,
    )
    # product-level fitment: every sku of a fitting item
    item_ptr = np.concatenate([[0], np.cumsum(size)])
    pos, prod = expand(pi, item_ptr, np.arange(len(item)))
    fit_v = pv[pos]
    order = np.lexsort((prod, fit_v))
    return cat, fit_v[order], prod[order]
