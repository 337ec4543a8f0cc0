"""One-way user keys: what the MLflow model holds in place of the users' email addresses.

The source contract's user key is ``email_lower`` (``LOWER(TRIM(email))``), an email address;
the project standard allows none in logs, metrics or MLflow. The MLflow model's graph snapshot
therefore names each graph user by ``user_key(email_lower)``: the SHA-256 hex digest of
``USER_KEY_PREFIX + email_lower`` (the fixed prefix separates these digests from any other plain
SHA-256 of an email). The key is the same in every process and needs no secret, so ``predict``
hashes an incoming ``user_id`` the same way and a graph user's ranking is unchanged. It is
pseudonymous, not anonymous: whoever already holds an email address can test whether it is a
graph user.

The pipeline's own graph snapshot (artifact store, ``gnn/data/{run}/heterodata.pt``) keeps the
contract keys; scoring maps the model's keys back to them through the run's ``user_nodes``
(``with_contract_user_ids``), so the score table joins to the warehouse's users as before.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from pathlib import Path

from holley_gnn_assets.graph.builder import GraphBundle, load_graph, save_graph

USER_KEY_PREFIX = "holley-gnn/user/v1:"


def user_key(email_lower: str) -> str:
    """The one-way key of a contract user key (64 hex digits)."""
    return hashlib.sha256((USER_KEY_PREFIX + email_lower).encode("utf-8")).hexdigest()


def user_keys(email_lowers: Iterable[str]) -> list[str]:
    """``user_key`` of each contract user key, in order."""
    return [user_key(str(e)) for e in email_lowers]


def save_keyed_graph(graph_file: str | Path, out: str | Path) -> Path:
    """Write ``graph_file``'s snapshot to ``out`` with every user id replaced by its
    ``user_key`` (graph, fingerprint and everything else unchanged)."""
    bundle = load_graph(graph_file)
    save_graph(dataclasses.replace(bundle, user_ids=user_keys(bundle.user_ids)), out)
    return Path(out)


def with_contract_user_ids(bundle: GraphBundle, email_lowers: Iterable[str]) -> GraphBundle:
    """``bundle`` (user ids are ``user_key``s) with each id that is the key of one of
    ``email_lowers`` replaced by that contract key; ids of users not given stay keys (they
    match no warehouse user)."""
    back = {user_key(str(e)): str(e) for e in email_lowers}
    return dataclasses.replace(bundle, user_ids=[back.get(k, k) for k in bundle.user_ids])
