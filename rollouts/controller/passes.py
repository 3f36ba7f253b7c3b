"""What the Rollout and the Experiment reconciles share: their reads, and the bounded re-plan after a 409.

Rules:
- A pass starts from the object read from `reads` (the watch cache, or the API itself). An object
  gone, or outside this controller's scope, gets no pass: `gone(namespace, name)` is told instead.
- A 409 Conflict out of a pass (the object, or one it routes through, edited meanwhile) calls
  `refresh(doc, err)`, which reads what changed again from the API into the cache, and the object
  is planned again from that read: CONFLICT_RETRIES passes at most, the last 409 raised into the
  queue's backoff.
- A transient API fault (`Unavailable`) is retried by the reconciles with API_RETRY_WAIT between
  the attempts, a bounded number of times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import tenacity

from rollouts.platform.cluster import Conflict, NotFound

__all__ = ["API_RETRY_WAIT", "CONFLICT_RETRIES", "Admits", "Reads", "replanned"]

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 3
API_RETRY_WAIT = tenacity.wait_exponential(multiplier=0.05, max=1.0)
Obj = dict[str, Any]


class Reads(Protocol):
    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj: ...

    def list(
        self, kind: str, namespace: str | None = None, *, label_selector: dict[str, str] | None = None
    ) -> list[Obj]: ...


class Admits(Protocol):
    def admits(self, obj: Obj) -> bool: ...


def replanned(kind: str, namespace: str, name: str, *, reads: Reads, scope: Admits, run: Callable[[Obj], float | None],
              refresh: Callable[[Obj, Conflict], None],
              gone: Callable[[str, str], None] | None = None) -> float | None:
    """`run(doc)` on the object `kind` namespace/name as read, planned again after each 409 (the
    rules above); its requeue delay, or None for an object gone or out of scope."""
    for attempt in range(CONFLICT_RETRIES):
        try:
            doc = reads.get(kind, name, namespace)
        except NotFound:
            doc = None
        if doc is None or not scope.admits(doc):
            if gone is not None:
                gone(namespace, name)
            return None
        try:
            return run(doc)
        except Conflict as err:
            if attempt == CONFLICT_RETRIES - 1:
                raise
            log.info("%s %s/%s: %s; reading again and planning again", kind, namespace, name, err)
            refresh(doc, err)
    return None  # pragma: no cover - the loop returns or raises
