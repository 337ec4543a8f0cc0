"""The A/B assignment table (spec section 7, phase 2): each user of the recommendations output in
one arm, ``gnn`` or ``sql``, by a salted hash of ``email_lower``, built by the warehouse
(``sql/ab/assignment.sql``) into ``output.dataset`` in one ``CREATE OR REPLACE`` statement.

The arm depends only on the salt and the email: the same user keeps the same arm in every run
and on both engines. :func:`bucket_of` is the Python twin of the SQL expression.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from holley_gnn_assets.warehouse.base import Warehouse, WarehouseError
from holley_gnn_assets.warehouse.sql import Ident

ASSIGNMENT_SQL = "ab/assignment.sql"
N_BUCKETS = 10_000  # the SQL file's modulus
WRITE_MODES = ("on_clear_win", "always", "never")
ASSIGNMENT_COLUMNS = ["email_lower", "vehicle_id", "arm", "bucket", "salt_id"]


def salt_id(salt: str) -> str:
    """A short digest naming the salt (recorded in every row and in metadata, not the salt)."""
    return hashlib.sha256(salt.encode("utf-8")).hexdigest()[:12]


def bucket_of(email_lower: str, salt: str) -> int:
    """The user's bucket in [0, 10000): what ``sql/ab/assignment.sql`` computes."""
    digest = hashlib.sha256(f"{salt}:{email_lower}".encode()).hexdigest()
    return int(digest[:8], 16) % N_BUCKETS


def treatment_buckets(share: float) -> int:
    """Buckets below this number are in the GNN arm."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"ab_test.treatment_share={share!r} must be between 0 and 1")
    return round(share * N_BUCKETS)


def arm_of(email_lower: str, salt: str, share: float = 0.5) -> str:
    """``gnn`` or ``sql`` for one user (the Python twin of the table's ``arm``)."""
    return "gnn" if bucket_of(email_lower, salt) < treatment_buckets(share) else "sql"


def should_write(decision: str | None, mode: str) -> tuple[bool, str]:
    """Whether this run writes the assignment (``ab_test.write_assignment``), and why."""
    if mode not in WRITE_MODES:
        raise ValueError(f"ab_test.write_assignment={mode!r}: expected one of {WRITE_MODES}")
    if mode == "never":
        return False, "ab_test.write_assignment is 'never'"
    if mode == "always":
        return True, f"ab_test.write_assignment is 'always' (decision {decision!r})"
    if decision == "clear_win":
        return True, "decision is clear_win"
    return False, f"decision is {decision!r}, not clear_win (ab_test.write_assignment: " \
        "on_clear_win)"


def output_ref(warehouse: Warehouse, cfg: Mapping[str, Any]) -> Ident:
    """The recommendations output table, the assignment's users."""
    return Ident(warehouse.table_id(cfg["output"]["dataset"], cfg["output"]["table"]))


def audience_size(warehouse: Warehouse, cfg: Mapping[str, Any]) -> int | None:
    """Users in the recommendations output table, or None when it cannot be read (not written
    yet)."""
    ref = output_ref(warehouse, cfg).render()
    try:
        return int(warehouse.query_df(f"SELECT COUNT(*) AS n FROM {ref}").iloc[0]["n"])
    except WarehouseError:
        return None


def write_assignment(warehouse: Warehouse, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Replace ``output.dataset.<ab_test.table>`` with the assignment of every output user, in
    one statement; return the table id and the users per arm (no email in the result).

    A missing output table is a WarehouseError naming it; the previous assignment is unchanged.
    """
    ab, out = cfg["ab_test"], cfg["output"]
    if not str(ab["salt"]).strip():
        raise ValueError("ab_test.salt is empty: set a non-empty salt")
    params = {
        "recommendations": output_ref(warehouse, cfg),
        "salt": str(ab["salt"]),
        "salt_id": salt_id(str(ab["salt"])),
        "treatment_buckets": treatment_buckets(float(ab["treatment_share"])),
    }
    warehouse.materialize(ASSIGNMENT_SQL, "ab_assignment", params, out["dataset"], ab["table"])
    target = warehouse.table_id(out["dataset"], ab["table"])
    counts = warehouse.query_df(
        f"SELECT arm, COUNT(*) AS n FROM {Ident(target).render()} GROUP BY arm")
    per_arm = {str(r.arm): int(r.n) for r in counts.itertuples()}
    n = sum(per_arm.values())
    return {
        "table": target,
        "rows": n,
        "users_gnn": per_arm.get("gnn", 0),
        "users_sql": per_arm.get("sql", 0),
        "share_gnn": per_arm.get("gnn", 0) / n if n else None,
        "salt_id": params["salt_id"],
    }
