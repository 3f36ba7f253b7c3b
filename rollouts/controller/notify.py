"""Notifications, the shell: events in, JSON POSTs out, on a worker thread of their own.

Rules:
- `Notifier.offer(obj, recorded)` is an EventRecorder listener: it decides the trigger
  (`rollouts.plan.notify.trigger_of`), snapshots what templates need and appends to a
  bounded queue, holding a lock for a few dict operations only. It never reads the
  cluster, never waits and never raises into the reconcile. A notice no route of the
  loaded config wants is not queued; a full queue drops the notice: counted (`dropped`)
  and logged (the first, then every 1000th).
- One daemon worker thread (started on the first offer, so step mode and threaded mode
  both deliver) reads the ConfigMap given as `NAMESPACE/NAME` and the Secrets it
  references, at most every `settings.reloadSeconds` and whenever `reload()` is called
  (the Manager calls it when a watch sees the ConfigMap change). A ConfigMap that does
  not parse keeps the last good one; its errors (each naming the key and the fix) are
  logged and recorded once per resourceVersion as a Warning Event
  `NotificationConfigInvalid` on the ConfigMap. No ConfigMap: nothing is sent.
- Delivery: each route the notice matches gets one POST of its rendered body
  (`rollouts.plan.notify_render`), with the route's timeout on every attempt and tenacity
  retries (route.retries, on a connection fault, a timeout, 429 or 5xx), then it is
  counted as `failed` and logged. A hanging or refusing endpoint delays only this thread.
  A redirect is not followed (it is a non-2xx answer). The stdlib's urllib does the POST:
  it logs nothing (urllib3's debug log would print the request line, a secret URL's path).
- Secrets (a URL or header read from a Secret) are used in the request only: every log
  line this module writes is redacted with every secret value read (and a secret URL's
  path and query, a header's token after `Bearer `), and no secret is a template
  variable, so none reaches a body, an event, or status.
- `gate-held` also fires for a pause held longer than `settings.heldAfter` seconds
  (RolloutPaused seen, no resume, abort or completion since), once per pause, checked on
  the worker's ticks with the injected clock.
Size: over 300 lines because the listener, the worker, the ConfigMap and Secret reading and
  the delivery share one lock and one loaded config; split them when a second sink arrives.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import tenacity

from analysis.args import redact
from rollouts.plan import notify
from rollouts.plan.notify import Config, ConfigError, Notice, Route, SecretRef
from rollouts.plan.notify_render import load, render
from rollouts.platform.clock import Clock, to_utc
from rollouts.platform.cluster import ClusterError, NotFound
from rollouts.platform.events import EventRecorder, EventType, Recorded
from rollouts.platform.times import format_time

__all__ = ["Delivery", "Notifier", "secret_forms"]

log = logging.getLogger(__name__)
TICK = 0.5  # seconds between the worker's checks of held pauses and reloads
RETRY_WAIT = tenacity.wait_exponential(multiplier=0.2, max=2.0)
_RESUMED = frozenset({"RolloutResumed", "RolloutCompleted", "RolloutAborted", "RolloutUpdated", "RolloutRetried"})


_Pause = tuple[datetime, str | None, tuple[dict[str, str], dict[str, str]]]


class _Retryable(Exception):
    """A 429 or 5xx answer: worth another attempt."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A notification is POSTed where it is configured; a redirect is an answer (3xx), not followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)
_FAULTS = (OSError, _Retryable)  # URLError, timeouts and refused connections are OSErrors


@dataclass
class Delivery:
    """What happened to one POST (kept in `Notifier.deliveries`, bounded, for tests and debugging)."""

    route: str
    trigger: str
    object: str
    status: int | None = None
    error: str | None = None
    attempts: int = 0


@dataclass
class _Loaded:
    config: Config = field(default_factory=Config)
    secrets: dict[SecretRef, str] = field(default_factory=dict)
    version: str | None = None
    loaded_at: float | None = None


class Notifier:
    def __init__(self, cluster: Any, *, clock: Clock, configmap: tuple[str, str], recorder: EventRecorder | None = None,
                 retry_wait: tenacity.wait.wait_base = RETRY_WAIT, tick: float = TICK,
                 on_result: Callable[[str], None] | None = None) -> None:
        self._cluster, self._clock, self._recorder = cluster, clock, recorder
        self._on_result = on_result  # sent | failed | dropped, for the controller's metrics
        self.namespace, self.name = configmap
        self._retry_wait, self._tick = retry_wait, tick
        self._lock = threading.Condition()
        self._pending: deque[Notice] = deque()
        self._paused: dict[tuple[str, str, str], _Pause] = {}  # Rollout key -> since, message (None: told), labels
        self._busy = False
        self._turns = self._turns_wanted = 0
        self._reload = True
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._loaded = _Loaded()
        self._invalid_seen: str | None = None
        self.dropped = self.sent = self.failed = 0
        self.deliveries: deque[Delivery] = deque(maxlen=200)

    # ------------------------------------------------------------ the listener (reconcile path)

    def offer(self, obj: dict[str, Any], recorded: Recorded) -> None:
        """Enqueue the notice an event makes, if any; returns at once."""
        meta = obj.get("metadata") or {}
        key = (recorded.kind, recorded.namespace, recorded.name)
        trigger = notify.trigger_of(recorded.kind, recorded.reason, owned=bool(meta.get("ownerReferences")))
        with self._lock:
            if recorded.kind == "Rollout" and recorded.reason == "RolloutPaused":
                self._paused.setdefault(key, (self._clock.now(), recorded.message, _labels(meta)))
            elif recorded.kind == "Rollout" and recorded.reason in _RESUMED:
                self._paused.pop(key, None)
            if trigger is None:
                return
            notice = self._notice(trigger, recorded, meta)
            if self._loaded.loaded_at is not None and not notify.routes_for(self._loaded.config, notice):
                return  # no route wants it: it takes no place in the queue
            self._enqueue(notice)
            self._ensure_worker()

    def _notice(self, trigger: str, recorded: Recorded, meta: dict[str, Any]) -> Notice:
        labels, annotations = _labels(meta)
        return Notice(trigger=trigger, kind=recorded.kind, namespace=recorded.namespace, name=recorded.name,
                      reason=recorded.reason, type=recorded.type, message=recorded.message,
                      time=format_time(self._clock.now()), labels=labels, annotations=annotations)

    def _enqueue(self, notice: Notice) -> None:
        """Under the lock."""
        if len(self._pending) >= self._loaded.config.settings.queue_size:
            self.dropped += 1
            self._count("dropped")
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("notification queue full (%d): dropped %s for %s %s/%s (%d dropped so far)",
                            len(self._pending), notice.trigger, notice.kind, notice.namespace, notice.name,
                            self.dropped)
            return
        self._pending.append(notice)
        self._lock.notify_all()

    def _ensure_worker(self) -> None:
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(target=self._work, name="rollouts-notifier", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------ control

    def start(self) -> None:
        with self._lock:
            self._ensure_worker()

    def reload(self) -> None:
        """Read the ConfigMap (and its Secrets) again on the worker's next turn."""
        with self._lock:
            self._reload = True
            self._lock.notify_all()

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait (wall time, for tests and shutdown) until one whole worker turn ran with nothing
        pending: every notice offered before the call is delivered or failed. False on timeout."""
        with self._lock:
            self._ensure_worker()
            wanted = self._turns + (2 if self._busy else 1)  # a turn under way may have started before the call
            self._turns_wanted = max(self._turns_wanted, wanted)
            self._lock.notify_all()
            return self._lock.wait_for(lambda: not self._pending and not self._busy and self._turns >= wanted,
                                       timeout)

    @property
    def config(self) -> Config:
        return self._loaded.config

    # ------------------------------------------------------------ the worker

    def _work(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._pending or self._stopped or self._reload
                                    or self._turns < self._turns_wanted, self._tick)
                if self._stopped:
                    return
                self._busy = True
            try:
                self._turn()
            except Exception as err:  # noqa: BLE001 - the worker must outlive any bug in one turn
                log.error("notifier turn failed: %s", self._redact(f"{type(err).__name__}: {err}"))
            finally:
                with self._lock:
                    self._busy = False
                    self._turns += 1
                    self._lock.notify_all()

    def _turn(self) -> None:
        self._refresh()
        self._held_pauses()
        while True:
            with self._lock:
                if not self._pending or self._stopped:
                    return
                notice = self._pending.popleft()
            for route in notify.routes_for(self._loaded.config, notice):
                self._deliver(route, notice)

    def _held_pauses(self) -> None:
        held_after = self._loaded.config.settings.held_after
        if not held_after:
            return
        now = self._clock.now()
        with self._lock:
            for key, (since, message, labels) in list(self._paused.items()):
                held = (to_utc(now) - to_utc(since)).total_seconds()
                if held < held_after or message is None:
                    continue
                self._paused[key] = (since, None, labels)  # once per pause
                kind, namespace, name = key
                self._pending.append(Notice(
                    trigger="gate-held", kind=kind, namespace=namespace, name=name, reason="RolloutPaused",
                    type=EventType.WARNING.value, time=format_time(now), labels=labels[0], annotations=labels[1],
                    message=f"held for {held:.0f}s (longer than heldAfter {held_after}s): {message}"))

    # ------------------------------------------------------------ config

    def _refresh(self) -> None:
        loaded = self._loaded
        now = self._clock.monotonic()
        due = loaded.loaded_at is None or now - loaded.loaded_at >= loaded.config.settings.reload_seconds
        with self._lock:
            wanted, self._reload = self._reload, False
        if not (due or wanted):
            return
        try:
            doc = self._cluster.get("ConfigMap", self.name, self.namespace)
        except NotFound:
            if loaded.version != "absent":
                log.warning("notifications ConfigMap %s/%s not found: no notifications are sent until it exists",
                            self.namespace, self.name)
            self._loaded = _Loaded(version="absent", loaded_at=now)
            return
        except ClusterError as err:
            log.warning("notifications ConfigMap %s/%s could not be read (keeping the last one): %s",
                        self.namespace, self.name, err)
            loaded.loaded_at = now
            return
        version = str((doc.get("metadata") or {}).get("resourceVersion") or "")
        try:
            config = load(doc.get("data") or {})
        except ConfigError as err:
            self._invalid(doc, version, err)
            loaded.loaded_at = now
            return
        secrets = self._read_secrets(config)
        if version != loaded.version:
            log.info("notifications: %d route(s) from ConfigMap %s/%s", len(config.routes), self.namespace, self.name)
        self._loaded = _Loaded(config=config, secrets=secrets, version=version, loaded_at=now)

    def _invalid(self, doc: dict[str, Any], version: str, err: ConfigError) -> None:
        text = f"ConfigMap {self.namespace}/{self.name} is not a valid notifications config: {err}"
        if self._invalid_seen == version:
            return
        self._invalid_seen = version
        log.error("%s (keeping the last good config)", text)
        if self._recorder is not None:
            self._recorder.record(doc, type=EventType.WARNING, reason="NotificationConfigInvalid", message=text)

    def _read_secrets(self, config: Config) -> dict[SecretRef, str]:
        refs = {r.url_secret for r in config.routes if r.url_secret} | {
            h.secret for r in config.routes for h in r.headers if h.secret}
        values = {}
        for ref in refs:
            try:
                values[ref] = self._secret(ref)
            except LookupError as err:
                log.error("notifications ConfigMap %s/%s: %s (routes using it are skipped)", self.namespace,
                          self.name, err)
        return values

    def _secret(self, ref: SecretRef) -> str:
        try:
            secret = self._cluster.get("Secret", ref.name, self.namespace)
        except (NotFound, ClusterError):
            raise LookupError(f"secret {ref.name!r} cannot be read in namespace {self.namespace!r}") from None
        if ref.key in (secret.get("data") or {}):
            return base64.b64decode(secret["data"][ref.key]).decode()
        if ref.key in (secret.get("stringData") or {}):
            return str(secret["stringData"][ref.key])
        raise LookupError(f"key {ref.key!r} does not exist in secret {ref.name!r}")

    def _redact(self, text: str) -> str:
        return redact(text, secret_forms(self._loaded.secrets.values()))

    # ------------------------------------------------------------ delivery

    def _deliver(self, route: Route, notice: Notice) -> None:
        delivery = Delivery(route=route.name, trigger=notice.trigger, object=f"{notice.namespace}/{notice.name}")
        self.deliveries.append(delivery)
        try:
            body = render(route, notice, self._loaded.config)
            url, headers = self._request_parts(route)
        except (ValueError, LookupError) as err:
            delivery.error = self._redact(str(err))
            self._failed(route, notice, delivery)
            return
        retrying = tenacity.Retrying(retry=tenacity.retry_if_exception_type(_FAULTS),
                                     stop=tenacity.stop_after_attempt(route.retries + 1), wait=self._retry_wait,
                                     reraise=True)
        data = json.dumps(body).encode()
        try:
            for attempt in retrying:
                with attempt:
                    delivery.attempts += 1
                    delivery.status = _post(url, data, headers, route.timeout)
        except _FAULTS as err:
            delivery.error = self._redact(f"{type(err).__name__}: {err}")
            self._failed(route, notice, delivery)
            return
        if delivery.status is None or not 200 <= delivery.status < 300:
            delivery.error = f"HTTP {delivery.status}"
            self._failed(route, notice, delivery)
            return
        self.sent += 1
        self._count("sent")
        log.info("notification %s for %s %s/%s sent to route %s (HTTP %d)", notice.trigger, notice.kind,
                 notice.namespace, notice.name, route.name, delivery.status)

    def _request_parts(self, route: Route) -> tuple[str, dict[str, str]]:
        secrets = self._loaded.secrets
        if route.url_secret is not None and route.url_secret not in secrets:
            raise LookupError(f"the URL's secret {route.url_secret.name!r} could not be read")
        url = route.url if route.url is not None else secrets[route.url_secret]  # type: ignore[index]
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"route {route.name!r}: the URL in its secret is not http(s)")
        headers = {"Content-Type": "application/json"}
        for header in route.headers:
            if header.secret is not None:
                if header.secret not in secrets:
                    raise LookupError(f"header {header.name!r}: its secret {header.secret.name!r} could not be read")
                headers[header.name] = secrets[header.secret]
            elif header.value is not None:
                headers[header.name] = header.value
        return url, headers

    def _count(self, result: str) -> None:
        if self._on_result is not None:
            try:
                self._on_result(result)
            except Exception:  # the metrics never stop a delivery
                log.exception("notification result not counted")

    def _failed(self, route: Route, notice: Notice, delivery: Delivery) -> None:
        self.failed += 1
        self._count("failed")
        log.warning("notification %s for %s %s/%s to route %s failed after %d attempt(s): %s", notice.trigger,
                    notice.kind, notice.namespace, notice.name, route.name, delivery.attempts, delivery.error)


def _post(url: str, data: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST once; the status code (raises _Retryable on 429/5xx, OSError on a fault or a timeout)."""
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            answer.read(65536)
            return int(answer.status)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 429 or err.code >= 500:
            raise _Retryable(f"HTTP {err.code}") from None
        return int(err.code)


def secret_forms(values: Any) -> set[str]:
    """Every secret value, and the parts of it an error may quote alone: a URL's path and query,
    a header's token after its scheme (`Bearer <token>`)."""
    forms = set()
    for value in values:
        forms.add(value)
        parts = urllib.parse.urlsplit(value) if value.lower().startswith(("http://", "https://")) else None
        if parts is not None:
            forms.update(p for p in (parts.path, parts.query, parts.netloc.rpartition("@")[0]) if len(p) > 1)
        elif " " in value:
            forms.add(value.split(" ", 1)[1])
    return forms


def _labels(meta: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    return ({str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
            {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()})
