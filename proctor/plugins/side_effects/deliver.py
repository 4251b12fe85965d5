"""Delivering one outbox row: the ``log`` and ``webhook`` effect types.

A webhook is a POST of the event as JSON, signed with HMAC-SHA256 over
``"<timestamp>.<body>"`` (headers ``Proctor-Signature: sha256=<hex>`` and
``Proctor-Timestamp: <unix seconds>``), with ``Idempotency-Key: <commit>:<effect>``.
Transient failures are tried again inside one delivery (tenacity): connection errors,
timeouts, 408, 429 and 5xx, waiting what ``Retry-After`` asks (capped by
``max-retry-after``) or a jittered exponential backoff. Any other answer (401, 404, a
redirect) is permanent: the row is ``failed`` and only ``proctor side-effects retry``
sends it again, since sending the same request again would get the same answer.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from proctor.plugins.side_effects.settings import EffectSettings

effects_log = logging.getLogger("proctor.side_effects")

SIGNATURE_HEADER = "Proctor-Signature"
TIMESTAMP_HEADER = "Proctor-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "Proctor-Event"
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504}) | frozenset(range(505, 600))


class DeliveryFailed(Exception):
    """A delivery that did not succeed; ``transient`` says whether trying later may."""

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None):
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


@dataclass(frozen=True)
class Outcome:
    """How one delivery went: ``attempts`` requests made, ``error`` when not delivered."""

    delivered: bool
    attempts: int
    error: str | None = None
    transient: bool = False
    seconds: float = 0.0


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``Proctor-Signature`` value a receiver recomputes to trust a delivery."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(
    secret: bytes,
    headers: Any,
    body: bytes,
    *,
    window: float = 300.0,
    now: float | None = None,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is within
    ``window`` seconds of ``now`` (a replayed old delivery is refused)."""
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > window:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _post(settings: EffectSettings, body: bytes, key: str, kind: str) -> None:
    import urllib.error
    import urllib.request

    secret = os.environ.get(settings.secret_env)
    if not secret:
        raise DeliveryFailed(
            f"environment variable {settings.secret_env} (the signing secret) is not set",
            transient=True,
        )
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        settings.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "proctor-webhook",
            SIGNATURE_HEADER: sign(secret.encode("utf-8"), timestamp, body),
            TIMESTAMP_HEADER: timestamp,
            IDEMPOTENCY_HEADER: key,
            EVENT_HEADER: kind,
        },
    )
    opener = _opener()
    try:
        with opener.open(request, timeout=settings.timeout) as response:
            response.read(65536)
    except urllib.error.HTTPError as exc:
        status = exc.code
        retry_after = retry_after_seconds(exc.headers.get("Retry-After"))
        exc.close()
        raise DeliveryFailed(
            f"{settings.url} answered {status}",
            transient=status in TRANSIENT_STATUSES,
            retry_after=retry_after,
        ) from None
    except (urllib.error.URLError, OSError) as exc:  # refused, reset, DNS, timeout
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"{settings.url} unreachable: {reason}", transient=True) from None


def _opener() -> Any:
    """An opener that follows no redirect: a redirect is the receiver's answer, not an
    invitation to resend the event elsewhere, so it surfaces as a permanent failure."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(NoRedirect)


def _wait(settings: EffectSettings) -> Any:
    from tenacity import wait_random_exponential

    backoff = wait_random_exponential(
        multiplier=0.2, max=max(min(settings.max_retry_after, 5.0), 0.2)
    )

    def wait(retry_state: Any) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, DeliveryFailed) and exc.retry_after is not None:
            return min(exc.retry_after, settings.max_retry_after)
        return float(backoff(retry_state))

    return wait


def deliver(
    settings: EffectSettings, payload: dict[str, Any], key: str, *, attempts: int | None = None
) -> Outcome:
    """Deliver one row now, trying transient failures again up to ``attempts`` times
    (the effect's ``max-attempts`` by default). Never raises for the receiver's sake."""
    start = time.monotonic()
    kind = str(payload.get("kind", ""))
    if settings.type == "log":
        effects_log.info(
            "%s %s by %s commit=%s proposal=%s decision=%s correlation=%s key=%s",
            payload.get("action"),
            payload.get("status"),
            payload.get("actor"),
            payload.get("commit"),
            payload.get("proposal"),
            payload.get("decision"),
            payload.get("correlation_id"),
            key,
        )
        return Outcome(True, 1, seconds=time.monotonic() - start)
    from tenacity import Retrying, retry_if_exception, stop_after_attempt

    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    tries = [0]

    def attempt() -> None:
        tries[0] += 1
        _post(settings, body, key, kind)

    retrying = Retrying(
        stop=stop_after_attempt(attempts or settings.max_attempts),
        wait=_wait(settings),
        retry=retry_if_exception(lambda e: isinstance(e, DeliveryFailed) and e.transient),
        reraise=True,
    )
    try:
        retrying(attempt)
    except DeliveryFailed as exc:
        return Outcome(False, tries[0], str(exc), exc.transient, time.monotonic() - start)
    return Outcome(True, tries[0], seconds=time.monotonic() - start)
