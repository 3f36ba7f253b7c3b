"""Reading wire objects (plain dicts from the API) that may be any shape a user wrote.

Rules:
- A watch event or a list item is whatever the API server stored: a Rollout whose
  `spec.strategy` is the string "canary", a list for `canary`, a number for
  `virtualServices`. Code that routes or indexes such objects before the models load
  them reads them only through these accessors, which never raise: a section that is
  not a mapping reads as empty, a value of the wrong type as None.
- Pure: values in, values out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def section(obj: object, *keys: str) -> Mapping[str, Any]:
    """The mapping at `obj[k1][k2]...`, or an empty mapping when any step is missing or not a mapping."""
    node: object = obj
    for key in keys:
        if not isinstance(node, Mapping):
            return {}
        node = node.get(key)
    return node if isinstance(node, Mapping) else {}


def items(obj: object, *keys: str) -> list[Any]:
    """The list at `obj[k1][k2]...`, or an empty list."""
    *head, last = keys
    value = section(obj, *head).get(last)
    return list(value) if isinstance(value, list) else []


def text(obj: object, *keys: str) -> str | None:
    """The string at `obj[k1][k2]...`, or None."""
    *head, last = keys
    value = section(obj, *head).get(last)
    return value if isinstance(value, str) else None


def name_of(obj: object) -> tuple[str, str]:
    """(namespace, name) of a wire object: namespace "default" when absent, name "" when absent."""
    return text(obj, "metadata", "namespace") or "default", text(obj, "metadata", "name") or ""
