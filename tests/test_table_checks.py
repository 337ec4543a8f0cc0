"""Data-quality checks on the exported tables catch what they are for."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from holley_gnn_assets.quality import table_checks as tc


def test_unique_not_null():
    ok = pd.DataFrame({"sku": ["a", "b"]})
    assert tc.unique_not_null(ok, "sku").passed
    bad = pd.DataFrame({"sku": ["a", "a", None]})
    out = tc.unique_not_null(bad, "sku")
    assert not out.passed and out.count == 3


def test_endpoints_exist():
    nodes = pd.DataFrame({"sku": ["a", "b"]})
    edges = pd.DataFrame({"sku": ["a", "c"]})
    out = tc.endpoints_exist(edges, "sku", nodes, "sku")
    assert not out.passed and out.count == 1 and out.samples == [{"sku": "c"}]


def test_one_vehicle_edge_per_user_and_no_email_in_samples():
    users = pd.DataFrame({"email_lower": ["u1", "u2", "u3"], "vehicle_id": ["v1", "v2", None]})
    good = pd.DataFrame({"email_lower": ["u1", "u2"], "vehicle_id": ["v1", "v2"]})
    assert tc.one_vehicle_edge_per_user(users, good).passed
    dup = pd.DataFrame({"email_lower": ["u1", "u1", "u2"], "vehicle_id": ["v1", "v1", "v2"]})
    out = tc.one_vehicle_edge_per_user(users, dup)
    assert not out.passed
    assert all("email_lower" not in s for s in out.samples)
    wrong = pd.DataFrame({"email_lower": ["u1", "u2"], "vehicle_id": ["v1", "v9"]})
    assert not tc.one_vehicle_edge_per_user(users, wrong).passed
    extra = pd.DataFrame({"email_lower": ["u1", "u2", "u3"], "vehicle_id": ["v1", "v2", "v1"]})
    assert not tc.one_vehicle_edge_per_user(users, extra).passed


def test_temporal_leakage_and_window():
    cutoff = dt.date(2026, 10, 2)
    stamps = ["2026-10-01 23:59:59", "2026-10-02 00:00:00"]
    edges = pd.DataFrame({"last_ts": pd.to_datetime(stamps)})
    out = tc.before_cutoff(edges, "last_ts", cutoff)
    assert not out.passed and out.count == 1  # exactly at the cutoff is leakage
    assert tc.before_cutoff(edges.iloc[:1], "last_ts", cutoff).passed
    clicks = pd.DataFrame({"ts": pd.to_datetime(["2026-10-02", "2026-11-01"])})
    out = tc.inside_window(clicks, "ts", cutoff, dt.date(2026, 11, 1))
    assert not out.passed and out.count == 1  # the as-of instant is outside [C, T)
