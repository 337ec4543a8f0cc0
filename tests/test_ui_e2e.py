"""End to end through the Dagster UI: webserver + headless Chromium + a full pipeline run.

Starts ``dagster-webserver -w workspace.yaml`` on a free 127.0.0.1 port with a temporary
DAGSTER_HOME (DefaultRunCoordinator: runs start without a daemon), HOLLEY_GNN_HOME and a tiny
synthetic warehouse; checks the asset graph and the asset checks are visible in the UI; launches
``full_retrain_job`` through GraphQL ``launchRun`` and waits for success; saves a screenshot of
the asset graph to ``$HOLLEY_GNN_TEST_ARTIFACTS`` (or the test's tmp dir) and
``/tmp/holley_ui_asset_graph.png``.

Skips when Chromium (``/usr/bin/chromium``) or playwright is missing and env CI is not set;
fails instead under CI. The run uses the packaged config with fewer epochs and bootstrap
samples (and the tiny world's test-click floor), so it exercises every asset in minutes.
"""

from __future__ import annotations

import os
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

from holley_gnn_assets.settings import REPO_DIR, load_config

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
            run_id = launch_job(webserver, LOCATION, "full_retrain_job")
            status = wait_for_run(webserver, run_id, RUN_TIMEOUT_S)
            assert status == "SUCCESS", (
                f"full_retrain_job run {run_id} ended {status}:\n"
                + "\n".join(run_errors(webserver, run_id))
                + f"\n--- webserver log ---\n{webserver.log_tail(3000)}"
            )

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
