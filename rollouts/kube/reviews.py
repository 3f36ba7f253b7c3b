"""TokenReview and SubjectAccessReview on a real API server: who a bearer token is, what a user may do.

For the dashboard (rollouts.dashboard.auth): a browser's token is checked with a
TokenReview (authentication.k8s.io/v1), and before an action is sent for that user, every
request the action makes is checked with a SubjectAccessReview (authorization.k8s.io/v1)
for that user and their groups. The dashboard's own identity needs `create` on
tokenreviews and subjectaccessreviews (the `system:auth-delegator` ClusterRole grants both).

Rules:
- A token the server does not authenticate is None (never an exception); an API error
  (unreachable, 403 for the dashboard itself) is the port's error, so the caller refuses.
- `allowed` returns (allowed, reason): the reason is the API server's when it gives one,
  else a sentence naming the user, the verb, the resource and the namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollouts.kube.cluster import KubeCluster

__all__ = ["Reviewed", "allowed", "token_review"]


@dataclass(frozen=True)
class Reviewed:
    username: str
    groups: tuple[str, ...]


def token_review(cluster: KubeCluster, token: str) -> Reviewed | None:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    answer: dict[str, Any] = cluster._request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body=body)
    status = (answer or {}).get("status") or {}
    if not status.get("authenticated"):
        return None
    user = status.get("user") or {}
    return Reviewed(str(user.get("username") or ""), tuple(str(g) for g in user.get("groups") or []))


def allowed(cluster: KubeCluster, username: str, groups: tuple[str, ...], *, verb: str, group: str, resource: str,
            namespace: str, name: str = "", subresource: str = "") -> tuple[bool, str]:
    attributes = {"verb": verb, "group": group, "resource": resource, "namespace": namespace}
    if name:
        attributes["name"] = name
    if subresource:
        attributes["subresource"] = subresource
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": username, "groups": list(groups), "resourceAttributes": attributes}}
    answer: dict[str, Any] = cluster._request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=body)
    status = (answer or {}).get("status") or {}
    what = f"{resource}/{subresource}" if subresource else resource
    if status.get("allowed"):
        return True, ""
    reason = str(status.get("reason") or status.get("evaluationError") or "")
    sentence = f'user "{username}" may not {verb} {what} in namespace "{namespace}"'
    return False, f"{sentence} ({reason})" if reason else f"{sentence}: ask for RBAC on {what}"
