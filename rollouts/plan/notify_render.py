"""Notifications: the body a route sends, rendered from a Jinja2 template. Pure.

Rules:
- Templates run in Jinja2's SandboxedEnvironment with StrictUndefined: a template can
  read only the variables below, and a misspelt one is an error, never an empty string.
  No autoescape (the output is JSON, not HTML); write strings with `| tojson`.
- Variables: `trigger` (promoted | aborted | analysis-failed | gate-held), `kind`, `name`,
  `namespace`, `labels`, `annotations`, `reason`, `type` (Normal | Warning), `message`
  (the Event's message: for an abort or a failed analysis, the verdict with metric,
  value, condition, counts and query), `time` (RFC 3339), `summary` (one line:
  `[aborted] Rollout shop/checkout: <message>`), `emoji` (per trigger, for Slack).
- The rendered text must be a JSON object (`{"text": ..., "blocks": [...]}` for Slack, any
  object for a webhook); anything else is an error naming the template key.
- `load(data)` is `notify.parse` plus a trial render of every template a route uses with
  a sample notice, so a bad template is refused when the ConfigMap is read, naming its
  key, not when the first rollout aborts.
- No secret is a variable: a URL or a header from a Secret never reaches a body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from rollouts.plan.notify import Config, ConfigError, Notice, Route, parse
from rollouts.platform.problems import Problem

if TYPE_CHECKING:
    import jinja2

__all__ = ["DEFAULT_TEMPLATES", "SAMPLE", "load", "render", "variables"]

EMOJI = {"promoted": ":white_check_mark:", "aborted": ":rotating_light:", "analysis-failed": ":x:",
         "gate-held": ":hourglass:"}
DEFAULT_TEMPLATES = {
    "slack": """{
  "text": {{ summary | tojson }},
  "blocks": [
    {"type": "section", "text": {"type": "mrkdwn", "text":
      {{ (emoji ~ " *" ~ trigger ~ "* " ~ kind ~ " `" ~ namespace ~ "/" ~ name ~ "`\\n" ~ message) | tojson }}}},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": {{ (reason ~ " at " ~ time) | tojson }}}]}
  ]
}""",
    "webhook": """{
  "trigger": {{ trigger | tojson }},
  "object": {"kind": {{ kind | tojson }}, "namespace": {{ namespace | tojson }}, "name": {{ name | tojson }},
             "labels": {{ labels | tojson }}},
  "event": {"reason": {{ reason | tojson }}, "type": {{ type | tojson }}, "message": {{ message | tojson }},
            "time": {{ time | tojson }}},
  "summary": {{ summary | tojson }}
}""",
}
SAMPLE = Notice(trigger="aborted", kind="Rollout", namespace="shop", name="checkout", reason="RolloutAborted",
                type="Warning", time="2024-01-01T00:00:00Z", labels={"app": "checkout"}, annotations={},
                message='Rollout aborted update to revision 2: success-rate=[0.87] failed "result[0] >= 0.95" '
                        "(2 failed > failureLimit 1); query: sum(rate(x[1m]))")


def variables(notice: Notice) -> dict[str, Any]:
    """What a template sees."""
    return {
        "trigger": notice.trigger, "kind": notice.kind, "name": notice.name, "namespace": notice.namespace,
        "labels": dict(notice.labels), "annotations": dict(notice.annotations), "reason": notice.reason,
        "type": notice.type, "message": notice.message, "time": notice.time, "emoji": EMOJI.get(notice.trigger, ""),
        "summary": f"[{notice.trigger}] {notice.kind} {notice.namespace}/{notice.name}: {notice.message}",
    }


def render(route: Route, notice: Notice, config: Config) -> dict[str, Any]:
    """The JSON body `route` sends for `notice` (raises ValueError saying what is wrong)."""
    source, key = _source(route, config)
    try:
        text = _compiled(source).render(variables(notice))
    except Exception as err:  # noqa: BLE001 - any failure of a user's template is a message
        raise ValueError(f"{key}: could not render: {type(err).__name__}: {err}") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{key}: rendered text is not JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(body, dict):
        raise ValueError(f"{key}: rendered JSON must be an object, not {type(body).__name__}")
    if route.format == "slack" and not isinstance(body.get("text"), str):
        raise ValueError(f'{key}: a Slack body needs a "text" string (blocks are optional)')
    return body


def load(data: Mapping[str, Any] | None) -> Config:
    """The checked Config of a ConfigMap's data (raises ConfigError naming the key and the fix)."""
    config = parse(data)
    problems = []
    for route in config.routes:
        try:
            render(route, SAMPLE, config)
        except ValueError as err:
            _, key = _source(route, config)
            problems.append(Problem(key, str(err).removeprefix(f"{key}: "),
                                    f"fix the template (variables: {', '.join(sorted(variables(SAMPLE)))})"))
    if problems:
        raise ConfigError(problems)
    return config


def _source(route: Route, config: Config) -> tuple[str, str]:
    if route.template is not None:
        return config.templates[route.template], f'data["template.{route.template}"]'
    return DEFAULT_TEMPLATES[route.format], f"the built-in {route.format} template"


@lru_cache(maxsize=64)
def _compiled(source: str) -> jinja2.Template:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters["tojson"] = _tojson
    return env.from_string(source)


def _tojson(value: Any) -> str:
    """JSON text of a value; an undefined variable fails with its name (not "not JSON serializable")."""
    from jinja2 import Undefined

    def refuse(item: Any) -> Any:
        if isinstance(item, Undefined):
            item._fail_with_undefined_error()
        raise TypeError(f"{type(item).__name__} is not JSON")

    return json.dumps(value, default=refuse, ensure_ascii=False)
