"""BigQuery errors: which are transient (retried with backoff) and how errors are named."""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry

# HTTP-level errors worth another try
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    gexc.TooManyRequests,
    gexc.InternalServerError,
    gexc.BadGateway,
    gexc.ServiceUnavailable,
    gexc.GatewayTimeout,
    ConnectionError,
)
# BigQuery error reasons that are transient even when the status code says otherwise (403/400)
TRANSIENT_REASONS = frozenset(
    {"rateLimitExceeded", "jobRateLimitExceeded", "backendError", "internalError", "badGateway"}
)


def is_transient(exc: BaseException) -> bool:
    """True for errors that a retry can cure (throttling, backend hiccups), False otherwise."""
    errors = getattr(exc, "errors", None) or []
    reason = errors[0].get("reason") if errors and isinstance(errors[0], dict) else None
    if reason in TRANSIENT_REASONS:
        return True
    if isinstance(exc, gexc.RetryError):
        return False
    return isinstance(exc, TRANSIENT_ERRORS)


def make_retry(deadline_s: float, initial_s: float = 1.0, maximum_s: float = 16.0) -> Retry:
    """Exponential-backoff retry on transient errors, giving up after ``deadline_s`` seconds."""
    return Retry(
        predicate=is_transient,
        initial=initial_s,
        maximum=maximum_s,
        multiplier=2.0,
        timeout=deadline_s,
    )


@contextlib.contextmanager
def quiet_pandas_gbq_notices() -> Iterator[None]:
    """Silence the client's "use pandas-gbq instead" notices around DataFrame loads/reads."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pandas[-_]gbq.*", category=FutureWarning)
        warnings.filterwarnings(
            "ignore", message=".*pandas[-_]gbq.*", category=PendingDeprecationWarning
        )
        yield


def not_found_name(exc: BaseException) -> str | None:
    """The table or dataset a NotFound error names, if any."""
    match = re.search(r"Not found: (?:Table|Dataset) ([\w.:\-`]+)", str(exc))
    return match.group(1).strip("`") if match else None


def sql_head(sql: str, limit: int = 160) -> str:
    """The first ``limit`` characters of a statement, whitespace collapsed (for errors)."""
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[:limit] + " ..."
