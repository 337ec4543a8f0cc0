"""The ``synth_truth`` tables: the world's parameters, true per-vehicle preferences, vehicles,
products, group x cluster affinity and each user's true vehicle and tier."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd

from holley_gnn_assets.synth import behaviour as bh
from holley_gnn_assets.synth.catalogue import SCOPES
from holley_gnn_assets.synth.time_model import days_of
from holley_gnn_assets.synth.world import World

GENERATOR_VERSION = "1"


def truth_tables(
    world: World,
    users: bh.Users,
    params: dict,
    scale: str,
    seed: int,
    signal: float,
    as_of: dt.date,
    cutoff: dt.date,
    start: dt.date,
    n_test_clicks: int,
    clock: bh.Clock,
) -> dict[str, pd.DataFrame]:
    veh, cat = world.veh, world.cat
    tm = world.time
    none = np.full(cat.n, -1, dtype=np.int64)
    # the time model's truth: the oracle multiplies the preference by time_factor (the mean
    # intensity over the test window); 1 in a stationary world
    time_factor = (np.ones(cat.n) if tm is None
                   else tm.window_factor(clock.cutoff, clock.as_of, cat.n))
    k = world.affinity.shape[1]
    vid = np.where(users.status == 0, veh.vehicle_id[np.maximum(users.vehicle, 0)], None)
    return {
        "synth_truth.world": pd.DataFrame(
            [
                {
                    "as_of": as_of,
                    "cutoff": cutoff,
                    "interaction_start": start,
                    "seed": seed,
                    "signal": signal,
                    "scale": scale,
                    "n_users": users.n,
                    "n_products": cat.n,
                    "n_vehicles": veh.n,
                    "n_groups": veh.n_groups,
                    "n_clusters": k,
                    "n_warm": int((users.tier == 1).sum()),
                    "n_hot": int((users.tier == 2).sum()),
                    "n_test_clicks": n_test_clicks,
                    "generator_version": GENERATOR_VERSION,
                    "params": json.dumps(params, sort_keys=True),
                }
            ]
        ),
        "synth_truth.vehicle_preference": pd.DataFrame(
            {
                "vehicle_id": veh.vehicle_id[world.fit_v],
                "sku": cat.sku[world.fit_p],
                "prob": world.fit_prob,
            }
        ),
        "synth_truth.vehicles": pd.DataFrame(
            {
                "vehicle_id": veh.vehicle_id,
                "group_id": veh.group,
                "engine_family": np.asarray(veh.family_names, dtype=object)[veh.family],
                "era": veh.era,
                "user_weight": veh.weight,
            }
        ),
        "synth_truth.products": pd.DataFrame(
            {
                "sku": cat.sku,
                "cluster": cat.cluster,
                "attractiveness": cat.attract,
                "scope": np.asarray(SCOPES, dtype=object)[cat.scope],
                "demand": world.demand,
                "time_factor": time_factor,
                "launch_date": days_of(none if tm is None else tm.launch),
                "decline_date": days_of(none if tm is None else tm.decline),
                "trending": np.zeros(cat.n, bool) if tm is None else tm.trending,
                "season_peak_day": (np.full(cat.n, np.nan) if tm is None
                                    else tm.phase[cat.cluster]),
            }
        ),
        "synth_truth.affinity": pd.DataFrame(
            {
                "group_id": np.repeat(np.arange(veh.n_groups), k),
                "cluster": np.tile(np.arange(k), veh.n_groups),
                "affinity": world.affinity.ravel(),
            }
        ),
        "synth_truth.users": pd.DataFrame(
            {
                "user_id": users.user_id,
                "email_lower": np.where(users.null_email, None, users.email),
                "vehicle_id": vid,
                "tier": bh.TIERS[users.tier],
            }
        ),
    }
