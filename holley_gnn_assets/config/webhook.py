"""A Slack-compatible webhook sink: POST ``{"text": ...}`` with bounded retries.

The URL may carry a secret token, so it is never logged or shown whole: errors and logs show
only ``scheme://host``. Delivery never raises; it returns a :class:`Delivery` describing what
happened (tries made, last error).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

WEBHOOK_ENV = "HOLLEY_GNN_ALERT_WEBHOOK"
"""The variable holding the URL (read by ``settings``; named in error messages here)."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
"""Hosts a plain ``http://`` webhook may name: the token never leaves the machine (a local relay,
the tests' receiver); every other webhook must be ``https://``."""


def redact_url(url: str) -> str:
    """``scheme://host[:port]`` of a URL (no path, query or credentials)."""
    try:
        parts = urlsplit(str(url).strip())
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    return f"{parts.scheme or '?'}://{host}{port}"


def validate_webhook_url(url: str, setting: str = WEBHOOK_ENV) -> str:
    """Return the URL stripped, or raise ValueError (naming the setting, not echoing the URL)."""
    value = str(url).strip()
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        raise ValueError(f"{setting} is not a valid URL ({redact_url(value)})") from exc
    if parts.scheme not in {"http", "https"}:
        raise ValueError(
            f"{setting} must be an https:// URL; got scheme {parts.scheme or 'none'!r} "
            f"({redact_url(value)})"
        )
    if not parts.hostname:
        raise ValueError(f"{setting} has no host ({redact_url(value)})")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(
            f"{setting} must be an https:// URL: http:// would send its token in clear text "
            f"({redact_url(value)}); plain http is accepted only for this machine "
            f"({', '.join(sorted(LOOPBACK_HOSTS))})"
        )
    return value


@dataclass
class Delivery:
    """Outcome of one message delivery."""

    ok: bool
    tries: int
    status: int | None = None
    error: str | None = None


@dataclass
class WebhookSink:
    """POSTs JSON ``{"text": message}`` to a webhook, retrying transient failures.

    ``tries``, ``timeout_s`` and ``backoff_s`` come from the config section ``alerts``.
    """

    url: str
    tries: int
    timeout_s: float
    backoff_s: float
    sleep: Callable[[float], None] = time.sleep
    history: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.url = validate_webhook_url(self.url)
        if self.tries < 1:
            raise ValueError(f"webhook tries must be >= 1, got {self.tries}")

    @property
    def target(self) -> str:
        """Secret-free description of the destination."""
        return redact_url(self.url)

    def _post_once(self, body: bytes) -> int:
        req = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "holley-gnn-alerts"},
        )
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            return int(resp.status)

    def send(self, text: str) -> Delivery:
        """Deliver one message; never raises. Retries network errors, 429 and 5xx."""
        body = json.dumps({"text": text}).encode()
        result = Delivery(ok=False, tries=0)
        for attempt in range(1, self.tries + 1):
            result.tries = attempt
            try:
                result.status = self._post_once(body)
                result.ok, result.error = True, None
                break
            except urllib.error.HTTPError as exc:
                result.status, result.error = exc.code, f"HTTP {exc.code}"
                if exc.code != 429 and exc.code < 500:
                    break  # a client error will not go away by retrying
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                result.status, result.error = None, f"{type(exc).__name__}: {reason}"
            if attempt < self.tries:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
        if result.error:
            # never let a URL with a token leak through an exception text
            result.error = result.error.replace(self.url, self.target)
        self.history.append(result)
        return result
