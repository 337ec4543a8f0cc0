"""Serving embeddings from a trained model: products, cold-user groups, own-edge users.

Users without their own edges (cold users, and any user whose events did not make it into the
graph) are represented by ``HeteroGAT.cold_user_repr`` of their vehicle: one row per
(vehicle_id, tier) group, computed once per group, never once per user. The model only ever
sees users without own edges as cold, so the tier column of a group keys the row (the scorer
groups by vehicle and tier) without changing its vector. Users that are graph nodes (>= 1
training edge) and have a vehicle get their own row from the full-graph forward.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from holley_gnn_assets.graph.builder import GraphBundle, serving_count
from holley_gnn_assets.model.hetero_gat import HeteroGAT, encode_full

log = logging.getLogger(__name__)
INDEX_COLUMNS = ["email_lower", "vehicle_id", "tier", "source", "row"]


@dataclass
class Embeddings:
    """Product, group and user matrices (float32; a user/group row . a product row = the
    model's logit: ``HeteroGAT.query_vectors`` / ``product_vectors``) plus their keys."""

    product_ids: list[str]
    product_matrix: np.ndarray  # [P, D]
    group_keys: pd.DataFrame  # [vehicle_id, tier]
    group_matrix: np.ndarray  # [G, D]
    user_ids: list[str]
    user_matrix: np.ndarray  # [U, D]
    user_index: pd.DataFrame  # [email_lower, vehicle_id, tier, source ('group'|'user'), row]

    def check(self) -> None:
        """Raise ValueError naming a matrix with non-finite values or inconsistent keys."""
        for name in ("product_matrix", "group_matrix", "user_matrix"):
            m = getattr(self, name)
            if m.size and not np.isfinite(m).all():
                bad = int((~np.isfinite(m)).any(axis=1).sum())
                raise ValueError(f"embeddings: {name} has non-finite values in {bad} row(s)")
        for keys, mat, name in (
            (self.product_ids, self.product_matrix, "product"),
            (self.group_keys, self.group_matrix, "group"),
            (self.user_ids, self.user_matrix, "user"),
        ):
            if len(keys) != mat.shape[0]:
                raise ValueError(f"embeddings: {len(keys)} {name} keys but {mat.shape[0]} rows")

    def save(self, directory: str | Path) -> None:
        """Write ``matrices.npz`` and three Parquet key tables into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.savez(
            d / "matrices.npz",
            product_matrix=self.product_matrix,
            group_matrix=self.group_matrix,
            user_matrix=self.user_matrix,
        )
        pd.DataFrame({"sku": self.product_ids}).to_parquet(d / "product_ids.parquet", index=False)
        pd.DataFrame({"email_lower": self.user_ids}).to_parquet(d / "user_ids.parquet", index=False)
        self.group_keys.to_parquet(d / "group_keys.parquet", index=False)
        self.user_index.to_parquet(d / "user_index.parquet", index=False)

    @classmethod
    def load(cls, directory: str | Path) -> Embeddings:
        """Read what ``save`` wrote; raises FileNotFoundError naming a missing file."""
        d = Path(directory)
        for f in (
            "matrices.npz",
            "product_ids.parquet",
            "user_ids.parquet",
            "group_keys.parquet",
            "user_index.parquet",
        ):
            if not (d / f).exists():
                raise FileNotFoundError(f"embeddings: {d / f} is missing")
        with np.load(d / "matrices.npz") as z:
            mats = {k: z[k] for k in z.files}
        emb = cls(
            product_ids=pd.read_parquet(d / "product_ids.parquet")["sku"].tolist(),
            product_matrix=mats["product_matrix"],
            group_keys=pd.read_parquet(d / "group_keys.parquet"),
            group_matrix=mats["group_matrix"],
            user_ids=pd.read_parquet(d / "user_ids.parquet")["email_lower"].tolist(),
            user_matrix=mats["user_matrix"],
            user_index=pd.read_parquet(d / "user_index.parquet"),
        )
        emb.check()
        return emb


@torch.no_grad()
def compute_embeddings(
    model: HeteroGAT, bundle: GraphBundle, user_nodes: pd.DataFrame
) -> Embeddings:
    """Full-graph forward, then one row per product, per (vehicle, tier) group, per graph user.

    ``user_nodes``: the export's user table (email_lower, vehicle_id, tier). Users without a
    vehicle get no row in ``user_index`` (they get no recommendations).
    """
    for col in ("email_lower", "vehicle_id", "tier"):
        if col not in user_nodes.columns:
            raise ValueError(f"compute_embeddings: user_nodes lacks column {col!r}")
    model = model.cpu().eval()
    data = bundle.data.to("cpu")
    h = encode_full(model, data)
    pz = model.product_vectors(model.product_repr(h["product"]), serving_count(data))
    pz = pz.numpy().astype(np.float32)

    users = user_nodes.loc[user_nodes["vehicle_id"].notna(), ["email_lower", "vehicle_id", "tier"]]
    users = users.astype({"email_lower": object, "vehicle_id": object, "tier": object})
    users = users.assign(tier=users["tier"].str.lower())
    vindex = pd.Index(bundle.vehicle_ids)
    vrow = vindex.get_indexer(users["vehicle_id"])
    if (vrow < 0).any():
        example = users["vehicle_id"][vrow < 0].iloc[0]
        raise ValueError(
            f"compute_embeddings: {int((vrow < 0).sum())} user(s) have a vehicle_id that is not a "
            f"graph vehicle (e.g. {example!r})"
        )
    users = users.assign(_v=vrow)
    grow = pd.Index(bundle.user_ids).get_indexer(users["email_lower"])
    own = grow >= 0

    # own-edge users
    own_users = users[own]
    g_idx = torch.from_numpy(grow[own].astype(np.int64))
    v_idx = torch.from_numpy(own_users["_v"].to_numpy(np.int64))
    uz = model.query_vectors(
        model.user_repr(h["vehicle"][v_idx], h["user"][g_idx], data["user"].tier[g_idx])
    )
    user_matrix = uz.numpy().astype(np.float32).reshape(-1, pz.shape[1])

    # groups: users without own edges, one row per (vehicle, tier)
    grouped = users[~own]
    keys = (
        grouped[["vehicle_id", "tier", "_v"]]
        .drop_duplicates(["vehicle_id", "tier"])
        .sort_values(["vehicle_id", "tier"])
        .reset_index(drop=True)
    )
    kv = torch.from_numpy(keys["_v"].to_numpy(np.int64))
    gz = model.query_vectors(model.cold_user_repr(h["vehicle"][kv]))
    group_matrix = gz.numpy().astype(np.float32).reshape(-1, pz.shape[1])
    keys = keys.drop(columns="_v")
    key_row = pd.MultiIndex.from_frame(keys).get_indexer(
        pd.MultiIndex.from_frame(grouped[["vehicle_id", "tier"]])
    )
    index = pd.concat(
        [
            grouped[["email_lower", "vehicle_id", "tier"]].assign(source="group", row=key_row),
            own_users[["email_lower", "vehicle_id", "tier"]].assign(
                source="user", row=np.arange(len(own_users))
            ),
        ],
        ignore_index=True,
    )
    index["row"] = index["row"].astype(np.int64)
    emb = Embeddings(
        product_ids=list(bundle.product_ids),
        product_matrix=pz,
        group_keys=keys.astype({"vehicle_id": "string", "tier": "string"}),
        group_matrix=group_matrix,
        user_ids=own_users["email_lower"].tolist(),
        user_matrix=user_matrix,
        user_index=index[INDEX_COLUMNS].astype(
            {"email_lower": "string", "vehicle_id": "string", "tier": "string", "source": "string"}
        ),
    )
    emb.check()
    log.info(
        "compute_embeddings: %d products, %d groups for %d users, %d own-edge users",
        len(emb.product_ids),
        len(keys),
        len(grouped),
        len(own_users),
    )
    return emb
