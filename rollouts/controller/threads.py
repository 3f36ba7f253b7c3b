"""The Manager's threaded mode: lead, list, watch and work in background threads (production).

Rules:
- With leader election a thread runs the LeaderElector; work starts only on
  `on_started` and stops for good on `on_stopped` (lost lease: the process should exit
  and start a new term, as Argo does; `healthy()` turns False).
- Starting work: every watched kind is listed into the cache first ("caches synced"),
  then one watch thread per kind feeds the router and the queue, `workers` threads take
  Rollout keys and `analysis_workers` threads AnalysisRun keys, and a resync thread
  enqueues every known Rollout and AnalysisRun (but finished runs: nothing is left to do for
  them) every `resync_period` wall seconds.
- A watch that ends resumes from its resourceVersion; `Gone` relists; API faults are
  retried after a pause. An event whose object cannot be routed is logged, counted
  (`controller_watch_event_errors_total`) and skipped: bad data never ends a watch or
  a worker. A thread that dies anyway is named in `died` and `healthy()` turns False,
  so /healthz fails and Kubernetes restarts the process. Nothing here decides
  anything about a Rollout.
- `stop()` is idempotent: it shuts the queue, closes every open watch (from this
  thread) and joins the threads; the elector releases the lease on a graceful stop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from rollouts.controller.fanin import Scope, finished_run
from rollouts.controller.informer import Cache
from rollouts.controller.leader import LeaderElector
from rollouts.controller.metrics import ControllerMetrics
from rollouts.controller.workqueue import Key, WorkQueue
from rollouts.platform.clock import Clock
from rollouts.platform.cluster import Cluster, ClusterError, Gone, WatchStream

__all__ = ["ThreadedRun"]

log = logging.getLogger(__name__)


class Host(Protocol):
    """What the threads need of the Manager (controller.manager): its parts and three calls."""

    cluster: Cluster
    clock: Clock
    queue: WorkQueue
    cache: Cache
    metrics: ControllerMetrics
    scope: Scope
    elector: LeaderElector | None
    watched: tuple[str, ...]
    workers: int
    analysis_workers: int
    watch_timeout: float
    resync_period: float | None
    leading: bool

    def relist(self, kind: str) -> None: ...

    def take_in(self, kind: str, event_type: str, obj: Any) -> None: ...

    def process(self, key: Key) -> None: ...


class ThreadedRun:
    def __init__(self, manager: Host) -> None:
        self.m = manager
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._streams: set[WatchStream] = set()
        self._died: list[str] = []

    def start(self) -> None:
        if self.m.elector is None:
            self._start_working()
            return
        self._spawn(self.m.elector.run, self.m.clock, self._stop, on_started=self._start_working, on_stopped=self._lost)

    def run(self) -> None:
        """Run until stop() is called from another thread (or Ctrl-C)."""
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        self._stop.set()
        self.m.queue.shutdown()
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.close()
        for thread in list(self._threads):
            if thread is not threading.current_thread():
                thread.join(timeout=30)

    def healthy(self) -> bool:
        """False once stopped, or once a thread died (it should never: each loop keeps going)."""
        return not self._stop.is_set() and not self.died

    @property
    def died(self) -> list[str]:
        """The names of threads that ended by an exception while the run was going."""
        with self._lock:
            return list(self._died)

    def _start_working(self) -> None:
        """Fill the cache first (no worker may plan from a half-listed cache), then watch and work."""
        self.m.leading = True
        self.m.metrics.leader.set(1)
        for kind in self.m.watched:
            while not self._stop.is_set():
                try:
                    self.m.relist(kind)
                    break
                except ClusterError as err:
                    log.warning("initial list of %s: %s; retrying", kind, err)
                    self._stop.wait(1.0)
        for kind in self.m.watched:
            self._spawn(self._watch_loop, kind)
        for _ in range(self.m.workers):
            self._spawn(self._work_loop, frozenset({"Rollout", "Experiment"}))
        for _ in range(self.m.analysis_workers):
            self._spawn(self._work_loop, frozenset({"AnalysisRun"}))
        if self.m.resync_period:
            self._spawn(self._resync_loop, self.m.resync_period)

    def _resync_loop(self, period: float) -> None:
        """Every `period` (wall) seconds, reconcile every known Rollout and AnalysisRun once more
        (Argo's informer resync): a missed event can delay a reconcile, never lose it."""
        while not self._stop.wait(period):
            for key in resync_keys(self.m.cache, self.m.scope):
                self.m.queue.add(key)

    def _lost(self) -> None:
        self.m.leading = False
        self.m.metrics.leader.set(0)
        if not self._stop.is_set():
            log.error("lost leadership: stopping (a new term starts in a new process, as Argo does)")
            self._stop.set()
            self.m.queue.shutdown()

    def _spawn(self, target: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        name = f"rollouts-{getattr(target, '__name__', 'worker').lstrip('_')}"

        def guarded() -> None:
            try:
                target(*args, **kwargs)
            except BaseException:
                if not self._stop.is_set():
                    with self._lock:
                        self._died.append(name)
                    log.critical("thread %s died; /healthz now fails so the process is restarted", name,
                                 exc_info=True)

        thread = threading.Thread(target=guarded, daemon=True, name=name)
        self._threads.append(thread)
        thread.start()

    def _work_loop(self, kinds: frozenset[str]) -> None:
        while not self._stop.is_set():
            key = self.m.queue.get(timeout=1.0, kinds=kinds)
            if key is not None:
                self.m.process(key)

    def _watch_loop(self, kind: str) -> None:
        cursor: str | None = None
        while not self._stop.is_set():
            try:
                stream = self.m.cluster.watch(kind, self.m.scope.namespace, resource_version=cursor,
                                              timeout=self.m.watch_timeout)
            except Gone:
                cursor = None
                self._relist_quietly(kind)
                continue
            except ClusterError as err:
                log.warning("watch %s: %s; retrying", kind, err)
                self._stop.wait(1.0)
                continue
            with self._lock:
                self._streams.add(stream)
            if self._stop.is_set():
                stream.close()
            try:
                for event in stream:
                    self.m.take_in(kind, event.type, event.object)
                cursor = stream.resource_version
            except Gone:
                cursor = None
                self._relist_quietly(kind)
            except ClusterError as err:
                log.warning("watch %s dropped: %s; resuming", kind, err)
                cursor = stream.resource_version
            except Exception:
                log.exception("watch %s failed; resuming after a pause", kind)
                cursor = stream.resource_version
                self._stop.wait(1.0)
            finally:
                with self._lock:
                    self._streams.discard(stream)

    def _relist_quietly(self, kind: str) -> None:
        try:
            self.m.relist(kind)
        except ClusterError as err:
            log.warning("relist %s: %s", kind, err)
            self._stop.wait(1.0)


def resync_keys(cache: Cache, scope: Scope) -> list[Key]:
    """What a resync queues: every Rollout, Experiment and live AnalysisRun in scope (a finished
    run has nothing left to do)."""
    keys = []
    for kind in ("Rollout", "AnalysisRun", "Experiment"):
        for obj in cache.list(kind, scope.namespace):
            if scope.admits(obj) and not (kind == "AnalysisRun" and finished_run(obj)):
                meta = obj.get("metadata") or {}
                keys.append(Key(kind, meta.get("namespace") or "default", str(meta.get("name"))))
    return keys
