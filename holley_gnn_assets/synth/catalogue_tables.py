"""The catalogue's source tables: import_items (with duplicate skus), import_items_tags and
vehicle_product_fitment_data (lightly messy make/model spellings, a few duplicate rows)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from holley_gnn_assets.synth.product_names import REFURBISHED_SPELLINGS, UNKNOWN_TAGS
from holley_gnn_assets.synth.world import World


def catalogue_tables(
    world: World, params: dict, r_items: np.random.Generator, r_fit: np.random.Generator
) -> dict[str, pd.DataFrame]:
    """import_items (with a few duplicate skus), tags, and fitment (lightly messy)."""
    cat, veh = world.cat, world.veh
    items = pd.DataFrame(
        {
            "sku": cat.sku,
            "PartType": cat.part_type_names[cat.part_type],
            "price": cat.price,
            "image_url": cat.image_url,
            "title": cat.title,
        }
    )
    n_dup = max(2, round(float(params["duplicate_item_share"]) * cat.n))
    dup = np.sort(r_items.choice(cat.n, n_dup, replace=False))
    extra = items.iloc[dup].copy()
    changed = r_items.random(n_dup) < 0.5  # half exact copies, half re-imported at a new price
    extra.loc[changed, "price"] = np.round(extra.loc[changed, "price"] * 1.07, 2)
    items = (
        pd.concat([items, extra])
        .iloc[np.argsort(np.concatenate([np.arange(cat.n), dup]), kind="stable")]
        .reset_index(drop=True)
    )

    n = cat.n
    tag_parts = []
    for share, vocab in (
        (0.03, REFURBISHED_SPELLINGS),
        (0.05, ["Clearance"]),
        (0.08, ["New"]),
        (0.05, UNKNOWN_TAGS),
    ):
        idx = np.flatnonzero(r_items.random(n) < share)
        tag_parts.append(
            pd.DataFrame(
                {
                    "sku": cat.sku[idx],
                    "tag": np.asarray(vocab, dtype=object)[
                        r_items.integers(0, len(vocab), len(idx))
                    ],
                }
            )
        )
    tags = pd.concat(tag_parts, ignore_index=True)
    tags = pd.concat([tags, tags.sample(frac=0.01, random_state=r_items)], ignore_index=True)
    tags = tags.iloc[np.argsort(tags["sku"].to_numpy(), kind="stable")].reset_index(drop=True)

    order = np.lexsort((world.fit_v, world.fit_p))
    fv, fp = world.fit_v[order], world.fit_p[order]
    make = pd.Series(veh.make[fv], dtype=object)
    model = pd.Series(veh.model[fv], dtype=object)
    u = r_fit.random(len(fv))
    make[u < 0.02] = make[u < 0.02].str.upper()
    model[(u >= 0.02) & (u < 0.03)] = model[(u >= 0.02) & (u < 0.03)] + " "
    fit = pd.DataFrame(
        {
            "sku": cat.sku[fp],
            "year": veh.year[fv].astype(str).astype(object),
            "make": make.to_numpy(),
            "model": model.to_numpy(),
        }
    )
    dups = fit.iloc[np.flatnonzero(r_fit.random(len(fit)) < 0.002)]
    fit = pd.concat([fit, dups], ignore_index=True)
    return {
        "data_company_1950.import_items": items,
        "data_company_1950.import_items_tags": tags,
        "data_company_1950.vehicle_product_fitment_data": fit,
    }
