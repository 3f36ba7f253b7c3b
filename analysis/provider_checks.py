"""Metrics that can never be measured, found up front: one pure function per rule.

Rules:
- `metric_problems(metric)` lists the problems of a metric's provider settings as
  `SpecProblem(path, message, fix)`, `path` relative to the metric (`provider.web.url`).
  Spec validation calls it before a run; the providers call the same rule functions at
  measure time, so a run built without validation still gets a clear Error measurement.
- The rules: a web `url` must be http(s) with a host; a web `jsonPath` must be in the
  supported subset (analysis.jsonpath); a prometheus `address`, when set, must be
  an http(s) URL with a host; a prometheus `timeout` must be > 0 seconds (0 would time out
  at once); a web `timeoutSeconds` must not be negative (0 or unset means 10 s, as Argo); a
  prometheus `rangeQuery` needs `start` and `end` that are time expressions
  (analysis.expr.times) and a positive `step` duration; an `authentication.oauth2` block with
  any field set needs an http(s) `tokenUrl`, a `clientId` and a `clientSecret` (Argo: "missing
  mandatory parameter in metric for OAuth2 setup"; Argo passes over a block without tokenUrl,
  which would send the queries unauthenticated, so that is a problem here too). An unset prometheus `address` is not a
  problem here (the controller may have a default); nor is an empty `query` (valid in Argo's
  schema; its measurements end in Error).
- A `plugin: {"rollouts/judge": {...}}` block must be a judge config that can run
  (analysis.judge.config: every problem, its path under `provider.plugin.rollouts/judge`).
- Placeholders: a url or address whose scheme part is still `{{args.*}}` is not checked;
  one with a placeholder elsewhere has only its scheme checked; a jsonPath holding a
  placeholder is not checked. At measure time everything is substituted and checked.
- Messages never repeat a url, address or header (args and secrets may sit there), at
  most a scheme. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from analysis import jsonpath
from analysis.args import PLACEHOLDER
from analysis.model import (
    DurationError,
    Metric,
    OAuth2Config,
    PrometheusAuth,
    RangeQuery,
    Sigv4Config,
    parse_duration,
)  # fmt: skip

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,19}$")


@dataclass(frozen=True)
class SpecProblem:
    """One reason a metric can never be measured; `path` is relative to the metric."""

    path: str
    message: str
    fix: str

    def sentence(self) -> str:
        """`message; fix`, as the providers put it into an Error measurement."""
        return f"{self.message}; {self.fix}"


JUDGE_PLUGIN = "rollouts/judge"  # analysis.judge.config.PLUGIN (tests/cli/test_imports.py checks they agree)


def metric_problems(metric: Metric) -> list[SpecProblem]:
    """Every problem of `metric`'s prometheus or web settings (other providers: none)."""
    found: list[SpecProblem | None] = []
    web, prometheus = metric.provider.web, metric.provider.prometheus
    if web is not None:
        found += [web_url_problem(web.url), json_path_problem(web.json_path), web_timeout_problem(web.timeout_seconds)]
    if prometheus is not None:
        found += [prometheus_address_problem(prometheus.address), prometheus_timeout_problem(prometheus.timeout)]
        if prometheus.range_query is not None:
            found += range_query_problems(prometheus.range_query)
        found += authentication_problems(prometheus.authentication)
    plugin = metric.provider.plugin or {}
    if JUDGE_PLUGIN in plugin:
        found += judge_problems(plugin[JUDGE_PLUGIN])
    return [problem for problem in found if problem is not None]


def judge_problems(raw: object) -> list[SpecProblem]:
    """provider.plugin.rollouts/judge: a judge config that can run (analysis.judge.config)."""
    from analysis.judge import config as judge_config  # lazily: its pydantic models cost lint ~10% otherwise

    where = f"provider.plugin.{JUDGE_PLUGIN}"
    found = [SpecProblem(f"{where}.{path}", message, fix) for path, message, fix in judge_config.problems(raw)]
    address = raw.get("address") if isinstance(raw, dict) else None
    problem = prometheus_address_problem(address) if isinstance(address, str) else None
    if problem is not None:
        found.append(SpecProblem(f"{where}.address", problem.message, problem.fix))
    return found


def web_url_problem(url: str) -> SpecProblem | None:
    """provider.web.url: an http(s) URL with a host (see the placeholder rule)."""
    return _http_url_problem(url, "provider.web.url", "url", "must be an http(s) URL",
                             "write it like https://host/path")


def prometheus_address_problem(address: str | None) -> SpecProblem | None:
    """provider.prometheus.address, when set: an http(s) URL with a host."""
    if address is None or not address.strip():
        return None
    return _http_url_problem(address.strip().rstrip("/"), "provider.prometheus.address", "address",
                             "is not an http(s) URL", "write it like http://prometheus.monitoring:9090")


def json_path_problem(json_path: str | None) -> SpecProblem | None:
    """provider.web.jsonPath: in the supported subset (unset is `{$}`, the whole document)."""
    if json_path is None or PLACEHOLDER.search(json_path):
        return None
    try:
        jsonpath.parse(json_path)
    except jsonpath.JsonPathError as err:
        return SpecProblem("provider.web.jsonPath", str(err), jsonpath.SUPPORTED)
    return None


def prometheus_timeout_problem(timeout: int | None) -> SpecProblem | None:
    """provider.prometheus.timeout: unset (30 s) or positive seconds."""
    if timeout is not None and timeout <= 0:
        return SpecProblem("provider.prometheus.timeout", f"timeout must be positive seconds, got {timeout}",
                           "omit it for 30 s, or give the seconds one measurement may take, e.g. 10")
    return None


def range_query_problems(range_query: RangeQuery) -> list[SpecProblem]:
    """provider.prometheus.rangeQuery: start and end time expressions, a positive step (placeholders pass)."""
    from analysis.expr import times  # lazily: importing it builds the whole condition language

    found = []
    where = "provider.prometheus.rangeQuery"
    for name, text in (("start", range_query.start), ("end", range_query.end)):
        if text is not None and PLACEHOLDER.search(text):
            continue
        why = times.check(text)
        if why is not None:
            found.append(SpecProblem(f"{where}.{name}", f"{name} {why}" if text is None or not text.strip()
                                     else f"{name} is not a time expression: {why}", times.SUPPORTED))
    step = range_query.step
    if step is None or not PLACEHOLDER.search(step):
        try:
            seconds = parse_duration(step) if step is not None else 0
            why = None if seconds > 0 else ("is missing" if step is None else f"{step!r} is not positive")
        except DurationError as err:
            why = str(err)
        if why is not None:
            found.append(SpecProblem(f"{where}.step", f"step {why}",
                                     "give the resolution as a positive duration, e.g. step: 1m"))
    return found


def oauth2_set(oauth2: OAuth2Config | None) -> bool:
    """True when an oauth2 block sets any field (an empty `oauth2: {}` is Argo's zero value: no OAuth2)."""
    return oauth2 is not None and any((oauth2.token_url, oauth2.client_id, oauth2.client_secret, oauth2.scopes))


def sigv4_set(sigv4: Sigv4Config | None) -> bool:
    """True when a sigv4 block sets any field (Argo signs only then)."""
    return sigv4 is not None and any((sigv4.region, sigv4.profile, sigv4.role_arn))


def authentication_problems(authentication: PrometheusAuth | None) -> list[SpecProblem]:
    """provider.prometheus.authentication.oauth2: tokenUrl (http(s)), clientId and clientSecret together."""
    if authentication is None or not oauth2_set(authentication.oauth2):
        return []
    oauth2 = authentication.oauth2
    assert oauth2 is not None  # oauth2_set
    where = "provider.prometheus.authentication.oauth2"
    found: list[SpecProblem | None] = []
    token_url = (oauth2.token_url or "").strip()
    if not token_url:
        found.append(SpecProblem(f"{where}.tokenUrl", "tokenUrl is missing, so no token would be fetched",
                                 "set tokenUrl to the OAuth2 token endpoint, e.g. https://auth.example.com/token"))
    else:
        found.append(_http_url_problem(token_url, f"{where}.tokenUrl", "tokenUrl",
                                       "is not an http(s) URL", "write it like https://auth.example.com/oauth2/token"))
    for field, value in (("clientId", oauth2.client_id), ("clientSecret", oauth2.client_secret)):
        if not (value or "").strip():
            found.append(SpecProblem(f"{where}.{field}", f"{field} is missing (mandatory for the OAuth2 client "
                                     "credentials flow)", f"set {field}, e.g. from a Secret through an arg"))
    return [problem for problem in found if problem is not None]


def web_timeout_problem(timeout_seconds: int | None) -> SpecProblem | None:
    """provider.web.timeoutSeconds: unset or 0 (10 s, as Argo) or positive seconds."""
    if timeout_seconds is not None and timeout_seconds < 0:
        return SpecProblem("provider.web.timeoutSeconds", f"timeoutSeconds must not be negative, got {timeout_seconds}",
                           "omit it (or 0) for 10 s, or give the seconds one measurement may take")
    return None


def _http_url_problem(text: str, path: str, noun: str, claim: str, fix: str) -> SpecProblem | None:
    """`noun` `claim` starts the message ("url must be an http(s) URL", "address is not an http(s) URL")."""
    if PLACEHOLDER.search(text.split("/", 1)[0]):
        return None  # the scheme itself comes from an arg
    scheme = text.split(":", 1)[0] if ":" in text else ""
    if scheme.lower() not in ("http", "https"):
        shown = f"scheme {scheme + ':'!r}" if _SCHEME.match(scheme) else "no http:// or https:// scheme"
        return SpecProblem(path, f"{noun} {claim} ({shown})", fix)
    if PLACEHOLDER.search(text):
        return None  # host and port may come from args
    try:
        parts = urlsplit(text)
        _ = parts.port  # a port that is not a number raises ValueError
    except ValueError as err:
        return SpecProblem(path, f"{noun} is not valid: {err}", fix)
    if not parts.hostname:
        return SpecProblem(path, f"{noun} {claim} with a host", fix)
    return None
