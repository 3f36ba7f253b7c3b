"""Authentication off loopback (401 without a valid token), trusted proxy headers only when
configured, every action authorized for the user who asks (403 with the reason), and no
Secret value in any page or stream.

The in-memory API has no TokenReview or RBAC: here a token is refused, and a proxy user may
look but not act. tests/dashboard/test_kube_auth.py proves TokenReview and
SubjectAccessReview on the real control plane.
"""

from __future__ import annotations

import base64

from rollouts.dashboard.auth import Need, User
from rollouts.memory.cluster import InMemoryCluster
from tests.cli.conftest import NS, Shop
from tests.dashboard.conftest import Serve, Sse, csrf_of, http

PAGE = "/rollouts/shop/checkout"


def test_off_loopback_a_request_without_a_token_is_401(cluster: InMemoryCluster, shop: Shop, served: Serve) -> None:
    shop.seed("paused")
    dash = served(cluster, host="0.0.0.0")
    for path in ("/", PAGE, "/stream", PAGE + "/stream"):
        answer = http().get(dash.url + path, timeout=10)
        assert answer.status_code == 401, path
        assert "checkout" not in answer.text, "nothing of the cluster before authentication"
    answer = http().get(dash.url + "/", timeout=10)
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert 'name="token"' in answer.text, "the page offers the login form"
    status = http().post(dash.url + PAGE + "/abort", data={"csrf": dash.dash.auth.csrf, "confirm": "yes"}, timeout=10)
    assert status.status_code == 401
    assert cluster.get("Rollout", "checkout", NS)["status"].get("abort") is None


def test_a_token_the_cluster_cannot_review_is_401_saying_why(cluster: InMemoryCluster, shop: Shop,
                                                             served: Serve) -> None:
    shop.seed("paused")
    dash = served(cluster, host="0.0.0.0")
    answer = http().get(dash.url + "/", headers={"Authorization": "Bearer abc"}, timeout=10)
    assert answer.status_code == 401 and "has no TokenReview" in answer.text


def test_proxy_headers_are_trusted_only_when_configured(cluster: InMemoryCluster, shop: Shop, served: Serve) -> None:
    shop.seed("paused")
    plain = served(cluster, host="0.0.0.0")
    assert http().get(plain.url + "/", headers={"X-Forwarded-User": "alice"}, timeout=10).status_code == 401
    proxied = served(cluster, host="0.0.0.0", proxy_header="X-Forwarded-User")
    page = http().get(proxied.url + PAGE, headers={"X-Forwarded-User": "alice"}, timeout=10)
    assert page.status_code == 200 and "signed in as <strong>alice</strong>" in page.text
    answer = http().post(proxied.url + PAGE + "/abort", headers={"X-Forwarded-User": "alice"},
                         data={"csrf": csrf_of(page.text), "confirm": "yes"}, timeout=10)
    assert answer.status_code == 403 and "has no RBAC" in answer.text, "never on the dashboard's own rights"
    assert cluster.get("Rollout", "checkout", NS)["status"].get("abort") is None


class Reviewer:
    """Stands in for the API server's reviews: one known token, and alice may only read."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str, str]] = []

    def token(self, token: str) -> User | None:
        return User("alice", ("readers",), how="token") if token == "alice-token" else None

    def allowed(self, user: User, need: Need, namespace: str, name: str) -> tuple[bool, str]:
        self.asked.append((user.name, need.verb, need.subresource, namespace))
        if need.verb == "get":
            return True, ""
        return False, f'user "{user.name}" may not {need.verb} rollouts in namespace "{namespace}"'


def test_a_token_user_is_asked_about_every_request_and_refused_with_the_reason(
        cluster: InMemoryCluster, shop: Shop, served: Serve) -> None:
    shop.seed("paused")
    reviewer = Reviewer()
    dash = served(cluster, host="0.0.0.0", reviews=reviewer)
    assert http().get(dash.url + "/", headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    login = http().post(dash.url + "/login", data={"token": "alice-token"}, timeout=10, allow_redirects=False)
    assert login.status_code == 303 and "HttpOnly" in login.headers["set-cookie"]
    assert "SameSite=strict" in login.headers["set-cookie"]
    cookies = {"rollouts-token": "alice-token"}
    page = http().get(dash.url + PAGE, cookies=cookies, timeout=10)
    assert page.status_code == 200
    answer = http().post(dash.url + PAGE + "/abort", cookies=cookies, data={"csrf": csrf_of(page.text),
                                                                             "confirm": "yes"}, timeout=10)
    assert answer.status_code == 403 and "may not patch rollouts in namespace &#34;shop&#34;" in answer.text
    assert reviewer.asked == [("alice", "get", "", "shop"), ("alice", "patch", "status", "shop")]
    assert cluster.get("Rollout", "checkout", NS)["status"].get("abort") is None


def test_no_secret_value_in_any_page_or_stream(cluster: InMemoryCluster, shop: Shop, served: Serve) -> None:
    value = "s3cr3t-token-value"
    cluster.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": NS},
                    "data": {"token": base64.b64encode(value.encode()).decode()}})
    rollout = shop.seed("aborted")
    run = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
           "metadata": {"name": "with-secret", "namespace": NS, "ownerReferences": [
               {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "checkout",
                "uid": rollout["metadata"]["uid"], "controller": True}]},
           "spec": {"args": [{"name": "token", "value": value,  # a value beside the reference: still redacted
                              "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
                    "metrics": [{"name": "webhook", "provider": {"web": {"url": "http://x/{{args.token}}"}}}]}}
    cluster.create(run)
    dash = served(cluster)
    stream = Sse(dash.url + PAGE + "/stream")
    try:
        cluster.patch_status("Rollout", "checkout", NS, {"status": {"message": "changed"}})
        streamed = str(stream.next_event("detail"))
    finally:
        stream.close()
    pages = [http().get(dash.url + path, timeout=10).text for path in ("/", PAGE, PAGE + "/confirm/abort")]
    encoded = base64.b64encode(value.encode()).decode()
    for text in [*pages, streamed]:
        assert value not in text and encoded not in text
    assert "REDACTED (secret creds, key token)" in pages[1]
