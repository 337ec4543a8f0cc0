"""One run at a time per home and warehouse; stale runs marked failed; failed steps' errors
reach the summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, DagsterRunStatus, job, op
from dagster._core.storage.dagster_run import DagsterRun

from holley_gnn_assets.commands.runner import mark_stale_runs_failed, summarize
from holley_gnn_assets.config.run_lock import RunLockedError, run_lock


def test_second_holder_fails_fast_naming_the_first(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    with run_lock([lock], "full_retrain_job"):
        with pytest.raises(RunLockedError, match=rf"pid {os.getpid()} \(full_retrain_job"):
            with run_lock([lock], "score_job"):
                pass
    with run_lock([lock], "score_job"):  # released on exit
        pass


def test_holley_gnn_run_refuses_while_another_run_holds_the_home(tmp_path: Path) -> None:
    home, wh = tmp_path / "home", tmp_path / "w.duckdb"
    duckdb.connect(str(wh)).close()
    env = {**os.environ, "HOLLEY_GNN_HOME": str(home), "HOLLEY_GNN_WAREHOUSE": str(wh)}
    env.pop("DAGSTER_HOME", None)
    home.mkdir()
    with run_lock([home], "full_retrain_job"):
        proc = subprocess.run([sys.executable, "-m", "holley_gnn_assets.commands.cli", "run"],
                              env=env,
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode == 75, proc.stdout + proc.stderr
    assert f"pid {os.getpid()} (full_retrain_job" in proc.stdout
    assert "wait for it to finish" in proc.stdout
    assert not (home / "mlflow.db").exists()  # nothing of the pipeline started


def test_lock_holds_when_its_status_file_is_deleted(tmp_path: Path) -> None:
    """An operator deletes ``run.lock`` (it looks stale) while a run holds the home: a second
    run is still refused, and the status file says held / released."""
    home, wh = tmp_path / "home", tmp_path / "w.duckdb"
    home.mkdir()
    duckdb.connect(str(wh)).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from holley_gnn_assets.config.run_lock import run_lock\n"
         f"with run_lock([Path({str(home)!r}), Path({str(wh)!r})], 'full_retrain_job'):\n"
         "    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout.readline().strip() == "held"
        status = json.loads((home / "run.lock").read_text())
        assert status["held"] is True and status["pid"] == holder.pid
        (home / "run.lock").unlink()
        (tmp_path / "w.duckdb.run.lock").unlink()
        for target in (home, wh):
            with pytest.raises(RunLockedError, match="wait for it to finish"):
                with run_lock([target], "score_job"):
                    pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock([home], "score_job"):  # the kernel dropped the dead holder's lock
        assert json.loads((home / "run.lock").read_text())["held"] is True
    status = json.loads((home / "run.lock").read_text())
    assert status["held"] is False and status["released"]


def test_stale_started_runs_are_marked_failed(tmp_path: Path) -> None:
    (tmp_path / "dh").mkdir()
    instance = DagsterInstance.local_temp(str(tmp_path / "dh"))
    stale = DagsterRun(job_name="full_retrain_job", run_id="a" * 36,
                       status=DagsterRunStatus.STARTED)
    done = DagsterRun(job_name="score_job", run_id="b" * 36, status=DagsterRunStatus.SUCCESS)
    instance.add_run(stale)
    instance.add_run(done)
    assert mark_stale_runs_failed(instance) == [stale.run_id]
    assert instance.get_run_by_id(stale.run_id).status == DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(done.run_id).status == DagsterRunStatus.SUCCESS
    assert mark_stale_runs_failed(instance) == []


def test_summary_carries_each_failed_steps_error(tmp_path: Path) -> None:
    @op
    def export_items() -> None:
        raise ValueError("data_company_1950.import_items.price: 3 values do not parse")

    @job
    def broken():
        export_items()

    result = broken.execute_in_process(instance=DagsterInstance.ephemeral(),
                                       raise_on_error=False)
    summary = summarize(result)
    assert set(summary["failed_steps"]) == {"export_items"}
    assert "import_items.price: 3 values do not parse" in summary["step_errors"]["export_items"]


SPILL = """
import duckdb
con = duckdb.connect({db!r}, config={{'memory_limit': '64MB', 'threads': 1}})
con.execute("CREATE TABLE big AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(3000000)")
con.execute("SELECT s, count(*) FROM big GROUP BY s ORDER BY s").fetchall()
"""


def test_a_killed_runs_spill_and_tmp_files_are_removed_at_the_next_start(tmp_path: Path) -> None:
    """A DuckDB query spilling to disk is killed (SIGKILL, as the OOM killer does): its spill
    directory and a half-written ``.tmp`` under the home stay; the next start removes them and
    keeps the warehouse."""
    import signal
    import time

    from holley_gnn_assets.commands.runner import start_guard
    from holley_gnn_assets.config.settings import load_settings

    home, wh = tmp_path / "home", tmp_path / "w.duckdb"
    (home / "work" / "run1").mkdir(parents=True)
    (home / "work" / "run1" / ".model.pt.123.tmp").write_bytes(b"x" * 1000)
    spill = tmp_path / "w.duckdb.tmp"
    child = subprocess.Popen([sys.executable, "-c", SPILL.format(db=str(wh))])
    deadline = time.monotonic() + 120
    while not (spill.is_dir() and any(spill.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert spill.is_dir() and any(spill.iterdir())
    settings = load_settings(env={"HOLLEY_GNN_HOME": str(home), "HOLLEY_GNN_WAREHOUSE": str(wh)})
    done = start_guard(settings, DagsterInstance.ephemeral())
    assert not spill.exists() and not (home / "work" / "run1" / ".model.pt.123.tmp").exists()
    assert any(m.startswith("removed what a killed run left") for m in done), done
    assert wh.is_file()
