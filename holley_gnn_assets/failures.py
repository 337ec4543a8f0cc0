"""Failures a retry cannot fix, and the wrapper that keeps Dagster from retrying them.

A missing table or column (the source contract), a bad config value, an empty input (0 fitment
rows, 0 users with a vehicle), a score table no rule can rank, a lost model registry or a run
with no champion to score with fail the same way on every try: the steps' retry policies
(``defs/executor.py``) would only delay the message by minutes. :func:`no_retry` turns them into
``dagster.Failure(allow_retries=False)``, whose message is the original error's, so the step
fails once, at once; every other error (a warehouse or network hiccup) is retried as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class PermanentError(RuntimeError):
    """An error that fails the same way on every retry (input, contract, config, registry)."""


class EmptyInputError(PermanentError, ValueError):
    """An input with nothing to recommend from: 0 fitment rows, 0 users with a vehicle."""


def permanent_types() -> tuple[type[BaseException], ...]:
    """Every exception type classified as not retryable."""
    from holley_gnn_assets.config.validation import SettingsError
    from holley_gnn_assets.recommend.apply_rules import ScoreTableError
    from holley_gnn_assets.training.sampler import NoInteractionsError
    from holley_gnn_assets.warehouse.base import ContractError

    return (PermanentError, ContractError, SettingsError, ScoreTableError, NoInteractionsError)


@contextlib.contextmanager
def no_retry() -> Iterator[None]:
    """Raise a permanent error as ``Failure(allow_retries=False)`` (chained, same message)."""
    from dagster import Failure

    try:
        yield
    except permanent_types() as exc:
        raise Failure(description=f"{type(exc).__name__}: {exc} (not retried: a retry cannot "
                                  "fix this)", allow_retries=False) from exc
