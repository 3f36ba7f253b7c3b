"""The overview and the detail page, served by uvicorn from the dashboard's own watch of an
InMemoryCluster: what `get rollout` shows, as HTML, and live over server-sent events."""

from __future__ import annotations

from rollouts.memory.cluster import InMemoryCluster
from tests.cli.conftest import NS, Shop
from tests.dashboard.conftest import Serve, Sse, http


def test_the_overview_lists_each_rollout_with_phase_step_weights_images_and_verdict(
        cluster: InMemoryCluster, shop: Shop, served: Serve) -> None:
    shop.seed("paused")
    shop.seed("aborted", name="cart")
    dash = served(cluster)
    page = http().get(dash.url + "/", timeout=10)
    assert page.status_code == 200
    html = page.text
    row = html[html.index('id="ro--shop--checkout"'):]
    row = row[:row.index("</tr>")]
    assert 'href="/rollouts/shop/checkout"' in row
    assert "‖</span> Paused" in row, "the phase is an icon and its name, not a colour alone"
    assert "<td>1/5</td>" in row and "<td>20 / 20</td>" in row
    assert "shop/checkout:1.5.0 (canary)" in row and "shop/checkout:1.4.0 (stable)" in row
    assert "Running" in row, "the newest revision's latest run is the verdict"
    assert 'id="ro--shop--cart"' in html
    assert '<span id="count">2</span>' in html
    assert '<meta http-equiv="refresh" content="10">' in html, "without JavaScript the overview refreshes itself"


def test_the_filter_matches_every_word_against_name_phase_and_images(
        cluster: InMemoryCluster, shop: Shop, served: Serve) -> None:
    shop.seed("paused")
    shop.seed("aborted", name="cart")
    dash = served(cluster)
    assert 'id="ro--shop--checkout"' in http().get(dash.url + "/?q=shop+paused", timeout=10).text
    degraded = http().get(dash.url + "/?q=degraded", timeout=10).text
    assert 'id="ro--shop--checkout"' not in degraded and 'id="ro--shop--cart"' in degraded
    assert "No Rollouts match" in http().get(dash.url + "/?q=nothing-like-this", timeout=10).text


def test_the_detail_page_shows_steps_replica_sets_the_verdict_and_the_chart_data(
        cluster: InMemoryCluster, shop: Shop, served: Serve) -> None:
    shop.seed("aborted")
    dash = served(cluster)
    html = http().get(dash.url + "/rollouts/shop/checkout", timeout=10).text
    assert 'data-phase="Degraded"' in html and "✖</span> Degraded" in html
    assert 'aria-current="step"' in html and "setWeight: 20" in html
    assert "checkout-6d4f8c7b9" in html and "stable,ready:5/5" in html
    assert 'Metric &#34;success-rate&#34; assessed Failed due to failed (1) &gt; failureLimit (0)' in html
    assert '<tr class="failing"><td>12:05:30</td><td>[0.942]</td>' in html
    data = html[html.index('id="chart-data">') + len('id="chart-data">'):]
    data = data[:data.index("</script>")]
    assert '"values": [0.991, 0.942]' in data and '"failing": [null, 0.942]' in data
    assert '"threshold": [0.95, 0.95]' in data
    assert http().get(dash.url + "/rollouts/shop/nope", timeout=10).status_code == 404


def test_the_overview_stream_sends_the_changed_row_after_a_change(
        cluster: InMemoryCluster, shop: Shop, served: Serve) -> None:
    shop.seed("paused")
    dash = served(cluster)
    stream = Sse(dash.url + "/stream")
    try:
        cluster.patch_status("Rollout", "checkout", NS, {"status": {"phase": "Degraded", "message": "RolloutAborted"}})
        update = stream.next_event("rows")
        assert [row_id for row_id, _ in update["upsert"]] == ["ro--shop--checkout"]
        assert "✖</span> Degraded" in update["upsert"][0][1] and "RolloutAborted" in update["upsert"][0][1]
        cluster.delete("Rollout", "checkout", NS)
        assert stream.next_event("rows")["remove"] == ["ro--shop--checkout"]
    finally:
        stream.close()


def test_the_detail_stream_sends_the_new_phase_and_chart_data(
        cluster: InMemoryCluster, shop: Shop, served: Serve) -> None:
    shop.seed("paused")
    dash = served(cluster)
    stream = Sse(dash.url + "/rollouts/shop/checkout/stream")
    try:
        cluster.patch_status("Rollout", "checkout", NS, {"status": {"phase": "Degraded", "abort": True}})
        update = stream.next_event("detail")
        assert 'data-phase="Degraded"' in update["sections"]["summary"]
        weight = update["charts"]["weight"]
        assert weight["set"][0] == 20 and weight["set"][-1] == 0, "the weight over time: 20, then 0 once aborted"
    finally:
        stream.close()


def stream_url(page: str) -> str:
    start = page.index('data-stream="') + len('data-stream="')
    return page[start:page.index('"', start)].replace("&amp;", "&")


def test_a_change_between_the_page_and_its_stream_is_still_sent(cluster: InMemoryCluster, shop: Shop,
                                                                served: Serve) -> None:
    shop.seed("paused")
    dash = served(cluster)
    overview = stream_url(http().get(dash.url + "/", timeout=10).text)
    detail = stream_url(http().get(dash.url + "/rollouts/shop/checkout", timeout=10).text)
    assert overview.startswith("/stream?since=") and "/stream?since=" in detail
    cluster.patch_status("Rollout", "checkout", NS, {"status": {"phase": "Degraded"}})
    for url, event in ((overview, "rows"), (detail, "detail")):
        stream = Sse(dash.url + url)
        try:
            assert "Degraded" in str(stream.next_event(event)), url
        finally:
            stream.close()
