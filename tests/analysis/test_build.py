"""Building AnalysisRuns from templates, and the spec rules every run must satisfy."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.args import ArgError
from analysis.build import SpecError, build_run, flatten, metric_rules
from analysis.model import (
    AnalysisRun,
    AnalysisRunSpec,
    AnalysisTemplate,
    Argument,
    DryRun,
    MeasurementRetention,
    TemplateRef,
)


def metric(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "provider": {"prometheus": {"query": "up"}}, **fields}


def template(name: str, *metrics: dict[str, Any], kind: str = "AnalysisTemplate", **spec: Any) -> AnalysisTemplate:
    return AnalysisTemplate.load({"kind": kind, "metadata": {"name": name}, "spec": {"metrics": list(metrics), **spec}})


def build(*templates: AnalysisTemplate, **kwargs: Any) -> AnalysisRun:
    return build_run(name="web-abc-2-1", namespace="shop", templates=templates, **kwargs)


def spec(*metrics: dict[str, Any], **fields: Any) -> AnalysisRunSpec:
    return AnalysisRunSpec.load({"metrics": list(metrics), **fields})


# ---------------------------------------------------------------- building


def test_builds_a_run_document_with_metadata_and_merged_args() -> None:
    at = template("success-rate", metric("rate", successCondition="result[0] > {{args.threshold}}"),
                  args=[{"name": "service"}, {"name": "threshold", "value": "0.95"}])
    owner = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "web", "uid": "u1", "controller": True}
    run = build(at, args=[Argument(name="service", value="web-canary"), Argument(name="extra", value="ignored")],
                labels={"rollouts-pod-template-hash": "abc"}, annotations={"rollout.argoproj.io/revision": "2"},
                owner=owner)
    doc = run.dump()
    assert doc["kind"] == "AnalysisRun" and doc["apiVersion"] == "argoproj.io/v1alpha1"
    assert doc["metadata"] == {"name": "web-abc-2-1", "namespace": "shop",
                               "labels": {"rollouts-pod-template-hash": "abc"},
                               "annotations": {"rollout.argoproj.io/revision": "2"}, "ownerReferences": [owner]}
    assert doc["spec"]["args"] == [{"name": "service", "value": "web-canary"}, {"name": "threshold", "value": "0.95"}]
    assert doc["spec"]["metrics"][0]["successCondition"] == "result[0] > {{args.threshold}}"  # substituted at run time
    assert "status" not in doc
    assert AnalysisRun.load(doc).dump() == doc


def test_caller_value_from_replaces_template_value() -> None:
    at = template("t", metric("m"), args=[{"name": "token", "value": "x"}])
    run = build(at, args=[Argument.load({"name": "token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}})])
    assert run.dump()["spec"]["args"] == [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]


def test_missing_required_arg_is_an_error() -> None:
    with pytest.raises(ArgError, match=r"args.service was not resolved: .*pass it from the Rollout"):
        build(template("t", metric("m"), args=[{"name": "service"}]))


def test_metrics_of_several_templates_are_concatenated() -> None:
    run = build(template("a", metric("m1"), metric("m2")),
                template("c", metric("m3"), kind="ClusterAnalysisTemplate"))
    assert [m.name for m in run.spec.metrics] == ["m1", "m2", "m3"]


def test_duplicate_metric_names_are_an_error_naming_both_templates() -> None:
    with pytest.raises(SpecError,
                       match=r"two metrics have the same name 'm' \(AnalysisTemplate 'b' and AnalysisTemplate 'a'\)"):
        build(template("a", metric("m")), template("b", metric("m")))


@pytest.mark.parametrize(("first", "second", "expected"), [
    ({"name": "x", "value": "1"}, {"name": "x", "value": "1"}, [{"name": "x", "value": "1"}]),
    ({"name": "x"}, {"name": "x", "value": "2"}, [{"name": "x", "value": "2"}]),
    ({"name": "x", "value": "1"}, {"name": "x"}, [{"name": "x", "value": "1"}]),
])
def test_template_args_merge(first: dict[str, str], second: dict[str, str], expected: list[dict[str, str]]) -> None:
    run = build(template("a", metric("m1"), args=[first]), template("b", metric("m2"), args=[second]))
    assert run.dump()["spec"]["args"] == expected


def test_same_arg_with_different_values_is_an_error() -> None:
    with pytest.raises(SpecError, match=r"Argument `x` specified multiple times with different values: '1', '2'"):
        build(template("a", metric("m1"), args=[{"name": "x", "value": "1"}]),
              template("b", metric("m2"), args=[{"name": "x", "value": "2"}]))


def test_nested_templates_are_flattened_once_each() -> None:
    library = {
        "base": template("base", metric("base-m"), templates=[{"templateName": "leaf"}]),
        "leaf": template("leaf", metric("leaf-m")),
        "shared": template("shared", metric("shared-m"), kind="ClusterAnalysisTemplate"),
    }

    def resolve(ref: TemplateRef) -> AnalysisTemplate:
        return library[ref.template_name]

    top = template("top", metric("top-m"), templates=[{"templateName": "base"}, {"templateName": "leaf"},
                                                     {"templateName": "shared", "clusterScope": True}])
    run = build(top, resolve_ref=resolve)
    assert [m.name for m in run.spec.metrics] == ["top-m", "base-m", "leaf-m", "shared-m"]


def test_template_cycles_and_unknown_refs_are_errors() -> None:
    library = {"a": template("a", metric("a"), templates=[{"templateName": "b"}]),
               "b": template("b", metric("b"), templates=[{"templateName": "a"}])}

    def resolve(ref: TemplateRef) -> AnalysisTemplate:
        if ref.template_name not in library:
            raise LookupError(f"AnalysisTemplate {ref.template_name!r} not found")
        return library[ref.template_name]

    with pytest.raises(SpecError, match="cycle: AnalysisTemplate 'a' -> AnalysisTemplate 'b' -> AnalysisTemplate 'a'"):
        flatten([library["a"]], resolve_ref=resolve)
    with pytest.raises(SpecError, match="references 'nope': AnalysisTemplate 'nope' not found"):
        flatten([template("t", metric("m"), templates=[{"templateName": "nope"}])], resolve_ref=resolve)
    with pytest.raises(SpecError, match="references template 'x' but it was not fetched"):
        flatten([template("t", metric("m"), templates=[{"templateName": "x"}])])


def test_dry_run_and_retention_rules_are_merged_caller_first() -> None:
    at = template("t", metric("m1"), metric("m2"), dryRun=[{"metricName": "m1"}, {"metricName": "m2"}],
                  measurementRetention=[{"metricName": "m2", "limit": 3}])
    run = build(at, dry_run=[DryRun(metric_name="m1")],
                measurement_retention=[MeasurementRetention(metric_name="m1", limit=5)])
    doc = run.dump()["spec"]
    assert doc["dryRun"] == [{"metricName": "m1"}, {"metricName": "m2"}]
    assert doc["measurementRetention"] == [{"metricName": "m1", "limit": 5}, {"metricName": "m2", "limit": 3}]


def test_conflicting_retention_limits_are_an_error() -> None:
    at = template("t", metric("m1"), measurementRetention=[{"metricName": "m1", "limit": 3}])
    with pytest.raises(SpecError, match="given twice with different limits"):
        build(at, measurement_retention=[MeasurementRetention(metric_name="m1", limit=5)])


def test_build_validates_the_metrics() -> None:
    with pytest.raises(SpecError, match=r"spec.metrics\[0\].interval: '5x' is not a duration"):
        build(template("t", metric("m", interval="5x")))
    with pytest.raises(ArgError, match=r"failed to resolve \{\{args.nope\}\}"):
        build(template("t", metric("m", successCondition="result > {{args.nope}}")))
    with pytest.raises(SpecError, match="no templates given"):
        build()


# ---------------------------------------------------------------- rules


@pytest.mark.parametrize(("count", "interval", "effective"), [
    (None, None, 1), (0, None, 1), (None, "1m", None), (0, "1m", None), (1, None, 1), (3, "30s", 3), ("4", 10, 4),
])
def test_effective_count(count: int | None, interval: str | None, effective: int | None) -> None:
    fields = {k: v for k, v in (("count", count), ("interval", interval)) if v is not None}
    assert metric_rules(spec(metric("m", **fields)))[0].count == effective


def test_defaults_and_templated_limits() -> None:
    rules = metric_rules(spec(
        metric("a"),
        metric("b", interval="{{args.every}}", count="{{args.n}}", failureLimit="{{args.limit}}", initialDelay="1m30s",
               inconclusiveLimit=1, consecutiveErrorLimit=0, consecutiveSuccessLimit=2),
        args=[{"name": "every", "value": "1m"}, {"name": "n", "value": "5"}, {"name": "limit", "value": "2"}],
    ))
    a, b = rules
    assert (a.interval, a.initial_delay, a.failure_limit, a.inconclusive_limit, a.consecutive_error_limit,
            a.consecutive_success_limit, a.retention, a.dry_run) == (None, None, 0, 0, 4, 0, 10, False)
    assert (b.interval, b.initial_delay, b.count, b.failure_limit, b.inconclusive_limit, b.consecutive_error_limit,
            b.consecutive_success_limit) == (60, 90, 5, 2, 1, 0, 2)


def test_dry_run_and_retention_match_as_unanchored_regexps() -> None:
    rules = metric_rules(spec(
        metric("error-rate"), metric("success-rate"), metric("latency"),
        dryRun=[{"metricName": "rate"}],
        measurementRetention=[{"metricName": ".*", "limit": 3}, {"metricName": "^lat", "limit": 20}],
    ))
    assert [(r.name, r.dry_run, r.retention) for r in rules] == [
        ("error-rate", True, 3), ("success-rate", True, 3), ("latency", False, 20)]


@pytest.mark.parametrize(("fields", "extra", "problem"), [
    ({"count": 3}, {}, r"spec.metrics\[0\].interval: count 3 needs an interval between measurements"),
    ({"interval": "1d"}, {}, r"interval: '1d' is not a duration \(Go durations have no 'd' unit: write 24h\)"),
    ({"initialDelay": "soon"}, {}, r"initialDelay: 'soon' is not a duration"),
    ({"count": "many", "interval": "1m"}, {}, r"count: 'many' is not an integer"),
    ({"failureLimit": -2}, {}, r"failureLimit: -2 is below -1"),
    ({"failureLimit": -1}, {}, r"failureLimit: -1 \(no failure limit\) needs consecutiveSuccessLimit > 0"),
    ({"inconclusiveLimit": -1}, {}, r"inconclusiveLimit: -1 is negative"),
    ({"consecutiveErrorLimit": -1}, {}, r"consecutiveErrorLimit: -1 is negative"),
    ({"count": 2, "interval": "1m", "failureLimit": 1, "consecutiveSuccessLimit": 2}, {},
     r"count: count 2 is less than failureLimit \+ consecutiveSuccessLimit \(3\)"),
    ({"count": 1, "inconclusiveLimit": 2}, {}, r"count: count 1 is less than inconclusiveLimit 2"),
    ({"provider": {}}, {}, r"provider: metric 'm' sets no provider"),
    ({"provider": {"prometheus": {"query": "x"}, "web": {"url": "u"}}}, {},
     r"metric 'm' sets 2 providers: prometheus, web"),
    ({}, {"dryRun": [{"metricName": "*"}]}, r"dryRun\[0\].metricName: '\*' is not a valid regular expression"),
    ({}, {"dryRun": [{"metricName": "other"}]}, r"dryRun\[0\].metricName: 'other' matches no metric \(use one of: m\)"),
    ({}, {"measurementRetention": [{"metricName": "zzz", "limit": 1}]},
     r"measurementRetention\[0\].metricName: 'zzz' matches no metric"),
])
def test_spec_errors_name_the_field(fields: dict[str, Any], extra: dict[str, Any], problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        metric_rules(spec(metric("m", **fields), **extra))


def test_no_metrics_and_duplicate_names() -> None:
    with pytest.raises(SpecError, match=r"spec.metrics: no metrics \(add at least one metric under spec.metrics\)"):
        metric_rules(spec())
    with pytest.raises(SpecError, match=r"metrics\[1\].name: metric name 'm' is used twice"):
        metric_rules(spec(metric("m"), metric("m")))


