"""The latent world: vehicles and their groups, the catalogue, fitment and true preferences.

Everything here is a numpy array indexed by vehicle, product or fitment row; the behaviour
module draws every user action from ``World.sampler`` (the true per-vehicle preferences).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from holley_gnn_assets.synth import names

# model: one make/model over a window of years (crosses eras); group: most vehicles of one
# engine family x era; family: a window of the family's years; era: one era across families
SCOPES = ("model", "group", "family", "era", "universal", "none")


def normalise_name(values: pd.Series) -> pd.Series:
    """Trim, collapse inner whitespace and upper-case (the export SQL's make/model rule)."""
    return values.str.strip().str.replace(r"\s+", " ", regex=True).str.upper()


def vehicle_key(year: np.ndarray, make: np.ndarray, model: np.ndarray) -> np.ndarray:
    """``YEAR|MAKE|MODEL`` keys (make/model trimmed, inner whitespace collapsed, upper-cased)."""
    key = (
        pd.Series(year).astype(str)
        + "|"
        + normalise_name(pd.Series(make))
        + "|"
        + normalise_name(pd.Series(model))
    )
    return key.to_numpy(dtype=object)


def zipf_weights(n: int, a: float, rng: np.random.Generator) -> np.ndarray:
    """Zipf-like weights ``rank^-a`` over a random permutation of ranks, summing to 1."""
    ranks = rng.permutation(n) + 1.0
    w = ranks**-a
    return w / w.sum()


def csr(keys: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """(ptr, order): rows ``order[ptr[k]:ptr[k+1]]`` have key k (stable)."""
    order = np.argsort(keys, kind="stable")
    ptr = np.zeros(n_keys + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=n_keys), out=ptr[1:])
    return ptr, order


def expand(
    units: np.ndarray, ptr: np.ndarray, members: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, member) pair with member in unit ``units[i]`` (members[ptr[u]:ptr[u+1]])."""
    counts = ptr[units + 1] - ptr[units]
    pos = np.repeat(np.arange(len(units)), counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return pos, members[np.repeat(ptr[units], counts) + offs]


@dataclass
class Vehicles:
    """Fitment vehicles (index v) and their groups (engine family x era)."""

    year: np.ndarray
    make: np.ndarray
    model: np.ndarray
    model_id: np.ndarray  # index of the vehicle's make/model
    family: np.ndarray  # index into family_names
    era: np.ndarray
    group: np.ndarray  # family * n_eras + era
    weight: np.ndarray  # share of users / customers on the vehicle (Zipf)
    vehicle_id: np.ndarray
    family_names: list[str]
    family_first: np.ndarray  # first model year of each family
    family_last: np.ndarray
    n_eras: int

    @property
    def n(self) -> int:
        return len(self.year)

    @property
    def n_groups(self) -> int:
        return len(self.family_names) * self.n_eras


def build_vehicles(params: dict[str, Any], rng: np.random.Generator) -> Vehicles:
    """Sample ``n_vehicles`` distinct year/make/models from the chosen engine families."""
    n_fam, n_eras = int(params["n_families"]), int(params["n_eras"])
    if n_fam > len(names.ENGINE_FAMILIES):
        raise ValueError(f"n_families={n_fam} exceeds the {len(names.ENGINE_FAMILIES)} known")
    chosen = rng.choice(len(names.ENGINE_FAMILIES), n_fam, replace=False)
    fam_l, era_l, year_l, make_l, model_l, mid_l = [], [], [], [], [], []
    for local, f in enumerate(chosen):  # a dozen families at most
        _, first, last, models = names.ENGINE_FAMILIES[f]
        years = np.arange(first, last + 1)
        era = np.minimum((years - first) * n_eras // len(years), n_eras - 1)
        mk = np.array([m[0] for m in models], dtype=object)
        md = np.array([m[1] for m in models], dtype=object)
        yi, mi = np.meshgrid(np.arange(len(years)), np.arange(len(models)), indexing="ij")
        yi, mi = yi.ravel(), mi.ravel()
        fam_l.append(np.full(len(yi), local))
        era_l.append(era[yi])
        year_l.append(years[yi])
        make_l.append(mk[mi])
        model_l.append(md[mi])
        mid_l.append(local * 100 + mi)
    fam, era, year = np.concatenate(fam_l), np.concatenate(era_l), np.concatenate(year_l)
    make, model = np.concatenate(make_l), np.concatenate(model_l)
    n = int(params["n_vehicles"])
    if n > len(year):
        raise ValueError(f"n_vehicles={n} exceeds the {len(year)} year/make/models available")
    pick = np.sort(rng.choice(len(year), n, replace=False))
    fam, era, year, make, model = fam[pick], era[pick], year[pick], make[pick], model[pick]
    _, model_id = np.unique(np.concatenate(mid_l)[pick], return_inverse=True)
    return Vehicles(
        year=year,
        make=make,
        model=model,
        model_id=model_id,
        family=fam,
        era=era,
        group=fam * n_eras + era,
        weight=zipf_weights(n, float(params["vehicle_zipf"]), rng),
        vehicle_id=vehicle_key(year, make, model),
        family_names=[names.ENGINE_FAMILIES[f][0] for f in chosen],
        family_first=np.array([names.ENGINE_FAMILIES[f][1] for f in chosen]),
        family_last=np.array([names.ENGINE_FAMILIES[f][2] for f in chosen]),
        n_eras=n_eras,
    )


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
    pool = [p for p in names.PART_TYPES if p not in service + commodity]
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
    letters = np.array(list(names.COLOURS), dtype=object)
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
    brand = np.array(names.BRANDS, dtype=object)[rng.integers(0, len(names.BRANDS), n_items)]
    colour = np.array([""] + [f" - {c}" for c in names.COLOURS.values()], dtype=object)
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


class PrefSampler:
    """Draw products from per-unit categorical distributions with one ``searchsorted``.

    ``unit`` (sorted, non-decreasing) and ``prob`` describe the rows; a unit's probabilities sum
    to 1. Drawing for an array of units costs O(n log rows), no Python loop.
    """

    def __init__(self, unit: np.ndarray, product: np.ndarray, prob: np.ndarray, n_units: int):
        order = np.lexsort((product, unit))
        self.unit, self.product = unit[order], product[order]
        prob = prob[order]
        self.ptr = np.zeros(n_units + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.unit, minlength=n_units), out=self.ptr[1:])
        cs = np.cumsum(prob)
        starts = self.ptr[:-1][np.diff(self.ptr) > 0]
        counts = np.diff(self.ptr)[np.diff(self.ptr) > 0]
        within = cs - np.repeat(cs[starts] - prob[starts], counts)
        within[self.ptr[1:][np.diff(self.ptr) > 0] - 1] = 1.0
        self.key = self.unit.astype(np.float64) + np.minimum(within, 1.0)

    def draw(self, units: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One product per requested unit (units must have rows)."""
        u = rng.random(len(units))
        pos = np.searchsorted(self.key, units + u, side="right")
        pos = np.minimum(pos, len(self.key) - 1)
        return self.product[pos]


@dataclass
class World:
    """The latent truth every behaviour is drawn from."""

    veh: Vehicles
    cat: Catalogue
    fit_v: np.ndarray
    fit_p: np.ndarray
    fit_prob: np.ndarray  # true P(product | vehicle) over the vehicle's fitting products
    affinity: np.ndarray  # [group, cluster]
    sampler: PrefSampler  # unit = vehicle
    cluster_sampler: PrefSampler  # unit = vehicle * n_clusters + cluster
    demand: np.ndarray  # outside customers' first-item distribution over products
    buyer_sampler: PrefSampler  # unit = product, draws the latent vehicle of an outside buyer


def build_world(
    params: dict[str, Any], rules: dict[str, Any], signal: float, rngs: dict[str, Any]
) -> World:
    """Vehicles, catalogue, fitment and the true preferences p_j * exp(signal * A[g, c_j])."""
    veh = build_vehicles(params, rngs["vehicles"])
    cat, fit_v, fit_p = build_catalogue(params, rules, veh, rngs["catalogue"])
    k = int(params["n_clusters"])
    r = rngs["affinity"]
    fam_part = r.standard_normal((len(veh.family_names), k))
    own = r.standard_normal((veh.n_groups, k))
    fam_of_group = np.arange(veh.n_groups) // veh.n_eras
    wf = float(params["family_affinity"])
    affinity = wf * fam_part[fam_of_group] + np.sqrt(1.0 - wf**2) * own
    lift = np.exp(signal * affinity[veh.group[fit_v], cat.cluster[fit_p]])
    w = cat.attract[fit_p] * lift
    prob = w / np.bincount(fit_v, weights=w, minlength=veh.n)[fit_v]
    sampler = PrefSampler(fit_v, fit_p, prob, veh.n)
    cunit = fit_v * k + cat.cluster[fit_p]
    csum = np.bincount(cunit, weights=prob, minlength=veh.n * k)
    cluster_sampler = PrefSampler(cunit, fit_p, prob / csum[cunit], veh.n * k)
    # Outside customers (the bulk of import_orders) buy product j with probability
    # ~ p_j * (user-weighted mean lift of the vehicles j fits) and get a latent vehicle among
    # those ~ users * lift. At signal 0 order counts are then ~ p_j, so popularity within
    # fitment ranks every vehicle's fitting products exactly by its true preference.
    e = veh.weight[fit_v] * lift
    reach = np.bincount(fit_p, weights=veh.weight[fit_v], minlength=cat.n)
    lift_sum = np.bincount(fit_p, weights=e, minlength=cat.n)
    demand = np.where(reach > 0, cat.attract * lift_sum / np.maximum(reach, 1e-300), 0.0)
    demand /= demand.sum()
    buyer_sampler = PrefSampler(fit_p, fit_v, e / lift_sum[fit_p], cat.n)
    return World(
        demand=demand,
        buyer_sampler=buyer_sampler,
        veh=veh,
        cat=cat,
        fit_v=fit_v,
        fit_p=fit_p,
        fit_prob=prob,
        affinity=affinity,
        sampler=sampler,
        cluster_sampler=cluster_sampler,
    )
