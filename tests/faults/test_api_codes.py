"""A 429 or a 502 from the API server is counted as itself, not as 503 (a bug the fault classes found).

The kube adapter maps 429 and 5xx to `Unavailable` (retried by the shells); the error keeps
the answer's own status code, so `controller_clientset_k8s_request_total{status_code}` tells
throttling (429) from an outage (5xx). A connection failure (no answer) stays 503.
"""

from __future__ import annotations

import json

import pytest

from rollouts.controller.clientset import MeteredCluster
from rollouts.controller.metrics import ControllerMetrics
from rollouts.kube.cluster import _error
from rollouts.memory.cluster import InMemoryCluster
from rollouts.platform.cluster import Unavailable


@pytest.mark.parametrize(("status", "code"), [(429, 429), (500, 500), (502, 502), (503, 503), (0, 503)])
def test_an_unavailable_answer_keeps_its_status_code(status: int, code: int) -> None:
    body = json.dumps({"kind": "Status", "code": status, "message": "slow down"}).encode()
    error = _error(status, body, "fallback")
    assert isinstance(error, Unavailable) and error.code == code


def test_the_request_metric_counts_a_429_as_429() -> None:
    metrics = ControllerMetrics()

    class Throttled(InMemoryCluster):
        def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, object]:
            raise _error(429, b'{"message": "Too many requests"}', "Too Many Requests")

    cluster = MeteredCluster(Throttled(), metrics)
    with pytest.raises(Unavailable):
        cluster.get("Rollout", "r", "default")
    assert metrics.value("controller_clientset_k8s_request_total",
                         {"kind": "Rollout", "namespace": "default", "name": "r", "verb": "get",
                          "status_code": "429"}) == 1
