"""The image installs exactly k8s/requirements.lock, and the lock agrees with pyproject.toml.

Every version that k8s/Dockerfile or k8s/cloudbuild.yaml names must be the one in the lock; the
lock must satisfy the project's declared ranges; what the package imports must be declared.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import holley_gnn_assets.warehouse.bigquery as bq_module
from holley_gnn_assets.warehouse.base import WarehouseError
from holley_gnn_assets.warehouse.bigquery import BigQueryWarehouse

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "k8s"
LOCK = K8S / "requirements.lock"
DOCKERFILE = K8S / "Dockerfile"
CLOUDBUILD = K8S / "cloudbuild.yaml"
DOCKERIGNORE = K8S / "Dockerfile.dockerignore"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PYPROJECT_REQUIRES_PYTHON = Requirement(f"python{PYPROJECT['requires-python']}").specifier
# sha256 of torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl as PyPI served it to
# `pip install --dry-run --report` (k8s/README.md, "The lock").
TORCH_PYPI_WHEEL_SHA256 = "60fcdcb2f3876e21146cb4524ef06397d727ca9ad5f020818547e25075fe3cb7"
PIN = re.compile(r"\b([A-Za-z][A-Za-z0-9._-]*)==([0-9][A-Za-z0-9.+!_-]*)")


def parse_lock(text: str) -> dict[str, tuple[str, set[str]]]:
    """``{canonical name: (version, {sha256, ...})}`` of a hashed requirements file."""
    entries: dict[str, tuple[str, set[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z])", text):
        head = re.match(r"([A-Za-z0-9._-]+)==(\S+)", block)
        if head:
            hashes = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
            entries[canonicalize_name(head.group(1))] = (head.group(2), hashes)
    return entries


LOCKED = parse_lock(LOCK.read_text())


def locked_version(name: str) -> str:
    """The locked version of ``name``; fails the test when the lock lacks it."""
    entry = LOCKED.get(canonicalize_name(name))
    assert entry, f"{name} is not in {LOCK.name}"
    return entry[0]


def dockerfile_args() -> dict[str, str]:
    """``ARG NAME=default`` pairs of the Dockerfile."""
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE))


def declared(extra: str | None = None) -> list[Requirement]:
    """[project] dependencies, or those of one optional extra."""
    raw = PYPROJECT["dependencies"] if extra is None else PYPROJECT["optional-dependencies"][extra]
    return [Requirement(r) for r in raw]


# ---------------------------------------------------------------- the lock itself


def test_lock_is_complete_and_hashed() -> None:
    assert len(LOCKED) > 100, "the lock should hold the whole runtime closure"
    unhashed = [name for name, (_, hashes) in LOCKED.items() if not hashes]
    assert not unhashed, f"pip --require-hashes would refuse these: {unhashed}"
    header = LOCK.read_text().splitlines()[:3]
    assert any("uv pip compile pyproject.toml --extra deploy" in line for line in header), header


def test_parse_lock_reads_versions_and_hashes() -> None:
    text = "a-b==1.0 \\\n    --hash=sha256:" + "1" * 64 + "\n    # via x\nc==2\n"
    assert parse_lock(text) == {"a-b": ("1.0", {"1" * 64}), "c": ("2", set())}


def test_lock_torch_is_the_pypi_cuda_13_0_build() -> None:
    torch_version, torch_hashes = LOCKED["torch"]
    assert torch_version == "2.13.0"
    assert TORCH_PYPI_WHEEL_SHA256 in torch_hashes
    # PyPI's torch 2.13.0 requires cuda-toolkit==13.0.3 and the *-cu13 libraries: CUDA 13.0.
    assert locked_version("cuda-toolkit").startswith("13.0.")
    assert locked_version("nvidia-cuda-runtime").startswith("13.0.")
    for lib in ("nvidia-cudnn-cu13", "nvidia-nccl-cu13", "triton"):
        locked_version(lib)
    assert not [n for n in LOCKED if n.endswith("-cu12")], "CUDA 12 libraries next to CUDA 13"


def test_image_torch_is_the_tested_torch() -> None:
    # The tests run the +cpu build of the same release (local label ignored).
    assert locked_version("torch") == version("torch").split("+")[0]


def test_lock_satisfies_pyproject() -> None:
    for req in declared() + declared("deploy"):
        assert req.specifier.contains(locked_version(req.name), prereleases=True), (
            f"lock has {req.name}=={locked_version(req.name)}, pyproject asks {req}"
        )
    torch_range = next(r for r in declared() if r.name == "torch").specifier
    assert "2.13.0" in torch_range


def test_test_only_and_optional_packages_stay_out_of_the_lock() -> None:
    runtime = {canonicalize_name(r.name) for r in declared() + declared("deploy")}
    test_only = {canonicalize_name(r.name) for r in declared("test")} - runtime
    assert test_only & LOCKED.keys() <= {"duckdb"}, test_only & LOCKED.keys()
    assert "torch-scatter" not in LOCKED
    # duckdb: an exact pin in the test extra only, a range at runtime.
    (duckdb_runtime,) = [r for r in declared() if r.name == "duckdb"]
    assert not any(s.operator == "==" for s in duckdb_runtime.specifier)


# ---------------------------------------------------------------- Dockerfile and cloudbuild


def test_dockerfile_versions_are_the_locked_ones() -> None:
    args = dockerfile_args()
    assert args["TORCH_VERSION"] == locked_version("torch")
    cuda = Version(locked_version("cuda-toolkit"))
    assert args["TORCH_CUDA_VERSION"] == f"{cuda.major}.{cuda.minor}"
    image_python = re.fullmatch(r"python:(\d+\.\d+)[.\w-]*", args["PYTHON_IMAGE"])
    assert image_python, args["PYTHON_IMAGE"]
    lock_python = re.search(r"--python-version (\d+\.\d+)", LOCK.read_text())
    assert lock_python and image_python.group(1) == lock_python.group(1)
    assert Version(image_python.group(1) + ".0") in PYPROJECT_REQUIRES_PYTHON
    version_args = {k for k in args if k.endswith("VERSION")}
    assert version_args == {"TORCH_VERSION", "TORCH_CUDA_VERSION"}, "unchecked version ARG"


def pins_off_the_lock(text: str) -> list[str]:
    """Every ``name==version`` in ``text`` whose package the lock holds at another version."""
    return [
        f"{name}=={pinned} (lock: {locked_version(name)})"
        for name, pinned in PIN.findall(text)
        if canonicalize_name(name) in LOCKED and Version(pinned) != Version(locked_version(name))
    ]


@pytest.mark.parametrize("path", [DOCKERFILE, CLOUDBUILD], ids=lambda p: p.name)
def test_every_pinned_package_is_the_locked_version(path: Path) -> None:
    text = path.read_text()
    assert not pins_off_the_lock(text)
    # Nothing is fetched from an index the lock does not describe.
    for index in ("download.pytorch.org", "data.pyg.org", "--index-url", "--find-links"):
        assert index not in text, f"{path.name} names {index}"


def test_pin_check_reports_a_version_off_the_lock() -> None:
    text = "RUN pip install torch==2.12.0 cuda-toolkit==13.0.3 unlocked-package==1.0\n"
    assert pins_off_the_lock(text) == ["torch==2.12.0 (lock: 2.13.0)"]


def test_dockerfile_installs_only_the_lock() -> None:
    text = DOCKERFILE.read_text()
    installs = re.findall(r"pip install ([^\n\\]*)", text)
    assert installs == [
        "--no-cache-dir --require-hashes --no-deps -r requirements.lock ",
        "--no-cache-dir --no-deps --no-build-isolation . ",
    ]
    assert "COPY k8s/requirements.lock ./requirements.lock" in text
    assert "pip check" in text
    assert "!k8s/requirements.lock" in DOCKERIGNORE.read_text().splitlines()
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.findall(r"hadolint ignore=(\S+)", text) == []


def test_cloudbuild_builds_one_image_without_variant_args() -> None:
    text = CLOUDBUILD.read_text()
    assert "--build-arg" not in text and "CUDA_TAG" not in text
    assert "--file=k8s/Dockerfile" in text


# ---------------------------------------------------------------- declared dependencies


def imported_top_level_modules() -> set[str]:
    """Top-level modules that holley_gnn_assets imports (absolute imports only)."""
    found: set[str] = set()
    for path in (ROOT / "holley_gnn_assets").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"holley_gnn_assets", "__future__"}


def test_every_import_is_declared() -> None:
    names = {
        canonicalize_name(r.name) for group in (None, "test", "deploy") for r in declared(group)
    }
    dists = packages_distributions()
    undeclared = {
        module: dists.get(module)
        for module in imported_top_level_modules()
        if not names & {canonicalize_name(d) for d in dists.get(module, [])}
    }
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
    assert "torch_scatter" not in imported_top_level_modules()


def test_storage_api_without_its_package_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = bq_module.importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "google.cloud.bigquery_storage" else real_find_spec(name, *args)

    def factory() -> None:
        raise AssertionError("the client is not built in the constructor")

    BigQueryWarehouse(factory, use_storage_api=True)  # the package is installed here
    monkeypatch.setattr(bq_module.importlib.util, "find_spec", find_spec)
    with pytest.raises(WarehouseError, match="google-cloud-bigquery-storage"):
        BigQueryWarehouse(factory, use_storage_api=True)
    BigQueryWarehouse(factory, use_storage_api=False)
