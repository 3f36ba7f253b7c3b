"""The demo's manifests: examples/istio-canary with short intervals, and its two releases.

Rules:
- The manifests are the example's files (Rollout, success-rate AnalysisTemplate,
  VirtualService, Services), loaded from examples/istio-canary/ and adjusted only where
  a demo on one machine needs it; each adjustment is listed in `adjust()`. A missing or
  changed example is a `ScenarioError` naming the file and what was expected.
- The Rollout is named `demo` and starts at `demo:v1` (the initial deploy, promoted at
  once). The releases are `demo:v2` (healthy: expected Promoted), `demo:v3` (15%
  errors: expected Aborted by analysis), then `demo:v4` (2.5% errors, which the threshold
  template passes: expected Aborted by the statistical judge, rollouts.demo.judge).
- The analysis measures the canary alone: the source-side success rate of requests to
  the canary's ReplicaSet (`destination_workload` ends with the latest pod-template
  hash, an arg the Rollout resolves), so v2 reads 1.0 and v3 about 0.85 at any weight.
  `rate()` over a window of many 1 s scrapes (real-components.md §2: a window holding
  only two samples under-reads by extrapolation), after an `initialDelay` that lets the
  first canary samples arrive. A window with no canary samples is "no data" (an Error
  measurement, tolerated by consecutiveErrorLimit), never a failure.
- Pure: reads only the example files (package data: `rollouts/examples`); no clock, no cluster.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

# The examples ship inside the package (rollouts/examples links to the repository's examples/),
# so an installed wheel finds them as a checkout does.
EXAMPLE_DIR = Path(str(resources.files("rollouts") / "examples" / "istio-canary"))
ROLLOUT_NAME = "demo"
FIRST_IMAGE = "demo:v1"
HASH_ARG = "canary-hash"


class ScenarioError(RuntimeError):
    """The example manifests are missing or not what the demo builds on."""


@dataclass(frozen=True)
class Timing:
    """How fast the demo moves; `FULL` for people, `SHORT` for CI."""

    pause: str  # each canary pause step
    interval: str  # analysis measurement interval
    initial_delay: str  # before the first measurement
    window: str  # PromQL rate window
    failure_limit: int
    release_timeout: float  # seconds a release may take before the demo gives up on it


FULL = Timing(pause="15s", interval="5s", initial_delay="6s", window="20s", failure_limit=1, release_timeout=120.0)
SHORT = Timing(pause="8s", interval="2s", initial_delay="4s", window="10s", failure_limit=1, release_timeout=60.0)


@dataclass(frozen=True)
class Release:
    image: str
    expected: str  # "Promoted" or "Aborted"
    why: str
    judge: bool = False  # the judge decides (rollouts.demo.judge): an analysis step running judge-sequential


RELEASES = (
    Release("demo:v2", "Promoted", "healthy build: the analysis passes and every step runs"),
    Release("demo:v3", "Aborted", "15% of requests fail: the analysis fails and traffic returns to stable"),
    Release("demo:v4", "Aborted", "2.5% of requests fail (97.5% ok passes the 95% threshold): the judge compares "
            "canary with stable and aborts", judge=True),
)


@dataclass(frozen=True)
class Scenario:
    namespace: str
    rollout: dict[str, Any]
    template: dict[str, Any]
    virtual_service: dict[str, Any]
    services: tuple[dict[str, Any], ...]
    timing: Timing

    @property
    def objects(self) -> list[dict[str, Any]]:
        """In apply order: what the Rollout references exists before it."""
        return [self.template, *self.services, self.virtual_service, self.rollout]

    @property
    def route(self) -> str:
        return str(self._istio["virtualService"]["routes"][0])

    @property
    def canary_service(self) -> str:
        return str(self.rollout["spec"]["strategy"]["canary"]["canaryService"])

    @property
    def service_name(self) -> str:
        """The `destination_service` the analysis asks about (the traffic generator's label)."""
        args = self.rollout["spec"]["strategy"]["canary"]["analysis"]["args"]
        return str(next(a["value"] for a in args if a["name"] == "service-name"))

    @property
    def _istio(self) -> dict[str, Any]:
        return dict(self.rollout["spec"]["strategy"]["canary"]["trafficRouting"]["istio"])


def load_kind(name: str, kind: str, directory: Path, *, demo: str = "the demo",
              example: str = "istio-canary") -> list[dict[str, Any]]:
    """The `kind` documents of example file `name`, or a ScenarioError saying what the demo expected."""
    path = directory / name
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except OSError as err:
        raise ScenarioError(f"{demo} builds on {path}, which cannot be read ({err.strerror}); "
                            "run it from a clone of the repository") from None
    found = [d for d in docs if isinstance(d, dict) and d.get("kind") == kind]
    if not found:
        raise ScenarioError(f"{path} holds no {kind}; the demo expects the {example} example's {kind}")
    return found


def query(window: str, hash_arg: str = HASH_ARG) -> str:
    """Success rate of the requests to the ReplicaSet whose pod-template hash is the arg `hash_arg`
    (the canary's; the blue-green demo's preview), from the source side (the traffic generator)."""
    selector = ('reporter="source",destination_service=~"{{args.service-name}}",'
                f'destination_workload=~".+-{{{{args.{hash_arg}}}}}"')
    return (f'sum(rate(istio_requests_total{{{selector},response_code!~"5.*"}}[{window}])) /\n'
            f'sum(rate(istio_requests_total{{{selector}}}[{window}]))\n')


def adjust(*, rollout: dict[str, Any], template: dict[str, Any], timing: Timing, namespace: str) -> None:
    """The demo's changes to the example, in place."""
    for doc in (rollout, template):
        doc["metadata"]["namespace"] = namespace
    # the Rollout: a short name, the demo app's image, short pauses, the hash arg
    rollout["metadata"]["name"] = ROLLOUT_NAME
    rollout["spec"]["template"]["spec"]["containers"][0]["image"] = FIRST_IMAGE
    canary = rollout["spec"]["strategy"]["canary"]
    canary["steps"] = [{"setWeight": 20}, {"pause": {"duration": timing.pause}},
                       {"setWeight": 50}, {"pause": {"duration": timing.pause}}]
    canary["analysis"]["args"].append({"name": HASH_ARG, "valueFrom": {"podTemplateHashValue": "Latest"}})
    canary["scaleDownDelaySeconds"] = 10
    # the template: measure the canary only, often, over a short window
    template["spec"]["args"].append({"name": HASH_ARG})
    metric = template["spec"]["metrics"][0]
    if metric.get("successCondition") != "result[0] >= 0.95":
        raise ScenarioError("the success-rate example's successCondition changed; the demo expects result[0] >= 0.95")
    metric.update(interval=timing.interval, initialDelay=timing.initial_delay, failureLimit=timing.failure_limit)
    metric["provider"]["prometheus"]["query"] = query(timing.window)


def build(timing: Timing = FULL, *, namespace: str = "default", directory: Path = EXAMPLE_DIR) -> Scenario:
    rollout = copy.deepcopy(load_kind("rollout.yaml", "Rollout", directory)[0])
    template = copy.deepcopy(load_kind("analysis-template.yaml", "AnalysisTemplate", directory)[0])
    virtual_service = copy.deepcopy(load_kind("virtualservice.yaml", "VirtualService", directory)[0])
    services = [copy.deepcopy(s) for s in load_kind("services.yaml", "Service", directory)]
    try:
        adjust(rollout=rollout, template=template, timing=timing, namespace=namespace)
    except (KeyError, IndexError, TypeError) as err:
        raise ScenarioError(f"the istio-canary example no longer has the shape the demo adjusts (missing {err}); "
                            "update rollouts/demo/scenario.py") from None
    for doc in (virtual_service, *services):
        doc["metadata"]["namespace"] = namespace
    return Scenario(namespace, rollout, template, virtual_service, tuple(services), timing)


def with_image(rollout: dict[str, Any], image: str) -> dict[str, Any]:
    """A merge patch setting the first container's image, keeping the rest of the container."""
    containers = copy.deepcopy(rollout["spec"]["template"]["spec"]["containers"])
    containers[0]["image"] = image
    return {"spec": {"template": {"spec": {"containers": containers}}}}
