"""Training: learning beats random and popularity on planted preferences, early stopping,
resume == uninterrupted, reproducibility, refused checkpoints, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.graph.builder import build_graph
from holley_gnn_assets.recommend.embeddings import compute_embeddings
from holley_gnn_assets.training import checkpoints as ck
from holley_gnn_assets.training.early_stopping import EarlyStopping
from holley_gnn_assets.training.loop import NoInteractionsError, train
from holley_gnn_assets.training.negatives import negative_counts
from holley_gnn_assets.training.runtime import resolve_device
from holley_gnn_assets.training.sampler import TrainingSetup, sample_per_dst
from tests.ml_fixtures import make_tables, single_thread


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with single_thread():
        yield


FAST = {"training": {"epochs": 12, "patience": 3, "batch_size": 256}}
MAX_EPOCHS, PATIENCE = 150, 8


def _cfg(**training) -> dict:
    over = {"training": {**FAST["training"], **training}}
    return load_config(overrides=over)


def _strip(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.fixture(scope="module")
def world():
    tables, planted = make_tables(n_users=1500, seed=1, signal=3.0)
    return tables, planted, build_graph(tables, {})


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    """One training run on the planted world (small widths keep it to seconds)."""
    _, _, bundle = world
    # epochs: a limit, not a target. Measured stop epochs with patience 8 (torch 2.13 CPU): 40
    # here; 11, 73, 34, 34 with training seeds 1-4; 82 on the pre-split trainer, whose best
    # epoch was 58 of 60 (so it never stopped under the former limit of 60).
    cfg = load_config(
        overrides={
            "model": {"embedding_dim": 32, "hidden_dim": 64},
            "training": {"epochs": MAX_EPOCHS, "patience": PATIENCE, "batch_size": 256},
        }
    )
    rows: list[dict] = []
    result = train(bundle, cfg, tmp_path_factory.mktemp("ck"), device="cpu", on_epoch=rows.append)
    return result, rows


def test_trains_early_stops_and_beats_random(trained, world) -> None:
    result, rows = trained
    _, _, bundle = world
    assert result.stopped_early and result.epochs_run < MAX_EPOCHS
    assert result.epochs_run == result.best_epoch + PATIENCE
    assert result.epochs_run == len(result.history) == len(rows)
    assert result.best_epoch == 1 + int(np.argmax([h["val_mrr"] for h in result.history]))
    assert all(np.isfinite([h["train_loss"], h["val_loss"], h["val_mrr"]]).all() for h in rows)
    # random ranking among ~60 fitting products: expected MRR = H(60)/60 ~ 0.08
    fits = bundle.stats["mean_products_per_vehicle"]
    random_mrr = sum(1.0 / k for k in range(1, int(fits) + 1)) / fits
    assert result.best_val_mrr > 2.5 * random_mrr
    assert not result.model.training
    assert next(result.model.parameters()).device.type == "cpu"


def test_cold_top10_recovers_planted_preference(trained, world) -> None:
    result, _ = trained
    tables, planted, bundle = world
    emb = compute_embeddings(result.model, bundle, tables["user_nodes"])
    prow = {s: i for i, s in enumerate(emb.product_ids)}
    pop = tables["product_nodes"].set_index("sku")["order_count"]
    fit = tables["product_vehicle_edges"].groupby("vehicle_id")["sku"].apply(list)
    cold_rows = emb.group_keys.reset_index(drop=True)
    model_overlap, pop_overlap = [], []
    for r, key in cold_rows.iterrows():
        if key["tier"] != "cold":
            continue
        skus = fit[key["vehicle_id"]]
        scores = emb.product_matrix[[prow[s] for s in skus]] @ emb.group_matrix[r]
        top_model = {skus[i] for i in np.argsort(-scores, kind="stable")[:10]}
        top_pop = set(pop.loc[skus].sort_values(ascending=False, kind="stable").index[:10])
        truth = set(planted.truth[key["vehicle_id"]][:10])
        model_overlap.append(len(top_model & truth) / 10)
        pop_overlap.append(len(top_pop & truth) / 10)
    assert len(model_overlap) == bundle.data["vehicle"].num_nodes
    # measured: 0.71 vs 0.51 (lr_gnn 0.01 or in-batch negatives stay near 0.58-0.60)
    assert np.mean(model_overlap) > np.mean(pop_overlap) + 0.12, (
        np.mean(model_overlap),
        np.mean(pop_overlap),
    )


def test_resume_equals_uninterrupted(world, tmp_path) -> None:
    _, _, bundle = world
    full = train(bundle, _cfg(epochs=5, patience=50), tmp_path / "a", device="cpu")
    part = train(bundle, _cfg(epochs=2, patience=50), tmp_path / "b", device="cpu")
    assert part.epochs_run == 2
    rest = train(bundle, _cfg(epochs=5, patience=50), tmp_path / "b", device="cpu")
    assert rest.resumed_from_epoch == 2
    assert rest.epochs_run == full.epochs_run == 5
    assert _strip(rest.history) == _strip(full.history)
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, rest.model.state_dict()[k]), k


def test_weight_average_is_validated_kept_and_resumed(world, tmp_path) -> None:
    _, _, bundle = world
    raw = train(bundle, _cfg(epochs=3, patience=50), tmp_path / "raw", device="cpu")
    avg = train(bundle, _cfg(epochs=3, patience=50, weight_average_decay=0.5), tmp_path / "a",
                device="cpu")
    # the first update copies the weights, so epoch 1 is validated on the same weights; later
    # epochs validate the average, which the raw run never sees
    assert _strip(avg.history)[0] == _strip(raw.history)[0]
    assert [r["val_mrr"] for r in avg.history[1:]] != [r["val_mrr"] for r in raw.history[1:]]
    assert [r["train_loss"] for r in avg.history] == [r["train_loss"] for r in raw.history]
    kept = avg.model.state_dict()
    assert any(not torch.equal(v, raw.model.state_dict()[k]) for k, v in kept.items())
    part = train(bundle, _cfg(epochs=2, patience=50, weight_average_decay=0.5), tmp_path / "b",
                 device="cpu")
    assert "average" in ck.load_checkpoint(tmp_path / "b")
    rest = train(bundle, _cfg(epochs=3, patience=50, weight_average_decay=0.5), tmp_path / "b",
                 device="cpu")
    assert part.epochs_run == 2 and rest.resumed_from_epoch == 2
    assert _strip(rest.history) == _strip(avg.history)
    for k, v in kept.items():
        assert torch.equal(v, rest.model.state_dict()[k]), k


def test_seeded_runs_reproducible_and_seed_matters(world, tmp_path) -> None:
    _, _, bundle = world
    a = train(bundle, _cfg(epochs=2), tmp_path / "a", device="cpu")
    b = train(bundle, _cfg(epochs=2), tmp_path / "b", device="cpu")
    c = train(bundle, _cfg(epochs=2, seed=7), tmp_path / "c", device="cpu")
    assert _strip(a.history) == _strip(b.history)
    assert _strip(a.history) != _strip(c.history)


def test_mismatching_checkpoint_refused(world, tmp_path, caplog) -> None:
    tables, _, bundle = world
    train(bundle, _cfg(epochs=1), tmp_path, device="cpu")
    other = train(bundle, _cfg(epochs=2, lr_gnn=0.005), tmp_path, device="cpu")
    assert other.resumed_from_epoch is None and other.epochs_run == 2
    assert any("training.lr_gnn" in n for n in other.notes)
    assert "training.lr_gnn" in caplog.text
    # the checkpoint now belongs to lr_gnn=0.005; a different graph is refused by fingerprint
    smaller = dict(tables)
    smaller["user_product_edges"] = tables["user_product_edges"].iloc[:-5]
    g2 = build_graph(smaller, {})
    third = train(g2, _cfg(epochs=3, lr_gnn=0.005), tmp_path, device="cpu")
    assert third.resumed_from_epoch is None
    assert any("graph fingerprint" in n for n in third.notes)
    state = ck.load_checkpoint(tmp_path)
    assert state["graph_fingerprint"] == g2.fingerprint and state["epoch"] == 3


def test_no_interactions_is_a_clear_error(world, tmp_path) -> None:
    tables, _, _ = world
    empty = dict(tables)
    empty["user_product_edges"] = tables["user_product_edges"].iloc[:0]
    empty["product_product_edges"] = tables["product_product_edges"].iloc[:0]
    bundle = build_graph(empty, {})
    assert bundle.data["user"].num_nodes == 0
    with pytest.raises(NoInteractionsError, match="no user->product edges"):
        train(bundle, _cfg(), tmp_path, device="cpu")


def test_cuda_requested_without_cuda_falls_back() -> None:
    if torch.cuda.is_available():
        assert resolve_device("cuda") == ("cuda", None)
        return
    with pytest.warns(RuntimeWarning):
        dev, note = resolve_device("cuda")
    assert dev == "cpu" and "CUDA is not available" in note
    assert resolve_device("auto") == ("cpu", None)
    with pytest.raises(ValueError, match="training.device"):
        resolve_device("tpu")


def test_early_stopping_counts_epochs_without_improvement() -> None:
    stop = EarlyStopping(patience=3)
    mrrs = [0.1, 0.3, 0.2, 0.3, 0.31, 0.31, 0.30, 0.29]
    improved = [stop.update(epoch, m) for epoch, m in enumerate(mrrs, start=1)]
    assert improved == [True, True, False, False, True, False, False, False]
    assert stop.stopped and stop.best_epoch == 5 and stop.best_mrr == 0.31
    fresh = EarlyStopping(patience=3)
    for epoch, m in enumerate([0.1, 0.2, 0.3], start=1):
        fresh.update(epoch, m)
    assert not fresh.stopped and fresh.bad_epochs == 0


def test_one_cold_representation_everywhere(world, tmp_path, monkeypatch) -> None:
    """Training, validation (and the lift weight's choice through it) and serving all build
    cold users with HeteroGAT.cold_user_repr."""
    import inspect

    from holley_gnn_assets.model.hetero_gat import HeteroGAT

    callers: set[str] = set()
    original = HeteroGAT.cold_user_repr

    def spy(self, vehicle_h):
        callers.add(inspect.stack()[1].frame.f_globals["__name__"])
        return original(self, vehicle_h)

    monkeypatch.setattr(HeteroGAT, "cold_user_repr", spy)
    tables, _, bundle = world
    result = train(bundle, _cfg(epochs=1), tmp_path, device="cpu")
    emb = compute_embeddings(result.model, bundle, tables["user_nodes"])
    assert callers == {
        "holley_gnn_assets.training.loop",
        "holley_gnn_assets.training.validation",
        "holley_gnn_assets.recommend.embeddings",
    }
    with torch.no_grad():
        h = result.model(bundle.data)
        v = pd.Index(bundle.vehicle_ids).get_indexer(emb.group_keys["vehicle_id"])
        expected = result.model.query_vectors(
            original(result.model, h["vehicle"][torch.from_numpy(v)]))
    assert np.allclose(emb.group_matrix, expected.numpy(), atol=1e-6)


def test_negative_counts_split() -> None:
    assert negative_counts({"in_batch": 0, "uniform": 0.5, "popularity": 0.5, "fitment": 0}, 4) == {
        "in_batch": 0,
        "uniform": 2,
        "popularity": 2,
        "fitment": 0,
    }
    assert sum(negative_counts({"in_batch": 1, "uniform": 1, "popularity": 0,
                                     "fitment": 1}, 4).values()) == 4
    with pytest.raises(ValueError, match="unknown"):
        negative_counts({"in_batch": 0, "uniform": 1, "popularity": 0, "fitment": 0,
                         "hard": 1.0}, 4)
    with pytest.raises(ValueError, match="training.negatives.fitment: missing"):
        negative_counts({"in_batch": 0, "uniform": 1, "popularity": 0}, 4)


def test_sample_per_dst_caps_degree() -> None:
    torch.manual_seed(0)
    dst = torch.tensor([0] * 10 + [1] * 2 + [3] * 5)
    keep = sample_per_dst(dst, 4, cap=3)
    counts = torch.bincount(dst[keep], minlength=4).tolist()
    assert counts == [3, 2, 0, 3]
    assert len(set(keep.tolist())) == len(keep)


def test_nan_features_rejected(world, tmp_path) -> None:
    _, _, bundle = world
    bad = build_graph(world[0], {})
    bad.data["vehicle"].x[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite|not finite"):
        train(bad, _cfg(epochs=1), tmp_path, device="cpu")
    assert isinstance(bundle.data["vehicle"].x, torch.Tensor)


def test_user_without_vehicle_is_fine(world) -> None:
    tables, _, bundle = world
    no_vehicle = tables["user_nodes"]["vehicle_id"].isna()
    graph_users = pd.Index(bundle.user_ids)
    assert graph_users.isin(tables["user_nodes"].loc[no_vehicle, "email_lower"]).any()


def _split(bundle, cap: int | None) -> tuple[torch.Tensor, torch.Tensor, TrainingSetup]:
    torch.manual_seed(0)
    st = TrainingSetup(bundle, _cfg(supervision_per_user=cap), "cpu", np.random.default_rng(0))
    sup, cold, _ = st.epoch_split(np.random.default_rng(1))
    return sup, cold, st


def test_supervision_per_user_caps_an_epoch(world) -> None:
    """At most ``supervision_per_user`` supervision edges per user, drawn from the uncapped
    epoch's own; a cap no user reaches changes nothing (the same edges in the same order)."""
    _, _, bundle = world
    free, free_cold, st = _split(bundle, None)
    per_user = torch.bincount(st.edge_user[free])
    assert int(per_user.max()) > 2  # the cap below binds
    capped, capped_cold, _ = _split(bundle, 2)
    assert int(torch.bincount(st.edge_user[capped]).max()) <= 2
    assert set(capped.tolist()) <= set(free.tolist())
    assert len(capped) == int(per_user.clamp_max(2).sum())
    cold_of = dict(zip(free.tolist(), free_cold.tolist(), strict=True))
    assert [cold_of[e] for e in capped.tolist()] == capped_cold.tolist()
    loose, loose_cold, _ = _split(bundle, int(per_user.max()))
    assert torch.equal(loose, free) and torch.equal(loose_cold, free_cold)
