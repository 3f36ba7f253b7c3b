"""Hostile input to a running controller (issue 14 item 3): a corpus of malformed manifests, countable.

HOSTILE is the corpus, generated in code: each entry is one Rollout of its own (its own
AnalysisTemplate, VirtualService and Services, as tests.faults.bench.renamed makes them),
deployed healthy first and then updated with a new image AND the mistake, beside two healthy
Rollouts updated at the same time, on one controller and one SteppedClock. Each entry names
the field path its error must name. Then, for every entry:

- `invalid`: the Rollout is Degraded with `InvalidSpec: <path>...`, and no ReplicaSet was made
  for the update; `error`: the update's AnalysisRun (an analysis step before any traffic) has
  Error measurements whose messages name the field (a condition that takes the modulo of
  zero, overflows int64 or indexes an empty result), or is itself in Error saying why (a
  Secret or a provider it cannot use), and the Rollout aborted;
- nothing moved traffic: its VirtualService was never written after its first revision;
- and the healthy Rollouts have exactly the weight history, promotion time and number of
  reconciles they have with no hostile neighbour at all.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from rollouts.platform.cluster import Invalid
from tests.controller.dsl import route_weights
from tests.faults.bench import renamed
from tests.faults.faulty import FaultyCluster
from tests.faults.harness import NEW_IMAGE, FaultScenario, through_faults

Doc = dict[str, Any]
Edit = Callable[[Doc, Doc], None]  # (rollout, template) -> None, in place


@dataclass(frozen=True)
class Hostile:
    edit: Edit
    path: str  # the field path the InvalidSpec (or the Error measurement) must name
    outcome: str = "invalid"  # invalid | error


def at(doc: Doc, dotted: str, value: Any) -> None:
    """Set the field at a dotted path in `doc` (numeric parts index lists), making maps on the way."""
    here: Any = doc
    *parents, last = [int(key) if key.isdigit() else key for key in dotted.split(".")]
    for key in parents:
        here = here.setdefault(key, {}) if isinstance(here, dict) else here[key]
    here[last] = value


def rollout(dotted: str, value: Any) -> Edit:
    return lambda ro, _: at(ro, dotted, value)


def canary(dotted: str, value: Any) -> Edit:
    return rollout(f"spec.strategy.canary.{dotted}", value)


def template(dotted: str, value: Any) -> Edit:
    return lambda _, t: at(t, dotted, value)


def both(*edits: Edit) -> Edit:
    def edit(ro: Doc, t: Doc) -> None:
        for one in edits:
            one(ro, t)
    return edit


def step_analysis(condition: str, metric: str = "check") -> Edit:
    """The canary's first step becomes an analysis step (before any traffic) whose condition is `condition`."""
    def edit(ro: Doc, t: Doc) -> None:
        c = ro["spec"]["strategy"]["canary"]
        args = c.pop("analysis")["args"]
        c["steps"] = [{"analysis": {"templates": [{"templateName": t["metadata"]["name"]}], "args": args}},
                      *c["steps"]]
        t["spec"]["metrics"][0].update(name=metric, successCondition=condition, count=1, interval="1m")
        t["spec"]["metrics"][0].pop("failureLimit", None)
    return edit


C = "spec.strategy.canary"
HUGE = "9" * 4000
MB = "x" * (1 << 20)
MANY_ANNOTATIONS = {f"k{i}": "v" * 1000 for i in range(300)}  # 300 KB in all

HOSTILE: dict[str, Hostile] = {
    # ---- bad types and values in the Rollout
    "replicas-a-string": Hostile(rollout("spec.replicas", "many"), "spec.replicas"),
    "replicas-negative": Hostile(rollout("spec.replicas", -1), "spec.replicas"),
    "replicas-past-int32": Hostile(rollout("spec.replicas", 2**31), "spec.replicas"),
    "replicas-huge": Hostile(rollout("spec.replicas", int(HUGE)), "spec.replicas"),
    "replicas-a-list": Hostile(rollout("spec.replicas", [5]), "spec.replicas"),
    "paused-yes": Hostile(rollout("spec.paused", "yes"), "spec.paused"),
    "spec-a-list": Hostile(lambda ro, _: ro.update(spec=[1, 2]), "spec"),
    "strategy-a-string": Hostile(rollout("spec.strategy", "canary"), "spec.strategy"),
    "strategy-empty": Hostile(rollout("spec.strategy", {}), "spec.strategy"),
    "strategy-both": Hostile(rollout("spec.strategy.blueGreen", {"activeService": "x"}), "spec.strategy"),
    "canary-a-list": Hostile(rollout("spec.strategy.canary", [{"steps": []}]), C),
    "progress-deadline-a-word": Hostile(rollout("spec.progressDeadlineSeconds", "ten"),
                                        "spec.progressDeadlineSeconds"),
    "min-ready-negative": Hostile(rollout("spec.minReadySeconds", -5), "spec.minReadySeconds"),
    "selector-mismatch": Hostile(rollout("spec.selector.matchLabels", {"app": "someone-else"}), "spec.selector"),
    "unknown-field": Hostile(rollout("spec.strategy.canary.stepz", []), f"{C}.stepz"),
    # ---- steps
    "set-weight-a-string": Hostile(canary("steps.0.setWeight", "50"), f"{C}.steps[0].setWeight"),
    "set-weight-true": Hostile(canary("steps.0.setWeight", True), f"{C}.steps[0].setWeight"),
    "set-weight-120": Hostile(canary("steps.0.setWeight", 120), f"{C}.steps[0].setWeight"),
    "set-weight-negative": Hostile(canary("steps.0.setWeight", -5), f"{C}.steps[0].setWeight"),
    "set-weight-huge": Hostile(canary("steps.0.setWeight", int(HUGE)), f"{C}.steps[0].setWeight"),
    "set-weight-nan-text": Hostile(canary("steps.0.setWeight", "NaN"), f"{C}.steps[0].setWeight"),
    "steps-a-map": Hostile(canary("steps", {"setWeight": 5}), f"{C}.steps"),
    "step-a-string": Hostile(canary("steps.0", "setWeight"), f"{C}.steps[0]"),
    "step-empty": Hostile(canary("steps.0", {}), f"{C}.steps[0]"),
    "step-unknown-kind": Hostile(canary("steps.0", {"setWait": 50}), f"{C}.steps[0].setWait"),
    "step-two-kinds": Hostile(canary("steps.0", {"setWeight": 5, "pause": {}}), f"{C}.steps[0]"),
    "pause-in-days": Hostile(canary("steps.1.pause.duration", "1d"), f"{C}.steps[1].pause.duration"),
    "pause-past-go": Hostile(canary("steps.1.pause.duration", "99999999999h"), f"{C}.steps[1].pause.duration"),
    "pause-huge-text": Hostile(canary("steps.1.pause.duration", HUGE + "s"), f"{C}.steps[1].pause.duration"),
    "pause-a-list": Hostile(canary("steps.1.pause", [1]), f"{C}.steps[1].pause"),
    "pause-negative": Hostile(canary("steps.1.pause.duration", -5), f"{C}.steps[1].pause.duration"),
    "header-route-not-run": Hostile(canary("steps.0", {"setHeaderRoute": {"name": "h"}}),
                                    f"{C}.steps[0].setHeaderRoute"),
    # ---- traffic routing, Services, routes
    "traffic-routing-a-string": Hostile(canary("trafficRouting", "istio"), f"{C}.trafficRouting"),
    "istio-a-list": Hostile(canary("trafficRouting.istio", ["vs"]), f"{C}.trafficRouting.istio"),
    "virtual-services-a-number": Hostile(canary("trafficRouting.istio", {"virtualServices": 5}),
                                         f"{C}.trafficRouting.istio"),
    "virtual-service-missing": Hostile(canary("trafficRouting.istio.virtualService.name", "no-such-vs"),
                                       f"{C}.trafficRouting.istio.virtualService.name"),
    "route-missing": Hostile(canary("trafficRouting.istio.virtualService.routes", ["secondary"]),
                             f"{C}.trafficRouting.istio.virtualService.routes[0]"),
    "nginx-not-run": Hostile(canary("trafficRouting", {"nginx": {"stableIngress": "ing"}}),
                             f"{C}.trafficRouting.nginx"),
    "canary-service-missing": Hostile(canary("canaryService", "no-such-svc"), f"{C}.canaryService"),
    "stable-service-missing": Hostile(canary("stableService", "no-such-svc"), f"{C}.stableService"),
    "same-services": Hostile(lambda ro, _: at(ro, f"{C}.canaryService", ro["spec"]["strategy"]["canary"][
        "stableService"]), f"{C}.stableService"),
    "surge-and-unavailable-zero": Hostile(both(canary("maxSurge", 0), canary("maxUnavailable", 0)), C),
    # ---- analysis references and args
    "template-missing": Hostile(canary("analysis.templates.0.templateName", "no-such-template"),
                                f"{C}.analysis.templates[0].templateName"),
    "templates-a-string": Hostile(canary("analysis.templates", "success-rate"), f"{C}.analysis.templates"),
    "arg-missing": Hostile(canary("analysis.args", []), f"{C}.analysis.args"),
    "arg-a-number": Hostile(canary("analysis.args.0.value", 5), f"{C}.analysis.args[0].value"),
    "arg-huge": Hostile(canary("analysis.args.0.value", MB), f"{C}.analysis.args[0].value"),
    "arg-undeclared-in-query": Hostile(template("spec.metrics.0.provider.prometheus.query", "up{x='{{args.nope}}'}"),
                                       f"{C}.analysis"),
    "secret-missing": Hostile(both(canary("analysis.args.0", {"name": "service-name", "valueFrom": {
        "secretKeyRef": {"name": "no-such-secret", "key": "token"}}}), step_analysis("result[0] >= 0.95")),
        "args.service-name: secret 'no-such-secret' not found", "error"),
    # ---- webhooks (our superset)
    "webhook-url-not-http": Hostile(canary("webhooks", [{"name": "w", "type": "rollout", "url": "ftp://x"}]),
                                    f"{C}.webhooks[0].url"),
    "webhook-type-unknown": Hostile(canary("webhooks", [{"name": "w", "type": "nope", "url": "http://x"}]),
                                    f"{C}.webhooks[0].type"),
    "webhook-timeout-an-hour": Hostile(canary("webhooks", [{"name": "w", "type": "rollout", "url": "http://x",
                                                            "timeout": "1h"}]), f"{C}.webhooks[0].timeout"),
    "webhook-retries-99": Hostile(canary("webhooks", [{"name": "w", "type": "rollout", "url": "http://x",
                                                       "retries": 99}]), f"{C}.webhooks[0].retries"),
    "webhook-names-repeated": Hostile(canary("webhooks", [{"name": "w", "type": "rollout", "url": "http://x"}] * 2),
                                      f"{C}.webhooks[1].name"),
    # ---- the AnalysisTemplate
    "condition-syntax": Hostile(template("spec.metrics.0.successCondition", "result[0] >="), f"{C}.analysis"),
    "condition-unknown-function": Hostile(template("spec.metrics.0.successCondition", "nope(result) > 1"),
                                          f"{C}.analysis"),
    "condition-huge": Hostile(template("spec.metrics.0.successCondition", "result[0] > " + "(" * 5000 + "1"),
                              f"{C}.analysis"),
    "interval-in-words": Hostile(template("spec.metrics.0.interval", "5 minutes"), f"{C}.analysis"),
    "count-a-word": Hostile(template("spec.metrics.0.count", "three"), f"{C}.analysis"),
    "failure-limit-below-minus-one": Hostile(template("spec.metrics.0.failureLimit", -2), f"{C}.analysis"),
    "metrics-empty": Hostile(template("spec.metrics", []), f"{C}.analysis"),
    "metrics-a-map": Hostile(template("spec.metrics", {"name": "x"}), f"{C}.analysis"),
    "provider-missing": Hostile(template("spec.metrics.0.provider", {}), f"{C}.analysis"),
    "provider-not-run": Hostile(both(step_analysis("result[0] >= 0.95"), template(
        "spec.metrics.0.provider", {"graphite": {"address": "http://x"}})), "provider 'graphite'", "error"),
    "provider-unknown": Hostile(template("spec.metrics.0.provider", {"graphitte": {"address": "http://x"}}),
                                f"{C}.analysis"),
    "two-providers": Hostile(template("spec.metrics.0.provider.web", {"url": "http://x"}), f"{C}.analysis"),
    "prometheus-address-not-url": Hostile(template("spec.metrics.0.provider.prometheus.address", "prometheus:9090"),
                                          f"{C}.analysis"),
    "web-json-path-unsupported": Hostile(template("spec.metrics.0.provider", {"web": {"url": "http://x",
                                                                                      "jsonPath": "$..x"}}),
                                         f"{C}.analysis"),
    "metric-names-repeated": Hostile(lambda _, t: t["spec"]["metrics"].append(copy.deepcopy(t["spec"]["metrics"][0])),
                                     f"{C}.analysis"),
    # ---- conditions that only fail when measured: an Error measurement naming the condition
    "condition-int-overflows": Hostile(step_analysis("9223372036854775807 + int(result[0] + 1) > 0"),
                                       "successCondition", "error"),
    "condition-modulo-zero": Hostile(step_analysis("int(result[0] * 100) % 0 == 0"), "successCondition", "error"),
    "condition-indexes-an-empty-result": Hostile(step_analysis("result[0] > 0.5", metric="empty"),
                                                 "successCondition", "error"),
    "condition-indexes-past-the-end": Hostile(step_analysis("result[7] > 0.5"), "successCondition", "error"),
    "condition-on-a-missing-field": Hostile(step_analysis("result.missing.deeper > 0.5"), "successCondition",
                                            "error"),
    # ---- names and sizes the API server would refuse
    "annotation-of-1mb": Hostile(rollout("metadata.annotations.hostile", MB), "metadata.annotations"),
    "pod-annotation-of-1mb": Hostile(rollout("spec.template.metadata.annotations.hostile", MB),
                                     "spec.template.metadata.annotations"),
    "label-value-odd": Hostile(rollout("spec.template.metadata.labels.odd", "a b/ü"),
                               "spec.template.metadata.labels.odd"),
    "label-value-long": Hostile(rollout("spec.template.metadata.labels.long", "v" * 64),
                                "spec.template.metadata.labels.long"),
    "annotations-many": Hostile(rollout("spec.template.metadata.annotations", MANY_ANNOTATIONS),
                                "spec.template.metadata.annotations"),
}
ODD_NAMES = {  # created beside the others: the API server refuses each, naming the field
    "Upper_Case!": "metadata.name", "a" * 300: "metadata.name", "dots..and-": "metadata.name", "ünï": "metadata.name",
}
HEALTHY = ("rollout-example", "healthy-b")


def build(cases: dict[str, Hostile]) -> tuple[FaultScenario, FaultyCluster, dict[str, tuple[Doc, Doc]]]:
    scenario, faulty = through_faults()
    scenario.provider.script("check", [0.99])
    scenario.provider.script("empty", [])
    base_template = next(doc for doc in scenario.docs if doc["kind"] == "AnalysisTemplate")
    scenario.docs += renamed(scenario.docs, HEALTHY[1])
    made: dict[str, tuple[Doc, Doc]] = {}
    for name in cases:
        docs = renamed(scenario.docs[: len(scenario.docs)], name)
        docs = [d for d in docs if (d["metadata"]["name"].startswith(name))]
        own = copy.deepcopy(base_template)
        own["metadata"]["name"] = f"{name}-check"
        own["spec"]["metrics"][0]["name"] = f"{name}-sr"
        scenario.provider.script(f"{name}-sr", [0.99])
        ro = next(d for d in docs if d["kind"] == "Rollout")
        ro["spec"]["strategy"]["canary"]["analysis"]["templates"] = [{"templateName": f"{name}-check"}]
        scenario.docs += [*docs, own]
        made[name] = (ro, own)
    return scenario, faulty, made


def story(scenario: FaultScenario) -> dict[str, Any]:
    metrics = scenario.manager.metrics
    return {"weights": scenario.weights.entries,
            "reconciles": [metrics.value("rollout_reconcile_count", {"namespace": "default", "name": n})
                           for n in HEALTHY],
            "phases": [(scenario.cluster.get("Rollout", n, "default").get("status") or {}).get("phase")
                       for n in HEALTHY]}


def update(cluster: Any, name: str, edit: Callable[[Doc], None] | None = None) -> None:
    doc = cluster.get("Rollout", name, "default")
    doc["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
    if edit is not None:
        edit(doc)
    cluster.replace(doc)


def run(cases: dict[str, Hostile]) -> tuple[FaultScenario, FaultyCluster, dict[str, Any]]:
    scenario, faulty, made = build(cases)
    scenario.given_objects()
    scenario.run_until(lambda: all((scenario.cluster.get("Rollout", n, "default").get("status") or {}).get("phase")
                                   == "Healthy" for n in (*HEALTHY, *cases)))
    first = {"vs": len(faulty.writes_of("VirtualService")), "rs": {
        n: len([rs for rs in scenario.cluster.list("ReplicaSet", "default") if rs["metadata"]["name"].startswith(
            f"{n}-")]) for n in cases}}
    cluster = scenario.cluster
    for name in HEALTHY:
        update(cluster, name)
    for name, case in cases.items():
        ro_now = cluster.get("Rollout", name, "default")
        template_now = cluster.get("AnalysisTemplate", f"{name}-check", "default")
        spec_ro, spec_t = copy.deepcopy({"metadata": ro_now["metadata"], "spec": ro_now["spec"]}), \
            copy.deepcopy({"metadata": template_now["metadata"], "spec": template_now["spec"]})
        spec_ro["spec"]["template"]["spec"]["containers"][0]["image"] = NEW_IMAGE
        case.edit(spec_ro, spec_t)
        if spec_t["spec"] != template_now["spec"]:
            template_now["spec"] = spec_t["spec"]
            cluster.replace(template_now)
        ro_now.update(spec_ro)
        cluster.replace(ro_now)
    refused = {}
    for odd in ODD_NAMES if cases else ():
        doc = copy.deepcopy(made[next(iter(cases))][0])
        doc["metadata"] = {"name": odd, "namespace": "default"}
        try:
            cluster.create(doc)
        except Invalid as err:  # as a real API server, the embedded one refuses the name
            refused[odd] = str(err)
    scenario.run_for(15 * 60)
    return scenario, faulty, {**first, "refused": refused}


@pytest.fixture(scope="module")
def baseline() -> Iterator[dict[str, Any]]:
    scenario, _, _ = run({})
    try:
        yield story(scenario)
    finally:
        scenario.close()


def test_the_corpus_is_at_least_sixty_manifests_each_naming_its_field() -> None:
    assert len(HOSTILE) + len(ODD_NAMES) >= 60
    assert all(case.path for case in HOSTILE.values())


def test_hostile_manifests_beside_healthy_rollouts_are_invalid_or_errors_and_move_no_traffic(
        baseline: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="rollouts.controller.manager")
    scenario, faulty, first = run(HOSTILE)
    cluster = scenario.cluster
    try:
        # the healthy ones went exactly as with no hostile neighbour
        assert story(scenario) == baseline
        assert baseline["phases"] == ["Healthy", "Healthy"]
        wrong: dict[str, str] = {}
        for name, case in HOSTILE.items():
            status = cluster.get("Rollout", name, "default").get("status") or {}
            message = str(status.get("message"))
            canary = [route_weights(vs, "primary", stable=f"{name}-stable-svc", canary=f"{name}-canary-svc")[1]
                      for vs in faulty.writes_of("VirtualService", f"{name}-rollout-vsvc")]
            if any(canary):
                wrong[name] = f"traffic moved: canary weights {canary}; {status.get('phase')}: {message[:200]}"
                continue
            if case.outcome == "invalid":
                replica_sets = [rs for rs in cluster.list("ReplicaSet", "default")
                                if rs["metadata"]["name"].startswith(f"{name}-")]
                if status.get("phase") != "Degraded" or not message.startswith("InvalidSpec: ") \
                        or case.path not in message:
                    wrong[name] = f"{status.get('phase')}: {message[:300]}"
                elif len(replica_sets) != first["rs"][name]:
                    wrong[name] = "a ReplicaSet was made for an InvalidSpec update"
            else:
                runs = [r for r in cluster.list("AnalysisRun", "default") if r["metadata"]["name"].startswith(name)]
                errors = [m["message"] for r in runs for res in (r.get("status") or {}).get("metricResults") or []
                          for m in res.get("measurements") or [] if m["phase"] == "Error"]
                errors += [str(r["status"].get("message")) for r in runs if (r.get("status") or {}).get("phase")
                           == "Error" and not errors]  # a run that could not start measuring says why itself
                if not errors or not all(case.path in e for e in errors) or status.get("abort") is not True:
                    wrong[name] = f"{status.get('phase')}: {message[:200]}; errors {errors[:1]}"
        for odd, path in ODD_NAMES.items():
            if path not in first["refused"].get(odd, ""):
                wrong[odd[:40]] = f"not refused by the API: {first['refused'].get(odd)}"
        assert not wrong, "\n".join(f"{k}: {v}" for k, v in wrong.items())
        print(f"\nhostile corpus: {len(HOSTILE) + len(ODD_NAMES)} manifests")
    finally:
        scenario.close()
