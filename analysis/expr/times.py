"""Time expressions of a Prometheus `rangeQuery` (`start`, `end`): expr-lang's date functions, as Argo's
utils/evaluate.EvalTime runs them.

Rules:
- The subset Argo's documentation and users write: a point in time, `now()` or `date("RFC 3339")`
  (also `date(text, goLayout, timezone)`, as Argo's own test writes it),
  followed by any number of `+ duration("5m")` / `- duration("5m")` terms (Go durations, as
  analysis.model.parse_duration reads them; strings in "..." or '...'). Anything else
  (another function, arithmetic between two times, a bare number) is a TimeExprError saying
  what is supported, never a guess.
- `now()` is the measurement's time, passed in: a backtest or a test at a fixed time is exact,
  and this module reads no clock. Results are timezone-aware (UTC when the text names none).
- `check(text)` is the rule lint and the run share: None, or why the text is not a time expression.
  Bounded: at most MAX_LENGTH characters and MAX_TERMS terms; a linear scan, no recursion.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from analysis.model import DurationError, parse_duration

MAX_LENGTH = 512
MAX_TERMS = 16
SUPPORTED = 'write now() or date("2024-01-01T00:00:00Z"), minus or plus durations: now() - duration("5m")'

_SPACE = re.compile(r"\s*")
_NOW = re.compile(r"now\s*\(\s*\)")
_STR = r"(?:\"([^\"\\]*)\"|'([^'\\]*)')"
_CALL = re.compile(rf"(date|duration)\s*\(\s*{_STR}(?:\s*,\s*{_STR})?(?:\s*,\s*{_STR})?\s*\)")
# Go layout pieces -> strptime (expr-lang's date(text, layout, timezone))
_LAYOUT = (("2006", "%Y"), ("01", "%m"), ("02", "%d"), ("15", "%H"), ("04", "%M"), ("05", "%S"),
           ("Z07:00", "%z"), ("-0700", "%z"), ("-07:00", "%z"), ("Jan", "%b"), ("Mon", "%a"))
_SIGN = re.compile(r"[+-]")


class TimeExprError(ValueError):
    """The text is not a time expression this controller evaluates."""


def evaluate(text: str, *, now: datetime) -> datetime:
    """The time `text` names, with `now()` = `now`."""
    if len(text) > MAX_LENGTH:
        raise TimeExprError(f"the time expression is longer than {MAX_LENGTH} characters")
    pos = _SPACE.match(text, 0).end()  # type: ignore[union-attr]  # \s* always matches
    moment, pos = _point(text, pos, now)
    terms = 0
    while True:
        pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
        if pos == len(text):
            return moment
        sign = _SIGN.match(text, pos)
        if sign is None:
            raise TimeExprError(f"unexpected {text[pos:pos + 12]!r} at position {pos}; {SUPPORTED}")
        terms += 1
        if terms > MAX_TERMS:
            raise TimeExprError(f"more than {MAX_TERMS} durations in one time expression")
        pos = _SPACE.match(text, sign.end()).end()  # type: ignore[union-attr]
        call = _CALL.match(text, pos)
        if call is None or call.group(1) != "duration" or call.group(4) is not None or call.group(5) is not None:
            raise TimeExprError(f"expected duration(\"...\") at position {pos}; {SUPPORTED}")
        amount = _duration(_text(call, 2) or "")
        moment = moment + amount if sign.group(0) == "+" else moment - amount
        pos = call.end()


def check(text: str | None) -> str | None:
    """Why `text` is not a time expression, or None (an unset text is "it is missing")."""
    if text is None or not text.strip():
        return "is missing"
    try:
        evaluate(text, now=datetime(2000, 1, 1, tzinfo=UTC))
    except TimeExprError as err:
        return str(err)
    return None


def _point(text: str, pos: int, now: datetime) -> tuple[datetime, int]:
    found = _NOW.match(text, pos)
    if found is not None:
        return (now if now.tzinfo is not None else now.replace(tzinfo=UTC)), found.end()
    call = _CALL.match(text, pos)
    if call is None or call.group(1) != "date":
        raise TimeExprError(f"a time expression starts with now() or date(\"...\"); {SUPPORTED}")
    written, layout, zone = (_text(call, 2) or "", _text(call, 4), _text(call, 6))
    try:
        if layout is None:
            moment = datetime.fromisoformat(written[:-1] + "+00:00" if written.endswith("Z") else written)
        else:
            moment = datetime.strptime(written, _strptime(layout))
    except ValueError:
        raise TimeExprError(f"date({written!r}) is not a time like 2024-01-01T00:00:00Z"
                            + (f" in the layout {layout!r}" if layout else "")) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(zone))
    return moment, call.end()


def _text(call: re.Match[str], group: int) -> str | None:
    """The string argument in `group` (double-quoted) or `group + 1` (single-quoted)."""
    return call.group(group) if call.group(group) is not None else call.group(group + 1)


def _strptime(layout: str) -> str:
    out = layout.replace("%", "%%")
    for go, python in _LAYOUT:
        out = out.replace(go, python)
    return out


def _zone(name: str | None) -> tzinfo:
    if name is None or name in ("UTC", "Z", ""):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeExprError(f"unknown time zone {name!r} (use UTC or an IANA name like Europe/Paris)") from None


def _duration(written: str) -> timedelta:
    try:
        return timedelta(seconds=parse_duration(written))
    except DurationError as err:
        raise TimeExprError(f"duration({written!r}): {err}") from None
