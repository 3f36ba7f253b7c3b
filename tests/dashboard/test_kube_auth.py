"""The dashboard's authentication and authorization on the real control plane (kube-apiserver
1.20 with RBAC, the `control_plane` fixture): real ServiceAccount tokens checked with
TokenReview, and each action checked with a SubjectAccessReview for the token's user, so a
user who may only read gets 403 with the reason and the Rollout is untouched, while a user
the RBAC allows acts. The dashboard itself runs as the admin (its broader rights are never
what lets a user act).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollouts.dashboard.server import Options, Served, build
from rollouts.kube.cluster import KubeCluster
from rollouts.kube.controlplane import ControlPlane
from tests.dashboard.conftest import csrf_of, http
from tests.k8s.e2e import admin, namespace, rollout

NS = "dashboard-auth"
NAME = "web"


def role(name: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": NS}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name, "namespace": NS},
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": name, "namespace": NS},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NS}]},
    ]


def token_of(plane: ControlPlane, account: str) -> str:
    """A real ServiceAccount token (the TokenRequest API), as `kubectl create token` gets one."""
    with plane.session() as session:
        answer = session.post(f"{plane.url}/api/v1/namespaces/{NS}/serviceaccounts/{account}/token", timeout=15,
                              json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                    "spec": {"expirationSeconds": 600}})
    answer.raise_for_status()
    return str(answer.json()["status"]["token"])


@pytest.fixture
def setup(control_plane: ControlPlane, tmp_path: Path) -> Iterator[tuple[Served, KubeCluster, dict[str, str]]]:
    with namespace(control_plane, NS):
        read = [{"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["get", "list", "watch"]}]
        write = [*read, {"apiGroups": ["argoproj.io"], "resources": ["rollouts", "rollouts/status"],
                         "verbs": ["patch"]}]
        control_plane.apply(*role("viewer", read), *role("operator", write))
        cluster = admin(control_plane, tmp_path, NS)
        cluster.create({**rollout(NAME, [{"setWeight": 50}, {"pause": {}}], replicas=1),
                        "metadata": {"name": NAME, "namespace": NS}})
        dash = build(cluster, Options(host="0.0.0.0", port=0, namespace=NS))
        assert dash.store.wait_synced(30)
        served = Served(dash, "0.0.0.0", 0)
        tokens = {account: token_of(control_plane, account) for account in ("viewer", "operator")}
        try:
            yield served, cluster, tokens
        finally:
            served.close()
            cluster.close()


def abort(served: Served, token: str) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"}
    page = http().get(f"{served.url}/rollouts/{NS}/{NAME}", headers=headers, timeout=15)
    assert page.status_code == 200, page.text
    answer = http().post(f"{served.url}/rollouts/{NS}/{NAME}/abort", headers={**headers, "HX-Request": "true"},
                         data={"csrf": csrf_of(page.text), "confirm": "yes"}, timeout=15)
    return answer.status_code, answer.text


def test_tokens_are_reviewed_and_actions_are_authorized_for_their_user(
        setup: tuple[Served, KubeCluster, dict[str, str]]) -> None:
    served, cluster, tokens = setup
    assert http().get(served.url + "/", timeout=15).status_code == 401
    rejected = http().get(served.url + "/", headers={"Authorization": "Bearer not-a-token"}, timeout=15)
    assert rejected.status_code == 401 and "not accepted by the cluster&#39;s TokenReview" in rejected.text
    overview = http().get(served.url + "/", headers={"Authorization": f"Bearer {tokens['viewer']}"}, timeout=15)
    assert overview.status_code == 200 and f'id="ro--{NS}--{NAME}"' in overview.text
    assert f"signed in as <strong>system:serviceaccount:{NS}:viewer</strong>" in overview.text

    status, text = abort(served, tokens["viewer"])
    assert status == 403, text
    assert f"user &#34;system:serviceaccount:{NS}:viewer&#34; may not patch rollouts/status" in text
    assert not (cluster.get("Rollout", NAME, NS).get("status") or {}).get("abort")

    status, text = abort(served, tokens["operator"])
    assert status == 200, text
    assert f"as system:serviceaccount:{NS}:operator" in text
    assert cluster.get("Rollout", NAME, NS)["status"]["abort"] is True
