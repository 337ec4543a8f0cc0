"""Fitment vehicles: year/make/models drawn from engine families, grouped by family x era."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from holley_gnn_assets.synth.sampling import zipf_weights
from holley_gnn_assets.synth.vehicle_names import ENGINE_FAMILIES


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
    if n_fam > len(ENGINE_FAMILIES):
        raise ValueError(f"n_families={n_fam} exceeds the {len(ENGINE_FAMILIES)} known")
    chosen = rng.choice(len(ENGINE_FAMILIES), n_fam, replace=False)
    fam_l, era_l, year_l, make_l, model_l, mid_l = [], [], [], [], [], []
    for local, f in enumerate(chosen):  # a dozen families at most
        _, first, last, models = ENGINE_FAMILIES[f]
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
        family_names=[ENGINE_FAMILIES[f][0] for f in chosen],
        family_first=np.array([ENGINE_FAMILIES[f][1] for f in chosen]),
        family_last=np.array([ENGINE_FAMILIES[f][2] for f in chosen]),
        n_eras=n_eras,
    )
