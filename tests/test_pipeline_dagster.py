"""The whole asset graph through Dagster on a tiny world: output, report, MLflow, QA gates.

One real run (DuckDB warehouse, local MLflow store, a real temporary Dagster instance) is
shared by the module; each fault-injection test then re-runs the scoring tail with a corrupted
copy of the GNN's staged rows and checks that the matching blocking check stops the output
write (the output table keeps its rows; staging tables may change).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, asset, materialize
from mlflow import MlflowClient

from holley_gnn_assets.defs.partitions import DAILY
from holley_gnn_assets.defs.resources import WarehouseResource
from holley_gnn_assets.warehouse.schemas import OUTPUT_COLUMNS, OUTPUT_TYPES
from tests.conftest import pipeline_env, private_warehouse
from tests.email_scan import emails_in_artifacts, emails_in_file, emails_in_tracking

pytestmark = pytest.mark.slow
LIFT_POOL = 7


@pytest.fixture(scope="module")
def pipeline_run(tiny_signal_warehouse: Path, tmp_path_factory: pytest.TempPathFactory):
    """Run full_retrain_job then its publish_job once on the tiny world with an isolated home
    and instance (as ``holley-gnn run`` does)."""
    home = tmp_path_factory.mktemp("home")
    warehouse = private_warehouse(home, tiny_signal_warehouse)
    mp = pipeline_env(home, warehouse, _fast_config(home))
    from holley_gnn_assets.commands.runner import run_and_publish
    from holley_gnn_assets.definitions import build_defs

    defs = build_defs()
    instance = DagsterInstance.ephemeral()
    result, *published = run_and_publish("full_retrain_job", instance, defs)
    yield {"home": home, "defs": defs, "instance": instance, "result": result,
           "publish": published[0] if published else None, "warehouse": warehouse,
           "key": result.dagster_run.tags["dagster/partition"]}
    mp.undo()


def _fast_config(home: Path) -> Path:
    """The packaged config with a short training budget for tests."""
    import yaml

    from holley_gnn_assets.config.settings import load_config

    # a look-alike pool other than the default (NEIGHBOURS = 20), so a step that drops the
    # model's pool and pools the default scores differently (test_the_models_pool_reaches...)
    cfg = load_config(overrides={"training": {"epochs": 8, "patience": 3},
                                 "model": {"lookalike_lift_neighbours": [LIFT_POOL]}})
    path = home / "test_config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _output(warehouse: Path) -> pd.DataFrame:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute("SELECT * FROM temp_holley_gnn.recommendations "
                           "ORDER BY email_lower").df()
    finally:
        con.close()


def test_full_run_writes_output_report_and_mlflow(pipeline_run):
    result = pipeline_run["result"]
    assert result.success, result.get_failed_step_keys()
    out = _output(pipeline_run["warehouse"])
    assert list(out.columns) == OUTPUT_COLUMNS
    assert len(out) > 100
    assert (out["rec1_score"] >= out["rec2_score"].fillna(-1e9)).all()
    report = json.loads((pipeline_run["home"] / "eval_report.json").read_text())
    for key in ("as_of", "cutoff", "n_test_clicks", "n_test_users", "tiers", "decision"):
        assert key in report
    # the tiny world holds ~430 test clicks in any window < eval.min_test_clicks=2000: the
    # default window is kept, the decision carries the small-sample flag and its interval decides
    # (tests/test_adaptive_window.py)
    assert report["test_window"]["days"] == 30 and report["small_sample"] is True
    assert "even the maximum 90 d" in report["decision_reason"]
    lo, hi = report["tiers"]["cold"]["bootstrap_ci95"]
    if lo <= 0 <= hi:
        assert report["decision"] in ("inconclusive", "neutral")
    assert report["interval_method"] == report["tiers"]["cold"]["ci95_method"]
    # the report sizes the A/B test the offline delta would need (phase 2), only for a lift
    # whose interval excludes 0
    power = report["power_analysis"]
    assert power["offline_delta"] == report["tiers"]["cold"]["delta_hit_rate@4"]
    assert power["detectable"] == (lo > 0)
    assert "A/B test size" in (pipeline_run["home"] / "eval_report.md").read_text()
    for tier in ("cold", "warm", "hot", "all"):
        block = report["tiers"][tier]
        assert {"n_users", "gnn", "sql", "delta_hit_rate@4", "mcnemar_p",
                "bootstrap_ci95"} <= set(block)
    client = MlflowClient(tracking_uri=f"sqlite:///{pipeline_run['home'] / 'mlflow.db'}")
    exp = client.get_experiment_by_name("holley-gnn")
    runs = client.search_runs([exp.experiment_id])
    stages = {r.data.tags.get("stage") for r in runs}
    assert {"train", "eval"} <= stages
    eval_run = next(r for r in runs if r.data.tags.get("stage") == "eval")
    assert eval_run.data.params["test_window.days"] == "30"
    train_run = next(r for r in runs if r.data.tags.get("stage") == "train")
    assert client.get_metric_history(train_run.info.run_id, "val_mrr")
    assert train_run.data.tags["dagster_run_id"] == result.run_id
    # the look-alike lift's weight: chosen on validation, logged, carried by the registered
    # version through the embeddings asset to the GNN's scores
    w = train_run.data.metrics["lookalike_lift_weight"]
    mrr = {k: v for k, v in train_run.data.metrics.items() if k.startswith("lift_val_mrr_w")}
    assert len(mrr) == 5 and mrr[f"lift_val_mrr_w{w:g}"] == max(mrr.values())
    k = int(train_run.data.metrics["lookalike_lift_neighbours"])
    pools = {key: v for key, v in train_run.data.metrics.items()
             if key.startswith("lift_count_val_mrr_k")}
    assert len(pools) == 1 and pools[f"lift_count_val_mrr_k{k}"] == max(pools.values())
    mat = pipeline_run["instance"].get_latest_materialization_event(
        AssetKey("gnn_recommendations")).asset_materialization
    assert mat.metadata["lookalike_lift_weight"].value == w
    assert mat.metadata["lookalike_lift_neighbours"].value == k
    assert report["lookalike_pop_neighbours"] == k  # the reference count pools alike
    # the table and the champion agree, by the publish log written with the table
    from holley_gnn_assets.config.settings import get_settings
    from holley_gnn_assets.recommend.publish import last_publish
    from holley_gnn_assets.storage.model_registry import ModelRegistry
    from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse

    published = last_publish(DuckDBWarehouse(pipeline_run["warehouse"]), get_settings().cfg)
    champion = ModelRegistry(MlflowClient(tracking_uri=client.tracking_uri,
                                          registry_uri=client.tracking_uri)).champion()
    assert published["model_version"] == champion["version"]
    assert published["run_id"] == result.run_id and published["row_count"] == len(out)
    # the registered version is an MLflow model (pyfunc, signature) in the training run, and
    # scoring loaded it as one; the model file is stored once (not in the artifact store)
    logged = {f.path: f.file_size for f in client.list_artifacts(train_run.info.run_id, "model")}
    assert "model/MLmodel" in logged and champion["source"].endswith("/model")
    assert (MlflowClient(tracking_uri=client.tracking_uri).get_run(train_run.info.run_id)
            .info.run_id == champion["mlflow_run_id"])
    stored = {p.name for p in (pipeline_run["home"] / "artifacts").rglob("*") if p.is_file()}
    assert not {"model.pt", "training_curves.png"} & stored, stored
    emb = pipeline_run["instance"].get_latest_materialization_event(
        AssetKey("embeddings")).asset_materialization
    assert emb.metadata["model_uri"].value == f"models:/holley-gnn-heterogat/{champion['version']}"
    # written by the publish run of this run, after the champion decision, its own step
    publish = pipeline_run["publish"]
    assert publish.success and publish.dagster_run.tags["holley-gnn/source_run"] == result.run_id
    decided = {ev.asset_key.to_user_string(): ev.materialization.metadata
               for ev in publish.get_asset_materialization_events()}
    assert {"champion_decision", "recommendations_table"} <= set(decided)
    assert decided["champion_decision"]["promote"].value == "yes"  # the first measured model
    assert decided["champion_decision"]["source_run"].value == result.run_id
    # no email addresses anywhere in MLflow params/metrics/tags
    for r in runs:
        blob = json.dumps([r.data.params, r.data.tags, r.data.metrics])
        assert "@" not in blob.replace("_at_", "").replace("hit_rate@", "")


def test_no_email_address_under_the_mlflow_store(pipeline_run):
    """Nothing MLflow holds after a full run names a user by email (the model's graph snapshot
    holds one-way keys), while scoring still joined the model's users to the warehouse's."""
    home = pipeline_run["home"]
    found, n_files = emails_in_artifacts(home / "mlartifacts")
    assert n_files >= 5 and not found, found[:5]  # MLmodel, model.pt, heterodata.pt, reports
    assert not emails_in_file(home / "mlflow.db")  # the tracking store, byte for byte
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    assert not emails_in_tracking(client)
    emb = pipeline_run["instance"].get_latest_materialization_event(
        AssetKey("embeddings")).asset_materialization
    assert emb.metadata["users_with_own_embedding"].value > 0  # the graph users were found


def _assets_without(defs, name: str) -> list:
    """The code location's assets but the one named (a test swaps in its own)."""
    key = AssetKey(name)
    return [a for a in defs.assets if key not in (getattr(a, "keys", None) or {a.key})]


def _vehicle_scores(warehouse: Path, arm: str, run_id: str) -> pd.Series:
    """The vehicle rows of an arm's score table staged by run ``run_id``, by (vehicle_id, sku)."""
    from holley_gnn_assets.config.settings import get_settings
    from holley_gnn_assets.recommend.apply_rules import run_suffix, scores_table, staging_dataset

    table = f"{staging_dataset(get_settings().cfg)}.{scores_table(arm, run_suffix(run_id))}"
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        df = con.execute(f"SELECT vehicle_id, sku, score FROM {table} "
                         "WHERE email_lower IS NULL").df()
    finally:
        con.close()
    return df.set_index(["vehicle_id", "sku"])["score"].sort_index()


def test_the_models_pool_reaches_both_arms_scores(pipeline_run):
    """The pool training chose (LIFT_POOL) is the one the GNN arm's lift and the lookalike_pop
    reference were counted with: their staged scores equal a recount with that pool."""
    from holley_gnn_assets.config.settings import get_settings
    from holley_gnn_assets.defs.resources import ArtifactsResource
    from holley_gnn_assets.evaluation.reference_arms import reference_scores
    from holley_gnn_assets.graph.lookalikes import NEIGHBOURS
    from holley_gnn_assets.recommend.candidate_cut import top_candidates
    from holley_gnn_assets.recommend.embeddings import Embeddings
    from holley_gnn_assets.recommend.gnn_scores import gnn_arm_scores

    assert pipeline_run["result"].success
    names = ("product_nodes", "user_nodes", "product_vehicle_edges", "user_product_edges")
    with pipeline_run["defs"].get_asset_value_loader(pipeline_run["instance"]) as loader:
        key = pipeline_run["key"]
        tables = {name: loader.load_asset_value(name, partition_key=key) for name in names}
        emb_out = loader.load_asset_value("embeddings", partition_key=key)
    assert emb_out["lookalike_lift_neighbours"] == LIFT_POOL != NEIGHBOURS
    cfg, wh = get_settings().cfg, pipeline_run["warehouse"]

    eligible = tables["product_nodes"].set_index("sku")["eligible"].astype(bool)
    depth = int(cfg["rules"]["candidate_depth"])  # each vehicle's rows are cut to its best

    def vehicle_rows(scores: pd.DataFrame) -> pd.Series:
        rows = scores[scores["email_lower"].isna()]
        return rows.set_index(["vehicle_id", "sku"])["score"].sort_index()

    def recount(k: int, cut: bool = True) -> pd.Series:
        ref = reference_scores(tables, cfg, None, k)["lookalike_pop"]
        return vehicle_rows(top_candidates(ref, eligible, depth) if cut else ref)

    run_id = pipeline_run["result"].run_id
    staged = _vehicle_scores(wh, "lookalike_pop", run_id)
    want = recount(LIFT_POOL)  # on the test users' vehicles (the evaluation ranks no others)
    want = want[want.index.get_level_values(0).isin(staged.index.get_level_values(0))]
    pd.testing.assert_series_equal(staged, want, check_names=False,
                                   check_dtype=False, check_index_type=False)
    assert not np.allclose(staged.to_numpy(),  # it matters
                           recount(NEIGHBOURS, cut=False).loc[staged.index].to_numpy())

    emb = Embeddings.load(ArtifactsResource().fetch_dir(emb_out["prefix"]))

    def gnn(k: int, w: float, cut: bool = True) -> pd.Series:
        return vehicle_rows(gnn_arm_scores(emb, tables, w, k,
                                           group_candidates=depth if cut else None))

    chosen = float(emb_out["lookalike_lift_weight"])
    pd.testing.assert_series_equal(_vehicle_scores(wh, "gnn", run_id), gnn(LIFT_POOL, chosen),
                                   check_names=False, check_dtype=False,
                                   check_index_type=False, rtol=1e-5)

    # the tiny world's validation may choose weight 0, where no pool reaches the GNN's scores:
    # re-run the GNN arm with the registered version's values at weight 0.5
    w = 0.5

    @asset(name="embeddings", group_name="model", partitions_def=DAILY)
    def weighted() -> dict:
        return {**emb_out, "lookalike_lift_weight": w}

    defs = pipeline_run["defs"]
    result = materialize([*_assets_without(defs, "embeddings"), weighted],
                         selection=["embeddings", "gnn_recommendations"],
                         resources=defs.resources, instance=pipeline_run["instance"],
                         partition_key=pipeline_run["key"])
    assert result.success
    mat = pipeline_run["instance"].get_latest_materialization_event(
        AssetKey("gnn_recommendations")).asset_materialization
    assert mat.metadata["lookalike_lift_weight"].value == w
    staged = _vehicle_scores(wh, "gnn", result.run_id)
    pd.testing.assert_series_equal(staged, gnn(LIFT_POOL, w), check_names=False,
                                   check_dtype=False, check_index_type=False, rtol=1e-5)
    assert not np.allclose(staged.to_numpy(), gnn(NEIGHBOURS, w, cut=False).loc[staged.index]
                           .to_numpy(), rtol=1e-5)


def _faulty_recs(kind: str, recs: pd.DataFrame, products: pd.DataFrame,
                 purchases: pd.DataFrame, as_of) -> pd.DataFrame:
    recs = recs.copy()
    row = recs.index[recs["rec_part_4"].notna()][0]
    if kind == "excluded_products":
        sku = products.loc[products["is_refurbished"], "sku"].iloc[0]
        recs.loc[row, "rec_part_1"] = sku
    elif kind == "price_floor":
        recs.loc[row, "rec1_price"] = 10.0
    elif kind == "https_images":
        recs.loc[row, "rec1_image"] = "http://img.example/part.jpg"
    elif kind == "duplicate_skus":
        recs.loc[row, "rec_part_2"] = recs.loc[row, "rec_part_1"]
    elif kind == "purchased_recently":
        ts = pd.to_datetime(purchases["last_order_ts"], utc=True)
        recent = purchases[ts >= pd.Timestamp(as_of, tz="UTC") - pd.Timedelta(days=365)]
        recent = recent[recent["email_lower"].isin(recs["email_lower"])]
        user, sku = recent.iloc[0][["email_lower", "sku"]]
        recs.loc[recs["email_lower"] == user, "rec_part_1"] = sku
    return recs


def _corrupted_gnn_asset(pipeline_run, check: str):
    """A ``gnn_recommendations`` that stages the fixture run's GNN rows with one ``check``
    fault (the good rows are read now: a later run's start may drop that staging table)."""
    home = pipeline_run["home"]
    tables, key = home / "tables", pipeline_run["key"]
    staged = pd.read_pickle(tables / "gnn_recommendations" / f"{key}.pkl")
    products = pd.read_parquet(tables / "product_nodes" / f"{key}.parquet")
    purchases = pd.read_parquet(tables / "user_purchases" / f"{key}.parquet")
    as_of = json.loads((home / "eval_report.json").read_text())["as_of"]
    with duckdb.connect(str(pipeline_run["warehouse"]), read_only=True) as con:
        good = con.execute(f"SELECT * FROM {staged['table']}").df()
    bad = _faulty_recs(check, good, products, purchases, as_of)

    @asset(name="gnn_recommendations", group_name="scoring", partitions_def=DAILY)
    def corrupted(warehouse: WarehouseResource) -> dict:
        warehouse.get().load_table(bad, staged["dataset"], "recs_gnn_faulty", OUTPUT_TYPES)
        return {**staged, "name": "recs_gnn_faulty",
                "table": f"{staged['dataset']}.recs_gnn_faulty"}

    return corrupted


@pytest.mark.parametrize("check", ["excluded_products", "price_floor", "https_images",
                                   "duplicate_skus", "purchased_recently"])
def test_injected_fault_blocks_output(pipeline_run, check):
    assert pipeline_run["result"].success
    wh = pipeline_run["warehouse"]
    before = _output(wh)
    corrupted = _corrupted_gnn_asset(pipeline_run, check)
    defs = pipeline_run["defs"]
    checks = list(defs.asset_checks)
    result = materialize(
        [*_assets_without(defs, "gnn_recommendations"), corrupted, *checks],
        selection=["gnn_recommendations", "eval_report", "recommendations_table"],
        resources=defs.resources, instance=pipeline_run["instance"], raise_on_error=False,
        partition_key=pipeline_run["key"],
    )
    failed = {(tuple(ev.asset_key.path), ev.check_name)
              for ev in result.get_asset_check_evaluations() if not ev.passed}
    assert (("gnn_recommendations",), check) in failed
    written = {tuple(ev.asset_key.path) for ev in result.get_asset_materialization_events()}
    assert ("recommendations_table",) not in written
    pd.testing.assert_frame_equal(_output(wh), before)
    # the gate's numbers, separately, and the run's first error line in words
    (gate,) = [ev for ev in result.get_asset_check_evaluations()
               if ev.check_name == check and ev.asset_key == AssetKey("gnn_recommendations")]
    numbers = {k: gate.metadata[k].value for k in ("failing", "threshold", "population")}
    assert numbers["failing"] >= 1 and numbers["threshold"] == 0
    assert numbers["population"] > numbers["failing"]
    from holley_gnn_assets.commands.runner import step_errors
    from holley_gnn_assets.defs.assets.recommendations import BLOCKED_TAG

    line = step_errors(result)["gnn_recommendations_qa"]
    assert line.startswith("QA gate stopped the output: gnn_recommendations "), line
    assert f"{check}: {numbers['failing']:,} " in line, line
    assert f"of {numbers['population']:,} " in line and "not written" in line
    tag = pipeline_run["instance"].get_run_by_id(result.run_id).tags[BLOCKED_TAG]
    assert tag.startswith("gnn_recommendations:") and " failing=" in tag
    assert f" threshold=0 population={numbers['population']}" in tag


def test_a_blocked_run_never_plans_the_output(pipeline_run):
    """score_job blocked by a QA gate (one http:// image in the GNN's staged rows) fails naming
    its gate and plans none of the publish assets: no ASSET_MATERIALIZATION_PLANNED for
    ``recommendations_table`` in that run (so the UI keeps "Materialized"), the output's latest
    materialization and rows are unchanged, and a publish run of the blocked run is refused."""
    from dagster import DagsterEventType, Definitions

    from holley_gnn_assets.commands.runner import execute_job, execute_publish, step_errors
    from holley_gnn_assets.defs.assets.recommendations import BLOCKED_TAG
    from holley_gnn_assets.defs.jobs import PUBLISH_ASSETS, publish_job, score_job

    instance, wh, defs = pipeline_run["instance"], pipeline_run["warehouse"], pipeline_run["defs"]
    output = AssetKey("recommendations_table")
    before = instance.fetch_materializations(output, limit=1).records[0]
    assert before.run_id == pipeline_run["publish"].run_id
    rows_before = _output(wh)
    blocked = Definitions(
        assets=[*_assets_without(defs, "gnn_recommendations"),
                _corrupted_gnn_asset(pipeline_run, "https_images")],
        asset_checks=list(defs.asset_checks), jobs=[score_job, publish_job],
        resources=defs.resources)
    result = execute_job("score_job", instance=instance, defs=blocked,
                         partition_key=pipeline_run["key"])
    assert not result.success
    failed = {ev.check_name for ev in result.get_asset_check_evaluations() if not ev.passed}
    assert "https_images" in failed  # (earlier fault tests' rows may fail other gates too)
    tag = instance.get_run_by_id(result.run_id).tags[BLOCKED_TAG]
    assert tag.startswith("gnn_recommendations:") and " failing=" in tag, tag
    planned = {r.event_log_entry.dagster_event.asset_key for r in instance.get_records_for_run(
        result.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED, limit=1000).records}
    assert AssetKey("gnn_recommendations") in planned  # the query sees this run's plans
    assert not planned & {AssetKey(name) for name in PUBLISH_ASSETS}, planned
    assert instance.fetch_materializations(output, limit=1).records[0].storage_id \
        == before.storage_id
    pd.testing.assert_frame_equal(_output(wh), rows_before)
    refused = execute_publish(result.run_id, instance, blocked)
    assert not refused.success
    assert "is FAILURE, not SUCCESS" in step_errors(refused)["champion_decision"]
    assert instance.fetch_materializations(output, limit=1).records[0].storage_id \
        == before.storage_id
    pd.testing.assert_frame_equal(_output(wh), rows_before)
