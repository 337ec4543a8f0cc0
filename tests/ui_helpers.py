"""Helpers for the UI end-to-end test: a dagster-webserver subprocess, GraphQL, headless Chromium.

Chromium is the Debian package (``/usr/bin/chromium``), driven by the ``playwright`` Python
package through ``executable_path``; ``playwright install`` is never used.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("HOLLEY_GNN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


def in_ci() -> bool:
    """True when env CI is set to something truthy (CI=true in the pipeline)."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def require_browser() -> None:
    """Skip (locally) or fail (under CI) when Chromium or playwright is missing."""
    problems = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright Python package is not installed (pip install playwright)")
    if problems:
        reason = "; ".join(problems)
        if in_ci():
            pytest.fail(f"UI e2e test cannot run under CI: {reason}")
        pytest.skip(f"UI e2e test skipped (CI not set): {reason}")


def free_port() -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Webserver:
    """A dagster-webserver subprocess on 127.0.0.1 (its own process group)."""

    proc: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the webserver's output (for failure messages)."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "<no log>"

    def stop(self) -> None:
        """Stop the webserver and the run subprocesses it launched (its process group)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)

    def get(self, path: str, timeout: float = 5.0) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
            return resp.read()

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a GraphQL query; raise AssertionError on transport or GraphQL errors."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(
            self.url + "/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            payload = json.loads(resp.read())
        if payload.get("errors"):
            raise AssertionError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]


def start_webserver(workspace: Path, cwd: Path, env: dict[str, str], log_path: Path) -> Webserver:
    """Start ``dagster-webserver -w workspace -h 127.0.0.1 -p <free port>``."""
    port = free_port()
    exe = shutil.which("dagster-webserver")
    cmd = [exe] if exe else [sys.executable, "-m", "dagster_webserver"]
    cmd += ["-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)]
    log = open(log_path, "wb")  # noqa: SIM115 (kept open for the subprocess)
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return Webserver(proc, port, log_path)


def wait_for_server(ws: Webserver, timeout_s: float = 180.0) -> dict[str, Any]:
    """Wait until /server_info answers; return its JSON."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ws.proc.poll() is not None:
            raise AssertionError(
                f"dagster-webserver exited ({ws.proc.returncode}):\n{ws.log_tail()}"
            )
        try:
            return json.loads(ws.get("/server_info"))
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            time.sleep(1.0)
    raise AssertionError(f"/server_info did not answer in {timeout_s:.0f} s:\n{ws.log_tail()}")


LOCATIONS_QUERY = """
query { workspaceOrError { __typename
  ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } }
  ... on PythonError { message } } }
"""


def wait_for_location(ws: Webserver, name: str, timeout_s: float = 300.0) -> None:
    """Wait until code location ``name`` has loaded; fail with its load error otherwise."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        data = ws.graphql(LOCATIONS_QUERY)["workspaceOrError"]
        last = data
        for entry in data.get("locationEntries", []):
            if entry["name"] != name or entry["loadStatus"] != "LOADED":
                continue
            loc = entry["locationOrLoadError"]
            if loc and loc["__typename"] == "PythonError":
                raise AssertionError(f"code location {name} failed to load: {loc['message']}")
            if loc and loc["__typename"] == "RepositoryLocation":
                return
        time.sleep(1.0)
    raise AssertionError(f"code location {name} not loaded after {timeout_s:.0f} s: {last}")


LAUNCH_MUTATION = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) { __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on PresetNotFoundError { message }
    ... on ConflictingExecutionParamsError { message }
    ... on NoModeProvidedError { message }
  } }
"""

RUN_QUERY = """
query Run($runId: ID!) { runOrError(runId: $runId) { __typename
  ... on Run { runId status } ... on PythonError { message } } }
"""

ERRORS_QUERY = """
query Logs($runId: ID!) { logsForRun(runId: $runId, limit: 5000) { __typename
  ... on EventConnection { events { __typename
    ... on MessageEvent { message level stepKey } } } } }
"""


def launch_job(ws: Webserver, location: str, job: str, repository: str = "__repository__",
               partition: str = "2026-11-01", tags: dict[str, str] | None = None) -> str:
    """Launch ``job`` for ``partition`` (its as-of date; default: the synthetic worlds'), with
    run ``tags``, through GraphQL ``launchRun``; return the run id."""
    params = {
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": repository,
            "jobName": job,
        },
        "runConfigData": {},
        "executionMetadata": {"tags": [
            {"key": k, "value": v}
            for k, v in {"dagster/partition": partition, **(tags or {})}.items()]},
    }
    out = ws.graphql(LAUNCH_MUTATION, {"params": params})["launchRun"]
    if out["__typename"] != "LaunchRunSuccess":
        raise AssertionError(f"launchRun({job}) failed: {out}")
    return out["run"]["runId"]


def run_errors(ws: Webserver, run_id: str, limit: int = 15) -> list[str]:
    """ERROR-level log messages of a run (for failure diagnostics)."""
    try:
        logs = ws.graphql(ERRORS_QUERY, {"runId": run_id})["logsForRun"]
    except (AssertionError, urllib.error.URLError) as exc:
        return [f"<could not read the run's logs: {exc}>"]
    events = logs.get("events", []) if isinstance(logs, dict) else []
    msgs = [
        f"{e.get('stepKey') or '-'}: {e.get('message', '')[:600]}"
        for e in events
        if e.get("level") == "ERROR" or e.get("__typename", "").endswith("FailureEvent")
    ]
    return msgs[:limit]


def wait_for_run(ws: Webserver, run_id: str, timeout_s: float) -> str:
    """Poll the run until it ends; return its final status (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout_s
    status = "?"
    while time.monotonic() < deadline:
        out = ws.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]
        if out["__typename"] != "Run":
            raise AssertionError(f"run {run_id}: {out}")
        status = out["status"]
        if status in TERMINAL:
            return status
        time.sleep(3.0)
    raise AssertionError(f"run {run_id} still {status} after {timeout_s:.0f} s")


def launch_browser(playwright: Any) -> Any:
    """Headless Debian Chromium through playwright (no bundled browser download)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
