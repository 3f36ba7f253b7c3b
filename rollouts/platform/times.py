"""Kubernetes timestamps: the one place they are parsed and written.

Rules:
- Written as RFC 3339 in UTC with whole seconds and a `Z` (`2024-01-01T12:00:00Z`), as the
  API server writes `metav1.Time`; `format_micro_time` keeps microseconds (`MicroTime`,
  the Lease's renewTime).
- Parsed leniently: any RFC 3339 / ISO 8601 text, `Z` or an offset, becomes an aware UTC
  datetime (a timestamp without an offset is taken as UTC); anything else, including a
  value that is not a string, is None. Parsing never raises.
- Pure: no clock is read here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def to_utc(moment: datetime) -> datetime:
    """`moment` as aware UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    return to_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(moment: datetime) -> str:
    return to_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return to_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None
