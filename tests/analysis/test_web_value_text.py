"""The web provider's `measurement.value` text, as Argo writes it (metricproviders/webmetric/webmetric.go getValue:
json.Marshal of the jsonPath result; the body itself when it is not JSON). Vectors: every 2xx case of Argo's
webmetric_test.go TestRunSuite with its expectedValue, and Go encoding/json.Marshal cases
(tests/analysis/vectors/argo-web-value-vectors.json), served by a real local HTTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import tenacity

from analysis.measure import take
from analysis.model import AnalysisPhase, Metric
from analysis.providers import gojson
from analysis.providers.registry import default_providers
from tests.http_server import HttpServer, Response

VECTORS = json.loads((Path(__file__).parent / "vectors" / "argo-web-value-vectors.json").read_text(encoding="utf-8"))
AT = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    bodies = {f"/{i}": case["body"].encode() for i, case in enumerate(VECTORS)}
    with HttpServer(lambda request: Response(200, bodies[request.path],
                                             {"Content-Type": "application/json; charset=utf-8"})) as httpd:
        yield httpd.url


def test_the_vectors_hold_argos_cases() -> None:
    assert sum(case["source"].startswith("argo ") for case in VECTORS) >= 10


@pytest.mark.parametrize("index", range(len(VECTORS)), ids=[f"{c['source'].split()[-1]}-{i}"
                                                             for i, c in enumerate(VECTORS)])
def test_measurement_value_is_argos_text(server: str, index: int) -> None:
    case = VECTORS[index]
    web: dict[str, Any] = {"url": f"{server}/{index}"}
    if case["jsonPath"] is not None:
        web["jsonPath"] = case["jsonPath"]
    metric = Metric.load({"name": "m", "provider": {"web": web}})
    taken = take(default_providers(retry_wait=tenacity.wait_none()), metric, at=AT, clock=lambda: AT)
    assert taken.phase is AnalysisPhase.SUCCESSFUL, taken.message
    assert taken.value == case["value"]


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1"), (1e20, "100000000000000000000"), (1e21, "1e+21"), (1.5e-7, "1.5e-7"), (1e-300, "1e-300"),
    (2.5e300, "2.5e+300"), (123.25, "123.25"), ([], "[]"), ({}, "{}"), (None, "null"),
    ({"b": [1.0, {"d": "\u2029", "c": False}], "a": 0.5}, '{"a":0.5,"b":[1,{"c":false,"d":"\\u2029"}]}'),
    ("\ud800x", '"\ufffdx"'),
])
def test_go_marshal(value: object, text: str) -> None:
    assert gojson.marshal(value) == text


def test_go_marshal_is_not_recursive() -> None:
    deep: Any = 1.0
    for _ in range(5000):
        deep = [deep]
    assert gojson.marshal(deep) == "[" * 5000 + "1" + "]" * 5000


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [float("-inf")]])
def test_go_marshal_refuses_what_json_cannot_hold(value: object) -> None:
    with pytest.raises(ValueError, match="unsupported value"):
        gojson.marshal(value)
