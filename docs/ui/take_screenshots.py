"""Screenshots of the operator's view in the Dagster UI, from the runs in a HOLLEY_GNN_HOME.

Usage (after ``docs/ui/make_runs.py``, with the same environment)::

    HOLLEY_GNN_HOME=/tmp/holley_ui HOLLEY_GNN_WAREHOUSE=/tmp/holley_ui/world.duckdb \\
        python docs/ui/take_screenshots.py --out docs/ui

Starts ``holley-gnn ui`` (``dagster dev`` on the home's instance) on a free port, drives
Debian's headless Chromium through playwright, saves the PNGs below into ``--out``, prints what
each one shows, and stops the UI. Independent of the tests (nothing imported from ``tests/``).

- ``eval_report_table.png``: eval_report's latest materialization, the per-tier table inline
- ``eval_report_chart.png``: its chart (the embedded PNG, opened with [Show Markdown])
- ``eval_report_plots_cold_delta.png``: the Plots tab, the deltas' history over the runs
- ``failed_users_with_recs.png``: the failed ``users_with_recs`` gate with its numbers
- ``automation.png``: the Automation page (schedules and sensors, on or off)
- ``output_after_blocked_run.png``: ``recommendations_table`` after the blocked run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("HOLLEY_GNN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]
WAIT_MS = 60_000
LOCATION_QUERY = """query { workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename } } } } }"""


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(url: str, query: str) -> dict:
    """POST one GraphQL query to the UI; its ``data``."""
    req = urllib.request.Request(url + "/graphql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["data"]


def wait_until_loaded(url: str, proc: subprocess.Popen, timeout_s: float = 300) -> None:
    """Wait until the UI answers and the code location is loaded (RuntimeError otherwise)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"holley-gnn ui exited with {proc.returncode}")
        try:
            entries = graphql(url, LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                broken = [e["name"] for e in entries
                          if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"]
                if broken:
                    raise RuntimeError(f"code location(s) failed to load: {broken}")
                return
        except (urllib.error.URLError, ConnectionError, KeyError, TypeError):
            pass
        time.sleep(2)
    raise RuntimeError(f"the UI at {url} did not load its code location in {timeout_s:.0f} s")


def start_ui(port: int, log: Path) -> subprocess.Popen:
    """``holley-gnn ui --port PORT`` in its own process group, output to ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "holley_gnn_assets.commands.cli", "ui",
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop_ui(proc: subprocess.Popen) -> None:
    """SIGTERM the UI's process group (``holley-gnn ui`` forwards it), SIGKILL after 40 s."""
    for sig, wait_s in ((signal.SIGTERM, 40), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait_s)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def settle(page) -> None:
    """Close the one-time community dialog if shown; wait until nothing reads Loading..."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.first.wait_for(state="visible", timeout=3_000)
        skip.first.click()
    except Exception:  # noqa: BLE001 - playwright's TimeoutError: no dialog
        pass
    deadline = time.monotonic() + 30
    while page.get_by_text("Loading...").count() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1.0)  # charts draw after the data arrives


def shoot(page, url: str, out: Path) -> None:
    """Each screenshot in turn (a page that does not show what it should raises)."""
    page.goto(url + "/assets/eval_report?view=events", wait_until="networkidle")
    settle(page)
    page.locator("table").filter(has=page.locator("th", has_text="decision")).first.wait_for(
        state="visible", timeout=WAIT_MS)
    save(page, out / "eval_report_table.png", "eval_report: decision and the per-tier table")
    row = page.locator("tr").filter(has=page.get_by_text("chart", exact=True))
    row.get_by_text("[Show Markdown]").first.click()
    page.locator("img[src^='data:image/png;base64,']").first.wait_for(state="visible",
                                                                       timeout=WAIT_MS)
    time.sleep(1.5)  # the dialog fades in
    save(page, out / "eval_report_chart.png", "eval_report: the per-tier chart", full=False)

    page.goto(url + "/assets/eval_report", wait_until="networkidle")
    settle(page)
    page.get_by_placeholder("Filter metadata keys").first.fill("delta")  # the deltas first
    page.get_by_role("button", name="Plots").first.click()
    page.get_by_text("cold_delta", exact=True).first.wait_for(state="visible", timeout=WAIT_MS)
    settle(page)
    save(page, out / "eval_report_plots_cold_delta.png", "eval_report Plots: delta history")

    page.goto(url + "/assets/gnn_recommendations?view=checks&checkDetail=users_with_recs",
              wait_until="networkidle")
    settle(page)
    page.get_by_text("Latest execution").first.wait_for(state="visible", timeout=WAIT_MS)
    numbers = {}
    for key in ("failing", "threshold", "population"):
        cell = page.locator("tr").filter(has=page.get_by_text(key, exact=True)).first
        cell.wait_for(state="visible", timeout=WAIT_MS)
        numbers[key] = " ".join(cell.inner_text().split()[1:2])
    save(page, out / "failed_users_with_recs.png", f"users_with_recs gate: {numbers}")

    page.goto(url + "/automation", wait_until="networkidle")
    settle(page)
    page.get_by_text("weekly_retrain_schedule").first.wait_for(state="visible", timeout=WAIT_MS)
    save(page, out / "automation.png", "Automation: schedules and sensors")

    page.goto(url + "/assets/recommendations_table", wait_until="networkidle")
    settle(page)
    page.get_by_text("Latest materialization").first.wait_for(state="visible", timeout=WAIT_MS)
    failed = page.get_by_text(re.compile(r"Failed in [0-9a-f]{8}")).count()
    save(page, out / "output_after_blocked_run.png",
         "recommendations_table after the blocked run: "
         + ("reads FAILED" if failed else "no 'Failed' label"))


def save(page, path: Path, what: str, full: bool = True) -> None:
    page.screenshot(path=str(path), full_page=full)
    print(f"{path}  ({path.stat().st_size:,} bytes): {what}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1300)
    args = parser.parse_args()
    if "HOLLEY_GNN_HOME" not in os.environ:
        parser.error("set HOLLEY_GNN_HOME to the home docs/ui/make_runs.py filled")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(os.environ["HOLLEY_GNN_HOME"]) / "take_screenshots_ui.log"
    proc = start_ui(port, log)
    try:
        wait_until_loaded(url, proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": args.width, "height": args.height})
                shoot(page, url, args.out)
            finally:
                browser.close()
    except Exception:
        print(f"--- UI log tail ({log}) ---\n" + log.read_text(errors="replace")[-3000:])
        raise
    finally:
        stop_ui(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
