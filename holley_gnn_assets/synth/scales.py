"""Scale presets of the synthetic warehouse (one dict) and override validation."""

from __future__ import annotations

from typing import Any

# Shared by every scale unless a scale sets its own value.
_COMMON: dict[str, Any] = {
    "warm_share": 0.015,  # users with product views / pre-cutoff email clicks only
    "hot_share": 0.005,  # users with carts or orders
    "no_vehicle_share": 0.02,  # latest YMM garbage (bad year, empty make, ...)
    "non_fitment_share": 0.01,  # a valid YMM that no fitment row covers
    "null_email_share": 0.003,  # users whose every attribute row has a null/empty email
    "extra_attr_rows": 0.4,  # mean number of older attribute rows per user
    "vehicle_change_share": 0.3,  # share of older rows that name another vehicle
    "vehicle_zipf": 0.9,  # users per vehicle ~ rank^-a
    "product_zipf": 0.9,  # product attractiveness ~ rank^-a
    "variant_family_share": 0.05,  # base skus sold in colour variants (...1B, ...1R)
    "service_commodity_share": 0.012,
    # scope shares of the catalogue (the rest fit one make/model over a window of years) and
    # the share of the scope unit's vehicles an item fits, drawn uniformly from (lo, hi)
    "scope_group": 0.10,
    "scope_family": 0.15,
    "scope_era": 0.10,
    "scope_universal": 0.02,
    "scope_none": 0.02,
    "cover_model": (0.7, 1.0),
    "cover_group": (0.6, 0.95),
    "cover_family": (0.3, 0.7),
    "cover_era": (0.1, 0.3),
    "cover_universal": (0.05, 0.3),
    "cover_service": (0.05, 0.3),  # service / commodity part types (universal scope)
    "family_affinity": 0.5,  # weight of the engine family's share in a group's affinity
    "duplicate_item_share": 0.003,
    "sent_per_user": 1.5,  # background email SENT rows per user
    "viewed_share": 0.25,  # SENT rows followed by a VIEWED row
    "page_views_per_user": 0.4,  # ignored site events
    "bundle_share": 0.35,  # orders with 2-4 skus
    "bundle_same_cluster": 0.75,  # extra bundle items drawn from the first item's cluster
    "orders_years": 3.0,  # import_orders history length
    "test_clicks_per_clicker": 1.3,
    "engaged_click_boost": 5.0,  # warm/hot users click in the test window this much more often
}

# Time in the data (synth/time_model.py): all 0 / False = a stationary world, drawn exactly as
# before these knobs existed. Recorded in synth_truth.world.params and synth_truth.products.
_TIME: dict[str, Any] = {
    "seasonal_amplitude": 0.0,  # demand x (1 + a cos(2 pi (day - phase_cluster) / 365.25))
    "launch_share": 0.0,  # products that launch in the last launch_days before the cutoff
    "launch_days": 42.0,
    "launch_boost": 4.0,  # a launched product's demand x this from its launch day on
    "decline_share": 0.0,  # products (by attractiveness) that fade out before the cutoff
    "decline_fade_days": 90.0,
    "trending_share": 0.0,  # products whose demand grows trend_growth-fold a year
    "trend_growth": 3.0,
    "orders_only": False,  # no product views, carts or email clicks before the cutoff
}
_COMMON.update(_TIME)
# ---- big baskets and broad fitment (issue 27) -------------------------------------------
# basket_median > 0: every order's drawn line count comes from a lognormal with this median and
# log-sd basket_tail (heavy-tailed: a few orders with hundreds of lines), capped at basket_max;
# bundle_same_cluster of the extra lines come from the first line's cluster, the rest from the
# whole catalogue's demand (duplicates merge into one line). 0: the bundle model above
# (bundle_share of orders with 2-4 lines, the rest one line).
_COMMON.update({"basket_median": 0.0, "basket_tail": 0.9, "basket_max": 450})
# drawn lines 25 (median), log-sd 1.0, at most 700: realised (merged) median 15, tail to a few
# hundred lines (big_basket_demo seed 0: median 15, max ~300)
_BIG_BASKETS: dict[str, Any] = {"basket_median": 25.0, "basket_tail": 1.0, "basket_max": 700,
                                "bundle_same_cluster": 0.25}
# Every product fits every vehicle: one universal scope, full cover (broad and dense worlds).
_UNIVERSAL_FITMENT: dict[str, Any] = {
    "scope_group": 0.0,
    "scope_family": 0.0,
    "scope_era": 0.0,
    "scope_universal": 1.0,
    "scope_none": 0.0,
    "cover_universal": (1.0, 1.0),
    "cover_service": (1.0, 1.0),
}

# Broad fitment, Holley-like audience: every product fits every vehicle (a few segments in
# place of vehicles, one holding most users), mostly cold users and a minority with a handful
# of interactions each (not the dense engaged world).
_BROAD: dict[str, Any] = {
    **_UNIVERSAL_FITMENT,
    "vehicle_zipf": 2.0,
    "warm_share": 0.25,
    "hot_share": 0.15,
}

# Dense worlds: every product fits every vehicle (one universal scope, full cover) and most
# users are engaged (warm or hot) with about ``engaged_interactions`` pre-cutoff product
# interactions each; the true per-vehicle preference (set by ``signal``) drives all of them.
_DENSE: dict[str, Any] = {
    **_COMMON,
    "dense": True,
    "warm_share": 0.35,
    "hot_share": 0.55,
    "engaged_interactions": 100.0,
    "vehicle_zipf": 0.5,
    **_UNIVERSAL_FITMENT,
}

# dense: every product fits every vehicle, most users engaged
_DENSE_WORLD: dict[str, Any] = {
    **_DENSE,
    "n_users": 1_000,
    "n_products": 1_700,
    "n_vehicles": 20,
    "n_families": 4,
    "n_eras": 2,
    "n_clusters": 8,
    "n_part_types": 40,
    "n_outside_customers": 1_000,
    "n_outside_orders": 3_000,
    "n_test_clicks": 1_000,
    "n_test_event_users": 300,
}

SCALES: dict[str, dict[str, Any]] = {
    "tiny": {
        **_COMMON,
        "n_users": 2_000,
        "n_products": 500,
        "n_vehicles": 40,
        "n_families": 3,
        "n_eras": 2,
        "n_clusters": 6,
        "n_part_types": 40,
        "n_outside_customers": 1_500,
        "n_outside_orders": 3_000,
        "n_test_clicks": 450,
        "n_test_event_users": 300,
    },
    "demo": {
        **_COMMON,
        "n_users": 50_000,
        "n_products": 5_000,
        "n_vehicles": 300,
        "n_families": 6,
        "n_eras": 3,
        "n_clusters": 8,
        "n_part_types": 60,
        "n_outside_customers": 25_000,
        "n_outside_orders": 50_000,
        "n_test_clicks": 3_200,
        "n_test_event_users": 2_000,
    },
    "full": {
        **_COMMON,
        "n_users": 475_000,
        "n_products": 25_000,
        "n_vehicles": 2_000,
        "n_families": 12,
        "n_eras": 4,
        "n_clusters": 10,
        "n_part_types": 76,
        "n_outside_customers": 150_000,
        "n_outside_orders": 300_000,
        "n_test_clicks": 3_500,
        "n_test_event_users": 3_000,
    },
    "dense": _DENSE_WORLD,
    # dense, plus a cold audience the size of the engaged one: 40% engaged (50 per vehicle,
    # ~100 interactions each) and 60% with a vehicle only, so most test clickers are cold and
    # the cold tier's GNN-vs-per-vehicle-count comparison has hundreds of users
    "dense_cold": {
        **_DENSE_WORLD,
        "warm_share": 0.16,
        "hot_share": 0.24,
        "n_users": 2_500,
        "n_test_clicks": 2_600,
        "n_test_event_users": 600,
    },
    "dense_tiny": {
        **_DENSE,
        "n_users": 150,
        "n_products": 200,
        "n_vehicles": 6,
        "n_families": 2,
        "n_eras": 2,
        "n_clusters": 4,
        "n_part_types": 20,
        "n_outside_customers": 200,
        "n_outside_orders": 500,
        "n_test_clicks": 150,
        "n_test_event_users": 50,
    },
}

# Worlds with time, at each size (time_model.py): seasons; launches with decline and trends;
# orders-only logs with seasons and launches (the held-back real log: orders only, new parts)
_SEASONAL = {"seasonal_amplitude": 0.8}
_LAUNCHES = {"launch_share": 0.05, "decline_share": 0.02, "trending_share": 0.05}
_ORDERS_ONLY = {"orders_only": True, "seasonal_amplitude": 0.5, **_LAUNCHES}
for _size in ("tiny", "demo", "full"):
    SCALES[f"seasonal_{_size}"] = {**SCALES[_size], **_SEASONAL}
    SCALES[f"launches_{_size}"] = {**SCALES[_size], **_LAUNCHES}
    SCALES[f"orders_only_{_size}"] = {**SCALES[_size], **_ORDERS_ONLY}
_TIME_FLAGS = {"orders_only"}  # booleans an override may set
_SPEC_SCALES = ("tiny", "demo", "full")
SCALES.update({f"big_basket_{name}": {**SCALES[name], **_BIG_BASKETS} for name in _SPEC_SCALES})
# ~10x fewer outside orders at full scale: with ~20 lines an order the lines stay near the
# spec world's (~0.5M) and the co-purchase self-join near 10M pairs
SCALES["big_basket_full"]["n_outside_orders"] = 30_000
SCALES["big_basket_demo"]["n_outside_orders"] = 10_000
SCALES["big_basket_tiny"]["n_outside_orders"] = 1_000
SCALES.update({
    "broad_tiny": {**SCALES["tiny"], **_BROAD, "n_users": 600, "n_products": 300,
                   "n_vehicles": 5, "n_families": 2, "n_eras": 2, "n_clusters": 4,
                   "n_part_types": 20, "n_outside_customers": 300, "n_outside_orders": 900,
                   "n_test_clicks": 300, "n_test_event_users": 100},
    "broad_demo": {**SCALES["demo"], **_BROAD, "n_users": 4_000, "n_products": 4_000,
                   "n_vehicles": 13, "n_families": 3, "n_eras": 2, "n_clusters": 8,
                   "n_outside_customers": 3_000, "n_outside_orders": 12_000,
                   "n_test_clicks": 2_500, "n_test_event_users": 800},
    "broad_100k": {**SCALES["demo"], **_BROAD, "n_users": 100_000, "n_products": 30_000,
                   "n_vehicles": 40, "n_families": 4, "n_eras": 3, "n_clusters": 10,
                   "n_part_types": 76, "n_outside_customers": 30_000,
                   "n_outside_orders": 100_000, "n_test_clicks": 3_500,
                   "n_test_event_users": 3_000},
})

_SHARE_KEYS = {k for k, v in _COMMON.items() if isinstance(v, float) and k.endswith("share")}


def resolve_params(scale: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The scale's parameters with ``overrides`` applied; ValueError naming any bad key/value."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    params = dict(SCALES[scale])
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise ValueError(f"unknown synth override(s) {unknown}; known: {sorted(params)}")
    for key, value in overrides.items():
        base = params[key]
        if key in _TIME_FLAGS:
            if not isinstance(value, bool):
                raise ValueError(f"synth override {key}={value!r} must be true or false")
        elif isinstance(base, bool):
            raise ValueError(f"synth parameter {key} is fixed by the scale")
        elif isinstance(base, tuple):
            ok = (
                isinstance(value, tuple | list)
                and len(value) == 2
                and all(isinstance(x, int | float) for x in value)
                and 0.0 <= value[0] <= value[1] <= 1.0
            )
            if not ok:
                raise ValueError(f"synth override {key}={value!r} must be (lo, hi), 0<=lo<=hi<=1")
            value = (float(value[0]), float(value[1]))
        elif isinstance(base, int) and not isinstance(base, bool):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"synth override {key}={value!r} must be a non-negative int")
        elif not isinstance(value, int | float) or value < 0:
            raise ValueError(f"synth override {key}={value!r} must be a non-negative number")
        params[key] = value
    for key in _SHARE_KEYS | {
        "bundle_share",
        "viewed_share",
        "bundle_same_cluster",
        "family_affinity",
    }:
        if not 0.0 <= params[key] <= 1.0:
            raise ValueError(f"synth parameter {key}={params[key]!r} must lie in [0, 1]")
    if params["seasonal_amplitude"] > 1.0:
        raise ValueError(f"synth parameter seasonal_amplitude={params['seasonal_amplitude']!r} "
                         "must lie in [0, 1]")
    if params["basket_median"] and not 1 <= params["basket_median"] <= params["basket_max"]:
        raise ValueError(f"synth parameter basket_median={params['basket_median']!r} must lie "
                         f"in [1, basket_max={params['basket_max']}] (or 0: the bundle model)")
    engaged_max = 1.0 if params.get("dense") else 0.5
    if params["warm_share"] + params["hot_share"] > engaged_max:
        raise ValueError(
            f"synth parameters warm_share + hot_share must not exceed {engaged_max} at {scale}"
        )
    if params.get("dense") and (
        params["scope_universal"] != 1.0
        or params["cover_universal"] != (1.0, 1.0)
        or params["cover_service"] != (1.0, 1.0)
    ):
        raise ValueError(f"{scale} is dense: scope_universal and cover_* must stay 1.0")
    scope = sum(params[k] for k in params if k.startswith("scope_"))
    if scope > 1.0:
        raise ValueError(f"synth scope_* shares sum to {scope:.3f} > 1")
    for key in ("n_users", "n_products", "n_vehicles", "n_families", "n_eras", "n_clusters"):
        if params[key] < 1:
            raise ValueError(f"synth parameter {key} must be >= 1")
    if not 6 <= params["n_part_types"] <= 200:
        raise ValueError("synth parameter n_part_types must lie in [6, 200]")
    return params
