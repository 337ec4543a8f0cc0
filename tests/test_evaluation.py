"""evaluate(): report shape, known values, decision rule, empty test set, Markdown and plot."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from holley_gnn_assets.config.settings import load_config
from holley_gnn_assets.evaluation.decision import decide, decision_bands
from holley_gnn_assets.evaluation.markdown import report_markdown
from holley_gnn_assets.evaluation.plots import plot_tiers
from holley_gnn_assets.evaluation.reference_arms import reference_scores
from holley_gnn_assets.evaluation.report import evaluate

EV = load_config()["eval"]


def _ranked(lists: dict[str, list[str]]) -> pd.DataFrame:
    rows = [(u, i + 1, s, 10.0 - i) for u, skus in lists.items() for i, s in enumerate(skus)]
    return pd.DataFrame(rows, columns=["email_lower", "rank", "sku", "score"])


def _setup() -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    users = pd.DataFrame(
        {
            "email_lower": ["a", "b", "c", "d", "e", "f"],
            "vehicle_id": ["V1", "V1", "V2", "V2", "V3", None],
            "tier": ["cold", "cold", "cold", "warm", "hot", "cold"],
        }
    )
    top = ["S1", "S2", "S3", "S4", "S5"]
    gnn = _ranked({u: top for u in "abcde"})
    sql = _ranked({u: ["S9", "S8", "S7", "S6", "S1"] for u in "abcde"})
    clicks = pd.DataFrame(
        {
            "email_lower": ["a", "b", "c", "d", "e", "f", "zz"],
            "sku": ["S1", "S6", "S2", "S5", "S9", "S1", "S1"],
        }
    )
    events = pd.DataFrame(
        {"email_lower": ["a", "c"], "sku": ["S9", "S3"], "event_name": ["product_viewed"] * 2}
    )
    return {"gnn": gnn, "sql": sql}, users, clicks, events


def test_report_values_and_shape(tmp_path: Path) -> None:
    arms, users, clicks, events = _setup()
    cfg = load_config()
    rep = evaluate(
        arms, users, clicks, events, cfg, as_of=dt.date(2026, 3, 31), cutoff=dt.date(2026, 3, 1)
    )
    json.dumps(rep)  # serialisable
    assert rep["n_test_clicks"] == 7 and rep["n_test_users"] == 7
    assert rep["n_test_users_evaluated"] == 5 and rep["n_test_users_without_vehicle"] == 2
    cold = rep["tiers"]["cold"]
    assert cold["n_users"] == 3
    assert cold["gnn"]["hit_rate@4"] == pytest.approx(2 / 3)  # a, c
    assert cold["sql"]["hit_rate@4"] == pytest.approx(1 / 3)  # b (S6 at 4)
    assert cold["delta_hit_rate@4"] == pytest.approx(1 / 3)
    assert cold["mcnemar_p"] == pytest.approx(1.0)  # b=2, c=1
    assert rep["tiers"]["all"]["n_users"] == 5
    assert rep["tiers"]["hot"]["sql"]["hit_rate@4"] == 1.0
    assert rep["tiers"]["warm"]["gnn"]["mrr"] == pytest.approx(1 / 5)
    assert rep["decision"] in {"clear_win", "inconclusive"}
    assert any("min_test_clicks" in w for w in rep["warnings"])
    te = rep["test_events"]["tiers"]["cold"]
    assert te["gnn"]["hit_rate@4"] == pytest.approx(0.5) and te["sql"]["hit_rate@4"] == 0.5
    md = report_markdown(rep)
    assert "| cold | 3 |" in md and "Decision" in md and "site events" in md
    png = plot_tiers(rep, tmp_path / "tiers.png")
    assert png.stat().st_size > 1000


def test_cold_users_by_their_vehicles_engaged_owners() -> None:
    arms, users, clicks, events = _setup()
    rep = evaluate(arms, users, clicks, events, load_config(), as_of=dt.date(2026, 3, 31),
                   cutoff=dt.date(2026, 3, 1))
    rows = {r["owners"]: r for r in rep["tiers"]["cold"]["by_vehicle_owners"]}
    assert list(rows) == ["0", "1-2", "3-9", "10+"]
    # V1 has no warm/hot user (a and b, cold); V2 has one (d, warm) beside c (cold)
    assert (rows["0"]["n_users"], rows["0"]["n_vehicles"]) == (2, 1)
    assert rows["0"]["hit_rate@4"] == {"gnn": 0.5, "sql": 0.5}  # a: GNN's S1; b: SQL's S6
    assert (rows["1-2"]["n_users"], rows["1-2"]["hit_rate@4"]) == (1, {"gnn": 1.0, "sql": 0.0})
    assert rows["10+"]["n_users"] == 0 and rows["10+"]["hit_rate@4"]["gnn"] is None
    md = report_markdown(rep)
    assert "| 0 | 2 | 1 | 0.5000 | 0.5000 | +0.0000 |" in md
    assert "| 1-2 | 1 | 1 | 1.0000 | 0.0000 | +1.0000 |" in md
    assert "| 10+ | 0 | 0 | n/a | n/a | n/a |" in md


def test_empty_test_set() -> None:
    arms, users, clicks, events = _setup()
    rep = evaluate(arms, users, clicks.iloc[:0], events.iloc[:0], load_config())
    assert rep["decision"] == "no_test_data"
    assert any("empty test set" in w for w in rep["warnings"])
    assert rep["tiers"]["cold"]["n_users"] == 0
    # nothing measured is null in the report, absent from MLflow's metrics, n/a in Markdown
    assert rep["tiers"]["cold"]["gnn"]["hit_rate@4"] is None
    assert rep["tiers"]["cold"]["bootstrap_ci95"] == [None, None]
    from holley_gnn_assets.defs.assets.evaluation import report_metrics

    assert not any(k.startswith("cold.") and "hit_rate" in k for k in report_metrics(rep))
    md = report_markdown(rep)
    assert "no_test_data" in md and "| cold | 0 | n/a | n/a | n/a |" in md
    with pytest.raises(ValueError, match="'sql'"):
        evaluate({"gnn": arms["gnn"]}, users, clicks, events, load_config())


@pytest.mark.parametrize(
    ("delta", "ci", "expected"),
    [
        (0.05, (0.01, 0.09), "clear_win"),
        (0.05, (-0.01, 0.09), "inconclusive"),
        (0.02, (0.001, 0.04), "marginal"),
        (0.0, (-0.015, 0.015), "neutral"),
        (0.0, (-0.05, 0.05), "inconclusive"),
        (-0.03, (-0.05, -0.01), "worse"),
        (-0.03, (-0.05, 0.01), "inconclusive"),
    ],
)
def test_decision_rule(delta: float, ci: tuple[float, float], expected: str) -> None:
    assert decide(delta, ci, 100, EV)[0] == expected
    # at a Holley-like SQL rate (>= 0.10) the absolute bands decide, as before
    decision, reason, band = decide(delta, ci, 100, EV, sql_rate=0.27)
    assert decision == expected and "absolute" in reason
    assert decide(delta, ci, 0, EV)[0] == "no_test_data"


@pytest.mark.parametrize(
    ("delta", "ci", "sql_rate", "expected", "band", "source"),
    [
        # real-log base rate 0.004: +0.0020 is a 50% lift; the absolute 0.03 would call it neutral
        (0.002, (0.0005, 0.0035), 0.004, "clear_win", "clear_win", "relative"),
        (0.002, (-0.001, 0.005), 0.004, "inconclusive", "clear_win", "relative"),
        (0.0006, (0.0001, 0.0011), 0.004, "marginal", "marginal", "relative"),
        (-0.001, (-0.0015, -0.0005), 0.004, "worse", "worse", "relative"),
        # neutral needs the interval inside +/-0.2 x 0.004, not +/-0.02 (5x the metric)
        (0.0, (-0.0006, 0.0006), 0.004, "neutral", "neutral_ci_band", "relative"),
        (0.0, (-0.015, 0.015), 0.004, "inconclusive", "neutral_ci_band", "relative"),
        (0.0, (-0.015, 0.015), 0.27, "neutral", "neutral_ci_band", "absolute"),
        (0.05, (0.01, 0.09), 0.27, "clear_win", "clear_win", "absolute"),
    ],
)
def test_relative_bands_at_a_low_base_rate(delta, ci, sql_rate, expected, band,
                                           source) -> None:
    decision, reason, deciding = decide(delta, ci, 100, EV, sql_rate=sql_rate)
    assert (decision, deciding) == (expected, band)
    bands = decision_bands(EV, sql_rate)
    assert bands[band]["source"] == source and source in reason
    if source == "relative":
        assert bands[band]["value"] == pytest.approx(
            EV["relative_thresholds"][band] * sql_rate)


def test_band_rules_from_config() -> None:
    absolute = decision_bands({**EV, "band_rule": "absolute"}, 0.004)
    assert absolute["clear_win"] == {"value": 0.03, "source": "absolute", "absolute": 0.03,
                                     "relative": pytest.approx(0.0012), "relative_factor": 0.3}
    relative = decision_bands({**EV, "band_rule": "relative"}, 0.27)
    assert relative["marginal"]["value"] == pytest.approx(0.027)
    # no SQL rate (or 0): the relative band is undefined, the absolute one decides
    assert decision_bands(EV, 0.0)["worse"]["source"] == "absolute"
    assert decision_bands(EV, None)["neutral_ci_band"]["value"] == 0.02


def test_small_sample_flag_and_the_interval_decides() -> None:
    decision, reason, _ = decide(0.12, (0.08, 0.16), 200, EV, too_few_clicks="40 < 2000",
                                 sql_rate=0.056)
    assert decision == "clear_win" and "small test set (40 < 2000)" in reason
    unsettled = decide(0.12, (-0.01, 0.25), 200, EV, too_few_clicks="40 < 2000")
    assert unsettled[0] == "inconclusive" and "small test set" in unsettled[1]


def test_references_are_reported_next_to_the_arms() -> None:
    arms, users, clicks, events = _setup()
    refs = {"vehicle_pop": arms["sql"], "oracle": arms["gnn"], "global_pop": _ranked({})}
    rep = evaluate({**arms, **refs}, users, clicks, events, load_config(),
                   cutoff=dt.date(2026, 3, 1))
    assert rep["references"] == ["global_pop", "oracle", "vehicle_pop"]
    cold = rep["tiers"]["cold"]
    assert cold["oracle"]["hit_rate@4"] == cold["gnn"]["hit_rate@4"] == pytest.approx(2 / 3)
    assert cold["vehicle_pop"]["hit_rate@4"] == cold["sql"]["hit_rate@4"]
    assert cold["global_pop"]["hit_rate@4"] == 0.0  # no list: every user a miss


def _ref_tables() -> dict[str, pd.DataFrame]:
    products = pd.DataFrame({"sku": ["G", "L", "Z"], "order_count": [90, 10, 0]})
    fit = pd.DataFrame({"sku": ["G", "L", "Z"] * 2, "vehicle_id": ["V1"] * 3 + ["V2"] * 3})
    users = pd.DataFrame(
        {"email_lower": ["a", "b", "c", "d"], "vehicle_id": ["V1", "V1", "V1", "V2"]}
    )
    upe = pd.DataFrame(
        {
            "email_lower": ["a", "b", "c"],
            "sku": ["L", "L", "Z"],
            "max_event_weight": [5.0, 3.0, 1.0],
        }
    )  # c's view does not count
    return {"product_nodes": products, "product_vehicle_edges": fit, "user_nodes": users,
            "user_product_edges": upe}


def _order(scores: pd.DataFrame, vehicle: str) -> list[str]:
    rows = scores[scores["vehicle_id"] == vehicle].sort_values(["score", "sku"],
                                                                ascending=[False, True])
    return rows["sku"].tolist()


def test_vehicle_pop_shrinkage_known_order() -> None:
    """Carts/orders of a vehicle's users beat global popularity once they outweigh m * share."""
    tables = _ref_tables()
    # m = 2: V1 scores G 2*0.9=1.8, L 2+2*0.1=2.2, Z 0 -> L, G, Z; V2 keeps global order
    cfg = load_config(overrides={"eval": {"vehicle_pop_shrinkage": 2.0}})
    ref = reference_scores(tables, cfg)
    assert _order(ref["vehicle_pop"], "V1") == ["L", "G", "Z"]
    assert _order(ref["vehicle_pop"], "V2") == ["G", "L", "Z"]
    cfg = load_config(overrides={"eval": {"vehicle_pop_shrinkage": 20.0}})  # 2 < 20*0.8
    ref = reference_scores(tables, cfg)
    assert _order(ref["vehicle_pop"], "V1") == ["G", "L", "Z"]
    glob = ref["global_pop"]
    assert glob["vehicle_id"].isna().all() and glob["email_lower"].isna().all()
    assert glob.sort_values("score", ascending=False)["sku"].tolist() == ["G", "L", "Z"]
    assert "oracle" not in ref


def test_oracle_scores_are_the_truth_among_fitting_products() -> None:
    truth = pd.DataFrame({"vehicle_id": ["V1", "V1", "V9"], "sku": ["Z", "G", "G"],
                          "prob": [0.7, 0.2, 0.9]})
    ref = reference_scores(_ref_tables(), load_config(), truth)
    assert _order(ref["oracle"], "V1") == ["Z", "G"]
    assert "V9" not in set(ref["oracle"]["vehicle_id"])
    with pytest.raises(ValueError, match="prob"):
        reference_scores(_ref_tables(), load_config(), truth.drop(columns="prob"))


def test_oracle_fitted_counts_affinity_per_group_and_cluster() -> None:
    """Users of V1 buy the unpopular cluster-1 product L; V2 shares V1's group and has no
    interactions of its own, so it gets the same lift; V3 (another group) keeps popularity."""
    tables = _ref_tables()
    tables["product_vehicle_edges"] = pd.DataFrame(
        {"sku": ["G", "L", "Z"] * 3, "vehicle_id": ["V1"] * 3 + ["V2"] * 3 + ["V3"] * 3})
    truth = pd.DataFrame({"vehicle_id": np.repeat(["V1", "V2", "V3"], 3),
                          "sku": ["G", "L", "Z"] * 3, "prob": 1 / 3,
                          "group_id": np.repeat([0, 0, 1], 3), "cluster": [0, 1, 2] * 3})
    ref = reference_scores(tables, load_config(), truth)
    assert _order(ref["oracle_fitted"], "V1") == ["L", "G", "Z"]
    assert _order(ref["oracle_fitted"], "V2") == ["L", "G", "Z"]
    assert _order(ref["oracle_fitted"], "V3") == ["G", "L", "Z"]
    # group 0: O = 2 on cluster 1 (a, b: L), 1 on cluster 2 (c: Z); E = 3 * share of each
    n = np.array([90.5, 10.5, 0.5])
    e = 3 * n / n.sum()
    a = 0.5
    want = np.log(n) + np.log((np.array([0, 2, 1]) + a) / (e + a))
    got = ref["oracle_fitted"].query("vehicle_id == 'V2'").set_index("sku")["score"]
    np.testing.assert_allclose(got[["G", "L", "Z"]].to_numpy(), want)
    # one product per cluster here, so counting by group and product is the same count
    grouped = ref["oracle_grouped"].query("vehicle_id == 'V2'").set_index("sku")["score"]
    np.testing.assert_allclose(grouped[["G", "L", "Z"]].to_numpy(), want)
    # L and Z in one cluster: oracle_fitted pools them (O = 3 for both), oracle_grouped does not
    merged = truth.assign(cluster=[0, 1, 1] * 3)
    ref = reference_scores(tables, load_config(), merged)
    assert _order(ref["oracle_grouped"], "V2") == ["L", "G", "Z"]
    # the clusters do not reach oracle_grouped: each product keeps its own count
    grouped = ref["oracle_grouped"].query("vehicle_id == 'V2'").set_index("sku")["score"]
    np.testing.assert_allclose(grouped[["G", "L", "Z"]].to_numpy(), want)
    fitted = ref["oracle_fitted"].query("vehicle_id == 'V2'").set_index("sku")["score"]
    e_lz = e[1] + e[2]
    np.testing.assert_allclose(fitted["Z"], np.log(0.5) + np.log((3 + a) / (e_lz + a)))
    assert "oracle_grouped" not in reference_scores(tables, load_config(),
                                                    truth.drop(columns="group_id"))
    assert "oracle_fitted" not in reference_scores(tables, load_config(),
                                                   truth.drop(columns="cluster"))


def test_lookalike_pop_pools_the_owners_of_fitment_lookalikes() -> None:
    """V2 fits what V1 fits and has no interactions: it borrows V1's owners (a, b: L; c's
    view of Z counts too). V3 shares two of three products with V1: V1's owners count in full
    (equal weights), and V1's interactions are expected only on V1's own fits, so Q (fitting
    V3, not V1) is neither observed nor expected and keeps its popularity. V4 shares nothing
    with V1 and keeps popularity."""
    tables = _ref_tables()
    tables["product_nodes"] = pd.DataFrame({"sku": ["G", "L", "Z", "Q"],
                                            "order_count": [90, 10, 0, 50]})
    tables["product_vehicle_edges"] = pd.DataFrame(
        {"sku": ["G", "L", "Z", "G", "L", "Z", "G", "L", "Q", "Q"],
         "vehicle_id": ["V1"] * 3 + ["V2"] * 3 + ["V3"] * 3 + ["V4"]})
    ref = reference_scores(tables, load_config())["lookalike_pop"]
    a = 0.5
    n = np.array([90.5, 10.5, 0.5])
    want = np.log(n) + np.log((np.array([0, 2, 1]) + a) / (3 * n / n.sum() + a))
    got = ref.query("vehicle_id == 'V2'").set_index("sku")["score"]
    np.testing.assert_allclose(got[["G", "L", "Z"]].to_numpy(), want)
    assert _order(ref, "V2") == ["L", "G", "Z"]
    n3 = np.array([90.5, 10.5, 50.5])  # V3: G, L, Q; O = V1's (0, 2, 0); E from V1's fits only
    e3 = 3 * np.array([90.5, 10.5, 0.0]) / n.sum()
    want3 = np.log(n3) + np.log((np.array([0, 2, 0]) + a) / (e3 + a))
    got3 = ref.query("vehicle_id == 'V3'").set_index("sku")["score"]
    np.testing.assert_allclose(got3[["G", "L", "Q"]].to_numpy(), want3)
    assert got3["Q"] == pytest.approx(np.log(50.5))
    assert ref.query("vehicle_id == 'V4'")["score"].tolist() == pytest.approx([np.log(50.5)])
    # a pool of one (the model's validation choice can be any k): V2 pools only itself, has
    # no owners with interactions, and keeps popularity
    alone = reference_scores(tables, load_config(), lookalikes=1)["lookalike_pop"]
    got1 = alone.query("vehicle_id == 'V2'").set_index("sku")["score"]
    np.testing.assert_allclose(got1[["G", "L", "Z"]].to_numpy(), np.log(n))
    assert _order(alone, "V2") == ["G", "L", "Z"]


def test_oracle_observed_swaps_true_demand_for_the_order_count() -> None:
    """oracle_observed = log prob + log((order_count + 0.5) / demand): where the true demand
    and the counts agree it ranks like the oracle; where a product's count falls short of its
    demand (sampling noise), it drops below."""
    truth = pd.DataFrame({"vehicle_id": ["V1", "V1", "V1"], "sku": ["G", "L", "Z"],
                          "prob": [0.5, 0.3, 0.2], "demand": [0.9, 0.01, 0.2]})
    ref = reference_scores(_ref_tables(), load_config(), truth)
    assert _order(ref["oracle"], "V1") == ["G", "L", "Z"]
    # G: log .5 + log 90.5/.9 = 3.92; L: log .3 + log 10.5/.01 = 5.75; Z: log .2 + log .5/.2
    assert _order(ref["oracle_observed"], "V1") == ["L", "G", "Z"]
    got = ref["oracle_observed"].set_index("sku")["score"]
    assert got["Z"] == pytest.approx(np.log(0.2) + np.log(0.5 / 0.2))
    # a world without recorded demand has no such arm
    assert "oracle_observed" not in reference_scores(_ref_tables(), load_config(),
                                                     truth.drop(columns="demand"))


def test_headroom_share_of_each_arm() -> None:
    """share = (arm - SQL) / (oracle - SQL) per tier, with an interval; vehicle_pop's too."""
    arms, users, clicks, events = _setup()
    oracle = _ranked({"a": ["S1"], "b": ["S6"], "c": ["S2"], "d": ["S5"], "e": ["S9"]})
    rep = evaluate({**arms, "oracle": oracle, "vehicle_pop": arms["sql"]}, users, clicks, None,
                   load_config())
    cold = rep["tiers"]["cold"]["headroom_share"]
    assert cold["gnn"]["share"] == pytest.approx((2 / 3 - 1 / 3) / (1 - 1 / 3))
    assert cold["vehicle_pop"]["share"] == pytest.approx(0.0)
    versus = rep["tiers"]["cold"]["gnn_vs_vehicle_pop"]  # vehicle_pop is SQL's lists here
    assert versus["delta_hit_rate@4"] == pytest.approx(2 / 3 - 1 / 3)
    assert versus["bootstrap_ci95"][0] <= versus["delta_hit_rate@4"] <= versus["bootstrap_ci95"][1]
    lo, hi = cold["gnn"]["ci95"]
    assert lo is not None and lo <= cold["gnn"]["share"] <= hi
    md = report_markdown(rep)
    assert "Share of the oracle's headroom over SQL" in md and "| cold | +0.6667 | 50%" in md
    assert "GNN vs the per-vehicle count" in md and "| cold | vehicle_pop | +0.3333 | [" in md
    to_truth = rep["tiers"]["cold"]["gnn_vs_oracle"]
    assert to_truth["delta_hit_rate@4"] == pytest.approx(2 / 3 - 1)
    assert f"| cold | oracle | {to_truth['delta_hit_rate@4']:+.4f} | [" in md
    # without an oracle arm there is no headroom block
    plain = evaluate(arms, users, clicks, None, load_config())
    assert "headroom_share" not in plain["tiers"]["cold"]
    assert "gnn_vs_oracle" not in plain["tiers"]["cold"]


def test_headroom_share_statistics() -> None:
    from holley_gnn_assets.evaluation.statistics import headroom_share

    rng = np.random.default_rng(0)
    base = (rng.random(400) < 0.2).astype(float)
    oracle = np.maximum(base, rng.random(400) < 0.2)
    arm = np.where(rng.random(400) < 0.5, oracle, base)  # about half of the headroom
    clusters = rng.integers(0, 40, 400)
    share, (lo, hi) = headroom_share(arm, base, oracle, clusters, 2000, 0)
    assert 0.35 < share < 0.65 and lo < share < hi and hi - lo < 0.6
    assert np.isnan(headroom_share(base, base, base)[0])  # no headroom: no share


def _dominant_world(n_dominant: int = 90, n_small: int = 12) -> tuple[dict, pd.DataFrame,
                                                                       pd.DataFrame]:
    """One vehicle with 90 cold users, 12 with one each; every third user a GNN hit, every
    fifth an SQL hit (vehicles alike)."""
    emails = [f"u{i:03d}" for i in range(n_dominant + n_small)]
    vehicles = ["BIG"] * n_dominant + [f"V{i}" for i in range(n_small)]
    users = pd.DataFrame({"email_lower": emails, "vehicle_id": vehicles, "tier": "cold"})
    clicks = pd.DataFrame({"email_lower": emails,
                           "sku": ["G" if i % 3 == 0 else "S" if i % 5 == 0 else "N"
                                   for i in range(len(emails))]})
    arms = {"gnn": _ranked({e: ["G"] for e in emails}), "sql": _ranked({e: ["S"] for e in emails})}
    return arms, users, clicks


def test_report_names_the_interval_its_effective_vehicles_and_the_deciding_band() -> None:
    arms, users, clicks = _dominant_world()
    cfg = load_config()
    rep = evaluate(arms, users, clicks, None, cfg)
    cold = rep["tiers"]["cold"]
    assert rep["interval_method"] == cold["ci95_method"] == cfg["eval"]["interval_method"]
    assert cold["effective_clusters"] == pytest.approx(102**2 / (90**2 + 12))
    assert rep["effective_clusters"] == cold["effective_clusters"]
    assert rep["interval_reliable"] is False and "effective vehicles" in rep["interval_note"]
    assert any(w.startswith("cold tier: 1.3 effective vehicles") for w in rep["warnings"])
    # the MDE comes from the interval's own standard error
    from holley_gnn_assets.evaluation import intervals

    a, b = (np.array([1.0 if i % 3 == 0 else 0.0 for i in range(102)]),
            np.array([1.0 if i % 5 == 0 and i % 3 else 0.0 for i in range(102)]))
    iv = intervals.delta_interval(a, b, users["vehicle_id"].to_numpy(),
                                  cfg["eval"]["interval_method"], cfg["eval"]["bootstrap_samples"],
                                  cfg["eval"]["bootstrap_seed"])
    assert cold["bootstrap_ci95"] == [pytest.approx(iv.lo), pytest.approx(iv.hi)]
    assert cold["mde_hit_rate@4"] == pytest.approx(intervals.mde(iv))
    # not blown up by the dominant vehicle: within 1.5x the user-level interval
    lo, hi = cold["bootstrap_ci95"]
    ulo, uhi = cold["bootstrap_ci95_user_level"]
    assert hi - lo <= 1.5 * (uhi - ulo)
    band = rep["decision_band"]
    assert band["name"] in ("clear_win", "marginal", "worse", "neutral_ci_band")
    assert band["source"] in rep["decision_reason"]
    assert rep["small_sample"] is False  # no window: nothing counted
    md = report_markdown(rep)
    assert f"Interval: {cfg['eval']['interval_method']}" in md
    assert "Deciding band:" in md and "Interval unreliable:" in md
    assert f"95% CI ({cfg['eval']['interval_method']})" in md


def test_power_goal_scales_the_mde_to_min_test_clicks() -> None:
    arms, users, clicks = _dominant_world()
    cfg = load_config(overrides={"eval": {"min_test_clicks": 408}})  # 4x the 102 clicks
    rep = evaluate(arms, users, clicks, None, cfg)
    goal = rep["power_goal"]
    assert goal["min_test_clicks"] == 408 and goal["test_clicks"] == 102
    assert goal["cold_mde_at_min_test_clicks"] == pytest.approx(goal["cold_mde"] / 2)
    assert "expected at the power goal of 408" in report_markdown(rep)
