"""The controller process: watches feed one work queue; workers run the two reconcilers.

Rules (sample-controller's loop, Argo's wiring, argo-rollouts.md §8):
- Watches on Rollouts, ReplicaSets, AnalysisRuns, VirtualServices, DestinationRules,
  Services and AnalysisTemplates feed the cache (rollouts.controller.informer) and, through
  rollouts.controller.fanin, make keys due: a Rollout for the Rollout reconciler
  (rollouts.controller.reconciler), an AnalysisRun for the analysis controller, an
  Experiment for the Experiment reconciler (rollouts.controller.experiments).
- Level-triggered: a fresh watch lists everything first, so a new Manager on an old
  cluster reconciles every object from status alone. A watch that is `Gone` starts
  over the same way, after the cache took a fresh list. Workers start only once every
  watched kind has been listed into the cache (client-go's "caches synced"), else a
  Rollout could be judged against a half-listed cache (templates or Services "not found").
- Scope: `namespace` limits every watch; `instance_id` shards objects by label
  (rollouts.controller.fanin.Scope).
- Every API request goes through rollouts.controller.clientset.MeteredCluster: counted by verb and
  status code, so a fault the shells retried away is still recorded.
- The metrics follow what the shells already hold (rollouts.controller.metrics): each
  successful Rollout pass reports its plan (`observe_rollout`), a Rollout or AnalysisRun
  reconciled after it left the cache is forgotten (its reconcile series too), and a relist
  forgets the Rollouts and AnalysisRuns it no longer has.
- A key that raises is logged, counted (`*_reconcile_error`), recorded as a Warning
  event on a Rollout and requeued with the queue's backoff; it never stops the
  others. Success forgets the backoff and requeues at the reconciler's
  `requeue_after`.
- Threaded mode has two worker pools: `workers` take Rollout and Experiment keys, `analysis_workers`
  (default: as many) take AnalysisRun keys, so a measurement waiting on a slow backend
  (bounded by its timeout) never holds up a Rollout's reconcile.
- With leader election only the replica holding the Lease reconciles (one Lease per shard:
  rollouts.controller.leader.lock_name of the instance id and namespace); losing it stops
  the process's work (a new term starts in a new process, as in Argo).
- Two ways to run: `step()` / `run_until()` / `run_for()` process everything due *now*
  and then advance a SteppedClock to the next due time (deterministic tests, the demo,
  benchmarks; the cluster's watch must honour `timeout=0`, as InMemoryCluster does). As in
  threaded mode, a relist after `Gone` is followed at once by the fresh watch's events (the
  step goes on), and a watch that failed is polled again WATCH_RETRY seconds later (the
  clock never jumps past it to the next due key);
  `start()` / `run()` / `stop()` use threads (production). Threaded mode also resyncs:
  every `resync_period` wall seconds every known Rollout and AnalysisRun is
  reconciled once more (Argo's 900 s informer resync).
- `notifications=(namespace, name)` of a ConfigMap subscribes a Notifier
  (rollouts.controller.notify) to the event recorder: it delivers on its own thread, in
  both modes, and a slow endpoint never delays a reconcile.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

import tenacity

from analysis.controller import AnalysisController
from analysis.providers import Providers
from rollouts.controller.clientset import MeteredCluster
from rollouts.controller.experiments import ExperimentReconciler
from rollouts.controller.fanin import EventRouter, Scope, urgent
from rollouts.controller.informer import Cache
from rollouts.controller.leader import LeaderElector, LeaseTiming, default_identity, lock_name
from rollouts.controller.metrics import ControllerMetrics
from rollouts.controller.notify import Notifier
from rollouts.controller.reconciler import RolloutReconciler
from rollouts.controller.threads import ThreadedRun
from rollouts.controller.workqueue import Key, WorkQueue
from rollouts.platform import wire
from rollouts.platform.clock import Clock
from rollouts.platform.cluster import Cluster, ClusterError, Gone
from rollouts.platform.events import EventRecorder
from rollouts.platform.labels import INSTANCE_LABEL

__all__ = ["INSTANCE_LABEL", "WATCHED", "Manager", "Scope", "Stalled"]

log = logging.getLogger(__name__)

# Kinds watched into the cache; the first five and Experiment also make keys due.
WATCHED = ("Rollout", "ReplicaSet", "AnalysisRun", "VirtualService", "DestinationRule",
           "Service", "AnalysisTemplate", "ClusterAnalysisTemplate", "Experiment")
MAX_RECONCILES_PER_STEP = 1_000_000
POLL_EVERY = 20  # step mode: take in watch events at least every this many reconciles
WATCH_RETRY = 1.0  # step mode: seconds before a failed watch is polled again (threaded mode waits as long)


def _whole_microseconds(seconds: float) -> float:
    """A step a datetime-based clock can take (µs resolution) that reaches the due time: at least 1 µs."""
    return max(math.ceil(seconds * 1_000_000 - 1e-6), 1) / 1_000_000


class Stalled(RuntimeError):
    """run_until: nothing is scheduled, or the clock limit passed, and the predicate is still false."""


class Reconciler(Protocol):
    def reconcile(self, namespace: str, name: str) -> float | None: ...


class Manager:
    def __init__(
        self,
        cluster: Cluster,
        providers: Providers,
        *,
        clock: Clock,
        namespace: str | None = None,
        instance_id: str | None = None,
        workers: int = 2,
        analysis_workers: int | None = None,
        leader_election: bool = True,
        identity: str | None = None,
        lease_namespace: str | None = None,
        lease_timing: LeaseTiming | None = None,
        metrics: ControllerMetrics | None = None,
        watch_timeout: float = 300.0,
        resync_period: float | None = 900.0,
        retry_wait: tenacity.wait.wait_base | None = None,
        notifications: tuple[str, str] | None = None,
    ) -> None:
        self.metrics = metrics or ControllerMetrics()
        self.cluster: Cluster = MeteredCluster(cluster, self.metrics)  # every API request and fault is counted
        cluster = self.cluster
        self.clock = clock
        self.scope = Scope(namespace, instance_id)
        self.workers = max(1, workers)
        self.analysis_workers = max(1, workers if analysis_workers is None else analysis_workers)
        self.watch_timeout = watch_timeout
        self.resync_period = resync_period
        self.identity = identity or default_identity()
        self.recorder = EventRecorder(cluster, clock=clock, metrics=self.metrics, instance=self.identity)
        self.notifier = Notifier(cluster, clock=clock, configmap=notifications, recorder=self.recorder,
                                 on_result=lambda result: self.metrics.notifications.labels(result).inc()) \
            if notifications is not None else None  # rollouts.controller.notify: its own thread, never the reconcile's
        if self.notifier is not None:
            self.recorder.subscribe(self.notifier.offer)
        self.queue = WorkQueue(clock, on_add=lambda _: self.metrics.workqueue_adds.labels("rollouts").inc(),
                               on_take=lambda _, waited: self.metrics.workqueue_queue_duration.labels(
                                   "rollouts").observe(waited))
        self.cache = Cache()
        retry: dict[str, Any] = {"retry_wait": retry_wait} if retry_wait is not None else {}
        self.rollouts = RolloutReconciler(
            cluster, clock=clock, recorder=self.recorder, scope=self.scope, cache=self.cache, **retry,
            observe=lambda doc, model, planned: self.metrics.observe_rollout(doc, model, planned.status,
                                                                              planned.outcomes),
            gone=lambda namespace, name: self.metrics.forget("Rollout", namespace, name),
            on_hook_call=lambda kind, result, seconds, namespace, name: self.metrics.hook_call(
                kind, result, seconds, namespace=namespace, rollout=name))
        self.experiments = ExperimentReconciler(cluster, clock=clock, recorder=self.recorder, scope=self.scope,
                                                cache=self.cache, **retry)
        self.analysis: Reconciler = AnalysisController(cluster, providers, clock=clock, events=self.recorder, **retry)
        self.elector = (
            LeaderElector(
                cluster, identity=self.identity, name=lock_name(instance_id, namespace),
                namespace=lease_namespace or namespace or "default", **vars(lease_timing or LeaseTiming()),
            )
            if leader_election else None
        )
        self.router = EventRouter(cache=self.cache, metrics=self.metrics, scope=self.scope)
        self.watched: tuple[str, ...] = WATCHED
        self._cursors: dict[str, str | None] = dict.fromkeys(WATCHED)
        self._watch_failed = False
        self.leading = not leader_election
        self.threads = ThreadedRun(self)
        self.reconciles = 0

    def route(self, kind: str, event_type: str, obj: dict[str, Any]) -> list[Key]:
        """The keys one watch event makes due (the cache, index and info metrics follow it). An
        object nothing can route is logged, counted and skipped: it never ends a watch."""
        try:
            return self.router.route(kind, event_type, obj)
        except Exception:
            self.metrics.watch_event_errors.labels(kind).inc()
            log.exception("watch %s: could not route a %s event; skipped", kind, event_type)
            return []

    def take_in(self, kind: str, event_type: str, obj: Any) -> None:
        """Route one watch event and queue the keys it makes due (both modes: `_poll_watches`, and
        rollouts.controller.threads). A Failed or Error AnalysisRun queues the Rollout it fails ahead of
        every other key (fanin.urgent); the run's own key is queued as any other."""
        first = isinstance(obj, dict) and urgent(kind, obj)
        for key in self.route(kind, event_type, obj):  # never raises: route skips what it cannot route
            self.queue.add(key, first=first and key.kind != "AnalysisRun")

    # ------------------------------------------------------------ processing one key

    def process(self, key: Key) -> None:
        """Reconcile one key taken from the queue, then requeue it as it asks (or with backoff)."""
        reconcilers: dict[str, Reconciler] = {"Rollout": self.rollouts, "Experiment": self.experiments}
        reconciler = reconcilers.get(key.kind, self.analysis)
        histogram, errors = {
            "Rollout": (self.metrics.rollout_reconcile, self.metrics.rollout_reconcile_error),
            "Experiment": (self.metrics.experiment_reconcile, self.metrics.experiment_reconcile_error),
        }.get(key.kind, (self.metrics.analysis_run_reconcile, self.metrics.analysis_run_reconcile_error))
        started = time.perf_counter()
        try:
            requeue = reconciler.reconcile(key.namespace, key.name)
        except Exception as err:  # one broken object never stops the others
            errors.labels(key.namespace, key.name).inc()
            self.metrics.workqueue_retries.labels("rollouts").inc()
            delay = self.queue.add_rate_limited(key)
            log.exception("reconcile %s failed (retry in %.3fs): %s", key, delay, err)
            if key.kind == "Rollout":
                self.rollouts.record_failure(key.namespace, key.name, err)
        else:
            self.queue.forget(key)
            if requeue is not None:
                self.queue.add_after(key, requeue)
        finally:
            histogram.labels(key.namespace, key.name).observe(time.perf_counter() - started)
            if key.kind in ("Rollout", "AnalysisRun") and not self.cache.holds(key.kind, key.namespace, key.name):
                self.metrics.forget(key.kind, key.namespace, key.name)  # gone: no series may outlive it
            self.queue.done(key)
            self.reconciles += 1
            self.metrics.workqueue_depth.labels("rollouts").set(len(self.queue))

    # ------------------------------------------------------------ deterministic mode

    def step(self, *, stop_when: Callable[[], bool] | None = None) -> int:
        """Lead (or not), take in every watch event, reconcile every key due now; returns reconciles.

        `stop_when` is checked after every reconcile: when it holds the step ends at once,
        with work left undone (crash tests stop a controller between two reconciles).
        """
        if not self._lead():
            return 0
        done = 0
        self._poll_watches()
        while True:
            key = self.queue.pop_ready()
            if key is None:
                if self._poll_watches():
                    continue
                return done
            self.process(key)
            done += 1
            if stop_when is not None and stop_when():
                return done
            if done % POLL_EVERY == 0:
                self._poll_watches()
            if done > MAX_RECONCILES_PER_STEP:
                raise RuntimeError(f"{key} is reconciled in a loop: every reconcile writes and re-triggers itself")

    def next_due(self) -> float | None:
        """Seconds from now until something is due (a queued key or a lease renewal)."""
        due = self.queue.next_due()
        waits = [] if due is None else [max(due - self.clock.monotonic(), 0.0)]
        if self._watch_failed:
            waits.append(WATCH_RETRY)
        if self.elector is not None:
            waits.append(self.elector.retry_period)
        return min(waits) if waits else None

    def run_until(self, predicate: Callable[[], bool], *, max_seconds: float = 7 * 24 * 3600.0,
                  between_reconciles: bool = False, after_step: Callable[[], None] | None = None) -> None:
        """Step, and advance the (stepped) clock to the next due time, until `predicate()` holds.

        With `between_reconciles` the predicate is also checked after every single reconcile.
        `after_step` runs after every step, before the clock moves (observers record there).
        """
        advance = getattr(self.clock, "advance", None)
        if not callable(advance):
            raise TypeError("Manager.run_until needs a SteppedClock; use run() with a SystemClock")
        limit = self.clock.monotonic() + max_seconds
        while True:
            self.step(stop_when=predicate if between_reconciles else None)
            if after_step is not None:
                after_step()
            if predicate():
                return
            wait = self.next_due()
            if wait is None:
                raise Stalled("nothing is scheduled and the condition does not hold")
            if self.clock.monotonic() + wait > limit:
                raise Stalled(f"the condition did not hold within {max_seconds:.0f}s of controller time")
            advance(_whole_microseconds(wait))

    def run_for(self, seconds: float, *, after_step: Callable[[], None] | None = None) -> None:
        """Step through `seconds` of (stepped) controller time, stopping at every due time."""
        advance = getattr(self.clock, "advance", None)
        if not callable(advance):
            raise TypeError("Manager.run_for needs a SteppedClock; use run() with a SystemClock")
        end = self.clock.monotonic() + seconds
        while True:
            self.step()
            if after_step is not None:
                after_step()
            left = end - self.clock.monotonic()
            if left <= 0:
                return
            wait = self.next_due()
            advance(_whole_microseconds(left if wait is None else min(wait, left)))

    def _lead(self) -> bool:
        if self.elector is None:
            return True
        leading = self.elector.try_acquire_or_renew(self.clock.now())
        if leading != self.leading:
            self.metrics.leader.set(1 if leading else 0)
            self._cursors = dict.fromkeys(WATCHED)  # a new term starts from a full list
        self.leading = leading
        return leading

    def _poll_watches(self) -> int:
        """Drain every watch without blocking; returns the number of events taken in."""
        seen = 0
        self._watch_failed = False
        for kind in WATCHED:
            cursor = self._cursors[kind]
            try:
                stream = self.cluster.watch(kind, self.scope.namespace, resource_version=cursor, timeout=0)
                for event in stream:
                    seen += 1
                    self.take_in(kind, event.type, event.object)
                self._cursors[kind] = stream.resource_version
            except Gone:
                self.relist(kind)
                seen += cursor is not None  # the fresh watch's events come in the next poll of this step
            except ClusterError as err:
                self._watch_failed = True
                log.warning("watch %s: %s", kind, err)
        return seen

    def relist(self, kind: str) -> None:
        """A watch fell too far behind: the cache takes a fresh list, the next watch starts over."""
        listed = self.cluster.list(kind, self.scope.namespace)
        self.cache.replace_kind(kind, listed)
        self._cursors[kind] = None
        if kind in ("Rollout", "AnalysisRun"):  # no DELETED event comes for what went meanwhile: its series go now
            self.metrics.retain(kind, [wire.name_of(obj) for obj in listed], namespace=self.scope.namespace)

    # ------------------------------------------------------------ threaded mode (rollouts.controller.threads)

    def start(self) -> None:
        """Start leading (or waiting to), watching and working in background threads."""
        self.threads.start()

    def run(self) -> None:
        """Run until stop() is called from another thread (or Ctrl-C)."""
        self.threads.run()

    def stop(self) -> None:
        """Stop every thread; a graceful stop releases the lease."""
        self.threads.stop()
        if self.notifier is not None:
            self.notifier.stop()

    def healthy(self) -> bool:
        """False once stopped, or once leadership was lost."""
        return self.threads.healthy()
