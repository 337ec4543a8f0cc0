"""``holley-gnn ui``: the Dagster UI (``dagster dev``) on the instance ``holley-gnn run`` uses.

Both take the instance from the settings (``DAGSTER_HOME``, else ``HOLLEY_GNN_HOME/dagster_home``),
so the runs made with ``holley-gnn run`` are in the UI without setting a variable. ``dagster
dev`` runs in its own process group with SIGTERM and SIGINT at their defaults (an inherited
"ignore" would keep it alive); SIGTERM or SIGINT to this command is forwarded to that group,
which gets SIGKILL if it has not exited ``GRACE_S`` seconds later (Kubernetes waits 30 s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from holley_gnn_assets.commands.runner import prepare_instance_dir
from holley_gnn_assets.config.settings import ENV_DAGSTER_HOME, REPO_DIR, Settings, environment_with

GRACE_S = 20.0
WORKSPACE = """load_from:
  - python_module:
      module_name: holley_gnn_assets.definitions
      location_name: holley_gnn
"""


def workspace_file(settings: Settings) -> Path:
    """The repository's workspace.yaml, else (an installed package) the same file in the home."""
    checkout = REPO_DIR / "workspace.yaml"
    if checkout.is_file():
        return checkout
    path = settings.home / "workspace.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(WORKSPACE)
    return path


def dev_command(settings: Settings, host: str, port: int) -> list[str]:
    """The ``dagster dev`` command line for the project's workspace."""
    return [sys.executable, "-m", "dagster", "dev", "-w", str(workspace_file(settings)),
            "-h", host, "-p", str(port)]


def _default_signals() -> None:  # runs in the child before exec
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


def stop_group(proc: subprocess.Popen, grace_s: float = GRACE_S) -> int:
    """SIGTERM the child's process group; SIGKILL it after ``grace_s``; the child's exit code."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            return proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


def run_ui(settings: Settings, host: str = "127.0.0.1", port: int = 3000) -> int:
    """Start ``dagster dev`` on the settings' instance; forward SIGTERM/SIGINT; its exit code."""
    instance_dir = prepare_instance_dir(settings)
    cmd = dev_command(settings, host, port)
    print(f"Dagster UI on http://{host}:{port}, instance {instance_dir} (the one `holley-gnn "
          "run` records into)", flush=True)
    proc = subprocess.Popen(cmd, env=environment_with({ENV_DAGSTER_HOME: str(instance_dir)}),
                            preexec_fn=_default_signals, start_new_session=True)
    stopping: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if stopping:
                    code = stop_group(proc)
                    break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if stopping else code
