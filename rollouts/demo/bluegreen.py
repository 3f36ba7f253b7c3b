"""The blue-green demo's manifests: examples/blue-green with short timings, and its two releases.

Rules:
- The manifests are the example's files (Rollout, the preview-smoke AnalysisTemplate, the
  active and preview Services), loaded from examples/blue-green/ and adjusted only where a
  demo on one machine needs it; each adjustment is listed in `adjust()`. A missing or
  changed example is a `ScenarioError` naming the file and what was expected.
- The Rollout is named `demo` and starts at `demo:v1` (the first deploy, promoted at once).
  The releases are `demo:v2` (healthy: expected Promoted) then `demo:v3` (15% errors:
  expected Aborted by the pre-promotion analysis).
- No human in the demo: `autoPromotionEnabled: true`, so the active Service switches as
  soon as the prePromotionAnalysis is Successful (and never before it).
- The analysis measures the PREVIEW ReplicaSet alone: the source-side success rate of the
  smoke-test requests sent through the preview Service (`destination_service`) to pods of
  the latest pod-template hash (`destination_workload` ends with it, an arg the Rollout
  resolves). Production traffic goes through the active Service and is labelled with it,
  so it never counts in the preview's success rate. `rate()` over a window of many 1 s
  scrapes, after an `initialDelay` that lets the first preview samples arrive; `count`
  measurements, any one below 95% fails the run.
- Pure: reads only the example files (package data: `rollouts/examples`); no clock, no cluster.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rollouts.demo.scenario import FIRST_IMAGE, ROLLOUT_NAME, Release, ScenarioError, load_kind, query

EXAMPLE_DIR = Path(str(resources.files("rollouts") / "examples" / "blue-green"))
HASH_ARG = "preview-hash"
SERVICE_ARG = "service-name"
SMOKE_SHARE = 0.2  # smoke-test requests per production request


@dataclass(frozen=True)
class Timing:
    """How fast the blue-green demo moves; `FULL` for people, `SHORT` for CI."""

    interval: str  # analysis measurement interval
    initial_delay: str  # before the first measurement
    window: str  # PromQL rate window
    count: int  # measurements in the pre-promotion run
    scale_down_delay: int  # seconds the old ReplicaSet keeps its pods after the switch
    abort_scale_down_delay: int  # seconds an aborted ReplicaSet keeps its pods
    release_timeout: float  # seconds a release may take before the demo gives up on it


FULL = Timing(interval="5s", initial_delay="6s", window="20s", count=4, scale_down_delay=15,
              abort_scale_down_delay=10, release_timeout=120.0)
SHORT = Timing(interval="2s", initial_delay="4s", window="10s", count=3, scale_down_delay=5,
               abort_scale_down_delay=3, release_timeout=60.0)

RELEASES = (
    Release("demo:v2", "Promoted", "healthy build: the preview analysis passes, then the active Service switches"),
    Release("demo:v3", "Aborted", "15% of requests fail: the preview analysis fails, production never sees v3"),
)


@dataclass(frozen=True)
class Scenario:
    namespace: str
    rollout: dict[str, Any]
    template: dict[str, Any]
    services: tuple[dict[str, Any], ...]
    timing: Timing

    @property
    def objects(self) -> list[dict[str, Any]]:
        """In apply order: what the Rollout references exists before it."""
        return [self.template, *self.services, self.rollout]

    @property
    def active_service(self) -> str:
        return str(self._strategy["activeService"])

    @property
    def preview_service(self) -> str:
        return str(self._strategy["previewService"])

    def fqdn(self, service: str) -> str:
        """The `destination_service` label of requests through `service`."""
        return f"{service}.{self.namespace}.svc.cluster.local"

    @property
    def _strategy(self) -> dict[str, Any]:
        return dict(self.rollout["spec"]["strategy"]["blueGreen"])


def _load(name: str, kind: str, directory: Path) -> list[dict[str, Any]]:
    return load_kind(name, kind, directory, demo="the blue-green demo", example="blue-green")


def adjust(*, rollout: dict[str, Any], template: dict[str, Any], timing: Timing, namespace: str) -> None:
    """The demo's changes to the example, in place."""
    for doc in (rollout, template):
        doc["metadata"]["namespace"] = namespace
    # the Rollout: a short name, the demo app's image, no human gate, short delays, the hash arg
    rollout["metadata"]["name"] = ROLLOUT_NAME
    rollout["spec"]["template"]["spec"]["containers"][0]["image"] = FIRST_IMAGE
    blue_green = rollout["spec"]["strategy"]["blueGreen"]
    blue_green["autoPromotionEnabled"] = True
    blue_green["scaleDownDelaySeconds"] = timing.scale_down_delay
    blue_green["abortScaleDownDelaySeconds"] = timing.abort_scale_down_delay
    pre = blue_green["prePromotionAnalysis"]
    service_arg = next(a for a in pre["args"] if a["name"] == SERVICE_ARG)
    service_arg["value"] = f"{blue_green['previewService']}.{namespace}.svc.cluster.local"
    pre["args"].append({"name": HASH_ARG, "valueFrom": {"podTemplateHashValue": "Latest"}})
    # the template: measure the preview ReplicaSet only, often, over a short window
    template["spec"]["args"].append({"name": HASH_ARG})
    metric = template["spec"]["metrics"][0]
    if metric.get("successCondition") != "result[0] >= 0.95":
        raise ScenarioError("the preview-smoke example's successCondition changed; the demo expects result[0] >= 0.95")
    metric.update(interval=timing.interval, initialDelay=timing.initial_delay, count=timing.count)
    metric["provider"]["prometheus"]["query"] = query(timing.window, HASH_ARG)


def build(timing: Timing = FULL, *, namespace: str = "default", directory: Path = EXAMPLE_DIR) -> Scenario:
    rollout = copy.deepcopy(_load("rollout.yaml", "Rollout", directory)[0])
    template = copy.deepcopy(_load("analysis-template.yaml", "AnalysisTemplate", directory)[0])
    services = [copy.deepcopy(s) for s in _load("services.yaml", "Service", directory)]
    try:
        adjust(rollout=rollout, template=template, timing=timing, namespace=namespace)
    except (KeyError, IndexError, TypeError, StopIteration) as err:
        raise ScenarioError(f"the blue-green example no longer has the shape the demo adjusts (missing {err}); "
                            "update rollouts/demo/bluegreen.py") from None
    for doc in services:
        doc["metadata"]["namespace"] = namespace
    names = {s["metadata"]["name"] for s in services}
    strategy = rollout["spec"]["strategy"]["blueGreen"]
    for role in ("activeService", "previewService"):
        if strategy.get(role) not in names:
            raise ScenarioError(f"{directory / 'services.yaml'} has no Service {strategy.get(role)!r}, the Rollout's "
                                f"{role}; the demo routes traffic by its selector")
    return Scenario(namespace, rollout, template, tuple(services), timing)
