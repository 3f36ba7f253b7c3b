"""The chart's alerts and dashboard query metrics the controller really exports, and the alerts fire.

Every metric name in the PrometheusRule and the Grafana dashboard must be a series name of
rollouts.controller.metrics.ControllerMetrics (a counter `x` is exported as `x_total`, a
histogram as `x_bucket`/`x_sum`/`x_count`). The rendered rules pass `promtool check rules`, and
`promtool test rules` proves each alert fires on the series that mean it (the first abort after
a restart included) and stays quiet otherwise, for this release's job only.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts.controller.metrics import ControllerMetrics
from rollouts.demo.prometheus import INSTALL_HINT
from tests.chart.conftest import CHART, Render, one

JOB = "r-rollouts-metrics"  # release "r": the metrics Service, which names the ServiceMonitor's job
MONITORING = {"prometheusRule": {"enabled": True}, "serviceMonitor": {"enabled": True},
              "dashboard": {"enabled": True}}
_SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count", "_created")}
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")


def exported_names() -> set[str]:
    return {family.name + suffix for family in ControllerMetrics().registry.collect()
            for suffix in _SUFFIXES[family.type]}


def metric_names(expr: str) -> set[str]:
    names = set(_SELECTOR.findall(expr)) | set(re.findall(r"label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)", expr))
    assert names, f"no metric found in {expr!r}"
    return names


def rules(render: Render) -> list[dict[str, Any]]:
    return list(one(render(MONITORING), "PrometheusRule")["spec"]["groups"][0]["rules"])


def dashboard() -> dict[str, Any]:
    return dict(json.loads((CHART / "dashboards" / "rollouts.json").read_text()))


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(f"promtool is not installed: {INSTALL_HINT}", pytrace=False)
    return found


def test_every_alert_names_only_exported_metrics(render: Render) -> None:
    exported = exported_names()
    assert {"rollout_events_total", "analysis_run_info", "rollouts_controller_leader"} <= exported
    alerts = rules(render)
    assert {r["alert"] for r in alerts} == {"RolloutAborted", "AnalysisRunError", "RolloutsControllerNoLeader",
                                            "RolloutReconcileErrors", "AnalysisRunReconcileErrors"}
    for rule in alerts:
        assert metric_names(rule["expr"]) <= exported, rule["alert"]
        assert f'job="{JOB}"' in rule["expr"], rule["alert"]


def test_every_dashboard_query_names_only_exported_metrics() -> None:
    exported = exported_names()
    board = dashboard()
    queries = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    queries += [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    assert len(queries) >= 10
    for query in queries:
        assert metric_names(query) <= exported, query


def test_the_dashboard_configmap_carries_the_dashboard_file(render: Render) -> None:
    config_map = one(render(MONITORING), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["rollouts.json"]) == dashboard()


def test_a_custom_selector_replaces_the_job(render: Render) -> None:
    custom = one(render({**MONITORING, "prometheusRule": {"enabled": True, "selector": 'app="rollouts"'}}),
                 "PrometheusRule")
    for rule in custom["spec"]["groups"][0]["rules"]:
        assert 'app="rollouts"' in rule["expr"] and "job=" not in rule["expr"]


def _series(metric: str, values: str, **labels: str) -> dict[str, str]:
    text = ",".join(f'{k}="{v}"' for k, v in {"job": JOB, **labels}.items())
    return {"series": f"{metric}{{{text}}}", "values": values}


def _expected(rule: dict[str, Any], **labels: str) -> dict[str, Any]:
    """The alert promtool should see: its labels, and its annotations with $labels filled in."""
    def fill(text: str) -> str:
        return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], text)

    return {"exp_labels": {**labels, **rule["labels"]},
            "exp_annotations": {k: fill(v) for k, v in rule["annotations"].items()}}


def test_promtool_checks_the_rules_and_each_alert_fires_when_it_should(
        render: Render, promtool: str, tmp_path: Path) -> None:
    by_name = {r["alert"]: r for r in rules(render)}
    group = {"name": "rollouts", "rules": list(by_name.values())}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [group]}))
    checked = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yaml")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout

    web, run = {"namespace": "shop", "name": "web"}, {"namespace": "shop", "name": "web-canary-1"}
    series = [
        # web is aborted at 5m (its counter's first sample: the controller restarted since) and again at 25m
        _series("rollout_events_total", "_x5 1x19 2x10", type="Warning", reason="RolloutAborted", **web),
        _series("rollout_events_total", "1+1x34", type="Normal", reason="RolloutPaused", **web),
        # another release's controller: never counted here
        _series("rollout_events_total", "_x2 1x32", type="Warning", reason="RolloutAborted",
                job="someone-else", namespace="shop", name="theirs"),
        _series("analysis_run_info", "_x3 1x31", phase="Error", **run),
        _series("analysis_run_info", "1x34", phase="Successful", namespace="shop", name="web-canary-0"),
        # replica a leads until 3m, then nobody does (another job's leader does not count)
        _series("rollouts_controller_leader", "1x3 0x31", pod="a"),
        _series("rollouts_controller_leader", "0x34", pod="b"),
        _series("rollouts_controller_leader", "1x34", job="someone-else", pod="c"),
        _series("rollout_reconcile_error_total", "0+1x34", **web),
        _series("analysis_run_reconcile_error_total", "0x34", **run),
    ]
    quiet = ("AnalysisRunReconcileErrors", [(m, []) for m in ("5m", "20m")])
    cases = [
        ("RolloutAborted", [("4m", []), ("6m", [_expected(by_name["RolloutAborted"], **web)]), ("22m", []),
                            ("26m", [_expected(by_name["RolloutAborted"], **web)])]),
        ("AnalysisRunError", [("3m", []), ("5m", [_expected(by_name["AnalysisRunError"], **run)])]),
        ("RolloutsControllerNoLeader", [("2m", []), ("8m", []),
                                        ("10m", [_expected(by_name["RolloutsControllerNoLeader"])])]),
        ("RolloutReconcileErrors", [("10m", []), ("12m", [_expected(by_name["RolloutReconcileErrors"], **web)])]),
        quiet,
    ]
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "alert_rule_test": [{"eval_time": at, "alertname": name, "exp_alerts": alerts}
                            for name, points in cases for at, alerts in points]}]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    tested = subprocess.run([promtool, "test", "rules", "tests.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr
