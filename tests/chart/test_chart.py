"""The Helm chart renders valid, safe objects that start the controller the way its CLI reads them.

Covered: `helm lint --strict` (and the schema rejecting a mistyped value), each value set through
`kubernetes-validate --strict`, the pod's securityContext, the probes on the controller's real
health endpoint, the Deployment's args parsed by `rollouts controller`'s own parser, the image and
resources values, the instance id and namespace scope, and the chart's appVersion.
"""

from __future__ import annotations

import argparse
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from typing import Any

import kubernetes_validate
import pytest

import rollouts
from rollouts.cli import controller as controller_cli
from tests.chart.conftest import CHART, NAMESPACE, Helm, Render, kinds, one

K8S_VERSIONS = ("1.28.0", "1.37.0")  # the oldest Kubernetes users run today, and the newest the validator knows

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespace-scoped": {"controller": {"namespaceScope": "shop"}},
    "monitoring": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus"}},
                   "prometheusRule": {"enabled": True}, "dashboard": {"enabled": True}},
    "custom-image-and-resources": {
        "image": {"repository": "registry.example.com/team/rollouts", "tag": "1.2.3", "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "registry-creds"}],
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}},
        "podAnnotations": {"sidecar.istio.io/inject": "false"},
    },
    "instance-id": {"controller": {"instanceId": "team-a", "prometheusAddress": "http://prometheus.monitoring:9090",
                                   "logFormat": "text"}},
    "single-replica": {"replicaCount": 1, "leaderElection": False},
}

# Kinds kubernetes-validate has no schema for: the Prometheus Operator's (checked by promtool
# in test_alerts.py and by shape here).
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}


def deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment")


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [found] = deployment(docs)["spec"]["template"]["spec"]["containers"]
    return dict(found)


def parsed_args(docs: list[dict[str, Any]]) -> argparse.Namespace:
    """The Deployment's args as `rollouts controller` parses them (an unknown flag fails here)."""
    parser = argparse.ArgumentParser(exit_on_error=False)
    controller_cli.register(parser.add_subparsers())
    return parser.parse_args(container(docs)["args"])


def test_helm_lint_strict_passes(helm: Helm) -> None:
    result = helm("lint", "--strict", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_helm_lint_strict_rejects_a_mistyped_value(helm: Helm) -> None:
    result = helm("lint", "--strict", str(CHART), "--set", "controller.namespaceScop=shop", check=False)
    assert result.returncode != 0
    assert "namespaceScop" in result.stdout + result.stderr


def test_two_replicas_without_leader_election_do_not_render(helm: Helm) -> None:
    result = helm("template", "r", str(CHART), "--set", "leaderElection=false", check=False)
    assert result.returncode != 0 and "needs leaderElection" in result.stderr


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_rendered_object_passes_kubernetes_validate_strict(render: Render, name: str) -> None:
    docs = render(VALUE_SETS[name], crds=True)
    assert {"Deployment", "ServiceAccount", "Service", "CustomResourceDefinition"} <= set(kinds(docs))
    unchecked = []
    for doc in docs:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                unchecked.append(doc["kind"])
            except kubernetes_validate.ValidationError as err:
                where = f"{name}: {doc['kind']}/{doc['metadata']['name']} on {version}"
                raise AssertionError(f"{where}: {getattr(err, 'message', err)}") from None
    assert set(unchecked) <= OPERATOR_KINDS


def test_the_pod_runs_non_root_read_only_with_no_privileges(render: Render) -> None:
    docs = render()
    pod = deployment(docs)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container(docs)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["privileged"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    # the one writable place is an emptyDir at /tmp
    assert container(docs)["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]


def test_defaults_are_two_leader_elected_replicas_with_requests_and_limits(render: Render) -> None:
    docs = render()
    assert deployment(docs)["spec"]["replicas"] == 2
    args = parsed_args(docs)
    assert args.leader_elect is True
    resources = container(docs)["resources"]
    assert set(resources) == {"requests", "limits"}
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_the_probes_hit_the_health_endpoint_the_controller_serves(render: Render) -> None:
    docs = render()
    args = parsed_args(docs)
    ports = {p["name"]: p["containerPort"] for p in container(docs)["ports"]}
    assert ports == {"health": args.health_addr[1], "metrics": args.metrics_addr[1]}
    # the chart's defaults are the CLI's own defaults
    assert (args.health_addr, args.metrics_addr) == (controller_cli.address(controller_cli.DEFAULT_HEALTH_ADDR),
                                                     controller_cli.address(controller_cli.DEFAULT_METRICS_ADDR))
    for probe in ("livenessProbe", "readinessProbe"):
        assert container(docs)[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    service = one(docs, "Service")
    assert [(p["name"], p["targetPort"]) for p in service["spec"]["ports"]] == [("metrics", "metrics")]
    assert service["spec"]["selector"].items() <= deployment(docs)["spec"]["template"]["metadata"]["labels"].items()


def test_health_and_metrics_answer_on_the_ports_the_chart_probes(render: Render) -> None:
    """The endpoint behind the probe is real: the controller's server answers /healthz and /metrics."""
    from rollouts.controller.metrics import ControllerMetrics, serve

    server = serve(ControllerMetrics(), "127.0.0.1:0")
    try:
        base = f"http://127.0.0.1:{server.port}"
        probe = container(render())["livenessProbe"]["httpGet"]["path"]
        with urllib.request.urlopen(base + probe, timeout=5) as answer:
            assert answer.status == 200
        with urllib.request.urlopen(base + "/metrics", timeout=5) as answer:
            assert b"rollouts_controller_leader" in answer.read()
    finally:
        server.close()


def test_value_sets_reach_the_controller_flags(render: Render) -> None:
    default = parsed_args(render())
    assert (default.namespace, default.instance_id, default.prometheus) == (None, None, None)
    assert (default.log_format, default.workers, default.analysis_workers) == ("json", 4, 4)
    scoped = parsed_args(render(VALUE_SETS["namespace-scoped"]))
    assert scoped.namespace == "shop"
    sharded = parsed_args(render(VALUE_SETS["instance-id"]))
    assert sharded.instance_id == "team-a"
    assert sharded.prometheus == "http://prometheus.monitoring:9090"
    assert sharded.log_format == "text"
    single = render(VALUE_SETS["single-replica"])
    assert deployment(single)["spec"]["replicas"] == 1 and parsed_args(single).leader_elect is False


def test_the_lease_namespace_comes_from_the_pod(render: Render) -> None:
    env = {e["name"]: e for e in container(render())["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_custom_image_resources_and_scheduling_values_are_used(render: Render) -> None:
    values = VALUE_SETS["custom-image-and-resources"]
    docs = render(values)
    assert container(docs)["image"] == "registry.example.com/team/rollouts:1.2.3"
    assert container(docs)["imagePullPolicy"] == "Always"
    assert container(docs)["resources"] == values["resources"]
    pod = deployment(docs)["spec"]["template"]
    assert pod["metadata"]["annotations"] == values["podAnnotations"]
    for key in ("nodeSelector", "tolerations", "affinity", "imagePullSecrets"):
        assert pod["spec"][key] == values[key]


def test_the_default_image_tag_is_the_controller_version(render: Render) -> None:
    assert container(render())["image"] == f"rollouts:{rollouts.__version__}"


def test_optional_objects_appear_only_when_enabled(render: Render) -> None:
    plain = set(kinds(render()))
    assert not plain & {"ServiceMonitor", "PrometheusRule", "ConfigMap"}
    monitored = render(VALUE_SETS["monitoring"])
    assert set(kinds(monitored)) - plain == {"ServiceMonitor", "PrometheusRule", "ConfigMap"}
    monitor = one(monitored, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= one(monitored, "Service")["metadata"]["labels"].items()


def test_the_deployment_args_start_a_controller_whose_health_endpoint_answers(render: Render) -> None:
    """The chart's args with every option set, run for real (against --local, on free ports)."""
    values = {"controller": {"namespaceScope": "shop", "instanceId": "team-a", "logFormat": "json",
                             "prometheusAddress": "http://prometheus.monitoring:9090"}}
    args = [a for a in container(render(values))["args"] if not a.startswith(("--metrics-addr", "--health-addr"))]
    argv = [sys.executable, "-m", "rollouts", *args, "--local", "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0"]
    child = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in child.stderr or []], daemon=True).start()
    try:
        health = None
        while health is None:
            record = json.loads(lines.get(timeout=30))  # --log-format json: every line is an object
            health = re.fullmatch(r"health on (http://\S+/healthz)", record["msg"])
            assert child.poll() is None, record
        with urllib.request.urlopen(health.group(1), timeout=5) as answer:
            assert answer.status == 200
    finally:
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 0
