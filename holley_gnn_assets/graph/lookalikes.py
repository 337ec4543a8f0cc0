"""Fitment look-alikes: each vehicle's most fitment-similar vehicles (one definition).

Used by the model's ``pooled``/``neighbours`` propagation (``model/propagation.py``) and by the
evaluation's ``lookalike_pop`` reference arm (``evaluation/reference_arms.py``), so the count
the GNN is compared with pools over the same vehicles the GNN pools over.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

NEIGHBOURS = 20
CHUNK_ROWS = 1024  # rows of the dense [chunk, V] similarity block


def fitment_lookalikes(
    vehicle: np.ndarray, product: np.ndarray, n_vehicles: int, n_products: int,
    k: int = NEIGHBOURS,
) -> sp.coo_matrix:
    """Sparse ``[V, V]``: each vehicle's ``k`` most similar vehicles by cosine similarity of
    their 0/1 fitment rows (the vehicle itself always included, duplicate fitment rows counted
    once), weighted by that similarity; pairs with similarity 0 are left out.
    ``vehicle``/``product``: the integer codes of the fitment rows."""
    f = sp.csr_matrix((np.ones(len(vehicle)), (vehicle, product)),
                      shape=(n_vehicles, n_products))
    f.data[:] = 1.0
    norm = np.sqrt(np.asarray(f.sum(axis=1)).ravel())
    norm[norm == 0] = 1.0
    f = sp.diags(1.0 / norm) @ f
    kk = min(k, n_vehicles)
    rows, cols, vals = [], [], []
    for lo in range(0, n_vehicles, CHUNK_ROWS):
        sim = (f[lo : lo + CHUNK_ROWS] @ f.T).toarray()
        top = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
        w = np.take_along_axis(sim, top, axis=1)
        own = np.arange(lo, lo + len(sim))
        # ties at the top (more than k identical fitment rows): the vehicle itself goes in
        # place of its lowest-weight look-alike, so its own owners always count
        out = ~(top == own[:, None]).any(axis=1)
        if out.any():
            at = w[out].argmin(axis=1)
            top[out, at] = own[out]
            w[out, at] = sim[out, own[out] - lo]
        r = np.repeat(own, kk)
        keep = w.ravel() > 0
        rows.append(r[keep])
        cols.append(top.ravel()[keep])
        vals.append(w.ravel()[keep])

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    # COO in row-chunk order (the order the model's mean operator sums in)
    return sp.coo_matrix((cat(vals, float), (cat(rows, np.int64), cat(cols, np.int64))),
                         shape=(n_vehicles, n_vehicles))
