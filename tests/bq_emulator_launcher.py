"""Launch ``bqemulator`` (the DuckDB-backed BigQuery API stand-in) with the local workarounds.

Usage: ``python tests/bq_emulator_launcher.py start --rest-port 9050 --grpc-port 0``
(any ``bqemulator`` CLI arguments). Before handing over to the emulator's CLI this:

1. installs DuckDB's ``spatial`` extension from the ``duckdb-extension-spatial`` wheel, so the
   emulator's ``INSTALL spatial`` finds it locally instead of downloading it (fails offline);
2. adds ``*/*`` to the emulator's permitted upload media types: google-cloud-bigquery sends small
   ``load_table_from_dataframe`` payloads as ``*/*`` and the emulator rejects them otherwise
   (upstream bqemulator PR #266).
"""

from __future__ import annotations

import sys
from pathlib import Path


def spatial_extension_path() -> Path:
    """Path of the spatial extension file shipped in the ``duckdb-extension-spatial`` wheel."""
    import duckdb
    import duckdb_extension_spatial

    root = Path(duckdb_extension_spatial.__file__).resolve().parent / "extensions"
    wanted = root / f"v{duckdb.__version__}" / "spatial.duckdb_extension"
    if wanted.is_file():
        return wanted
    found = sorted(root.glob("*/spatial.duckdb_extension"))
    if not found:
        raise RuntimeError(f"no spatial.duckdb_extension under {root}")
    raise RuntimeError(
        f"duckdb {duckdb.__version__} has no matching spatial extension; the wheel ships "
        f"{[p.parent.name for p in found]} (install duckdb-extension-spatial=={duckdb.__version__})"
    )


def install_spatial_extension() -> None:
    """Install the wheel's spatial extension into DuckDB's default extension directory."""
    import duckdb

    con = duckdb.connect()
    try:
        installed = con.execute(
            "SELECT installed FROM duckdb_extensions() WHERE extension_name = 'spatial'"
        ).fetchone()
        if not (installed and installed[0]):
            con.install_extension(str(spatial_extension_path()))
        con.load_extension("spatial")
    finally:
        con.close()


def permit_any_upload_media_type() -> None:
    """Let the emulator accept ``*/*`` media parts (what the BigQuery client sends for loads)."""
    from bqemulator.api.routes import upload

    types = tuple(upload._PERMITTED_MEDIA_CONTENT_TYPES)  # noqa: SLF001 - deliberate patch
    if "*/*" not in types:
        upload._PERMITTED_MEDIA_CONTENT_TYPES = (*types, "*/*")  # noqa: SLF001


def main(argv: list[str] | None = None) -> None:
    """Apply the workarounds, then run the ``bqemulator`` CLI with ``argv``."""
    install_spatial_extension()
    permit_any_upload_media_type()
    from bqemulator.cli import main as bq_main

    bq_main(args=list(sys.argv[1:] if argv is None else argv), prog_name="bqemulator")


if __name__ == "__main__":
    main()
