"""`rollouts analyze` against the real backfilled Prometheus, and its input errors (exit 2)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
import tenacity
import yaml

from analysis.model import Metric
from analysis.providers import UnsupportedProvider
from analysis.providers.prometheus import PrometheusProvider
from analysis.providers.registry import default_providers
from analysis.providers.web import WebProvider
from rollouts.cli import analyze, main
from tests.fixtures import istio_history

TEMPLATE = Path(__file__).parent.parent / "fixtures" / "success-rate-template.yaml"
EXAMPLE_TEMPLATE = Path(__file__).parents[2] / "examples" / "istio-canary" / "analysis-template.yaml"


def analyze_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["analyze", str(TEMPLATE), *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_healthy_canary_is_successful(prometheus, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out = analyze_json(capsys, "--prometheus-override", prometheus.url,
                             "--arg", f"service-name={prometheus.healthy_service}", "--at", "2024-01-01T00:30:00Z")
    assert code == 0
    assert out["phase"] == "Successful"
    [metric] = out["metrics"]
    assert metric["name"] == "success-rate"
    assert metric["value"] == [0.99]
    assert metric["phase"] == "Successful"
    assert f'destination_service=~"{prometheus.healthy_service}"' in metric["query"]
    assert "{{args" not in metric["query"]
    assert "satisfied" in metric["message"]


def test_degrading_canary_passes_hour_one_fails_hour_two(prometheus, capsys) -> None:  # type: ignore[no-untyped-def]
    base = ("--prometheus-override", prometheus.url, "--arg", f"service-name={prometheus.degrading_service}")
    code, out = analyze_json(capsys, *base, "--at", str(int(prometheus.hour_one.timestamp())))
    assert (code, out["phase"], out["metrics"][0]["value"]) == (0, "Successful", [0.98])
    code, out = analyze_json(capsys, *base, "--at", "2024-01-01T01:30:00+00:00")
    assert (code, out["phase"]) == (1, "Failed")
    assert out["metrics"][0]["value"] == [istio_history.success_rate(istio_history.DEGRADING, late=True)]
    assert 'did not satisfy successCondition "result[0] >= 0.95"' in out["metrics"][0]["message"]


@pytest.mark.parametrize(
    ("service", "at", "code", "phase", "value"),
    [
        ("healthy", "2024-01-01T01:30:00Z", 0, "Successful", [0.99]),
        ("degrading", "2024-01-01T00:30:00Z", 0, "Successful", [0.98]),
        ("degrading", "2024-01-01T01:30:00Z", 1, "Failed",
         [istio_history.success_rate(istio_history.DEGRADING, late=True)]),
    ],
)
def test_the_examples_success_rate_template_as_shipped(  # type: ignore[no-untyped-def]
    prometheus, capsys, service: str, at: str, code: int, phase: str, value: list[float]
) -> None:
    name = prometheus.healthy_service if service == "healthy" else prometheus.degrading_service
    got = main(["analyze", str(EXAMPLE_TEMPLATE), "--prometheus-override", prometheus.url,
                "--arg", f"service-name={name}", "--at", at, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert (got, out["phase"], out["metrics"][0]["value"]) == (code, phase, value)


def test_no_data_is_an_error_saying_so(prometheus, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out = analyze_json(capsys, "--prometheus-override", prometheus.url, "--arg", "service-name=nobody",
                             "--at", "2024-01-01T00:30:00Z")
    assert (code, out["phase"]) == (1, "Error")
    assert out["metrics"][0]["value"] == []
    assert "metric result is nil or empty" in out["metrics"][0]["message"]


def test_table_output(prometheus, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps cells at the terminal width
    code = main(["analyze", str(TEMPLATE), "--prometheus-override", prometheus.url, "--arg",
                 f"service-name={prometheus.degrading_service}", "--at", "2024-01-01T01:30:00Z"])
    out = capsys.readouterr().out
    assert code == 1
    assert "AnalysisTemplate success-rate at 2024-01-01T01:30:00Z" in out
    assert "success-rate" in out and "[0.8999999999999999]" in out
    assert out.rstrip().endswith("Phase: Failed")


def test_unreachable_prometheus_is_a_metric_error_not_a_crash(capsys) -> None:  # type: ignore[no-untyped-def]
    namespace = argparse.Namespace(template=str(TEMPLATE), prometheus=None, arg=["service-name=web"],
                                   at="2024-01-01T00:30:00Z", json=True)
    providers = default_providers(prometheus_address="http://127.0.0.1:1", retry_wait=tenacity.wait_none())
    assert analyze.run(namespace, providers=providers) == 1
    metric = json.loads(capsys.readouterr().out)["metrics"][0]
    assert metric["phase"] == "Error" and metric["value"] is None
    assert "Connection refused" in metric["message"]


def test_dry_run_and_unsupported_metrics(prometheus, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    template = yaml.safe_load(TEMPLATE.read_text())
    template["spec"]["metrics"].append({"name": "smoke-job", "provider": {"job": {"spec": {}}}})
    template["spec"]["dryRun"] = [{"metricName": "smoke-.*"}]
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(template))
    code = main(["analyze", str(path), "--prometheus-override", prometheus.url, "--arg",
                 f"service-name={prometheus.healthy_service}", "--at", "2024-01-01T00:30:00Z", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert (code, out["phase"]) == (0, "Successful")  # the failing job metric is dry-run
    job = out["metrics"][1]
    assert job["phase"] == "Error" and job["dryRun"] is True
    assert "'job' is not supported" in job["message"]


# ---------------------------------------------------------------- input errors exit 2


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return str(path)


def run_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(["analyze", *argv])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "Traceback" not in captured.err
    return captured.err.strip()


def test_missing_file(capsys) -> None:  # type: ignore[no-untyped-def]
    assert run_error(capsys, "no/such.yaml") == "rollouts analyze: no/such.yaml: no such file"


def test_bad_yaml_names_the_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    err = run_error(capsys, write(tmp_path, "kind: AnalysisTemplate\nname: a: b\n"))
    assert "not valid YAML at line 2, column 8: mapping values are not allowed here" in err


def test_wrong_kind(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    err = run_error(capsys, write(tmp_path, "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\n"))
    assert "expected exactly one AnalysisTemplate or ClusterAnalysisTemplate, found kinds 'Rollout'" in err


def test_schema_problem_has_the_field_path(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    text = ("kind: AnalysisTemplate\nmetadata: {name: t}\nspec:\n"
            "  metrics:\n    - name: m\n      successCondition: 'true'\n")
    err = run_error(capsys, write(tmp_path, text))
    assert "AnalysisTemplate is invalid: spec.metrics[0].provider: Field required" in err


def test_missing_required_arg_says_how_to_pass_it(capsys) -> None:  # type: ignore[no-untyped-def]
    err = run_error(capsys, str(TEMPLATE), "--prometheus", "http://127.0.0.1:1")
    assert "arg 'service-name' is required; pass it with --arg service-name=VALUE" in err


def test_unknown_arg(capsys) -> None:  # type: ignore[no-untyped-def]
    err = run_error(capsys, str(TEMPLATE), "--arg", "service-name=a", "--arg", "servce=b")
    assert "the template declares no arg 'servce' (declared: service-name)" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--arg", "service-name"], "write it as NAME=VALUE"),
        (["--arg", "service-name=a", "--at", "yesterday"], "is not a time; use RFC 3339"),
        (["--arg", "service-name=a", "--at", "2024-01-01T00:30:00"], "has no time zone"),
    ],
)
def test_bad_options(capsys, argv: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    assert message in run_error(capsys, str(TEMPLATE), *argv)


def test_invalid_rule_after_substitution(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    template = yaml.safe_load(TEMPLATE.read_text())
    template["spec"]["metrics"][0]["count"] = "{{args.service-name}}"
    err = run_error(capsys, write(tmp_path, yaml.safe_dump(template)), "--arg", "service-name=abc")
    assert "count" in err and "'abc' is not an integer" in err


def test_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["analyze"])
    assert caught.value.code == 2


# ---------------------------------------------------------------- the registry


def test_default_providers_cover_prometheus_and_web_only() -> None:
    providers = default_providers(prometheus_address="http://127.0.0.1:1")
    prom = Metric.load({"name": "p", "provider": {"prometheus": {"query": "up"}}})
    web = Metric.load({"name": "w", "provider": {"web": {"url": "http://x"}}})
    job = Metric.load({"name": "j", "provider": {"job": {}}})
    assert isinstance(providers.for_metric(prom), PrometheusProvider)
    assert isinstance(providers.for_metric(web), WebProvider)
    with pytest.raises(UnsupportedProvider, match="provider 'job' is not supported"):
        providers.for_metric(job)
