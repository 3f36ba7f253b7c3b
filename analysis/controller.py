"""The AnalysisRun controller: a thin shell around `analysis.assess`.

Rules:
- One `reconcile(namespace, name)` observes the run, measures the metrics that are due
  (through the providers, with args and secrets resolved just before), hands the
  measurements to the pure core, patches the status only when it changed, records the
  core's events as Kubernetes Events, and returns the requeue delay in seconds.
- Stateless between calls: everything lives in the AnalysisRun's status, so a new
  controller instance on the same cluster resumes where the last one stopped.
- Talks to the cluster only through the platform's Cluster port (get/patch_status on
  plain dicts, its typed errors NotFound, Conflict, Unavailable); analysis depends on
  the platform base, never on the Rollout controller (DESIGN §5). Events go through
  the platform's EventRecorder (or the sink the Manager passes).
- A status patch carries the resourceVersion it was computed from; on Conflict the run
  is read again and the same measurements are assessed against it (bounded retries). A
  transient API fault (`Unavailable`: 5xx, 429, no connection) on that
  write is retried with tenacity's bounded backoff, so measurements already taken are
  not thrown away and taken again for a blip.
- Secret values never leave this module unredacted: measurement messages, status and
  event messages are redacted with every secret value read for the run.
- A provider failure is data (an Error measurement, through `analysis.measure`, whatever
  the provider raised); an unsupported provider, a bad spec or an unreadable secret
  ends the run in Error with a message saying why.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

import tenacity
from pydantic import ValidationError

from analysis import args, assess, measure
from analysis.model import AnalysisRun, AnalysisRunStatus, Measurement
from analysis.providers import Providers, UnsupportedProvider
from rollouts.platform.clock import Clock
from rollouts.platform.cluster import Cluster, Conflict, NotFound, Unavailable
from rollouts.platform.events import EventRecorder
from rollouts.platform.patches import merge_diff

log = logging.getLogger(__name__)
CONFLICT_RETRIES = 3
API_RETRY_WAIT = tenacity.wait_exponential(multiplier=0.05, max=1.0)  # between retries of a transient API fault
WRITE_ATTEMPTS = 4
Obj = dict[str, Any]
SecretSource = Callable[[str, str, str], str]
"""secret_source(namespace, secret name, key) -> value; raises LookupError when missing."""


class EventSink(Protocol):
    """Where events go (platform.events.EventRecorder; the Manager passes its own)."""

    def record(self, obj: Obj, *, type: str, reason: str, message: str) -> None: ...  # noqa: A002


class AnalysisController:
    def __init__(self, cluster: Cluster, providers: Providers, *, clock: Clock,
                 secret_lookup: SecretSource | None = None, events: EventSink | None = None,
                 retry_wait: tenacity.wait.wait_base = API_RETRY_WAIT) -> None:
        self._cluster = cluster
        self._write_retry = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Unavailable),
            wait=retry_wait, stop=tenacity.stop_after_attempt(WRITE_ATTEMPTS), reraise=True,
        )
        self._events: EventSink = events if events is not None else EventRecorder(cluster, clock=clock)
        self._providers = providers
        self._clock = clock
        self._secrets = secret_lookup or self._cluster_secret

    def reconcile(self, namespace: str, name: str) -> float | None:
        """Bring one AnalysisRun forward; seconds until it wants to be seen again, or None."""
        doc = self._read(namespace, name)
        if doc is None or (doc.get("status") or {}).get("phase") in ("Successful", "Failed", "Error", "Inconclusive"):
            return None
        now = self._clock.now()
        taken, secrets, problem = self._measure(doc, namespace, now)
        for attempt in range(CONFLICT_RETRIES):
            result = self._assess(doc, taken, problem, now)
            try:
                self._write_retry(self._write, doc, result, secrets, now)
                return result.requeue_after
            except NotFound:
                return None  # deleted while we measured
            except Conflict:
                if attempt == CONFLICT_RETRIES - 1:
                    raise
                log.info("AnalysisRun %s/%s changed while measuring; assessing again", namespace, name)
                if (fresh := self._read(namespace, name)) is None:
                    return None
                doc = fresh
        raise AssertionError("unreachable")

    def _read(self, namespace: str, name: str) -> Obj | None:
        try:
            return self._cluster.get("AnalysisRun", name, namespace)
        except NotFound:
            return None

    # ------------------------------------------------------------ observe and measure

    def _measure(
        self, doc: Obj, namespace: str, now: datetime,
    ) -> tuple[dict[str, Measurement], frozenset[str], str | None]:
        """Measurements for the due metrics, the secret values read, and a run-ending problem."""
        try:
            run = AnalysisRun.load(doc)
        except ValidationError as err:
            return {}, frozenset(), f"Analysis spec invalid: {_validation_message(err)}"
        for metric in run.spec.metrics:
            try:
                self._providers.for_metric(metric)
            except UnsupportedProvider as err:
                return {}, frozenset(), f"Analysis spec invalid: {err}"
        due = assess.due_metrics(run, now)
        if not due:
            return {}, frozenset(), None
        try:
            resolved = args.resolve_values(run.spec.args, secret_lookup=lambda n, k: self._secrets(namespace, n, k))
        except args.ArgError as err:
            return {}, frozenset(), f"Unable to resolve metric arguments: {err}"
        taken = {}
        for metric in due:
            try:
                concrete = args.substitute(metric, resolved.values)
            except args.ArgError as err:
                return {}, resolved.secrets, f"Unable to resolve metric arguments: {err}"
            taken[metric.name] = measure.take(self._providers, concrete, at=now, clock=self._clock.now,
                                              secrets=resolved.secrets)
            log.info("AnalysisRun %s/%s metric %s measured %s: %s", namespace, run.metadata.name, metric.name,
                     taken[metric.name].phase, taken[metric.name].message)
        return taken, resolved.secrets, None

    @staticmethod
    def _assess(doc: Obj, taken: Mapping[str, Measurement], problem: str | None, now: datetime) -> assess.Assessment:
        if problem is not None:
            return assess.reject(_status_of(doc), now=now, message=problem)
        run = AnalysisRun.load(doc)
        names = {m.name for m in run.spec.metrics}
        return assess.assess(run, now=now, measurements={k: v for k, v in taken.items() if k in names})

    # ------------------------------------------------------------ write back

    def _write(self, doc: Obj, result: assess.Assessment, secrets: frozenset[str], now: datetime) -> None:
        new = result.status.dump()
        if "message" in new:
            new["message"] = args.redact(new["message"], secrets)
        patch = merge_diff(doc.get("status") or {}, new)
        if not patch:
            return
        meta = doc["metadata"]
        self._cluster.patch_status("AnalysisRun", meta["name"], meta.get("namespace"),
                                   {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": patch})
        for event in result.events:
            self._events.record(doc, type=event.type, reason=event.reason, message=args.redact(event.message, secrets))

    def _cluster_secret(self, namespace: str, name: str, key: str) -> str:
        try:
            secret = self._cluster.get("Secret", name, namespace)
        except NotFound:
            raise LookupError(f"secret {name!r} not found in namespace {namespace!r}") from None
        data = secret.get("data") or {}
        if key in data:
            return base64.b64decode(data[key]).decode()
        if key in (secret.get("stringData") or {}):
            return str(secret["stringData"][key])
        raise LookupError(f"key {key!r} does not exist in secret {name!r}")


def _status_of(doc: Obj) -> AnalysisRunStatus | None:
    try:
        return AnalysisRunStatus.load(doc.get("status") or {})
    except ValidationError:
        return None


def _validation_message(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors(include_url=False))
