"""The trained HeteroGAT as an MLflow model: the ``python_function`` flavour with a signature,
and as its artifacts everything scoring needs (the state dict with its model config, and the
graph snapshot with its id maps), so ``mlflow.pyfunc.load_model("models:/NAME@champion")``
scores in any process that has this package installed.

``predict`` takes rows of ``vehicle_id`` (and optionally ``user_id``, the source contract's user
key ``email_lower``) and returns, per row, the ``k`` products that fit the vehicle with the
highest model score (the same dot products the pipeline's score table holds:
``recommend/embeddings.py``): a graph user gets their own representation, anyone else their
vehicle's (cold-user tower). The business rules (eligibility, purchase exclusion, part-type
cap, look-alike lift) stay in the warehouse (``sql/rules/recommend.sql``).

No email address is stored: the graph snapshot among the artifacts names its users by one-way
keys (``model/user_keys.py``), and ``predict`` keys an incoming ``user_id`` the same way.
"""

from __future__ import annotations

import importlib.metadata as md
import tempfile
import warnings
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from holley_gnn_assets.graph.builder import GraphBundle, load_graph, serving_count
from holley_gnn_assets.graph.types import FITS
from holley_gnn_assets.model.hetero_gat import HeteroGAT, encode_full
from holley_gnn_assets.model.persistence import load_model
from holley_gnn_assets.model.user_keys import save_keyed_graph, user_key

ARTIFACT_PATH = "model"  # the MLflow model's folder in its training run's artifacts
DEFAULT_K = 4
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "vehicle_id"),
                   ColSpec("string", "user_id", required=False)]),
    outputs=Schema([ColSpec("string", "vehicle_id"), ColSpec("string", "user_id", required=False),
                    ColSpec("long", "rank"), ColSpec("string", "sku"),
                    ColSpec("double", "score")]),
    params=ParamSchema([ParamSpec("k", "long", DEFAULT_K)]),
)
OUTPUT_COLUMNS = ["vehicle_id", "user_id", "rank", "sku", "score"]
_REQUIREMENTS = ("torch", "torch-geometric", "mlflow", "pandas", "numpy")


class HeteroGATRecommender(mlflow.pyfunc.PythonModel):
    """Ranks the products that fit a vehicle for its users (see module doc)."""

    model: HeteroGAT
    bundle: GraphBundle

    def load_context(self, context: Any) -> None:
        """Graph and weights from the model's artifacts (the full-graph forward waits for the
        first ``predict``: the pipeline's embeddings step runs its own)."""
        self.bundle = load_graph(context.artifacts["graph"])
        self.model = load_model(context.artifacts["model"], self.bundle)
        self._h: dict[str, torch.Tensor] | None = None

    @torch.no_grad()
    def _prepare(self) -> None:
        data = self.bundle.data.to("cpu")
        model = self.model.cpu().eval()
        self._h = encode_full(model, data)
        pz = model.product_vectors(model.product_repr(self._h["product"]), serving_count(data))
        self._products = pz.numpy().astype(np.float32)
        self._vehicle_queries = model.query_vectors(
            model.cold_user_repr(self._h["vehicle"])).numpy().astype(np.float32)
        self._tier = data["user"].tier
        fits = data[FITS].edge_index.numpy()  # [product row; vehicle row]
        order = np.lexsort((fits[0], fits[1]))  # by vehicle, then product (graph order)
        self._fit_product = fits[0][order]
        self._fit_start = np.searchsorted(fits[1][order], np.arange(len(self.bundle.vehicle_ids)
                                                                    + 1))
        self._vehicle_row = {v: i for i, v in enumerate(self.bundle.vehicle_ids)}
        self._user_row = {u: i for i, u in enumerate(self.bundle.user_ids)}  # one-way keys

    @torch.no_grad()
    def _user_query(self, user_row: int, vehicle_row: int) -> np.ndarray:
        u = torch.tensor([user_row])
        z = self.model.user_repr(self._h["vehicle"][torch.tensor([vehicle_row])],
                                 self._h["user"][u], self._tier[u])
        return self.model.query_vectors(z).numpy().astype(np.float32)[0]

    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Top-``k`` fitting products per input row (rank 1 = best; ties by graph order).

        ``user_id`` is the contract's user key (``email_lower``): it is looked up by its
        ``user_key`` (the snapshot holds no email) and returned as given."""
        if self._h is None:
            self._prepare()  # one full-graph forward, kept for later calls
        k = int(params["k"]) if params and "k" in params else DEFAULT_K
        if k < 1:
            raise ValueError(f"predict: k must be >= 1, got {k}")
        frame = pd.DataFrame(model_input)
        if "vehicle_id" not in frame.columns:
            raise ValueError(f"predict: input lacks column 'vehicle_id' (has {list(frame)})")
        users = frame["user_id"] if "user_id" in frame.columns else pd.Series([None] * len(frame))
        vehicles = frame["vehicle_id"]
        unknown = sorted({str(v) for v in vehicles.dropna() if v not in self._vehicle_row})
        if unknown:
            raise ValueError(f"predict: {len(unknown)} vehicle_id(s) are not vehicles of the "
                             f"model's graph, e.g. {unknown[:3]}")
        parts = []
        for vehicle, user in zip(vehicles, users, strict=True):
            if vehicle is None or pd.isna(vehicle):
                continue  # no vehicle: no recommendations (as in the pipeline)
            v = self._vehicle_row[vehicle]
            key = None if user is None or pd.isna(user) else user_key(str(user))
            own = self._user_row[key] if key in self._user_row else None
            query = self._vehicle_queries[v] if own is None else self._user_query(own, v)
            fitting = self._fit_product[self._fit_start[v]:self._fit_start[v + 1]]
            scores = self._products[fitting] @ query
            best = np.argsort(-scores, kind="stable")[:k]
            parts.append(pd.DataFrame({
                "vehicle_id": vehicle, "user_id": None if user is None or pd.isna(user) else user,
                "rank": np.arange(1, len(best) + 1, dtype=np.int64),
                "sku": [self.bundle.product_ids[i] for i in fitting[best]],
                "score": scores[best].astype(np.float64)}))
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
                OUTPUT_COLUMNS, (object, object, np.int64, object, np.float64), strict=True)})
        return pd.concat(parts, ignore_index=True)[OUTPUT_COLUMNS]


def requirements() -> list[str]:
    """The scoring environment's pins (the installed versions, without a local label such as
    ``+cpu``: a CUDA pod scores a model a CPU pod trained); the model also needs this package
    (``holley_gnn_assets``) importable."""
    return [f"{name}=={md.version(name).split('+')[0]}" for name in _REQUIREMENTS]


def save_recommender(path: str | Path, model_file: str | Path, graph_file: str | Path,
                     metadata: dict[str, Any]) -> Path:
    """Write the MLflow model folder at ``path`` (must not exist): pyfunc flavour, signature,
    the state dict and the graph snapshot as artifacts (its user ids replaced by their one-way
    keys: ``graph_file`` itself is left as it is), ``metadata`` in ``MLmodel``."""
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        keyed = save_keyed_graph(graph_file, Path(tmp) / Path(graph_file).name)
        # no input example: it would load the model once more
        warnings.filterwarnings("ignore", message=".*input example was not provided")
        mlflow.pyfunc.save_model(
            path=str(path), python_model=HeteroGATRecommender(),
            artifacts={"model": str(model_file), "graph": str(keyed)},
            signature=SIGNATURE, pip_requirements=requirements(), metadata=metadata)
    return Path(path)


def load_recommender(path: str | Path) -> HeteroGATRecommender:
    """The recommender of a local MLflow model folder (pyfunc-loaded, context loaded)."""
    if not (Path(path) / "MLmodel").is_file():
        raise FileNotFoundError(f"{path} is not an MLflow model folder (no MLmodel file)")
    recommender = mlflow.pyfunc.load_model(str(path)).unwrap_python_model()
    if not isinstance(recommender, HeteroGATRecommender):
        raise TypeError(f"{path}: the model is a {type(recommender).__name__}, "
                        "not a HeteroGATRecommender")
    return recommender
