"""Runs compared through Dagster on a tiny world: the first run has nothing to compare; a
second run with another config shows the change in its eval_report metadata table and in the
MLflow artifact; a previous run without records is named, not compared. Real Dagster instance,
real MLflow SQLite store under tmp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, DagsterInstance, materialize
from mlflow import MlflowClient

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.evaluation import run_history as rh
from tests.conftest import pipeline_env, private_warehouse
from tests.test_run_history import table_rows

pytestmark = pytest.mark.slow
CHANGE = "change vs previous run"


def _config(home: Path, name: str, bootstrap_samples: int) -> dict:
    cfg = load_config(overrides={"training": {"epochs": 2, "patience": 1},
                                 "eval": {"bootstrap_samples": bootstrap_samples}})
    (home / name).write_text(yaml.safe_dump(cfg))
    return cfg


def _eval_metadata(instance: DagsterInstance) -> dict:
    event = instance.get_latest_materialization_event(AssetKey("eval_report"))
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def _rerun_eval(defs, instance: DagsterInstance, partition_key: str) -> dict:
    result = materialize([*defs.assets], selection=["eval_report"], resources=defs.resources,
                         instance=instance, partition_key=partition_key)
    assert result.success
    return _eval_metadata(instance)


@pytest.fixture(scope="module")
def runs(tiny_signal_warehouse: Path, tmp_path_factory: pytest.TempPathFactory):
    """The retrain job with config A, then eval_report alone with config B (another
    ``eval.bootstrap_samples``), then a record-less eval run and eval_report once more."""
    from holley_gnn_assets.commands.runner import execute_job
    from holley_gnn_assets.definitions import build_defs
    from holley_gnn_assets.defs.resources import MlflowTracking

    home = tmp_path_factory.mktemp("home_compare")
    mp = pipeline_env(home, private_warehouse(home, tiny_signal_warehouse))
    cfg_a, cfg_b = _config(home, "a.yaml", 200), _config(home, "b.yaml", 150)
    instance = DagsterInstance.ephemeral()
    mp.setenv("HOLLEY_GNN_CONFIG", str(home / "a.yaml"))
    first = execute_job("full_retrain_job", instance=instance, defs=build_defs())
    assert first.success
    meta = [_eval_metadata(instance)]
    mp.setenv("HOLLEY_GNN_CONFIG", str(home / "b.yaml"))
    defs_b = build_defs()
    key = first.dagster_run.tags["dagster/partition"]
    meta.append(_rerun_eval(defs_b, instance, key))
    tracking = defs_b.resources["mlflow"]
    assert isinstance(tracking, MlflowTracking)
    legacy = tracking.start_run("eval-legacy", tags={"stage": "eval"})  # an older kind of run
    tracking.end_run(legacy)
    meta.append(_rerun_eval(defs_b, instance, key))
    yield {"meta": meta, "cfg": (cfg_a, cfg_b), "home": home,
           "client": MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")}
    mp.undo()


def test_first_run_has_nothing_to_compare(runs):
    meta, (cfg_a, _) = runs["meta"][0], runs["cfg"]
    assert meta["config_change"] == "first run: nothing to compare"
    assert meta["config_hash"] == rh.config_hash(cfg_a)
    rows = table_rows(meta["runs_compared"])
    assert len(rows) == 1 and rows[0]["run"].endswith("(this run)")
    assert rows[0]["config " + CHANGE] == "first run: nothing to compare"


def test_second_run_shows_the_config_change_in_dagster_and_mlflow(runs):
    meta, (cfg_a, cfg_b) = runs["meta"][1], runs["cfg"]
    assert meta["config_change"] == "eval.bootstrap_samples 200->150"
    assert meta["config_hash"] == rh.config_hash(cfg_b) != rh.config_hash(cfg_a)
    rows = table_rows(meta["runs_compared"])
    assert [r["config " + CHANGE] for r in rows] == ["eval.bootstrap_samples 200->150",
                                                   "first run: nothing to compare"]
    assert [r["config hash"] for r in rows] == [rh.config_hash(cfg_b)[:10],
                                               rh.config_hash(cfg_a)[:10]]
    client: MlflowClient = runs["client"]
    run = client.get_run(meta["mlflow_run_id"])
    dst = runs["home"] / "downloaded"
    report = json.loads(Path(client.download_artifacts(
        run.info.run_id, "eval_report.json", str(dst))).read_text())
    cold = report["tiers"]["cold"]
    assert cold["n_users"] > 0
    assert rows[0]["decision"] == report["decision"]
    lo, hi = cold["bootstrap_ci95"]
    assert rows[0]["cold delta HR@4 [95% CI]"] == (
        f"{cold['delta_hit_rate@4']:+.4f} [{lo:+.4f}, {hi:+.4f}]")
    assert run.data.tags[rh.TAG_HASH] == rh.config_hash(cfg_b)
    assert run.data.tags[rh.TAG_CHANGE] == "eval.bootstrap_samples 200->150"
    local = Path(client.download_artifacts(run.info.run_id, "comparison", str(dst)))
    assert (local / "run_history.md").read_text() == meta["runs_compared"]
    diff = json.loads((local / "config_diff.json").read_text())
    assert diff["diff"] == {"added": {}, "removed": {},
                            "changed": {"eval.bootstrap_samples": [200, 150]}}
    assert diff["previous_run"]["config_hash"] == rh.config_hash(cfg_a)
    assert set(diff["tier_deltas"]) == set(diff["previous_tier_deltas"]) == {
        "cold", "warm", "hot", "all"}
    assert diff["tier_deltas"]["cold"]["delta"] == cold["delta_hit_rate@4"]
    assert json.loads((local / "config.json").read_text())["eval"]["bootstrap_samples"] == 150


def test_previous_run_without_records_is_named_not_compared(runs):
    meta = runs["meta"][2]
    assert meta["config_change"] == ("not compared: previous run eval-legacy has no config "
                                     "record (comparison/config.json)")
    rows = table_rows(meta["runs_compared"])
    assert [r["run"] for r in rows][1] == "eval-legacy"
    assert rows[1]["config " + CHANGE] == (
        "not compared: run has no config_hash, config_change, decision record")
    assert rows[1]["cold delta HR@4 [95% CI]"] == "n/a"
    assert rows[2]["config " + CHANGE] == "eval.bootstrap_samples 200->150"
    assert len(rows) == 4
