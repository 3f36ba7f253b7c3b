"""Notifications, the pure part: the ConfigMap's format, which events notify, and which routes they go to.

Rules:
- The notifications ConfigMap holds flat keys (each value YAML): `route.<name>` (where a
  notice goes), `template.<name>` (a Jinja2 template of the JSON body) and `settings`.
  `parse(data)` checks every key and returns a `Config`, or raises `ConfigError` whose
  problems each name the key (`data["route.team-a"].url`), what is wrong and the fix.
- A route: `url` (http or https) or `urlFrom.secretKeyRef {name, key}` (a URL with a
  token lives in a Secret); `format` `slack` (`{"text", "blocks"}`, the default) or
  `webhook` (generic JSON); `template` (a `template.<name>` key; default: the format's
  built-in); `triggers` (default all of TRIGGERS; not `on`, which YAML reads as true); `namespaces` (default any) and
  `selector` (`matchLabels`/`matchExpressions` on the object's labels, default any);
  `headers` (`[{name, value}]` or `[{name, valueFrom: {secretKeyRef}}]`); `timeout`
  (seconds, default 5, at most 60) and `retries` (default 2, at most 5).
- Settings: `queueSize` (pending notices, default 100, 1..10000), `heldAfter` (a pause
  held longer than this many seconds notifies `gate-held`; default off), `reloadSeconds`
  (how often the ConfigMap is read again at most, default 30).
- Triggers come from recorded Events (`trigger_of`): RolloutCompleted -> `promoted`,
  RolloutAborted -> `aborted`, AnalysisRunFailed/AnalysisRunError on a Rollout (or on an
  AnalysisRun no one owns) -> `analysis-failed`, HookGateHeld -> `gate-held`.
- Pure: documents in, values out. Secret values are never part of a Config: only their
  references; the shell reads them and never writes them anywhere but the request.
Size: just over 300 lines because every field of the ConfigMap is checked here, once, with
  its key and its fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from rollouts.platform.problems import Problem

__all__ = ["FORMATS", "TRIGGERS", "Config", "ConfigError", "Header", "Notice", "Route", "SecretRef", "Settings",
           "parse", "routes_for", "trigger_of"]

TRIGGERS = ("promoted", "aborted", "analysis-failed", "gate-held")
FORMATS = ("slack", "webhook")
_BY_REASON = {"RolloutCompleted": "promoted", "RolloutAborted": "aborted", "AnalysisRunFailed": "analysis-failed",
              "AnalysisRunError": "analysis-failed", "HookGateHeld": "gate-held"}
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_ROUTE_FIELDS = {"url", "urlFrom", "format", "template", "triggers", "namespaces", "selector", "headers", "timeout",
                 "retries"}
_SETTINGS = {"queueSize": (1, 10000, 100), "heldAfter": (1, 30 * 24 * 3600, 0), "reloadSeconds": (1, 3600, 30)}


class ConfigError(ValueError):
    """The ConfigMap cannot be used as written; every problem names its key and the fix."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class SecretRef:
    name: str
    key: str


@dataclass(frozen=True)
class Header:
    name: str
    value: str | None = None
    secret: SecretRef | None = None


@dataclass(frozen=True)
class Route:
    name: str
    url: str | None = None
    url_secret: SecretRef | None = None
    format: str = "slack"
    template: str | None = None
    triggers: frozenset[str] = frozenset(TRIGGERS)
    namespaces: frozenset[str] | None = None
    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[tuple[str, str, frozenset[str]], ...] = ()
    headers: tuple[Header, ...] = ()
    timeout: float = 5.0
    retries: int = 2


@dataclass(frozen=True)
class Settings:
    queue_size: int = 100
    held_after: int = 0  # seconds; 0 = off
    reload_seconds: int = 30


@dataclass(frozen=True)
class Config:
    routes: tuple[Route, ...] = ()
    templates: Mapping[str, str] = field(default_factory=dict)  # name -> Jinja2 source
    settings: Settings = Settings()


@dataclass(frozen=True)
class Notice:
    """One thing worth telling: an event on an object, with what templates may show."""

    trigger: str
    kind: str
    namespace: str
    name: str
    reason: str
    type: str
    message: str
    time: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


def trigger_of(kind: str, reason: str, *, owned: bool = False) -> str | None:
    """The trigger an event (object kind, reason) fires, or None. A run's own event notifies only
    when no Rollout or Experiment owns the run (the owner's event says it, with the verdict)."""
    trigger = _BY_REASON.get(reason)
    if trigger == "analysis-failed" and kind == "AnalysisRun" and owned:
        return None
    if kind not in ("Rollout", "AnalysisRun") and trigger != "gate-held":
        return None
    return trigger


def routes_for(config: Config, notice: Notice) -> list[Route]:
    """The routes `notice` goes to, in the ConfigMap's key order."""
    return [route for route in config.routes if notice.trigger in route.triggers and _selects(route, notice)]


def _selects(route: Route, notice: Notice) -> bool:
    if route.namespaces is not None and notice.namespace not in route.namespaces:
        return False
    labels = notice.labels
    if any(labels.get(k) != v for k, v in route.match_labels.items()):
        return False
    for key, operator, values in route.match_expressions:
        present = key in labels
        if (operator == "In" and labels.get(key) not in values) or (operator == "NotIn" and labels.get(key) in values):
            return False
        if (operator == "Exists" and not present) or (operator == "DoesNotExist" and present):
            return False
    return True


# ---------------------------------------------------------------- the ConfigMap


def parse(data: Mapping[str, Any] | None) -> Config:
    """The Config the ConfigMap's `data` describes (raises ConfigError naming every bad key)."""
    problems: list[Problem] = []
    routes, templates, settings = [], {}, Settings()
    for key in sorted(data or {}):
        raw = (data or {})[key]
        where = f'data["{key}"]'
        if key.startswith("template.") and key != "template.":
            templates[key.removeprefix("template.")] = str(raw)
            continue
        loaded = _yaml(where, raw, problems)
        if key.startswith("route.") and key != "route.":
            route = _route(key.removeprefix("route."), where, loaded, problems)
            if route is not None:
                routes.append(route)
        elif key == "settings":
            settings = _settings(where, loaded, problems)
        else:
            problems.append(Problem(where, "is not a key notifications know",
                                    "name it route.<name>, template.<name> or settings"))
    for route in routes:
        if route.template is not None and route.template not in templates:
            problems.append(Problem(f'data["route.{route.name}"].template',
                                    f"names template {route.template!r}, which the ConfigMap does not hold",
                                    f'add a "template.{route.template}" key or drop template to use the default'))
    if problems:
        raise ConfigError(problems)
    return Config(routes=tuple(routes), templates=templates, settings=settings)


def _yaml(where: str, raw: Any, problems: list[Problem]) -> Any:
    try:
        return yaml.safe_load(str(raw)) if isinstance(raw, str) else raw
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problems.append(Problem(where, f"is not valid YAML{at}", "write the value as a YAML mapping"))
        return None


def _route(name: str, where: str, doc: Any, problems: list[Problem]) -> Route | None:
    if not isinstance(doc, dict):
        problems.append(Problem(where, "must be a YAML mapping", "give at least url: https://..."))
        return None
    before = len(problems)
    if True in doc:  # YAML 1.1 reads an `on:` key as the boolean true
        problems.append(Problem(f"{where}.on", "is read by YAML as the boolean true", "name the field triggers"))
    for unknown in sorted({str(k) for k in doc if k is not True} - _ROUTE_FIELDS):
        problems.append(Problem(f"{where}.{unknown}", "is not a route field", f"use one of {sorted(_ROUTE_FIELDS)}"))
    url, url_secret = doc.get("url"), None
    if "urlFrom" in doc:
        url_secret = _secret_ref(f"{where}.urlFrom", doc["urlFrom"], problems)
    if (url is None) == (url_secret is None) and len(problems) == before:
        problems.append(Problem(where, "needs exactly one of url and urlFrom",
                                "set url: https://... or urlFrom: {secretKeyRef: {name, key}}"))
    if url is not None and not (isinstance(url, str) and url.lower().startswith(("http://", "https://"))):
        problems.append(Problem(f"{where}.url", "is not an http(s) URL", "write it as https://host/path"))
    fmt = doc.get("format", "slack")
    if fmt not in FORMATS:
        problems.append(Problem(f"{where}.format", f"is {fmt!r}", f"use one of {list(FORMATS)}"))
    triggers = _strings(f"{where}.triggers", doc.get("triggers", list(TRIGGERS)), problems)
    for trigger in sorted(set(triggers) - set(TRIGGERS)):
        problems.append(Problem(f"{where}.triggers", f"{trigger!r} is not a trigger", f"use some of {list(TRIGGERS)}"))
    namespaces = _strings(f"{where}.namespaces", doc["namespaces"], problems) if "namespaces" in doc else None
    labels, expressions = _selector(f"{where}.selector", doc.get("selector"), problems)
    headers = _headers(f"{where}.headers", doc.get("headers"), problems)
    timeout = _number(f"{where}.timeout", doc.get("timeout", 5), 0.01, 60, problems)
    retries = _number(f"{where}.retries", doc.get("retries", 2), 0, 5, problems)
    template = doc.get("template")
    if template is not None and not isinstance(template, str):
        problems.append(Problem(f"{where}.template", "must be a template name", "name a template.<name> key"))
    if len(problems) > before:
        return None
    return Route(name=name, url=url, url_secret=url_secret, format=fmt, template=template,
                 triggers=frozenset(triggers),
                 namespaces=frozenset(namespaces) if namespaces is not None else None, match_labels=labels,
                 match_expressions=expressions, headers=headers, timeout=float(timeout), retries=int(retries))


def _secret_ref(where: str, doc: Any, problems: list[Problem]) -> SecretRef | None:
    ref = doc.get("secretKeyRef") if isinstance(doc, dict) else None
    if not (isinstance(ref, dict) and isinstance(ref.get("name"), str) and isinstance(ref.get("key"), str)):
        problems.append(Problem(where, "must be {secretKeyRef: {name, key}}",
                                "name the Secret (in the ConfigMap's namespace) and its key"))
        return None
    return SecretRef(ref["name"], ref["key"])


def _strings(where: str, value: Any, problems: list[Problem]) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    problems.append(Problem(where, "must be a list of strings", "write it as [a, b]"))
    return []


def _selector(where: str, doc: Any, problems: list[Problem]) -> tuple[dict[str, str],
                                                                    tuple[tuple[str, str, frozenset[str]], ...]]:
    if doc is None:
        return {}, ()
    if not isinstance(doc, dict) or set(doc) - {"matchLabels", "matchExpressions"}:
        problems.append(Problem(where, "must hold only matchLabels and matchExpressions", "write a label selector"))
        return {}, ()
    labels = doc.get("matchLabels") or {}
    if not isinstance(labels, dict):
        problems.append(Problem(f"{where}.matchLabels", "must be a mapping", "write {label: value}"))
        labels = {}
    expressions = []
    for index, item in enumerate(doc.get("matchExpressions") or []):
        path = f"{where}.matchExpressions[{index}]"
        if not isinstance(item, dict) or item.get("operator") not in _OPERATORS or not isinstance(item.get("key"), str):
            problems.append(Problem(path, "needs a key and an operator", f"use an operator of {list(_OPERATORS)}"))
            continue
        values = item.get("values") or []
        if item["operator"] in ("In", "NotIn") and not values:
            problems.append(Problem(f"{path}.values", f"{item['operator']} needs values", "list the label values"))
        expressions.append((item["key"], item["operator"], frozenset(str(v) for v in values)))
    return {str(k): str(v) for k, v in labels.items()}, tuple(expressions)


def _headers(where: str, doc: Any, problems: list[Problem]) -> tuple[Header, ...]:
    headers = []
    for index, item in enumerate(doc or []):
        path = f"{where}[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            problems.append(Problem(path, "needs a name", "write {name: X, value: y} or {name: X, valueFrom: ...}"))
            continue
        if "valueFrom" in item:
            ref = _secret_ref(f"{path}.valueFrom", item["valueFrom"], problems)
            headers.append(Header(item["name"], secret=ref))
        elif isinstance(item.get("value"), str):
            headers.append(Header(item["name"], value=item["value"]))
        else:
            problems.append(Problem(path, "needs a value or valueFrom", "a token belongs in valueFrom.secretKeyRef"))
    return tuple(headers)


def _number(where: str, value: Any, low: float, high: float, problems: list[Problem]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        problems.append(Problem(where, f"is {value!r}", f"use a number from {low:g} to {high:g}"))
        return low
    return value


def _settings(where: str, doc: Any, problems: list[Problem]) -> Settings:
    if not isinstance(doc, dict):
        problems.append(Problem(where, "must be a YAML mapping", f"use keys of {sorted(_SETTINGS)}"))
        return Settings()
    values = {}
    for key, value in doc.items():
        if key not in _SETTINGS:
            problems.append(Problem(f"{where}.{key}", "is not a setting", f"use one of {sorted(_SETTINGS)}"))
            continue
        low, high, _ = _SETTINGS[key]
        if key == "heldAfter" and value == 0:
            values[key] = 0
            continue
        values[key] = int(_number(f"{where}.{key}", value, low, high, problems))
    return Settings(queue_size=values.get("queueSize", 100), held_after=values.get("heldAfter", 0),
                    reload_seconds=values.get("reloadSeconds", 30))
