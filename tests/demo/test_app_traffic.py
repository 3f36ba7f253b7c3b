"""The demo app and traffic generator, over real HTTP on loopback."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import requests

from rollouts.demo.app import FailurePattern, make_server, profile_for
from rollouts.demo.traffic import Backend, SmoothWeighted, TrafficGenerator


@pytest.mark.parametrize(
    ("image", "error_rate"),
    [("demo:v1", 0.0), ("demo:v2", 0.0), ("demo:v3", 0.15), ("reg.io:5000/demo:v3", 0.15), ("demo", 0.0)],
)
def test_profile_comes_from_the_image_tag(image: str, error_rate: float) -> None:
    assert profile_for(image).error_rate == error_rate


def test_failure_pattern_is_exact_over_any_hundred_requests() -> None:
    pattern = FailurePattern(0.15)
    fails = [pattern.next_fails() for _ in range(200)]
    assert sum(fails[:100]) == 15 and sum(fails[100:]) == 15


@pytest.mark.parametrize(("weights", "expected"), [((50, 50), (50, 50)), ((90, 10), (90, 10)), ((0, 100), (0, 100))])
def test_smooth_weighted_gives_exact_shares(weights: tuple[int, int], expected: tuple[int, int]) -> None:
    picker = SmoothWeighted()
    backends = [Backend("stable", "", weights[0]), Backend("canary", "", weights[1])]
    picks = Counter(picker.pick(backends).workload for _ in range(100))  # type: ignore[union-attr]
    assert (picks["stable"], picks["canary"]) == expected


def test_no_backend_with_weight_means_no_pick() -> None:
    assert SmoothWeighted().pick([Backend("a", "", 0)]) is None


@pytest.fixture
def app_v3():
    server = make_server(image="demo:v3", service="svc", workload="svc-v3")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_traffic_generator_records_source_metrics_from_a_real_app(app_v3: str) -> None:
    generator = TrafficGenerator(lambda: [Backend("svc-v3", app_v3, 100)], service="svc")
    for _ in range(20):
        generator.send_one()
    assert generator.sent == {"svc-v3": {"200": 17, "500": 3}}
    labels = {"reporter": "source", "destination_service": "svc", "destination_workload": "svc-v3"}
    assert generator.registry.get_sample_value("istio_requests_total", {**labels, "response_code": "500"}) == 3
    # the app counts the same requests on its own side
    text = requests.get(app_v3 + "metrics", timeout=5).text
    assert ('istio_requests_total{destination_service="svc",destination_workload="svc-v3",'
            'reporter="destination",response_code="500"} 3.0') in text


def test_unreachable_backend_is_recorded_as_503() -> None:
    generator = TrafficGenerator(lambda: [Backend("gone", "http://127.0.0.1:9/", 1)], service="svc", timeout=0.5)
    generator.send_one()
    assert generator.sent == {"gone": {"503": 1}}
