"""In a null world (signal 0: popularity among fitting parts is optimal) the evaluation must
never call a clear win for the GNN, whatever the seed: the statistics must not invent effects."""

from __future__ import annotations

import pytest

from holley_gnn_assets.config import TimeWindows, load_config
from holley_gnn_assets.core import evaluation
from holley_gnn_assets.core.baseline import run_sql_baseline
from holley_gnn_assets.core.embeddings import compute_embeddings
from holley_gnn_assets.core.exports import run_exports
from holley_gnn_assets.core.graph_builder import build_graph
from holley_gnn_assets.core.scoring import score_gnn
from holley_gnn_assets.core.trainer import train
from holley_gnn_assets.core.warehouse_duckdb import DuckDBWarehouse
from holley_gnn_assets.synth.generator import generate_warehouse

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_null_world_is_never_a_clear_win(tmp_path, seed):
    path = tmp_path / "null.duckdb"
    generate_warehouse(path, scale="tiny", seed=seed, signal=0.0, progress=False)
    cfg = load_config(overrides={"eval": {"bootstrap_samples": 500}})
    wh = DuckDBWarehouse(str(path))
    windows = TimeWindows.from_config(cfg, wh.synthetic_as_of())
    tables = run_exports(wh, cfg, windows)
    bundle = build_graph(tables, cfg)
    result = train(bundle, cfg, tmp_path / "ckpt", device="cpu", resume=False)
    emb = compute_embeddings(result.model, bundle, tables["user_nodes"])
    _, gnn = score_gnn(emb, tables, cfg, scoring_date=windows.cutoff)
    _, sql = run_sql_baseline(wh, cfg, windows, scoring_date=windows.cutoff)
    report = evaluation.evaluate(
        {"gnn": gnn, "sql": sql}, tables["user_nodes"], tables["test_clicks"],
        tables["test_events"], cfg, wh.read_truth(), tables=tables, as_of=windows.as_of,
        cutoff=windows.cutoff,
    )
    assert report["n_test_clicks"] > 0
    assert report["tiers"]["cold"]["n_users"] > 100
    assert report["decision"] != "clear_win"
