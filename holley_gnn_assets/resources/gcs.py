"""GCS for production: the IO manager for assets that cross pods, and the artifact store.

With the ``k8s_job_executor`` every step runs in its own pod, so asset values must pass through
shared storage: dagster-gcp's ``GCSPickleIOManager`` stores each asset at
``gs://{bucket}/{prefix}/{asset key path}`` (pickled; DataFrames included). Wire it as the
``io_manager`` resource in the production Definitions::

    resources = {"io_manager": gcs_io_manager("storage-auxia-ml-metaflow-dev", "gnn/dagster")}

Credentials come from the pod's workload identity (ADC); ``project`` is optional. Locally, point
``STORAGE_EMULATOR_HOST`` at gcp-storage-emulator to exercise the same code.
"""

from __future__ import annotations

from dagster_gcp.gcs import GCSPickleIOManager, GCSResource

from holley_gnn_assets.core.gcs_storage import GCSArtifactStore


def gcs_io_manager(bucket: str, prefix: str = "dagster", project: str | None = None):
    """A configured ``GCSPickleIOManager`` writing under ``gs://bucket/prefix``."""
    if not bucket or "/" in bucket or bucket.startswith("gs:"):
        raise ValueError(f"GCS bucket {bucket!r}: give the bare bucket name, e.g. 'my-bucket'")
    return GCSPickleIOManager(
        gcs=GCSResource(project=project), gcs_bucket=bucket, gcs_prefix=prefix.strip("/")
    )


def gcs_artifact_store(
    bucket: str, prefix: str = "", resource: GCSResource | None = None
) -> GCSArtifactStore:
    """Artifact store in ``gs://bucket/prefix`` using a dagster-gcp ``GCSResource``'s client."""
    resource = resource or GCSResource()
    return GCSArtifactStore(bucket, prefix, client_factory=resource.get_client)
