"""The latent world: vehicles, catalogue, fitment and the true per-vehicle preferences.

Everything here is a numpy array indexed by vehicle, product or fitment row; the behaviour
module draws every user action from ``World.sampler`` (the true per-vehicle preferences).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from holley_gnn_assets.synth.catalogue import Catalogue, build_catalogue
from holley_gnn_assets.synth.sampling import PrefSampler
from holley_gnn_assets.synth.time_model import TimeModel
from holley_gnn_assets.synth.vehicles import Vehicles, build_vehicles


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
    time: TimeModel | None = field(default=None)  # demand that moves in time (None: stationary)

    def timed(self, products: np.ndarray, ts: np.ndarray, units: np.ndarray,
              sampler: PrefSampler) -> np.ndarray:
        """``products`` drawn from ``sampler`` for ``units``, re-drawn so that each is
        accepted at its time ``ts`` (``TimeModel.resample``); unchanged in a stationary world."""
        if self.time is None:
            return products
        return self.time.resample(products, ts, lambda idx, rng: sampler.draw(units[idx], rng))


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
