"""The chart's notifications values: a ConfigMap the controller's own checker accepts, the flag that names it,
and a Role that lets the controller read it (and the Secrets its routes name) in the release namespace.

Rendered with the real helm (`helm template`, `helm lint --strict`); the ConfigMap's data goes through
rollouts.plan.notify_render.load, the function the controller calls when it reads the ConfigMap.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import yaml

from rollouts.plan import notify_render
from tests.chart.conftest import CHART, NAMESPACE, Helm, Render, one
from tests.chart.test_chart import K8S_VERSIONS, container, parsed_args

NAME = "r-rollouts-notifications"
VALUES: dict[str, Any] = {"notifications": {
    "enabled": True,
    "routes": {
        "team-a": {"urlFrom": {"secretKeyRef": {"name": "slack", "key": "url"}},
                   "triggers": ["aborted", "analysis-failed"], "selector": {"matchLabels": {"team": "a"}}},
        "audit": {"url": "https://audit.example/hooks/rollouts", "format": "webhook", "template": "audit",
                  "headers": [{"name": "Authorization", "valueFrom": {"secretKeyRef": {"name": "audit", "key": "t"}}}]},
    },
    "templates": {"audit": '{"what": {{ trigger | tojson }}, "who": {{ (namespace ~ "/" ~ name) | tojson }}}'},
    "settings": {"heldAfter": 1800, "queueSize": 50},
}}


def test_enabled_notifications_render_a_configmap_the_controller_accepts_and_the_flag_naming_it(
        render: Render) -> None:
    docs = render(VALUES)
    config = notify_render.load(one(docs, "ConfigMap", NAME)["data"])
    routes = {route.name: route for route in config.routes}
    assert set(routes) == {"team-a", "audit"}
    assert routes["team-a"].triggers == {"aborted", "analysis-failed"}
    assert routes["team-a"].match_labels == {"team": "a"}
    assert routes["team-a"].url is None and routes["team-a"].url_secret is not None  # the token stays in the Secret
    assert routes["audit"].template == "audit" and config.settings.held_after == 1800
    assert config.settings.queue_size == 50
    assert parsed_args(docs).notifications_configmap == (NAMESPACE, NAME)
    role = one(docs, "Role", NAME)
    assert role["metadata"]["namespace"] == NAMESPACE
    assert {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [NAME], "verbs": ["get"]} in role["rules"]
    assert one(docs, "RoleBinding", NAME)["roleRef"]["name"] == NAME
    for doc in docs:
        if doc["kind"] in ("ConfigMap", "Role", "RoleBinding"):
            for version in K8S_VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)


def test_bring_your_own_configmap_keeps_the_flag_and_the_role(render: Render) -> None:
    docs = render({"notifications": {"enabled": True, "createConfigMap": False, "configMapName": "mine"}})
    assert not [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "mine"]
    assert parsed_args(docs).notifications_configmap == (NAMESPACE, "mine")
    assert one(docs, "Role", NAME)["rules"][0]["resourceNames"] == ["mine"]


def test_notifications_are_off_by_default(render: Render) -> None:
    docs = render()
    assert parsed_args(docs).notifications_configmap is None
    assert not any("--notifications-configmap" in arg for arg in container(docs)["args"])
    assert not [d for d in docs if d["metadata"]["name"] == NAME]


def test_helm_lint_strict_passes_with_notifications_and_rejects_a_mistyped_setting(helm: Helm, tmp_path: Any) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(VALUES))
    assert "0 chart(s) failed" in helm("lint", "--strict", str(CHART), "-f", str(values)).stdout
    bad = helm("lint", "--strict", str(CHART), "--set", "notifications.settings.heldAftr=5", check=False)
    assert bad.returncode != 0 and "heldAftr" in bad.stdout + bad.stderr
