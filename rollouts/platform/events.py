"""Kubernetes Events for the objects the controllers manage, written through the Cluster port.

Rules (client-go's EventRecorder and EventCorrelator, simplified):
- An event is a core/v1 `Event` in the object's namespace: `involvedObject`
  (apiVersion, kind, name, namespace, uid, resourceVersion), `reason`, `message`,
  `type` (Normal | Warning), `count`, `firstTimestamp`, `lastTimestamp`, `source`,
  `reportingComponent`, `reportingInstance`. Times come from the injected clock.
- The same (object, type, reason, message) recorded again does not create a second
  Event: the first one's `count` goes up and its `lastTimestamp` moves (merge
  patch). If that Event is gone meanwhile, a new one is created.
- Recording is best effort: an API fault is logged and dropped, it never fails the
  reconcile that recorded it. The `rollout_events_total{type,reason}` counter counts
  every recording, written or not.
- Names are `<object>.<time><sequence><random>`: two controllers recording in the same
  instant (a stepped clock, a restart) do not collide.
- Every recorded event is also kept in `recorder.recorded` (bounded), which tests and
  the demo read without listing the cluster.
- Bounded in bytes, not only in entries: a message longer than MAX_MESSAGE characters
  (Kubernetes' own limit on an events.k8s.io note) is cut there with a note of how much
  was cut, before it is written, kept or passed on (an error body or a hostile value can
  be any size); the correlation cache (_CACHE_SIZE keys) keys on a 16-byte digest of
  (object, type, reason, message) and keeps (namespace, Event name, count), so each entry
  has a fixed size whatever the message; the recent events (_KEEP) hold cut messages.
- Listeners (`subscribe`) are called with (object, Recorded) after each recording,
  written or not. A listener must return at once (the notifier only enqueues); one
  that raises is logged and never fails the reconcile.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from rollouts.platform.clock import Clock, to_utc
from rollouts.platform.cluster import AlreadyExists, Cluster, ClusterError, NotFound
from rollouts.platform.times import format_time

__all__ = ["MAX_MESSAGE", "EventRecorder", "EventType", "Recorded", "bounded_message"]

log = logging.getLogger(__name__)

_CACHE_SIZE = 4096
_KEEP = 1000
MAX_MESSAGE = 1024  # characters: Kubernetes' NoteLengthLimit for events.k8s.io/v1


def bounded_message(message: str) -> str:
    """The message, cut to MAX_MESSAGE characters in all (the cut says how long it was)."""
    if len(message) <= MAX_MESSAGE:
        return message
    note = f"... (cut from {len(message)} characters)"
    return message[:MAX_MESSAGE - len(note)] + note


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True)
class Recorded:
    kind: str
    namespace: str
    name: str
    type: str
    reason: str
    message: str


Listener = Callable[[dict[str, Any], Recorded], None]


class EventMetrics(Protocol):
    """Where recordings are counted (controller.metrics.ControllerMetrics fits)."""

    @property
    def rollout_events(self) -> Any: ...


class EventRecorder:
    def __init__(
        self,
        cluster: Cluster,
        *,
        clock: Clock,
        component: str = "rollouts-controller",
        instance: str = "",
        metrics: EventMetrics | None = None,
    ) -> None:
        self._cluster = cluster
        self._clock = clock
        self._component = component
        self._instance = instance
        self._metrics = metrics
        self._lock = threading.Lock()
        self._seen: OrderedDict[bytes, tuple[str, str, int]] = OrderedDict()  # digest -> (ns, Event name, count)
        self._seq = itertools.count(1)
        self.recorded: deque[Recorded] = deque(maxlen=_KEEP)
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(obj, recorded)` after every recording (it must not block)."""
        self._listeners.append(listener)

    def record(
        self, obj: dict[str, Any], *, type: str = EventType.NORMAL, reason: str, message: str  # noqa: A002
    ) -> None:
        meta = obj.get("metadata") or {}
        kind, namespace, name = obj.get("kind", ""), meta.get("namespace") or "default", meta.get("name", "")
        message = bounded_message(message)
        recorded = Recorded(kind, namespace, name, str(type), reason, message)
        self.recorded.append(recorded)
        if self._metrics is not None:
            self._metrics.rollout_events.labels(namespace, name, str(type), reason).inc()
        log.info("event %s %s/%s/%s %s: %s", type, kind, namespace, name, reason, message)
        key = hashlib.blake2b(repr((kind, namespace, name, meta.get("uid") or "", str(type), reason, message)).encode(),
                              digest_size=16).digest()
        try:
            self._write(obj, recorded, key)
        except ClusterError as err:
            log.warning("could not record event %s on %s/%s/%s: %s", reason, kind, namespace, name, err)
        for listener in self._listeners:
            try:
                listener(obj, recorded)
            except Exception:  # a listener's bug never fails the reconcile that recorded
                log.exception("event listener failed on %s %s/%s/%s", reason, kind, namespace, name)

    def _write(self, obj: dict[str, Any], recorded: Recorded, key: bytes) -> None:
        now = format_time(self._clock.now())
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None:
                self._seen.move_to_end(key)
        if seen is not None:
            namespace, event_name, count = seen
            try:
                self._cluster.patch("Event", event_name, namespace, {"count": count + 1, "lastTimestamp": now})
                self._remember(key, (namespace, event_name, count + 1))
                return
            except NotFound:
                pass
        created = self._create(obj, recorded, now)
        self._remember(key, (created["metadata"]["namespace"], created["metadata"]["name"], 1))

    def _create(self, obj: dict[str, Any], recorded: Recorded, now: str) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        kind, namespace, name, type_, reason, message = (recorded.kind, recorded.namespace, recorded.name,
                                                         recorded.type, recorded.reason, recorded.message)
        uid = meta.get("uid") or ""
        involved = {
            "apiVersion": obj.get("apiVersion", ""),
            "kind": kind,
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        stamp = int(to_utc(self._clock.now()).timestamp() * 1e9)
        for _ in range(3):
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{name[:200]}.{stamp:x}{next(self._seq):04x}{secrets.token_hex(2)}",
                             "namespace": namespace},
                "involvedObject": involved,
                "reason": reason,
                "message": message,
                "type": type_,
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": self._component, **({"host": self._instance} if self._instance else {})},
                "reportingComponent": self._component,
                "reportingInstance": self._instance,
            }
            try:
                return self._cluster.create(event)
            except AlreadyExists:
                continue
        raise AlreadyExists(f"could not find a free Event name for {kind}/{namespace}/{name}")

    def _remember(self, key: bytes, value: tuple[str, str, int]) -> None:
        with self._lock:
            self._seen[key] = value
            self._seen.move_to_end(key)
            while len(self._seen) > _CACHE_SIZE:
                self._seen.popitem(last=False)

    def for_object(self, kind: str, namespace: str, name: str) -> list[Recorded]:
        """Events recorded (by this recorder) for one object, oldest first."""
        return [e for e in list(self.recorded) if (e.kind, e.namespace, e.name) == (kind, namespace, name)]
