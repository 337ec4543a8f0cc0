"""Runs compared, the ML core: config hash and diff, the history table, and the MLflow
records it is read from (MLflow's real local SQLite store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from holley_gnn_assets.config.settings import deep_merge, load_config
from holley_gnn_assets.defs.assets.evaluation import report_metrics
from holley_gnn_assets.defs.resources import MlflowTracking
from holley_gnn_assets.evaluation import run_history as rh


@pytest.fixture(scope="module")
def cfg() -> dict:
    return load_config()


def test_config_hash_is_stable_and_follows_experiment_keys_only(cfg: dict):
    again = json.loads(json.dumps(cfg, default=str))  # a config record read back from JSON
    assert rh.config_hash(again) == rh.config_hash(cfg)
    assert len(rh.config_hash(cfg)) == 64
    reordered = dict(reversed(list(cfg.items())))
    assert rh.config_hash(reordered) == rh.config_hash(cfg)
    changed = deep_merge(cfg, {"model": {"hidden_dim": 128}})
    assert rh.config_hash(changed) != rh.config_hash(cfg)
    # where and how the run executes is not the experiment
    operational = deep_merge(cfg, {"k8s": {"step_cpu": "2"}, "retries": {"delay_s": 1},
                                   "comparison": {"history_runs": 3},
                                   "output": {"table": "other"}})
    assert rh.config_hash(operational) == rh.config_hash(cfg)
    assert rh.config_diff(cfg, operational) == {"added": {}, "removed": {}, "changed": {}}


def test_config_diff_names_added_removed_and_changed_keys(cfg: dict):
    new = deep_merge(cfg, {"model": {"hidden_dim": 128}, "eval": {"bootstrap_samples": 500},
                           "extra": {"flag": True}})
    del new["co_purchase"]["min_users"]
    diff = rh.config_diff(cfg, new)
    assert diff["changed"] == {"model.hidden_dim": [256, 128], "eval.bootstrap_samples":
                               [2000, 500]}
    assert diff["added"] == {"extra.flag": True}
    assert diff["removed"] == {"co_purchase.min_users": 2}
    text = rh.describe_diff(diff)
    assert text == ("eval.bootstrap_samples 2000->500; model.hidden_dim 256->128; "
                    "+extra.flag=True (+1 more)")
    assert rh.describe_diff(diff, limit=10).endswith("; -co_purchase.min_users")
    assert rh.describe_diff(rh.config_diff(cfg, cfg)) == "no change"
    lists = rh.config_diff(cfg, deep_merge(cfg, {"training": {"fanout": [5, 5]}}))
    assert rh.describe_diff(lists) == "training.fanout [10, 10]->[5, 5]"


def test_compare_with_previous_first_missing_and_changed(cfg: dict):
    first = rh.compare_with_previous(cfg, None, None)
    assert first["change"] == "first run: nothing to compare" and first["diff"] is None
    prev = rh.RunRecord("r1", "eval-old", rh.dt.datetime(2026, 1, 1, tzinfo=rh.dt.UTC),
                        None, None, None, {})
    missing = rh.compare_with_previous(cfg, prev, None)
    assert missing["diff"] is None
    assert missing["change"] == ("not compared: previous run eval-old has no config record "
                                 "(comparison/config.json)")
    new = deep_merge(cfg, {"training": {"epochs": 5}})
    got = rh.compare_with_previous(new, prev, cfg)
    assert got["change"] == "training.epochs 100->5"
    assert got["previous_run"]["run_id"] == "r1"


def _eval_run(tracking: MlflowTracking, name: str, tags: dict, metrics: dict,
              config: dict | None, tmp: Path) -> str:
    run = tracking.start_run(name, tags={"stage": "eval", **tags})
    tracking.log_metrics(run, metrics)
    if config is not None:
        path = tmp / name / "config.json"
        path.parent.mkdir()
        path.write_text(json.dumps(config, default=str))
        tracking.log_artifact(run, path, "comparison")
    tracking.end_run(run)
    return run


def test_history_table_from_mlflow_records(cfg: dict, tmp_path: Path):
    tracking = MlflowTracking(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                              artifact_location=(tmp_path / "mlartifacts").as_uri())
    assert tracking.search_runs("tags.stage = 'eval'", 5) == []  # no experiment yet
    legacy = _eval_run(tracking, "eval-legacy", {}, report_metrics(
        {"tiers": {"cold": {"delta_hit_rate@4": 0.01, "bootstrap_ci95": [None, None]}}}),
        None, tmp_path)
    tags = {rh.TAG_HASH: rh.config_hash(cfg), rh.TAG_CHANGE: "model.hidden_dim 128->256",
            rh.TAG_DECISION: "marginal_win"}
    report = {"tiers": {"cold": {"n_users": 40, "delta_hit_rate@4": 0.0312,
                                 "bootstrap_ci95": [-0.004, 0.0651], "gnn": {"mrr": 0.2}},
                        "warm": {"n_users": 9, "delta_hit_rate@4": 0.002,
                                 "bootstrap_ci95": [-0.01, 0.02]}}}
    metrics = report_metrics(report)  # the names eval_report logs
    newer = _eval_run(tracking, "eval-new", tags, metrics, cfg, tmp_path)
    tracking.start_run("train-x", tags={"stage": "train"})  # not an eval run
    runs = tracking.search_runs("tags.stage = 'eval'", 5)
    assert [r.info.run_id for r in runs] == [newer, legacy]  # newest first
    assert tracking.read_json_artifact(newer, rh.CONFIG_ARTIFACT)["model"]["hidden_dim"] == 256
    assert tracking.read_json_artifact(legacy, rh.CONFIG_ARTIFACT) is None

    records = [rh.RunRecord.from_run(r) for r in runs]
    assert records[0].tiers == rh.tier_deltas(report)  # read back as the report gave them
    assert records[1].missing() == [rh.TAG_HASH, rh.TAG_CHANGE, rh.TAG_DECISION]
    frame = rh.history_frame(records[0], records[1:], n=10)
    assert frame["config change vs previous run"].tolist() == [
        "model.hidden_dim 128->256",
        "not compared: run has no config_hash, config_change, decision record"]
    assert frame["cold delta HR@4 [95% CI]"].tolist() == ["+0.0312 [-0.0040, +0.0651]",
                                                          "+0.0100 [n/a]"]
    assert frame["config hash"].tolist() == [rh.config_hash(cfg)[:10], "n/a"]
    assert frame["run"].tolist() == ["eval-new (this run)", "eval-legacy"]
    assert len(rh.history_frame(records[0], records[1:], n=1)) == 1
    rows = table_rows(rh.history_markdown(frame))
    assert [row["decision"] for row in rows] == ["marginal_win", "n/a"]
    assert rows[0]["config change vs previous run"] == "model.hidden_dim 128->256"


def table_rows(markdown: str) -> list[dict[str, str]]:
    """The rows of the (one) Markdown table in ``markdown``, as header -> cell."""
    lines = [ln for ln in markdown.splitlines() if ln.startswith("|")]
    cells = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]
    return [dict(zip(cells[0], row, strict=True)) for row in cells[2:]]
