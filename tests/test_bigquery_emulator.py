"""BigQueryWarehouse against the real google-cloud-bigquery client and the local bqemulator."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pandas as pd
import pytest
from emulator_processes import bigquery_client, copy_duckdb_warehouse
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from holley_gnn_assets.config.settings import TimeWindows, load_config
from holley_gnn_assets.recommend import apply_rules, publish
from holley_gnn_assets.recommend.sql_baseline import build_sql_scores
from holley_gnn_assets.warehouse.base import WarehouseError
from holley_gnn_assets.warehouse.bigquery import (
    OUTPUT_SCHEMA,
    BigQueryWarehouse,
    quiet_pandas_gbq_notices,
)
from holley_gnn_assets.warehouse.bigquery_errors import is_transient
from holley_gnn_assets.warehouse.duckdb import DuckDBWarehouse
from holley_gnn_assets.warehouse.exports import EXPORT_FILES, export_file
from holley_gnn_assets.warehouse.schemas import OUTPUT_COLUMNS
from holley_gnn_assets.warehouse.sql import load_sql, parse_sql_file

pytest_plugins = ["emulators"]
pytestmark = pytest.mark.bigquery

ITEMS_SCHEMA = [
    bigquery.SchemaField("sku", "STRING"),
    bigquery.SchemaField("PartType", "STRING"),
    bigquery.SchemaField("price", "FLOAT64"),
    bigquery.SchemaField("image_url", "STRING"),
    bigquery.SchemaField("title", "STRING"),
    bigquery.SchemaField("updated", "TIMESTAMP"),
]


def load(client: bigquery.Client, table_id: str, df: pd.DataFrame, schema: list) -> None:
    """Load a DataFrame with an explicit schema (what the tests use to fill the emulator)."""
    config = bigquery.LoadJobConfig(schema=schema, write_disposition="WRITE_TRUNCATE")
    with quiet_pandas_gbq_notices():
        job = client.load_table_from_dataframe(df, table_id, job_config=config)
    job.result(timeout=60)


def items_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sku": ["A100", "A101B", " B200 ", "C300", None],
            "PartType": ["Carburetor", "Carburetor", "Intake", "Fasteners", "Intake"],
            "price": [499.0, 505.5, None, 12.0, 80.0],
            "image_url": ["https://x/a", "http://x/b", "https://x/c", "", None],
            "title": ["Carb", "Carb black", "Intake", "Bolts", "Orphan"],
            "updated": pd.to_datetime(
                ["2025-01-01 00:00", "2025-01-02 10:30", "2025-01-03 00:00", None, None], utc=True
            ),
        }
    )


@pytest.fixture
def items(bq_client: bigquery.Client, bq_warehouse: BigQueryWarehouse) -> str:
    table_id = bq_warehouse.source_table_id("data", "import_items")
    load(bq_client, table_id, items_frame(), ITEMS_SCHEMA)
    return table_id


def output_frame(n: int, tag: str) -> pd.DataFrame:
    rows = []
    for i in range(n):
        row: dict[str, object] = {"email_lower": f"user{i}@example.com", "year": "1969"}
        row.update(make="CHEVROLET", model="CAMARO")
        for k in range(1, 5):
            row.update(
                {
                    f"rec_part_{k}": f"{tag}-{i}-{k}",
                    f"rec{k}_price": 100.0 + k,
                    f"rec{k}_score": 1.0 / k,
                    f"rec{k}_image": f"https://img/{tag}/{k}",
                }
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=OUTPUT_COLUMNS)


def sort_frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(list(df.columns)).reset_index(drop=True)


# -- references, columns, dialect ------------------------------------------------------------


def test_table_ref_uses_bigquery_quoting(bq_warehouse: BigQueryWarehouse) -> None:
    ds = bq_warehouse.data_dataset
    assert bq_warehouse.table_ref("data", "import_items") == f"`test-project.{ds}.import_items`"
    assert bq_warehouse.dataset_refs()["company"] == f"test-project.{bq_warehouse.company_dataset}"
    with pytest.raises(WarehouseError, match="unknown dataset role 'sales'"):
        bq_warehouse.table_ref("sales", "x")


def test_columns_and_missing_table(items: str, bq_warehouse: BigQueryWarehouse) -> None:
    assert bq_warehouse.columns("data", "import_items") == [f.name for f in ITEMS_SCHEMA]
    assert bq_warehouse.columns("data", "no_such_table") is None


def test_validate_contract_names_the_missing_table(
    items: str, bq_warehouse: BigQueryWarehouse
) -> None:
    with pytest.raises(WarehouseError, match="ingestion_unified_attributes_schema_incremental"):
        bq_warehouse.validate_contract()


def test_query_runs_bigquery_dialect_natively(items: str, bq_warehouse: BigQueryWarehouse) -> None:
    sql = f"""
        SELECT TRIM(sku) AS sku, PartType AS part_type, SAFE_CAST(price AS FLOAT64) AS price,
               REGEXP_CONTAINS(TRIM(sku), r'[0-9][BRGP]$') AS is_variant,
               STARTS_WITH(IFNULL(image_url, ''), 'https://') AS https_image,
               TIMESTAMP_ADD(updated, INTERVAL 1 DAY) AS next_day
        FROM {bq_warehouse.table_ref("data", "import_items")}
        WHERE sku IS NOT NULL
        QUALIFY ROW_NUMBER() OVER (PARTITION BY PartType ORDER BY price DESC) = 1
    """
    got = bq_warehouse.query_df(sql).sort_values("sku").reset_index(drop=True)
    assert got["sku"].tolist() == ["A101B", "B200", "C300"]
    assert got["is_variant"].tolist() == [True, False, False]
    assert got["https_image"].tolist() == [False, True, False]
    assert got["price"].iloc[0] == pytest.approx(505.5)
    assert pd.isna(got["price"].iloc[1])
    # TIMESTAMP comes back as naive UTC, like DuckDB's TIMESTAMP
    assert str(got["next_day"].dtype).startswith("datetime64")
    assert got["next_day"].iloc[0] == pd.Timestamp("2025-01-03 10:30")
    assert pd.isna(got["next_day"].iloc[2])


# -- permanent errors fail at once, naming the table -------------------------------------------


def test_missing_table_fails_at_once_naming_it(
    bq_emulator, bq_warehouse: BigQueryWarehouse
) -> None:
    before = bq_emulator.requests("POST", "/jobs")
    start = time.monotonic()
    with pytest.raises(WarehouseError, match=r"no_such_table") as info:
        bq_warehouse.query_df(f"SELECT * FROM {bq_warehouse.table_ref('data', 'no_such_table')}")
    elapsed = time.monotonic() - start
    assert "not found" in str(info.value)
    assert isinstance(info.value.__cause__, gexc.NotFound)
    time.sleep(0.3)  # the emulator logs a request when it has answered
    assert bq_emulator.requests("POST", "/jobs") - before == 1  # one job insert, no retries
    assert elapsed < 5


@pytest.mark.parametrize(
    "sql",
    ["SELEC 1", "SELECT no_such_column FROM {items}", "SELECT CAST('x' AS INT64) AS n"],
)
def test_bad_sql_fails_fast(
    sql: str, items: str, bq_emulator, bq_warehouse: BigQueryWarehouse
) -> None:
    before = bq_emulator.requests("POST", "/jobs")
    with pytest.raises(WarehouseError, match="BigQuery error"):
        bq_warehouse.query_df(sql.format(items=f"`{items}`"))
    time.sleep(0.3)
    assert bq_emulator.requests("POST", "/jobs") - before == 1


# -- transient errors: retried with backoff, within a bounded deadline ------------------------


def test_transient_classification() -> None:
    rate = [{"reason": "rateLimitExceeded", "message": "slow down"}]
    assert is_transient(gexc.TooManyRequests("429"))
    assert is_transient(gexc.ServiceUnavailable("503"))
    assert is_transient(gexc.InternalServerError("500"))
    assert is_transient(gexc.Forbidden("403", errors=rate))
    assert not is_transient(gexc.BadRequest("bad", errors=[{"reason": "invalidQuery"}]))
    assert not is_transient(gexc.NotFound("Not found: Table p.d.t"))
    assert not is_transient(gexc.Forbidden("403", errors=[{"reason": "accessDenied"}]))
    assert not is_transient(ValueError("x"))


class _Always(http.server.BaseHTTPRequestHandler):
    """An HTTP server answering every request with one fixed status (a broken BigQuery)."""

    status = 503
    hits = 0

    def _answer(self) -> None:
        type(self).hits += 1
        body = b'{"error": {"code": %d, "message": "try later", "errors": []}}' % self.status
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def broken_bigquery(request: pytest.FixtureRequest) -> Iterator[tuple[str, type[_Always]]]:
    handler = type("Handler", (_Always,), {"status": request.param, "hits": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _warehouse_at(url: str, deadline_s: float) -> BigQueryWarehouse:
    def factory() -> bigquery.Client:
        return bigquery.Client(
            project="test-project",
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=url),
        )

    return BigQueryWarehouse(
        factory, project="test-project", retry_deadline_s=deadline_s, retry_initial_s=0.2
    )


@pytest.mark.parametrize("broken_bigquery", [503], indirect=True)
def test_transient_errors_are_retried_until_the_deadline(broken_bigquery) -> None:
    url, handler = broken_bigquery
    wh = _warehouse_at(url, deadline_s=2.0)
    start = time.monotonic()
    with pytest.raises(WarehouseError, match="transient errors and gave up"):
        wh.query_df("SELECT 1")
    elapsed = time.monotonic() - start
    assert handler.hits >= 3  # retried ...
    assert elapsed < 10  # ... but bounded by the deadline


@pytest.mark.parametrize("broken_bigquery", [400], indirect=True)
def test_permanent_http_error_is_not_retried(broken_bigquery) -> None:
    url, handler = broken_bigquery
    wh = _warehouse_at(url, deadline_s=5.0)
    with pytest.raises(WarehouseError, match="BigQuery error"):
        wh.query_df("SELECT 1")
    assert handler.hits == 1


# -- output table: explicit schema, atomic replace -------------------------------------------


def test_write_and_read_output_table(
    bq_client: bigquery.Client, bq_datasets, bq_warehouse: BigQueryWarehouse
) -> None:
    ds = bq_datasets.output
    assert bq_warehouse.read_output_table(ds, "recommendations") is None
    first = output_frame(3, "v1")
    bq_warehouse.load_table(first, ds, "recommendations")
    table = bq_client.get_table(f"test-project.{ds}.recommendations")
    legacy = {"FLOAT64": "FLOAT", "STRING": "STRING"}  # the API reports legacy type names
    assert [(f.name, f.field_type) for f in table.schema] == [
        (f.name, legacy[f.field_type]) for f in OUTPUT_SCHEMA
    ]
    assert table.schema[OUTPUT_COLUMNS.index("rec1_price")].field_type == "FLOAT"
    got = bq_warehouse.read_output_table(ds, "recommendations")
    pd.testing.assert_frame_equal(sort_frame(got), sort_frame(first), check_dtype=False)
    # a second write replaces every row
    second = output_frame(2, "v2")
    bq_warehouse.load_table(second, ds, "recommendations")
    got = bq_warehouse.read_output_table(ds, "recommendations")
    pd.testing.assert_frame_equal(sort_frame(got), sort_frame(second), check_dtype=False)
    assert [t.table_id for t in bq_client.list_tables(ds)] == ["recommendations"]  # no staging


@pytest.mark.parametrize("column, value", [("rec2_price", "cheap"), ("rec_part_3", 17)])
def test_failed_write_leaves_previous_output_whole(
    column: str,
    value: object,
    bq_client: bigquery.Client,
    bq_datasets,
    bq_warehouse: BigQueryWarehouse,
) -> None:
    ds = bq_datasets.output
    previous = output_frame(3, "old")
    bq_warehouse.load_table(previous, ds, "recommendations")
    broken = output_frame(5, "new")
    broken[column] = broken[column].astype(object)
    broken.loc[4, column] = value
    with pytest.raises(WarehouseError, match=rf"{column} must be"):
        bq_warehouse.load_table(broken, ds, "recommendations")
    got = bq_warehouse.read_output_table(ds, "recommendations")
    pd.testing.assert_frame_equal(sort_frame(got), sort_frame(previous), check_dtype=False)
    assert [t.table_id for t in bq_client.list_tables(ds)] == ["recommendations"]


def test_write_rejects_missing_output_columns(bq_datasets, bq_warehouse) -> None:
    frame = output_frame(1, "x").drop(columns=["rec4_image"])
    with pytest.raises(WarehouseError, match="rec4_image"):
        bq_warehouse.load_table(frame, bq_datasets.output, "recommendations")


class _SwapFails(BigQueryWarehouse):
    """Fault injection: the swap statement's job fails after the staging load succeeded."""

    def execute(self, sql: str) -> bigquery.QueryJob:
        if sql.startswith("CREATE OR REPLACE TABLE"):
            assert self.client.get_table(sql.rsplit("FROM ", 1)[1].strip("`")).num_rows == 4
            raise WarehouseError("injected: swap job failed")
        return super().execute(sql)


def test_failed_swap_leaves_previous_output_and_drops_staging(
    bq_emulator, bq_client: bigquery.Client, bq_datasets, bq_warehouse: BigQueryWarehouse
) -> None:
    ds = bq_datasets.output
    previous = output_frame(2, "old")
    bq_warehouse.load_table(previous, ds, "recommendations")
    wh = _SwapFails(
        lambda: bigquery_client(bq_emulator), project=bq_datasets.project, use_storage_api=False
    )
    with pytest.raises(WarehouseError, match="injected"):
        wh.load_table(output_frame(4, "new"), ds, "recommendations")
    got = bq_warehouse.read_output_table(ds, "recommendations")
    pd.testing.assert_frame_equal(sort_frame(got), sort_frame(previous), check_dtype=False)
    assert [t.table_id for t in bq_client.list_tables(ds)] == ["recommendations"]


# -- built from dagster-gcp's BigQueryResource -------------------------------------------------


def test_from_dagster_bigquery_resource(emulator_environment, items: str, bq_datasets) -> None:
    from dagster_gcp import BigQueryResource

    resource = BigQueryResource(project=emulator_environment["project"], location="US")
    with BigQueryWarehouse.from_resource(
        resource,
        company_dataset=bq_datasets.company,
        data_dataset=bq_datasets.data,
        use_storage_api=False,
    ) as wh:
        assert wh.columns("data", "import_items") == [f.name for f in ITEMS_SCHEMA]
        got = wh.query_df(f"SELECT COUNT(*) AS n FROM {wh.table_ref('data', 'import_items')}")
        assert int(got["n"].iloc[0]) == len(items_frame())


# -- the pipeline's SQL gives the same rows on DuckDB (transpiled) and BigQuery (native) -------


def _synthetic_windows(path) -> TimeWindows:  # noqa: ANN001
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        as_of = con.execute("SELECT as_of FROM synth_truth.world").fetchone()[0]
    as_of = as_of.date() if hasattr(as_of, "date") else as_of
    return TimeWindows.from_config(load_config(), as_of)


@pytest.fixture
def twin_warehouses(
    tiny_signal_warehouse, bq_emulator, bq_client, bq_datasets, bq_warehouse
) -> tuple[DuckDBWarehouse, BigQueryWarehouse, TimeWindows]:
    """The tiny synthetic world in DuckDB and the same rows loaded into the emulator."""
    loaded = copy_duckdb_warehouse(
        tiny_signal_warehouse,
        bq_client,
        {"company": bq_datasets.company, "data": bq_datasets.data},
    )
    assert len(loaded) == 7 and min(loaded.values()) > 0
    return (
        DuckDBWarehouse(tiny_signal_warehouse),
        bq_warehouse,
        _synthetic_windows(tiny_signal_warehouse),
    )


def assert_same_rows(name: str, duck: pd.DataFrame, bq: pd.DataFrame) -> None:
    """Equal after sorting all columns; dtypes normalised (nullable ints, object strings)."""
    assert list(duck.columns) == list(bq.columns), name
    assert len(duck) == len(bq), f"{name}: {len(duck)} rows on DuckDB, {len(bq)} on BigQuery"
    assert len(duck) > 0, f"{name}: no rows, the comparison would prove nothing"

    def norm(df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        for col in out.columns:
            if pd.api.types.is_bool_dtype(out[col]) or pd.api.types.is_numeric_dtype(out[col]):
                out[col] = out[col].astype("float64")
            elif pd.api.types.is_datetime64_any_dtype(out[col]):
                out[col] = pd.to_datetime(out[col]).astype("datetime64[ns]")
            else:
                out[col] = out[col].astype("object").where(out[col].notna(), None)
        return out.sort_values(list(out.columns), na_position="first").reset_index(drop=True)

    pd.testing.assert_frame_equal(norm(duck), norm(bq), check_exact=False, rtol=1e-9, obj=name)


@pytest.mark.slow
def test_export_sql_agrees_between_duckdb_and_bigquery(twin_warehouses) -> None:
    duck, bq, windows = twin_warehouses
    cfg = load_config()
    for path in EXPORT_FILES:
        names = list(parse_sql_file(load_sql(path)).statements)
        on_duck = export_file(duck, path, cfg, windows, names=names)
        on_bq = export_file(bq, path, cfg, windows, names=names, validate=False)
        for name in names:
            assert_same_rows(f"{path}:{name}", on_duck[name], on_bq[name])


def _arms(wh, cfg: dict, windows: TimeWindows, gnn_scores: pd.DataFrame, run: str = "") -> dict:
    """Both arms through the package on one warehouse: staged output rows and ranked lists
    (in the staging tables of run ``run``)."""
    build_sql_scores(wh, cfg, windows, run=run)
    apply_rules.write_scores(wh, cfg, "gnn", gnn_scores, run=run)
    out = {}
    for arm in ("sql", "gnn"):
        staged = apply_rules.build_recommendations(wh, cfg, windows, arm, windows.as_of, run=run)
        out[arm] = {
            "staged": staged,
            "recs": apply_rules.read_recommendations(wh, staged),
            "ranked": apply_rules.ranked_lists(wh, cfg, windows, arm, windows.cutoff, run=run),
        }
    return out


def _staging_cfg(dataset: str) -> dict:
    return load_config(overrides={"output": {"dataset": dataset, "staging_dataset": dataset}})


@pytest.mark.slow
def test_rules_agree_between_duckdb_and_bigquery_and_publish(twin_warehouses, bq_datasets) -> None:
    """Both arms' output rows and evaluation lists from sql/rules/recommend.sql are the same on
    DuckDB (transpiled) and BigQuery (native); the output is published on BigQuery."""
    from holley_gnn_assets.warehouse.exports import run_exports
    from tests.test_engine_agreement import gnn_like_scores

    duck, bq, windows = twin_warehouses
    cfg = _staging_cfg(bq_datasets.output)
    scores = gnn_like_scores(run_exports(duck, cfg, windows), seed=4)
    run = "0123456789ab"
    on_duck, on_bq = _arms(duck, cfg, windows, scores), _arms(bq, cfg, windows, scores, run)
    for arm in ("sql", "gnn"):
        assert_same_rows(f"{arm} recommendations", on_duck[arm]["recs"], on_bq[arm]["recs"])
        assert_same_rows(f"{arm} ranked", on_duck[arm]["ranked"], on_bq[arm]["ranked"])
    staged = on_bq["gnn"]["staged"]
    assert staged["name"] == f"recs_gnn_{run}"
    # its expiration was set (update_table; bqemulator 1.4 accepts it but does not store it)
    publish.publish(bq, cfg, None, staged, "7", False, "run-" + run)
    stored = bq.read_output_table(bq_datasets.output, "recommendations")
    assert_same_rows("stored output", on_duck["gnn"]["recs"], stored[OUTPUT_COLUMNS])
    assert publish.last_publish(bq, cfg)["model_version"] == "7"
    assert staged["name"] in publish.drop_finished_staging(bq, cfg, set())
    assert staged["name"] not in bq.list_tables(staged["dataset"])


@pytest.mark.slow
def test_cut_candidates_and_short_users_agree_between_duckdb_and_bigquery(
    twin_warehouses, bq_datasets
) -> None:
    """rules.candidate_depth 3 (and scale.user_candidates 2): the cut lists and the counts of
    users short of four (cut or not) are the same on both engines, and the cut bites."""
    from holley_gnn_assets.warehouse.exports import run_exports
    from tests.test_engine_agreement import gnn_like_scores

    duck, bq, windows = twin_warehouses
    cfg = load_config(overrides={
        "output": {"dataset": bq_datasets.output, "staging_dataset": bq_datasets.output},
        "rules": {"candidate_depth": 3}, "scale": {"user_candidates": 2}})
    scores = gnn_like_scores(run_exports(duck, cfg, windows), seed=4)
    on_duck, on_bq = _arms(duck, cfg, windows, scores), _arms(bq, cfg, windows, scores)
    keys = ("users", "users_short", "users_short_capped", "users_capped")
    for arm in ("sql", "gnn"):
        assert_same_rows(f"{arm} ranked", on_duck[arm]["ranked"], on_bq[arm]["ranked"])
        counts = {k: on_duck[arm]["staged"][k] for k in keys}
        assert counts == {k: on_bq[arm]["staged"][k] for k in keys}, arm
        assert counts["users_short_capped"] > 0 and on_duck[arm]["ranked"]["rank"].max() <= 3


def test_banned_products_reach_neither_arm_on_bigquery(
    tmp_path, bq_client, bq_datasets, bq_warehouse
) -> None:
    """The NaN-priced, refurbished and http-image products (highest popularity and GNN scores)
    stay out of both arms on the BigQuery emulator as on DuckDB."""
    from holley_gnn_assets.warehouse.exports import run_exports
    from tests.micro_warehouse import build_micro_warehouse
    from tests.test_engine_agreement import AS_OF, BANNED, _world, gnn_like_scores

    path = build_micro_warehouse(tmp_path / "micro.duckdb", _world())
    copy_duckdb_warehouse(path, bq_client, {"company": bq_datasets.company,
                                            "data": bq_datasets.data})
    cfg = _staging_cfg(bq_datasets.output)
    windows = TimeWindows.from_config(cfg, AS_OF)
    tables = run_exports(bq_warehouse, cfg, windows)
    products = tables["product_nodes"].set_index("sku")
    assert pd.isna(products.loc["NAN", "price"]) and not products.loc["NAN", "eligible"]
    arms = _arms(bq_warehouse, cfg, windows, gnn_like_scores(tables, 0))
    for arm, got in arms.items():
        slots = set(got["recs"][[f"rec_part_{i}" for i in range(1, 5)]].stack().dropna())
        assert len(got["recs"]) >= 5 and slots, arm
        assert not slots & BANNED and not set(got["ranked"]["sku"]) & BANNED, arm
