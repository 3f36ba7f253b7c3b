"""Arg resolution, `{{args.x}}` substitution, secret redaction and Rollout-side args."""

from __future__ import annotations

from typing import Any

import pytest

from analysis import args
from analysis.args import ArgError
from analysis.model import Argument, Metric


def metric(**fields: Any) -> Metric:
    body: dict[str, Any] = {"name": "m", "provider": {"prometheus": {"query": "up"}}}
    body.update(fields)
    return Metric.load(body)


def arg(name: str, value: str | None = None, **value_from: Any) -> Argument:
    body: dict[str, Any] = {"name": name}
    if value is not None:
        body["value"] = value
    if value_from:
        body["valueFrom"] = value_from
    return Argument.load(body)


# ---------------------------------------------------------------- substitution


def test_substitutes_in_every_string_field_and_revalidates_int_or_string_fields() -> None:
    raw = metric(
        interval="{{args.every}}", count="{{ args.count }}", failureLimit="{{args.limit}}",
        successCondition="result[0] >= {{args.threshold}}", failureCondition="result[0] < {{args.floor}}",
        provider={
            "prometheus": {"address": "http://{{args.host}}:9090", "query": 'rate(x{svc="{{args.service-name}}"}[1m])',
                           "headers": [{"key": "X-Team", "value": "{{args.team}}"}]},
        },
    )
    values = {"every": "30s", "count": "5", "limit": "2", "threshold": "0.95", "floor": "0.5", "host": "prom",
              "service-name": "web-canary", "team": "payments"}
    out = args.substitute(raw, values)
    assert out.interval == "30s" and out.count == "5" and out.failure_limit == "2"
    assert out.success_condition == "result[0] >= 0.95" and out.failure_condition == "result[0] < 0.5"
    prom = out.provider.prometheus
    assert prom is not None and prom.address == "http://prom:9090"
    assert prom.query == 'rate(x{svc="web-canary"}[1m])'
    assert prom.headers is not None and prom.headers[0].value == "payments"
    assert raw.count == "{{ args.count }}"  # the input is untouched


def test_substitutes_web_url_headers_body_and_json_body() -> None:
    raw = metric(provider={"web": {
        "url": "https://x/{{args.path}}", "method": "POST", "body": '{"rev": "{{args.rev}}"}',
        "headers": [{"key": "Authorization", "value": "Bearer {{args.api-token}}"}],
        "jsonBody": {"{{args.key}}": ["{{args.rev}}", 1]},
    }})
    out = args.substitute(raw, {"path": "health", "rev": "abc", "api-token": "t0k", "key": "k"})
    web = out.provider.web
    assert web is not None and web.url == "https://x/health" and web.body == '{"rev": "abc"}'
    assert web.headers is not None and web.headers[0].value == "Bearer t0k"
    assert web.json_body == {"k": ["abc", 1]}


def test_values_with_quotes_and_backslashes_survive_substitution() -> None:
    out = args.substitute(metric(successCondition='result == "{{args.v}}"'), {"v": 'a"b\\c'})
    assert out.success_condition == 'result == "a"b\\c"'


def test_unknown_placeholder_names_it() -> None:
    with pytest.raises(ArgError, match=r"failed to resolve \{\{args.missing\}\} in metric 'm'"):
        args.substitute(metric(successCondition="result > {{args.missing}}"), {"other": "1"})


def test_other_templates_are_left_alone() -> None:
    out = args.substitute(metric(successCondition="{{ not-args }} {{args.a}}"), {"a": "1"})
    assert out.success_condition == "{{ not-args }} 1"


# ---------------------------------------------------------------- values and secrets


def test_values_from_value_and_secrets_are_tracked() -> None:
    lookups = []

    def lookup(name: str, key: str) -> str:
        lookups.append((name, key))
        return "s3cr3t"

    resolved = args.resolve_values(
        [arg("plain", "1"), arg("token", secretKeyRef={"name": "creds", "key": "token"})], secret_lookup=lookup
    )
    assert resolved.values == {"plain": "1", "token": "s3cr3t"}
    assert resolved.secrets == {"s3cr3t"}
    assert lookups == [("creds", "token")]


@pytest.mark.parametrize("error", [LookupError("secret 'creds' not found"), KeyError("key 'token' does not exist")])
def test_missing_secret_or_key_is_an_arg_error_naming_the_arg(error: LookupError) -> None:
    def lookup(name: str, key: str) -> str:
        raise error

    with pytest.raises(ArgError, match=r"args.token: .*(not found|does not exist)"):
        args.resolve_values([arg("token", secretKeyRef={"name": "creds", "key": "token"})], secret_lookup=lookup)


def test_secret_without_lookup_is_an_arg_error() -> None:
    with pytest.raises(ArgError, match="reads secret 'creds' but no secret access"):
        args.resolve_values([arg("token", secretKeyRef={"name": "creds", "key": "k"})], secret_lookup=None)


def test_missing_required_arg_says_how_to_fix() -> None:
    with pytest.raises(ArgError, match=r"args.service-name was not resolved: .*pass it from the Rollout"):
        args.resolve_values([arg("service-name")], secret_lookup=None)


def test_template_side_field_ref_is_not_resolved_at_measurement_time() -> None:
    with pytest.raises(ArgError, match=r"args.env was not resolved: valueFrom.fieldRef"):
        args.resolve_values([arg("env", fieldRef={"fieldPath": "metadata.name"})], secret_lookup=None)


def test_values_without_secrets_masks_them() -> None:
    values = args.values_without_secrets([arg("a", "1"), arg("t", secretKeyRef={"name": "s", "key": "k"})])
    assert values == {"a": "1", "t": "*****"}


def test_redact_replaces_every_secret_longest_first() -> None:
    text = "token=abc123 again abc123, short abc"
    assert args.redact(text, ["abc", "abc123", ""]) == "token=***** again *****, short *****"
    assert args.redact("nothing here", []) == "nothing here"


# ---------------------------------------------------------------- Rollout-side args

ROLLOUT = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
    "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "labels": {"env": "prod"},
                 "annotations": {"team": "pay"}},
    "spec": {"replicas": 5, "paused": False, "strategy": {"canary": {"steps": [{"setWeight": 20}]}}},
    "status": {"alb": {"canaryTargetGroup": {"name": "tg-canary"}}},
}


@pytest.mark.parametrize(("path", "expected"), [
    ("metadata.name", "web"),
    ("metadata.namespace", "shop"),
    ("metadata.uid", "u-1"),
    ("metadata.labels['env']", "prod"),
    ("metadata.annotations['team']", "pay"),
    ("metadata.labels", 'env="prod"'),
    ("status.alb.canaryTargetGroup.name", "tg-canary"),
    ("spec.replicas", "5"),
    ("spec.paused", "false"),
    ("spec.strategy.canary.steps[0].setWeight", "20"),
])
def test_field_ref_paths(path: str, expected: str) -> None:
    out = args.resolve_rollout_args([arg("x", fieldRef={"fieldPath": path})], ROLLOUT,
                                    stable_hash=None, latest_hash=None)
    assert out == [Argument(name="x", value=expected)]


@pytest.mark.parametrize(("path", "problem"), [
    ("metadata.labels['missing']", "has no label 'missing'"),
    ("metadata.generation", "unsupported metadata path"),
    ("status.nothing.here", "'nothing' does not exist"),
    ("spec.strategy.canary.steps[3]", r"'\[3\]' does not exist"),
    ("spec.strategy", "must end on a string, number or boolean"),
])
def test_bad_field_ref_paths_name_the_rollout_and_path(path: str, problem: str) -> None:
    with pytest.raises(ArgError, match=rf"fieldRef .* of Rollout 'web': .*{problem}"):
        args.resolve_rollout_args([arg("x", fieldRef={"fieldPath": path})], ROLLOUT, stable_hash=None, latest_hash=None)


def test_pod_template_hash_values_and_passthrough() -> None:
    given = [
        arg("stable", podTemplateHashValue="Stable"), arg("canary", podTemplateHashValue="Latest"),
        arg("lit", "v"), arg("token", secretKeyRef={"name": "s", "key": "k"}),
    ]
    out = args.resolve_rollout_args(given, ROLLOUT, stable_hash="aaa111", latest_hash="bbb222")
    assert [(a.name, a.value) for a in out] == [
        ("stable", "aaa111"), ("canary", "bbb222"), ("lit", "v"), ("token", None)]
    assert out[3].value_from is not None and out[3].value_from.secret_key_ref is not None


def test_stable_hash_missing_is_an_error() -> None:
    with pytest.raises(ArgError, match="Rollout 'web' has no stable ReplicaSet yet"):
        args.resolve_rollout_args([arg("s", podTemplateHashValue="Stable")], ROLLOUT, stable_hash=None, latest_hash="b")
