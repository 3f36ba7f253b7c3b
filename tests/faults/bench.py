"""A two-Rollout bench for the fault proofs: a healthy Rollout beside a victim whose backend or API fails.

`Bench(arrange)` is a FaultScenario with the REAL providers (no wait between retries) and a
FaultyCluster between the controller and the InMemoryCluster. Two istio-canary Rollouts run
side by side on one controller and one SteppedClock:

- `rollout-example` (HEALTHY): its analysis is a web metric on the local Backend's `/healthy`,
  which always answers `{"ok": true}`;
- `victim` (its own VirtualService and Services): its analysis template `victim-check` takes a
  `token` arg from a Secret (valueFrom.secretKeyRef) and sends it in an Authorization header;
  its metric and its lifecycle webhook (`webhooks`, optional) point wherever the fault class says.

`run()` deploys both, arranges the fault, rolls a new image out on both and steps the clock to a
fixed horizon (20 minutes past the update). Everything a test may want to judge is kept:
both VirtualServices' weight histories and the victim's stable hashes (watched), every request
the Backend saw (with its body), the FaultyCluster's calls and faults, the controller's metrics.
`produced()` is every text the run produced that a secret must never reach.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from prometheus_client import generate_latest

from tests.controller.dsl import Follower, WeightHistory
from tests.faults.backends import Backend, Reply
from tests.faults.faulty import FaultyCluster
from tests.faults.harness import NEW_IMAGE, FaultScenario, everything, real_providers, template

HEALTHY, VICTIM = "rollout-example", "victim"
HORIZON = timedelta(minutes=20)
# a secret whose encodings all differ: raw, percent-encoded, JSON-escaped, repr and base64
SECRET = 'S3cr3t/t0k+n "q" \\ 42'


def encodings(secret: str) -> dict[str, str]:
    return {"raw": secret, "percent": quote(secret, safe=""), "json": json.dumps(secret)[1:-1],
            "repr": repr(secret), "base64": base64.b64encode(secret.encode()).decode()}


def renamed(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The istio-canary objects as Rollout `name` with its own VirtualService and Services."""
    text = json.dumps([doc for doc in docs if doc["kind"] != "AnalysisTemplate"])
    for old in ("rollout-vsvc", "canary-svc", "stable-svc"):
        text = text.replace(old, f"{name}-{old}")
    return json.loads(text.replace("rollout-example", name))  # type: ignore[no-any-return]


def web(url: str, *, timeout: int = 2, json_path: str = "{$.ok}", token: bool = True) -> dict[str, Any]:
    headers = [{"key": "Authorization", "value": "Bearer {{args.token}}"}] if token else []
    return {"web": {"url": url, "timeoutSeconds": timeout, "jsonPath": json_path, "headers": headers}}


def prometheus(address: str, *, timeout: int = 2) -> dict[str, Any]:
    return {"prometheus": {"address": address, "timeout": timeout,
                           "query": 'sum(up{service="{{args.service-name}}"})',
                           "headers": [{"key": "Authorization", "value": "Bearer {{args.token}}"}]}}


def metric(provider: dict[str, Any], *, condition: str = "result == true") -> dict[str, Any]:
    return {"name": "check", "interval": "1m", "successCondition": condition, "consecutiveErrorLimit": 1,
            "provider": provider}


@dataclass
class Setup:
    """What one fault class needs from the bench."""

    victim_metric: Callable[[str], dict[str, Any]] | None = None  # backend url -> the victim's metric
    hook: Callable[[str], dict[str, Any]] | None = None  # backend url -> one webhook of the victim
    arrange: Callable[[Bench], None] | None = None  # called after the first revisions are Healthy
    extra: dict[str, Any] = field(default_factory=dict)


class Bench(FaultScenario):
    def __init__(self, setup: Setup | None = None) -> None:
        self.setup = setup or Setup()
        self.backend = Backend()
        self.backend.answer("/healthy", Reply(200, '{"ok": true}'))
        self.backend.answer("/victim-ok", Reply(200, '{"ok": true}'))
        super().__init__(providers=real_providers())
        self.faulty = FaultyCluster(self.cluster)
        self.manager = self.new_manager(cluster=self.faulty)
        url = self.backend.url
        self.replace_template(template("success-rate", [metric(web(f"{url}/healthy", token=False))]))
        victim = renamed(self.docs, VICTIM)
        rollout = next(doc for doc in victim if doc["kind"] == "Rollout")
        canary = rollout["spec"]["strategy"]["canary"]
        canary["analysis"]["templates"] = [{"templateName": "victim-check"}]
        canary["analysis"]["args"].append(
            {"name": "token", "valueFrom": {"secretKeyRef": {"name": "victim-creds", "key": "token"}}})
        if self.setup.hook is not None:
            canary["webhooks"] = [self.setup.hook(url)]
        victim_metric = self.setup.victim_metric or (lambda u: metric(web(f"{u}/victim-ok")))
        victim.append(template("victim-check", [victim_metric(url)],
                               args=[{"name": "service-name"}, {"name": "token"}]))
        victim.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "victim-creds",
                                                                          "namespace": "default"},
                       "data": {"token": base64.b64encode(SECRET.encode()).decode()}})
        self.docs += victim
        self.victim_weights = WeightHistory(self.cluster, self.clock, name=f"{VICTIM}-rollout-vsvc", route="primary",
                                            stable=f"{VICTIM}-stable-svc", canary=f"{VICTIM}-canary-svc")
        self.victim_stables = Follower(self.cluster, self.clock, kind="Rollout", name=VICTIM, namespace="default",
                                       extract=lambda ro: (ro.get("status") or {}).get("stableRS"))
        self.promoted_at: datetime | None = None
        self.updated_at: datetime | None = None

    def observe(self) -> None:
        super().observe()
        for follower in ("victim_weights", "victim_stables"):
            if hasattr(self, follower):
                getattr(self, follower).poll()
        if getattr(self, "updated_at", None) is not None and self.promoted_at is None and self.healthy_promoted():
            self.promoted_at = self.clock.now()

    def close(self) -> None:
        super().close()
        self.backend.close()

    # ------------------------------------------------------------ the story

    def run(self) -> Bench:
        self.given_objects()
        self.run_until(lambda: self.phase == "Healthy" and self.victim.get("phase") == "Healthy")
        self.first_victim_stable = self.victim["stableRS"]
        self.first_healthy_stable = self.status["stableRS"]
        if self.setup.arrange is not None:
            self.setup.arrange(self)
        self.updated_at = self.clock.now()
        self.when_image(NEW_IMAGE)
        for _ in range(5):
            victim = self.cluster.get("Rollout", VICTIM, "default")
            victim["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
            try:
                self.cluster.replace(victim)
                break
            except Exception:  # a 409 from the controller's own status write: read again
                continue
        self.run_for(HORIZON.total_seconds())
        return self

    # ------------------------------------------------------------ reading the outcome

    @property
    def victim(self) -> dict[str, Any]:
        return self.cluster.get("Rollout", VICTIM, "default").get("status") or {}

    def healthy_promoted(self) -> bool:
        status = self.status
        return bool(status.get("phase") == "Healthy" and status.get("stableRS") == status.get("currentPodHash")
                    and self.updated_at is not None and status.get("stableRS") != self.first_healthy_stable)

    def victim_promoted(self) -> bool:
        return [s for _, s in self.victim_stables.values if s][-1] != self.first_victim_stable

    def victim_runs(self) -> list[dict[str, Any]]:
        return [run for run in self.cluster.list("AnalysisRun", "default")
                if run["metadata"]["name"].startswith(f"{VICTIM}-")]

    def victim_measurements(self) -> list[dict[str, Any]]:
        return [m for run in self.victim_runs() for result in (run.get("status") or {}).get("metricResults") or []
                for m in result.get("measurements") or []]

    def victim_events(self, reason: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.cluster.list("Event", "default") if e["involvedObject"]["name"] == VICTIM
                and reason in (None, e["reason"])]

    def metric(self, series: str, /, **labels: str) -> float:
        """The sum of every sample of `series` whose labels include `labels`."""
        total = 0.0
        for family in self.manager.metrics.registry.collect():
            for sample in family.samples:
                if sample.name == series and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def produced(self, caplog_text: str) -> dict[str, str]:
        """Every text this run produced: objects (Secrets aside), events, metrics, logs, hook bodies."""
        hook_bodies = [r.body for r in self.backend.seen if r.method == "POST"]
        return {
            "objects": everything(self.cluster, skip=("Secret",)),
            "events": json.dumps([e.message for e in self.manager.recorder.recorded]),
            "metrics": generate_latest(self.manager.metrics.registry).decode(),
            "logs": caplog_text,
            "hook bodies": "\n".join(hook_bodies),
        }
