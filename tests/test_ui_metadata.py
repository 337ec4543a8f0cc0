"""The evaluation as the Dagster UI shows it: the inline table, the numbers for the Plots tab,
the chart as a data URI and words in place of ``None``."""

from __future__ import annotations

import base64
from pathlib import Path

from holley_gnn_assets.evaluation.ui_metadata import (
    chart_markdown,
    decision_table,
    promotion_text,
    reading,
    trend_values,
)


def _block(n: int, gnn: float, sql: float, ci: list, oracle: float | None) -> dict:
    return {"n_users": n, "gnn": {"hit_rate@4": gnn}, "sql": {"hit_rate@4": sql},
            "oracle": {"hit_rate@4": oracle}, "delta_hit_rate@4": gnn - sql,
            "bootstrap_ci95": ci, "headroom_share": {"gnn": {"share": 0.25, "ci95": [0.1, 0.4]}}}


REPORT = {
    "arms": ["gnn", "oracle", "sql"], "decision": "clear_win",
    "tiers": {"cold": _block(100, 0.30, 0.20, [0.05, 0.15], 0.6),
              "hot": _block(3, 0.5, 0.5, [None, None], None),
              "all": _block(120, 0.31, 0.22, [-0.01, 0.2], 0.6)},
}


def test_decision_table_puts_the_verdict_before_the_references() -> None:
    table = decision_table(REPORT)
    names = [c.name for c in table.schema.columns]
    assert names == ["tier", "users", "gnn", "sql", "delta", "ci95_lo", "ci95_hi", "reading",
                     "decision", "oracle"]
    rows = {r.data["tier"]: r.data for r in table.records}
    assert rows["cold"]["decision"] == "clear_win" and rows["all"]["decision"] == "-"
    assert (rows["cold"]["delta"], rows["cold"]["reading"]) == (0.1, "GNN ahead")
    assert rows["hot"]["ci95_lo"] == "n/a" and rows["hot"]["oracle"] == "n/a"
    assert rows["all"]["reading"] == "no clear difference"


def test_trend_values_are_floats_for_cold_and_all_only() -> None:
    values = trend_values(REPORT)
    assert values["cold_delta"] == 0.1 and values["cold_delta_ci95_lo"] == 0.05
    assert values["all_delta_ci95_hi"] == 0.2 and values["cold_hit_rate@4_oracle"] == 0.6
    assert values["cold_gnn_headroom_share"] == 0.25
    assert not [k for k in values if k.startswith("hot_")]
    assert all(isinstance(v, float) for v in values.values())


def test_reading_and_promotion_words() -> None:
    assert reading([-0.2, -0.01]) == "SQL ahead" and reading([None, None]) == "n/a"
    assert promotion_text({"promote": None, "reason": "score-only run"}) == (
        "not decided: score-only run")
    assert promotion_text({"promote": True}) == "yes"
    assert promotion_text({"promote": False}) == "no"


def test_chart_markdown_embeds_the_png(tmp_path: Path) -> None:
    png = tmp_path / "c.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nabc")
    md = chart_markdown(png)
    assert md.startswith("![") and "](data:image/png;base64," in md
    assert base64.b64decode(md.split("base64,")[1].rstrip(")")) == png.read_bytes()


def test_a_failed_data_check_records_its_numbers_and_stops_the_run_in_words() -> None:
    import datetime as dt

    import pandas as pd

    from holley_gnn_assets.config.settings import TimeWindows, load_config
    from holley_gnn_assets.defs.checks import DATA_CHECKS, check_result, data_checks_failed

    (check,) = [c for c in DATA_CHECKS if c.name == "user_key_unique"]
    users = pd.DataFrame({"email_lower": ["a@x.com", "a@x.com", "b@x.com", None]})
    cfg = load_config()
    result = check_result(check, {"user_nodes": users},
                          TimeWindows.from_config(cfg, dt.date(2026, 3, 31)))
    assert not result.passed
    numbers = {k: result.metadata[k].value for k in ("failing", "threshold", "population")}
    assert numbers == {"failing": 3, "threshold": 0, "population": 4}
    failure = data_checks_failed([result])
    assert failure.description.startswith(
        "Data check stopped the run: user_nodes user_key_unique: 3 failing (at most 0 allowed) "
        "of 4 rows of user_nodes")
    assert "@" not in failure.description
    assert failure.metadata["failing"].value == 3
