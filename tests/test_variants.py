"""``holley-gnn variant``: overrides parsed from the command line, one real variant run on a
tiny world (exports, training, every arm, report) and the table its rows render to."""

from __future__ import annotations

import json

import pytest

from holley_gnn_assets.commands.cli import main
from holley_gnn_assets.commands.variants import parse_overrides, variant_table


def test_overrides_nest_and_read_json_values() -> None:
    got = parse_overrides(["model.vehicle_attributes=true", "training.patience=8",
                           "model.propagation=[\"owners\"]", "ab_test.salt=abc"])
    assert got == {"model": {"vehicle_attributes": True, "propagation": ["owners"]},
                   "training": {"patience": 8}, "ab_test": {"salt": "abc"}}
    with pytest.raises(ValueError, match="section.key=value"):
        parse_overrides(["model.vehicle_attributes"])


def test_variant_run_appends_a_row_and_prints_the_table(tiny_signal_warehouse, tmp_path,
                                                         capsys) -> None:
    out = tmp_path / "rows.jsonl"
    args = ["variant", "--world", str(tiny_signal_warehouse), "--label", "tiny s0",
            "--out", str(out), "--set", "training.epochs=2", "--set", "training.patience=1"]
    assert main([*args, "--name", "plain"]) == 0
    assert main([*args, "--name", "attrs", "--set", "model.vehicle_attributes=true"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["variant"] for r in rows] == ["plain", "attrs"]
    assert rows[1]["overrides"]["model"] == {"vehicle_attributes": True}
    cold = rows[0]["tiers"]["cold"]
    assert cold["n"] > 0 and set(cold["hit_rate@4"]) >= {"gnn", "sql", "vehicle_pop", "oracle",
                                                         "oracle_observed", "oracle_fitted",
                                                         "lookalike_pop"}
    assert cold["headroom_share"]["lookalike_pop"]["share"] is not None
    assert cold["headroom_share"]["oracle_grouped"]["share"] is not None
    assert cold["headroom_share"]["oracle_fitted"]["share"] is not None
    assert rows[0]["epochs"] <= 2
    # the look-alike lift's weight: chosen on validation among the configured weights
    assert set(rows[0]["lift_val_mrr"]) == {"0.0", "0.25", "0.5", "0.75", "1.0"}
    mrr = rows[0]["lift_val_mrr"]
    assert mrr[str(rows[0]["lift_weight"])] == max(mrr.values())
    # ... over the look-alike pool the count alone ranks best on validation
    pools = rows[0]["lift_count_val_mrr"]
    assert set(pools) == {"20"}
    assert pools[str(rows[0]["lift_neighbours"])] == max(pools.values())
    lo, hi = cold["gnn_minus_sql_ci95"]
    assert lo <= hi and "bootstrap_ci95" in cold["gnn_vs_vehicle_pop"]
    assert "bootstrap_ci95" in cold["gnn_vs_lookalike_pop"]
    variants, recent = capsys.readouterr().out.strip().split("\n\n")[-2:]
    table = variants.strip().splitlines()[-3:]
    assert table[0].startswith("|---") and table[1].startswith("| tiny s0 | attrs |")
    assert table[2].startswith("| tiny s0 | plain |")
    # recent demand: recent_pop beside the arms, users with history (warm + hot) as a tier
    assert "recent_pop" in cold["hit_rate@4"] and "bootstrap_ci95" in cold["gnn_vs_recent_pop"]
    assert rows[0]["recent_pop_days"] in [float(d) for d in (0, 7, 14, 30, 60, 90, 180, 365)]
    hist = rows[0]["tiers"]["history"]
    assert hist["n"] == rows[0]["tiers"]["warm"]["n"] + rows[0]["tiers"]["hot"]["n"]
    lines = recent.strip().splitlines()
    assert lines[0].startswith("| world | variant | tier |") and len(lines) == 2 + 4
    assert lines[2].startswith("| tiny s0 | attrs | cold |")


def test_table_keeps_the_latest_row_per_world_and_variant() -> None:
    def row(decision: str) -> dict:
        hr = {"sql": 0.2, "gnn": 0.3, "vehicle_pop": 0.25, "oracle": 0.4}
        tier = {"n": 10, "hit_rate@4": hr,
                "headroom_share": {"gnn": {"share": 0.5, "ci95": [0.1, 0.9]}}}
        return {"world": "w", "variant": "v", "decision": decision, "epochs": 3,
                "best_epoch": 1, "train_s": 1.0, "tiers": {t: tier for t in ("cold", "warm",
                                                                             "hot")}}
    lines = variant_table([row("neutral"), row("clear_win")]).splitlines()
    assert len(lines) == 3 and "clear_win" in lines[2] and "50% [10, 90]" in lines[2]
    assert "1.50x (2.00x)" in lines[2]
    # no oracle_observed (its Hit Rate and share), no vehicle_pop, lookalike_pop,
    # oracle_fitted or oracle_grouped share
    assert [c.strip() for c in lines[2].split("|")].count("n/a") == 6
    assert lines[0].count("|") == lines[1].count("|") == lines[2].count("|")
