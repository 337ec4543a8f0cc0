"""End to end through the Dagster UI: webserver + headless Chromium + a full pipeline run.

Starts ``dagster-webserver -w workspace.yaml`` on a free 127.0.0.1 port with a temporary
DAGSTER_HOME (DefaultRunCoordinator: runs start without a daemon), HOLLEY_GNN_HOME and a tiny
synthetic warehouse; checks the asset graph and the asset checks are visible in the UI; launches
``full_retrain_job`` and its ``publish_job`` through GraphQL ``launchRun`` and waits for success;
saves a screenshot of
the asset graph to ``$HOLLEY_GNN_TEST_ARTIFACTS`` (or the test's tmp dir) and
``/tmp/holley_ui_asset_graph.png``.

Skips when Chromium (``/usr/bin/chromium``) or playwright is missing and env CI is not set;
fails instead under CI. The run uses the packaged config with fewer epochs and bootstrap
samples (and the tiny world's test-click floor), so it exercises every asset in minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ui_helpers import (
    Webserver,
    launch_browser,
    launch_job,
    require_browser,
    run_errors,
    start_webserver,
    wait_for_location,
    wait_for_run,
    wait_for_server,
)

from holley_gnn_assets.commands.runner import FAILURE_PREFIX
from holley_gnn_assets.config.settings import REPO_DIR, load_config
from holley_gnn_assets.defs.publish_runs import SOURCE_RUN_TAG

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright
except ImportError:  # require_browser() skips (or fails under CI) with the reason
    PlaywrightTimeout, sync_playwright = TimeoutError, None

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LOCATION = "holley_gnn"
GRAPH_ASSETS = ["gnn_model", "eval_report", "recommendations_table"]
OUTPUT_CHECK = ("recommendations_table", "freshness_check")
RUN_TIMEOUT_S = float(os.environ.get("HOLLEY_GNN_E2E_RUN_TIMEOUT_S", "480"))
LEAD_COPY = Path("/tmp/holley_ui_asset_graph.png")
DAGSTER_YAML = {
    "run_coordinator": {
        "module": "dagster._core.run_coordinator",
        "class": "DefaultRunCoordinator",
    },
    "telemetry": {"enabled": False},
}
FAST_CONFIG = {
    "training": {"epochs": 4, "patience": 2},
    "eval": {"bootstrap_samples": 200, "min_test_clicks": 100},
}


_WORLD: dict[str, Path] = {}
"""The fixture's warehouse and Dagster home (the QA test corrupts the one, reads the other)."""
_RUNS: dict[str, str] = {}
"""Job name -> id of its successful run (one full run per module, shared by the tests)."""


def _successful_run(ws: Webserver, job: str) -> str:
    """The id of a successful run of ``job`` (launched through GraphQL the first time), then
    of its publish_job run, tagged with the source run as ``publish_sensor`` does under the
    daemon (the test's webserver runs no daemon)."""
    if job not in _RUNS:
        run_id = _wait_success(ws, launch_job(ws, LOCATION, job), job)
        _RUNS[f"publish:{job}"] = _wait_success(
            ws, launch_job(ws, LOCATION, "publish_job", tags={SOURCE_RUN_TAG: run_id}),
            "publish_job")
        _RUNS[job] = run_id
    return _RUNS[job]


def _wait_success(ws: Webserver, run_id: str, job: str) -> str:
    status = wait_for_run(ws, run_id, RUN_TIMEOUT_S)
    assert status == "SUCCESS", (
        f"{job} run {run_id} ended {status}:\n" + "\n".join(run_errors(ws, run_id))
        + f"\n--- webserver log ---\n{ws.log_tail(3000)}")
    return run_id


@pytest.fixture(scope="module")
def webserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webserver]:
    """The webserver over the repository's workspace.yaml and a tiny synthetic warehouse."""
    require_browser()
    workspace = REPO_DIR / "workspace.yaml"
    assert workspace.is_file(), f"{workspace} is missing (the e2e test loads the code from it)"
    from holley_gnn_assets.synth.generator import generate_warehouse

    root = tmp_path_factory.mktemp("ui_e2e")
    dagster_home, holley_home = root / "dagster_home", root / "holley_home"
    dagster_home.mkdir()
    holley_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(DAGSTER_YAML))
    config_path = root / "gnn_config.yaml"
    config_path.write_text(yaml.safe_dump(load_config(overrides=FAST_CONFIG)))
    warehouse = root / "warehouse_tiny.duckdb"
    generate_warehouse(warehouse, scale="tiny", seed=0, signal=2.0, progress=False)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOLLEY_GNN_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(dagster_home),
        HOLLEY_GNN_HOME=str(holley_home),
        HOLLEY_GNN_WAREHOUSE=str(warehouse),
        HOLLEY_GNN_CONFIG=str(config_path),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_DIR), os.environ.get("PYTHONPATH")])),
    )
    _WORLD.update(warehouse=warehouse, dagster_home=dagster_home)
    ws = start_webserver(workspace, REPO_DIR, env, root / "webserver.log")
    try:
        wait_for_server(ws)
        wait_for_location(ws, LOCATION)
        yield ws
    finally:
        ws.stop()


def _artifact_dir(tmp_path: Path) -> Path:
    out = Path(os.environ.get("HOLLEY_GNN_TEST_ARTIFACTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _dismiss_modal(page) -> None:
    """Close the webserver's one-time 'Join the Dagster community' dialog when it shows."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.first.wait_for(state="visible", timeout=3_000)
        skip.first.click()
    except PlaywrightTimeout:
        pass


def _graph_node(page, name: str):
    """The drawn graph node(s) labelled exactly ``name``."""
    return page.locator("foreignObject").filter(has=page.get_by_text(name, exact=True))


def _open_graph(page, ws: Webserver, path: str, labels: list[str]) -> None:
    """Open a lineage graph and wait until nodes with ``labels`` are drawn and loaded."""
    page.goto(ws.url + path, wait_until="networkidle")
    page.locator("foreignObject").first.wait_for(state="visible", timeout=60_000)
    _dismiss_modal(page)
    for label in labels:
        try:
            _graph_node(page, label).first.wait_for(state="visible", timeout=60_000)
        except PlaywrightTimeout as exc:
            drawn = [fo.text_content() for fo in page.locator("foreignObject").all()]
            raise AssertionError(f"{label!r} not drawn on {path}; drawn: {drawn}") from exc
    deadline = time.monotonic() + 30
    while page.get_by_text("Loading...").count() and time.monotonic() < deadline:
        time.sleep(0.5)


def _groups(ws: Webserver) -> dict[str, str]:
    """asset name -> group name, from GraphQL."""
    data = ws.graphql("query { assetNodes { assetKey { path } groupName } }")
    return {"/".join(n["assetKey"]["path"]): n["groupName"] for n in data["assetNodes"]}


def test_ui_asset_graph_and_full_run(webserver: Webserver, tmp_path: Path) -> None:
    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_page(viewport={"width": 1800, "height": 1100})
            # 1. the asset graph: the groups (global lineage), then each named asset's node
            groups = _groups(webserver)
            missing = [a for a in GRAPH_ASSETS if a not in groups]
            assert not missing, f"assets missing from the code location: {missing}"
            wanted = sorted({groups[a] for a in GRAPH_ASSETS})
            _open_graph(page, webserver, "/asset-groups", wanted)
            for name in GRAPH_ASSETS:
                _open_graph(
                    page, webserver, f"/locations/{LOCATION}/asset-groups/{groups[name]}", [name]
                )

            # 2. the output table's checks are listed on its Checks tab
            asset, check = OUTPUT_CHECK
            page.goto(f"{webserver.url}/assets/{asset}?view=checks", wait_until="networkidle")
            page.get_by_text(check, exact=True).first.wait_for(state="visible", timeout=60_000)

            # 3. a full materialization through GraphQL, until it ends
            _successful_run(webserver, "full_retrain_job")

            # 4. the graph after the run (groups with their statuses; the model group in
            # full), saved as test artifacts
            out = _artifact_dir(tmp_path)
            _open_graph(
                page,
                webserver,
                f"/locations/{LOCATION}/asset-groups/{groups['gnn_model']}",
                ["gnn_model"],
            )
            page.screenshot(path=str(out / "holley_ui_model_group.png"), full_page=True)
            page.goto(f"{webserver.url}/assets/{asset}?view=checks", wait_until="networkidle")
            page.get_by_text(check, exact=True).first.wait_for(state="visible", timeout=60_000)
            page.screenshot(path=str(out / "holley_ui_output_checks.png"), full_page=True)
            _open_graph(page, webserver, "/asset-groups", wanted)
            shot = out / "holley_ui_asset_graph.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            try:
                shutil.copyfile(shot, LEAD_COPY)
            except OSError:
                pass  # a convenience copy only
        finally:
            browser.close()


def test_ui_eval_report_shows_the_decision_table_and_the_chart(
        webserver: Webserver, tmp_path: Path) -> None:
    """eval_report's latest materialization shows the per-tier table inline (decision column,
    the cold row) and the chart as an image that the browser decodes (a data URI)."""
    _successful_run(webserver, "full_retrain_job")
    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_page(viewport={"width": 1800, "height": 1400})
            page.goto(f"{webserver.url}/assets/eval_report?view=events", wait_until="networkidle")
            _dismiss_modal(page)
            table = page.locator("table").filter(has=page.locator("th", has_text="decision"))
            table.first.wait_for(state="visible", timeout=60_000)
            headers = [h.strip() for h in table.first.locator("th").all_text_contents()]
            for column in ("tier", "gnn", "sql", "delta", "ci95_lo", "ci95_hi", "decision"):
                assert column in headers, headers
            assert table.first.locator("td", has_text="cold").count() >= 1
            page.screenshot(path=str(_artifact_dir(tmp_path) / "holley_ui_eval_report.png"),
                            full_page=True)
            row = page.locator("tr").filter(has=page.get_by_text("chart", exact=True))
            row.get_by_text("[Show Markdown]").first.click()
            image = page.locator("img[src^='data:image/png;base64,']").first
            image.wait_for(state="visible", timeout=30_000)
            width = page.evaluate("(img) => img.naturalWidth", image.element_handle())
            assert width > 400, f"the chart did not decode (naturalWidth {width})"
            page.screenshot(path=str(_artifact_dir(tmp_path) / "holley_ui_eval_chart.png"))
        finally:
            browser.close()


STEP_ERRORS = """
query Logs($runId: ID!) { logsForRun(runId: $runId, limit: 5000) { __typename
  ... on EventConnection { events { __typename
    ... on ExecutionStepFailureEvent { stepKey error { message } } } } } }
"""


def _step_errors(ws: Webserver, run_id: str) -> dict[str, str]:
    """Step key -> its failure's message, as the UI reads it (class path dropped)."""
    events = ws.graphql(STEP_ERRORS, {"runId": run_id})["logsForRun"]["events"]
    return {e["stepKey"]: e["error"]["message"].removeprefix(FAILURE_PREFIX)
            for e in events if e.get("__typename") == "ExecutionStepFailureEvent"}


def _corrupt_images(warehouse: Path, share_pct: int = 98) -> None:
    """Most products' image URLs become http:// (the rules drop them: few users keep a row)."""
    import duckdb

    with duckdb.connect(str(warehouse)) as con:
        con.execute("UPDATE data_company_1950.import_items SET image_url = replace(image_url, "
                    f"'https://', 'http://') WHERE hash(sku) % 100 < {share_pct}")


def _gate_numbers(dagster_home: Path, run_id: str, check: str) -> dict[str, int]:
    """failing, threshold, population of ``gnn_recommendations:check`` in the run."""
    from dagster import DagsterEventType, DagsterInstance

    instance = DagsterInstance.from_config(str(dagster_home))
    try:
        records = instance.get_records_for_run(
            run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=500).records
    finally:
        instance.dispose()
    for record in records:
        ev = record.event_log_entry.dagster_event.asset_check_evaluation_data
        if ev.check_name == check and ev.asset_key.to_user_string() == "gnn_recommendations":
            assert not ev.passed
            return {k: int(ev.metadata[k].value) for k in ("failing", "threshold", "population")}
    raise AssertionError(f"no {check} evaluation in run {run_id}")


def test_ui_failed_qa_gate_shows_its_numbers(webserver: Webserver, tmp_path: Path) -> None:
    """Most image URLs http://: score_job is blocked by users_with_recs; the run's error names
    the gate; the check's page shows failing, threshold and population as numbers; the output
    asset's page still shows the publish run's materialization, not "Failed"."""
    _successful_run(webserver, "full_retrain_job")  # a champion for score_job to score with
    warehouse = _WORLD["warehouse"]
    backup = warehouse.with_suffix(".before_fault")
    shutil.copyfile(warehouse, backup)
    try:
        _corrupt_images(warehouse)
        run_id = launch_job(webserver, LOCATION, "score_job")
        status = wait_for_run(webserver, run_id, RUN_TIMEOUT_S)
    finally:
        shutil.copyfile(backup, warehouse)
    assert status == "FAILURE", f"score_job on the corrupted world ended {status}"
    numbers = _gate_numbers(_WORLD["dagster_home"], run_id, "users_with_recs")
    assert numbers["failing"] > numbers["threshold"] and numbers["population"] > 0, numbers
    errors = _step_errors(webserver, run_id)
    assert errors.get("gnn_recommendations_qa", "").startswith(
        "QA gate stopped the output: gnn_recommendations users_with_recs: "
        f"{numbers['failing']:,} "), errors
    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_page(viewport={"width": 1800, "height": 1400})
            page.goto(f"{webserver.url}/assets/gnn_recommendations?view=checks"
                      "&checkDetail=users_with_recs", wait_until="networkidle")
            _dismiss_modal(page)
            page.get_by_text("Latest execution").first.wait_for(state="visible", timeout=60_000)
            for key, value in numbers.items():
                cell = page.locator("tr").filter(has=page.get_by_text(key, exact=True))
                cell.first.wait_for(state="visible", timeout=60_000)
                assert str(value) in cell.first.inner_text(), (key, cell.first.inner_text())
            page.screenshot(path=str(_artifact_dir(tmp_path) / "holley_ui_failed_gate.png"),
                            full_page=True)
            # the output was never planned by the blocked run: its page does not read Failed
            page.goto(f"{webserver.url}/assets/recommendations_table", wait_until="networkidle")
            page.get_by_text("Latest materialization").first.wait_for(state="visible",
                                                                      timeout=60_000)
            # its metadata is the publish run's: source_run names the successful pipeline run
            page.get_by_text(_RUNS["full_retrain_job"]).first.wait_for(state="visible",
                                                                       timeout=60_000)
            failed = page.get_by_text(re.compile(r"Failed in [0-9a-f]{8}"))
            assert failed.count() == 0, failed.first.inner_text()
            assert page.get_by_text(run_id[:8]).count() == 0  # the blocked run is not named
            page.screenshot(path=str(_artifact_dir(tmp_path) / "holley_ui_output_after_block.png"),
                            full_page=True)
        finally:
            browser.close()
