"""The port's error for an API server's answer: one mapping for KubeCluster and the light reader.

Rules:
- 404 NotFound; 409 AlreadyExists or Conflict by the Status reason; 410 Gone; 401/403
  Forbidden; 400/415/422 Invalid; 429, 5xx and no answer at all (status 0) Unavailable,
  keeping the answer's code (503 when there was none); anything else a ClusterError with
  its code. The message is the Status body's `message`, else the HTTP reason.
- No client library here: `rollouts.kube.light` imports it without the kubernetes client.
"""

from __future__ import annotations

import json
from typing import Any

from rollouts.platform.cluster import (
    AlreadyExists,
    ClusterError,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    Unavailable,
)


def api_error(status: int, body: Any, fallback: str) -> ClusterError:
    """The port's error for an API answer `status` with a Status `body` (bytes or str)."""
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {}
    parsed = parsed if isinstance(parsed, dict) else {}
    message = str(parsed.get("message") or fallback or f"HTTP {status}").strip()
    if status == 404:
        return NotFound(message)
    if status == 409:
        return AlreadyExists(message) if parsed.get("reason") == "AlreadyExists" else Conflict(message)
    if status == 410:
        return Gone(message)
    if status in (401, 403):
        return Forbidden(message)
    if status in (400, 415, 422):
        return Invalid(message)
    if status == 429 or status >= 500 or status == 0:
        unavailable = Unavailable(message)
        unavailable.code = status or Unavailable.code  # the request metric counts the answer's own code
        return unavailable
    error = ClusterError(message)
    error.code = status
    return error
