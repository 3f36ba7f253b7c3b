"""The rules of a lifecycle webhook's fields, checked once for `rollouts lint` and the controller. Pure.

Rules (`spec.strategy.canary.webhooks[]`, our superset; when each type is called: rollouts.plan.hooks):
- `name`: required, unique among the Rollout's webhooks (status.hooks[] is keyed by it).
- `type`: one of `TYPES`.
- `url`: an absolute http:// or https:// URL with a host (no other scheme is ever called).
- `timeout`: a duration from 100ms to 60s (default 10s); it bounds the whole call, its retries included.
- `retries`: 0 to 5 (default 0); more attempts after a connection error, a timeout, 429 or a 5xx.
- `interval`: a duration from 1s to 1h (default 10s): how often a gate that holds, or a
  `rollout`/`rollback` hook, is asked again.
- `webhookFailureLimit`: 0 to 100 (default 0).
- Durations are an int (seconds) or Go's syntax with ms, s, m, h (`300ms`, `1m30s`).
- `holding(status)`: a gate (or a rollout round) of the current update asked and not answered
  2xx: the rollout waits on a webhook, and the progress deadline does not run (as in a pause).
- A leaf: the spec models only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from rollouts.spec.model import CanaryStrategy, RolloutStatus, Webhook
from rollouts.spec.problems import Problem

CONFIRM_ROLLOUT = "confirm-rollout"
PRE_ROLLOUT = "pre-rollout"
ROLLOUT = "rollout"
CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"
CONFIRM_PROMOTION = "confirm-promotion"
POST_ROLLOUT = "post-rollout"
ROLLBACK = "rollback"
EVENT = "event"
TYPES = (CONFIRM_ROLLOUT, PRE_ROLLOUT, ROLLOUT, CONFIRM_TRAFFIC_INCREASE, CONFIRM_PROMOTION, POST_ROLLOUT, ROLLBACK,
         EVENT)

DEFAULT_TIMEOUT, MIN_TIMEOUT, MAX_TIMEOUT = 10.0, 0.1, 60.0
DEFAULT_INTERVAL, MIN_INTERVAL, MAX_INTERVAL = 10.0, 1.0, 3600.0
MAX_RETRIES = 5
MAX_FAILURE_LIMIT = 100
WEBHOOKS = "spec.strategy.canary.webhooks"
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


HOLDING = (CONFIRM_ROLLOUT, PRE_ROLLOUT, CONFIRM_TRAFFIC_INCREASE, CONFIRM_PROMOTION, ROLLOUT)
GATES = (CONFIRM_ROLLOUT, CONFIRM_TRAFFIC_INCREASE, CONFIRM_PROMOTION)  # a no holds; it counts no failure


def update(st: RolloutStatus) -> str:
    """The update a decision belongs to: one pod template with one step list."""
    return f"{st.current_pod_hash}.{st.current_step_hash}"


def holding(st: RolloutStatus) -> bool:
    """Whether a webhook of the current update holds the rollout (see the rules)."""
    mine = f"{update(st)}/"
    return any(e.type in HOLDING and e.decision and e.decision.startswith(mine) and not e.ok for e in st.hooks or [])


def seconds(value: int | str | None, default: float) -> float:
    """Seconds of a duration (see the rules); raises ValueError when it does not parse."""
    if value is None:
        return default
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int) or value.isdigit():
        return float(value)
    parts = _PART.findall(value)
    if not parts or "".join(a + b for a, b in parts) != value:
        raise ValueError(f"{value!r} is not a duration")
    return sum(float(amount) * _UNIT[unit] for amount, unit in parts)


def timeout_of(hook: Webhook) -> float:
    try:
        return min(max(seconds(hook.timeout, DEFAULT_TIMEOUT), MIN_TIMEOUT), MAX_TIMEOUT)
    except ValueError:
        return DEFAULT_TIMEOUT


def interval_of(hook: Webhook) -> float:
    try:
        return min(max(seconds(hook.interval, DEFAULT_INTERVAL), MIN_INTERVAL), MAX_INTERVAL)
    except ValueError:
        return DEFAULT_INTERVAL


def retries_of(hook: Webhook) -> int:
    return min(max(hook.retries or 0, 0), MAX_RETRIES)


def webhook_problems(canary: CanaryStrategy) -> list[Problem]:
    """Every problem of the canary's webhooks (see the rules), in field order."""
    found: list[Problem] = []
    seen: set[str] = set()
    for index, hook in enumerate(canary.webhooks or []):
        found += _hook_problems(hook, f"{WEBHOOKS}[{index}]", seen)
        seen.add(hook.name)
    limit = canary.webhook_failure_limit
    if limit is not None and not 0 <= limit <= MAX_FAILURE_LIMIT:
        found.append(Problem("spec.strategy.canary.webhookFailureLimit", f"{limit} is out of range",
                             f"use a number from 0 to {MAX_FAILURE_LIMIT}"))
    return found


def _hook_problems(hook: Webhook, path: str, seen: set[str]) -> list[Problem]:
    found: list[Problem] = []
    if not hook.name:
        found.append(Problem(f"{path}.name", "is required", "name the webhook (status.hooks[] is keyed by it)"))
    elif hook.name in seen:
        found.append(Problem(f"{path}.name", f"{hook.name!r} names another webhook too",
                             "give each webhook its own name"))
    if hook.type not in TYPES:
        found.append(Problem(f"{path}.type", f"{hook.type!r} is not a webhook type", "use one of " + ", ".join(TYPES)))
    found += _url_problems(hook.url, f"{path}.url")
    found += _duration_problems(hook.timeout, f"{path}.timeout", MIN_TIMEOUT, MAX_TIMEOUT, "100ms", "60s")
    found += _duration_problems(hook.interval, f"{path}.interval", MIN_INTERVAL, MAX_INTERVAL, "1s", "1h")
    if hook.retries is not None and not 0 <= hook.retries <= MAX_RETRIES:
        found.append(Problem(f"{path}.retries", f"{hook.retries} is out of range",
                             f"use a number from 0 to {MAX_RETRIES}"))
    return found


def _url_problems(url: str, path: str) -> list[Problem]:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return [Problem(path, "is not a URL", "write an absolute http:// or https:// URL")]
    if parts.scheme not in ("http", "https"):
        scheme = f"the scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        return [Problem(path, f"{url!r} has {scheme}; only http and https are called",
                        "write an absolute http:// or https:// URL")]
    if not host:
        return [Problem(path, f"{url!r} has no host", "write an absolute http:// or https:// URL with a host")]
    return []


def _duration_problems(value: int | str | None, path: str, low: float, high: float, low_text: str,
                       high_text: str) -> Sequence[Problem]:
    if value is None:
        return []
    try:
        found = seconds(value, 0.0)
    except ValueError:
        return [Problem(path, f"{value!r} is not a duration", "write a duration such as 500ms, 10s or 1m")]
    if not low <= found <= high:
        return [Problem(path, f"{value!r} is out of range", f"use a duration from {low_text} to {high_text}")]
    return []
