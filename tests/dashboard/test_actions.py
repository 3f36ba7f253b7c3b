"""Actions from the dashboard change the Rollout as the CLI would (rollouts.platform.commands),
each only with its confirmation and the page's CSRF token; `--read-only` removes them (403)."""

from __future__ import annotations

import pytest

from rollouts.memory.cluster import InMemoryCluster
from tests.cli.conftest import NS, Shop
from tests.dashboard.conftest import Serve, csrf_of, http

PAGE = "/rollouts/shop/checkout"


def post(url: str, action: str, **form: str) -> tuple[int, str]:
    answer = http().post(f"{url}{PAGE}/{action}", data=form, timeout=10, headers={"HX-Request": "true"})
    return answer.status_code, answer.text


@pytest.mark.parametrize(("stage", "action", "expect"), [
    ("paused", "promote", lambda s: s.get("pauseConditions") is None),
    ("paused", "promote-full", lambda s: s.get("promoteFull") is True),
    ("paused", "abort", lambda s: s.get("abort") is True),
    ("aborted", "retry", lambda s: s.get("abort") is False),
])
def test_a_confirmed_action_patches_the_rollout_status(cluster: InMemoryCluster, shop: Shop, served: Serve,
                                                       stage: str, action: str, expect: object) -> None:
    shop.seed(stage)
    dash = served(cluster)
    csrf = csrf_of(http().get(dash.url + PAGE, timeout=10).text)
    status, text = post(dash.url, action, csrf=csrf, confirm="yes")
    assert status == 200, text
    assert "✔" in text and "rollout &#39;checkout&#39;" in text
    assert expect(cluster.get("Rollout", "checkout", NS)["status"])  # type: ignore[operator]


def test_pause_resume_restart_and_set_image_change_the_spec(cluster: InMemoryCluster, shop: Shop,
                                                            served: Serve) -> None:
    shop.seed("paused")
    dash = served(cluster)
    csrf = csrf_of(http().get(dash.url + PAGE, timeout=10).text)
    assert post(dash.url, "pause", csrf=csrf, confirm="yes")[0] == 200
    assert cluster.get("Rollout", "checkout", NS)["spec"]["paused"] is True
    assert post(dash.url, "resume", csrf=csrf, confirm="yes")[0] == 200
    rollout = cluster.get("Rollout", "checkout", NS)
    assert rollout["spec"].get("paused") in (False, None) and rollout["status"].get("pauseConditions") is None
    assert post(dash.url, "restart", csrf=csrf, confirm="yes")[0] == 200
    assert cluster.get("Rollout", "checkout", NS)["spec"]["restartAt"] == "2024-05-01T12:07:00Z"
    assert post(dash.url, "set-image", csrf=csrf, confirm="yes", image="app=shop/checkout:1.6.0")[0] == 200
    containers = cluster.get("Rollout", "checkout", NS)["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers if c["name"] == "app"] == ["shop/checkout:1.6.0"]
    status, text = post(dash.url, "set-image", csrf=csrf, confirm="yes", image="web=x:1")
    assert status == 400 and "has no container named &#34;web&#34;" in text
    assert post(dash.url, "set-image", csrf=csrf, confirm="yes", image="no-equals-sign")[0] == 400


def test_an_action_needs_its_confirmation_and_the_csrf_token(cluster: InMemoryCluster, shop: Shop,
                                                             served: Serve) -> None:
    shop.seed("paused")
    dash = served(cluster)
    csrf = csrf_of(http().get(dash.url + PAGE, timeout=10).text)
    status, text = post(dash.url, "abort", csrf=csrf)
    assert status == 403 and "needs confirmation" in text
    status, text = post(dash.url, "abort", csrf="forged", confirm="yes")
    assert status == 403 and "CSRF" in text
    assert cluster.get("Rollout", "checkout", NS)["status"].get("abort") is None
    assert post(dash.url, "no-such-action", csrf=csrf, confirm="yes")[0] == 404
    confirm = http().get(dash.url + PAGE + "/confirm/abort", timeout=10)
    assert confirm.status_code == 200 and "Abort checkout? Traffic goes back to stable at once." in confirm.text
    assert 'method="post" action="/rollouts/shop/checkout/abort"' in confirm.text, "the page without JavaScript"


def test_read_only_shows_no_action_and_refuses_every_one(cluster: InMemoryCluster, shop: Shop, served: Serve) -> None:
    shop.seed("paused")
    dash = served(cluster, read_only=True)
    page = http().get(dash.url + PAGE, timeout=10).text
    assert "This dashboard is read-only." in page and 'id="do-abort"' not in page
    status, text = post(dash.url, "abort", csrf=dash.dash.auth.csrf, confirm="yes")
    assert status == 403 and "read-only" in text
    assert cluster.get("Rollout", "checkout", NS)["status"].get("abort") is None
    assert http().get(dash.url + PAGE + "/confirm/abort", timeout=10).status_code == 403


def test_an_action_on_a_missing_rollout_is_404(cluster: InMemoryCluster, served: Serve) -> None:
    dash = served(cluster)
    status, text = post(dash.url, "abort", csrf=dash.dash.auth.csrf, confirm="yes")
    assert status == 404 and 'rollout &#34;checkout&#34; not found in namespace &#34;shop&#34;' in text
