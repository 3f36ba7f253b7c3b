"""Fuzzing the providers with generated answers (hypothesis, derandomized): only ProviderError
escapes, and a Result comes back exactly for a genuine measurement.

Answers reach the providers through a requests adapter mounted on their session (no sockets):
random JSON (NaN, huge numbers, deep nesting), Prometheus payloads of every shape and of wrong
shapes, HTML, binary, empty bodies, odd charsets and content encodings, and any status code.
Each generated answer is GOOD (well-formed by construction: a Result with the expected value
is required), BAD (broken by construction: ProviderError is required) or ANY (random: either,
but a Result only for a 2xx answer, and for Prometheus only with status "success").
"""

from __future__ import annotations

import functools
import io
import json
import math
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
import tenacity
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter
from urllib3 import HTTPResponse

from analysis.model import Metric
from analysis.providers import ProviderError, Result
from analysis.providers.prometheus import PrometheusProvider
from analysis.providers.web import WebProvider
from tests.fuzz.budget import examples

AT = datetime(2024, 1, 1, tzinfo=UTC)
GOOD, BAD, ANY = "good", "bad", "any"


def fuzz(examples: int) -> settings:
    """Deterministic (derandomized, no example database) and without per-example deadlines."""
    return settings(derandomize=True, database=None, deadline=None, max_examples=examples,
                    suppress_health_check=list(HealthCheck))


@dataclass(frozen=True)
class Canned:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    kind: str  # GOOD, BAD or ANY
    expected: Any = None  # the value a GOOD answer must give


class CannedAdapter(HTTPAdapter):
    """Answers every request with `self.answer`, as a streamed urllib3 response."""

    answer: Canned

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        raw = HTTPResponse(body=io.BytesIO(self.answer.body), headers=dict(self.answer.headers),
                           status=self.answer.status, reason="FUZZ", preload_content=False, decode_content=False)
        return self.build_response(request, raw)


ADAPTER = CannedAdapter()
SESSION = requests.Session()
SESSION.trust_env = False
SESSION.mount("http://", ADAPTER)
WEB = WebProvider(session=SESSION, retry_wait=tenacity.wait_none(), attempts=2)
PROM = PrometheusProvider(address_override="http://prom.fuzz", session=SESSION, retry_wait=tenacity.wait_none(),
                          attempts=2)
WEB_METRIC = Metric.load({"name": "hook", "provider": {"web": {"url": "http://hook.fuzz/check"}}})
PROM_METRIC = Metric.load({"name": "m", "provider": {"prometheus": {"query": "up"}}})
COUNT = {"answers": 0}
RAN: set[str] = set()  # the property tests that ran in this session
PROPERTIES = {"test_web_answers", "test_prometheus_answers_of_every_shape", "test_prometheus_garbage",
              "test_deep_nesting_is_a_provider_error_at_any_depth", "test_memory_stays_bounded"}


def counted(test: Callable[..., None]) -> Callable[..., None]:
    """Notes that `test` ran (for test_enough_answers_were_generated)."""
    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        RAN.add(test.__name__)
        test(*args, **kwargs)
    return wrapper


def run(provider: WebProvider | PrometheusProvider, metric: Metric, answer: Canned) -> Result | None:
    """The provider's Result for `answer`, or None for a ProviderError; any other exception fails."""
    ADAPTER.answer = answer
    COUNT["answers"] += 1
    try:
        return provider.measure(metric, at=AT)
    except ProviderError as err:
        assert str(err), "a ProviderError says why"
        return None


def go_reads(body: bytes) -> Any:
    """The web result Argo gets: Go's json.Unmarshal into `any` (numbers are float64; NaN, Infinity and numbers
    beyond float64 are not JSON), else the body as a string."""
    def finite(token: str) -> float:
        if math.isinf(number := float(token)):
            raise ValueError(token)
        return number

    def refuse(token: str) -> Any:
        raise ValueError(token)

    try:
        return json.loads(body, parse_int=finite, parse_float=finite, parse_constant=refuse)
    except ValueError:
        return body.decode()


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def check(result: Result | None, answer: Canned, *, prometheus: bool) -> None:
    if answer.kind == GOOD:
        assert result is not None, f"a genuine answer gave no value: {answer}"
        assert same(result.value, answer.expected), (result.value, answer.expected)
    elif answer.kind == BAD:
        assert result is None, f"a broken answer gave a value {result}: {answer}"
    elif result is not None:
        assert 200 <= answer.status < 300, f"a value from HTTP {answer.status}"
        if prometheus:
            assert json.loads(answer.body)["status"] == "success"


# ---------------------------------------------------------------- strategies

leaves = (st.none() | st.booleans() | st.floats() | st.integers(min_value=-(10**30), max_value=10**30)
          | st.text(max_size=8) | st.sampled_from([1e308, -1e308, 5e-324, 10**400]))
documents = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                                max_size=3),
                         max_leaves=12)
UTF8_TYPES = ["application/json", "application/json; charset=utf-8", "application/json; charset=utf8mb4",
              "application/json; charset=klingon", "application/json; charset=base64", "application/json; charset=\""]
ODD_TYPES = [*UTF8_TYPES, "text/plain", "text/html; charset=utf-16", "text/plain; charset=idna", "", "*/*",
             "application/json; charset=undefined", "text/plain; charset=rot13"]
GOOD_STATUSES = (200, 201, 299)  # 2xx that carry a body (204 and 304 have none in HTTP)
STATUSES = [200, 201, 204, 299, 300, 304, 400, 401, 403, 404, 418, 422, 429, 500, 502, 503, 599]
GOOD_SAMPLES = {"1": 1.0, "0.97": 0.97, "NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf, "1e+06": 1e6,
                "-0.25": -0.25, "3": 3.0}
BAD_SAMPLES: list[Any] = ["abc", "", "1,5", "0x10", " 1", None, 1.5, True, [], {}]
garbage = (st.binary(max_size=64) | st.sampled_from([b"", b"<html><body>proxy login</body></html>", b"\xff\xfe\x00",
                                                      b'{"half": ', b"null", b"NaN", b"[" * 70, b"]]]]"])
           | st.integers(1, 6000).map(lambda n: b"[" * n + b"1" + b"]" * n))


def headers(content_type: str, extra: tuple[tuple[str, str], ...] = ()) -> tuple[tuple[str, str], ...]:
    return ((("Content-Type", content_type),) if content_type else ()) + extra


@st.composite
def web_answers(draw: st.DrawFn) -> Canned:
    status = draw(st.sampled_from(GOOD_STATUSES) | st.sampled_from(STATUSES))
    if draw(st.booleans()):
        document = draw(documents)
        body = json.dumps(document).encode()
        content_type = draw(st.sampled_from(UTF8_TYPES))
        if status in GOOD_STATUSES:
            return Canned(status, body, headers(content_type), GOOD, go_reads(body))
        return Canned(status, body, headers(content_type), ANY if 200 <= status < 300 else BAD)
    body = draw(garbage)
    extra = draw(st.sampled_from([(), (("Content-Encoding", "gzip"),), (("Content-Length", "999999"),),
                                  (("Location", "http://hook.fuzz/again"),), (("Location", "file:///etc/passwd"),)]))
    return Canned(status, body, headers(draw(st.sampled_from(ODD_TYPES)), extra), ANY if 200 <= status < 300 else BAD)


def sample(draw: st.DrawFn, good: bool) -> tuple[Any, float]:
    """A [time, "value"] pair and its float, or (not `good`) a broken pair."""
    text = draw(st.sampled_from(sorted(GOOD_SAMPLES)))
    at = draw(st.sampled_from([1704067200, 1704067200.5, 0]))
    if good:
        return [at, text], GOOD_SAMPLES[text]
    broken = draw(st.sampled_from([[at, draw(st.sampled_from(BAD_SAMPLES))], [None, text], ["1", text], [at],
                                   [at, text, 1], text, {"t": at}]))
    return broken, math.nan


@st.composite
def prometheus_answers(draw: st.DrawFn) -> Canned:
    kind = draw(st.sampled_from(["vector", "scalar", "matrix", "string"]))
    good = draw(st.booleans())
    result: Any
    expected: Any
    if kind == "scalar":
        result, expected = sample(draw, good)
    elif kind == "string":  # Argo's processResponse: "Prometheus metric type not supported", never a value
        text = draw(st.text(max_size=10))
        result, expected, good = [1704067200, text], "", False
    else:
        key = "value" if kind == "vector" else "values"
        series: Any = []
        expected = []
        for _ in range(draw(st.integers(0, 3))):
            points = [sample(draw, True) for _ in range(1 if kind == "vector" else draw(st.integers(0, 3)))]
            value: Any = points[0][0] if kind == "vector" else [p for p, _ in points]
            series.append({"metric": {"job": draw(st.text(max_size=4))}, key: value})
            expected += [v for _, v in points]
        if not good:
            wrong = draw(st.sampled_from(["sample", "not-a-list", "series-not-object", "labels", "missing"]))
            if wrong == "sample" or not series:
                broken = sample(draw, False)[0]
                series.append({"metric": {}, key: broken if kind == "vector" else [broken]})
            elif wrong == "not-a-list":
                series = {"0": series[0]}
            elif wrong == "series-not-object":
                series.append([1, "1"])
            elif wrong == "labels":
                series[0]["metric"] = "job=a"
            else:
                del series[0][key]
        result = series
    payload: dict[str, Any] = {"status": "success", "data": {"resultType": kind, "result": result}}
    status = 200
    if good and draw(st.booleans()):  # break the envelope instead
        good = False
        breakage = draw(st.sampled_from(["status", "error", "type", "data", "http"]))
        if breakage == "status":
            payload["status"] = draw(st.sampled_from(["error", "SUCCESS", None, 1, ""]))
        elif breakage == "error":
            payload = {"status": "error", "errorType": "bad_data", "error": draw(st.text(max_size=10))}
        elif breakage == "type":
            payload["data"]["resultType"] = draw(st.sampled_from(["vectors", "", None, 7, "Vector"]))
        elif breakage == "data":
            payload["data"] = draw(st.sampled_from([None, [], "x", {"resultType": kind}]))
        else:
            status = draw(st.sampled_from([s for s in STATUSES if not 200 <= s < 300]))
    content_type = draw(st.sampled_from(UTF8_TYPES))
    return Canned(status, json.dumps(payload).encode(), headers(content_type), GOOD if good else BAD, expected)


@st.composite
def prometheus_garbage(draw: st.DrawFn) -> Canned:
    status = draw(st.sampled_from(GOOD_STATUSES) | st.sampled_from(STATUSES))
    body = draw(garbage | documents.map(lambda d: json.dumps(d).encode())
                | st.fixed_dictionaries({"status": documents, "data": documents}).map(lambda d: json.dumps(d).encode()))
    return Canned(status, body, headers(draw(st.sampled_from(ODD_TYPES))), ANY if 200 <= status < 300 else BAD)


# ---------------------------------------------------------------- properties


@counted
@fuzz(examples(1100))
@given(web_answers())
def test_web_answers(answer: Canned) -> None:
    check(run(WEB, WEB_METRIC, answer), answer, prometheus=False)


@counted
@fuzz(examples(1200))
@given(prometheus_answers())
def test_prometheus_answers_of_every_shape(answer: Canned) -> None:
    check(run(PROM, PROM_METRIC, answer), answer, prometheus=True)


@counted
@fuzz(examples(800))
@given(prometheus_garbage())
def test_prometheus_garbage(answer: Canned) -> None:
    result = run(PROM, PROM_METRIC, answer)
    check(result, answer, prometheus=True)


@counted
@fuzz(examples(1000))
@given(st.sampled_from([WEB, PROM]), st.integers(20, 8000), st.sampled_from([b"[", b'{"a":', b'[{"v":']))
def test_deep_nesting_is_a_provider_error_at_any_depth(provider: WebProvider | PrometheusProvider, levels: int,
                                                     opener: bytes) -> None:
    closer = opener.replace(b"[", b"]").replace(b'{"a":', b"}").replace(b'{"v":', b"}")[::-1]
    body = opener * levels + b"1" + closer * levels
    depth = levels * (opener.count(b"[") + opener.count(b"{"))
    answer = Canned(200, body, headers("application/json"), BAD if depth > 64 else ANY)
    check(run(provider, WEB_METRIC if provider is WEB else PROM_METRIC, answer), answer, prometheus=provider is PROM)


@counted
@fuzz(examples(6))
@given(st.sampled_from([WEB, PROM]), st.sampled_from([1 << 16, 1 << 20, (1 << 20) + 1, 3 << 19]),
       st.sampled_from([b'{"status":"success","data":{"resultType":"vector","result":[', b"[", b"x"]))
def test_memory_stays_bounded(provider: WebProvider | PrometheusProvider, size: int, prefix: bytes) -> None:
    series = b'{"metric":{"job":"a"},"value":[1,"1"]},'
    body = (prefix + series * (size // len(series)))[:size]
    metric = WEB_METRIC if provider is WEB else PROM_METRIC
    tracemalloc.start()
    try:
        run(provider, metric, Canned(200, body, headers("application/json"), ANY))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    kept = min(size, 1 << 20) if provider is WEB else size  # the web provider refuses more than 1 MiB
    assert peak < 16 * kept + (4 << 20), f"peak {peak} bytes for a {size}-byte answer"


def test_enough_answers_were_generated() -> None:
    """Runs last in this module (pytest keeps file order): the properties above saw >= 4,000 answers."""
    if RAN >= PROPERTIES:  # all of them ran before (not when a selection left some out)
        assert COUNT["answers"] >= 4000, COUNT
