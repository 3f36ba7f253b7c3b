"""Strategic merge patch for built-in kinds, the subset kubectl's patches use.

Rules (checked against kube-apiserver 1.20: tests/adapters/REAL_API_DIFFERENCES.md):
- Maps merge as in a merge patch (null deletes a key).
- A list with a merge key (containers/initContainers/env/volumes/imagePullSecrets by
  name, volumeMounts by mountPath, container ports by containerPort, Service ports by
  port, ownerReferences by uid, conditions by type) merges element by element, each patch
  element into the current one with its key. The order is the real server's merge of two
  sorted lists: the patch's elements (in patch order) and the current ones it does not
  name (in current order); at each step an element that is not in the current list goes
  first, else the one earlier in the current list. `{"<key>": ..., "$patch": "delete"}`
  removes that element; `$setElementOrder/<list>` orders the result.
- finalizers merge as a set, ordered the same way.
- `"$patch": "replace"` on a map replaces it whole; `"$patch": "delete"` removes it.
  Any other `$`-prefixed key is dropped, as the real server's typed decoding drops it.
- Every other list is replaced, as in a merge patch.
"""

from __future__ import annotations

import copy
from typing import Any

_BY_NAME = ("containers", "initContainers", "ephemeralContainers", "env", "volumes", "imagePullSecrets")
MERGE_KEYS: dict[str, str] = {**dict.fromkeys(_BY_NAME, "name"), "volumeMounts": "mountPath",
                              "ownerReferences": "uid", "conditions": "type"}
SET_LISTS = frozenset({"finalizers"})
_ORDER = "$setElementOrder/"
_DELETE = object()


def strategic_merge(current: Any, patch: Any) -> Any:
    """`current` with the strategic merge `patch` applied (a new value; neither is changed)."""
    merged = _merge(current, patch)
    return None if merged is _DELETE else merged


def _merge(current: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _strip(patch)
    out: dict[str, Any] = copy.deepcopy(current) if isinstance(current, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        before = out.get(key)
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list) and _merge_key(key, value, before) is not None:
            out[key] = _merge_list(before or [], value, str(_merge_key(key, value, before)))
        elif isinstance(value, list) and key in SET_LISTS:
            current = list(before or [])
            out[key] = _sorted_merge(list(value), [v for v in current if v not in value], current.index)
        elif isinstance(value, dict):
            merged = _merge(before, value)
            if merged is _DELETE:
                out.pop(key, None)
            else:
                out[key] = merged
        else:
            out[key] = _strip(value)
    for key, order in patch.items():
        if key.startswith(_ORDER) and isinstance(out.get(key[len(_ORDER):]), list) and isinstance(order, list):
            _reorder(out, key[len(_ORDER):], order)
    return out


def _merge_key(field: str, value: list[Any], before: Any) -> str | None:
    if field == "ports":  # containers' ports by containerPort, a Service's by port
        items = [*value, *(before if isinstance(before, list) else [])]
        return "containerPort" if any(isinstance(i, dict) and "containerPort" in i for i in items) else "port"
    return MERGE_KEYS.get(field)


def _merge_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    by_key = {item.get(key): item for item in current if isinstance(item, dict)}
    named: set[Any] = set()
    out: list[Any] = []
    for item in patch:
        if not isinstance(item, dict):
            out.append(copy.deepcopy(item))
            continue
        named.add(item.get(key))
        if item.get("$patch") == "delete":
            continue
        out.append(_merge(by_key.get(item.get(key)), item))
    only = [copy.deepcopy(item) for item in current if not (isinstance(item, dict) and item.get(key) in named)]
    order = [item.get(key) if isinstance(item, dict) else None for item in current]
    return _sorted_merge(out, only, lambda item: order.index(item.get(key) if isinstance(item, dict) else None))


def _sorted_merge(patched: list[Any], only: list[Any], position: Any) -> list[Any]:
    """Merge the patch's elements and the current-only ones as the real server does: an
    element missing from the current list goes first, else the earlier in it."""
    def where(item: Any) -> int | None:
        try:
            return int(position(item))
        except ValueError:
            return None

    out: list[Any] = []
    i = j = 0
    while i < len(patched) or j < len(only):
        if j >= len(only):
            out.append(patched[i])
            i += 1
        elif i >= len(patched):
            out.append(only[j])
            j += 1
        else:
            left, right = where(patched[i]), where(only[j])
            if left is not None and right is not None and right < left:
                out.append(only[j])
                j += 1
            else:
                out.append(patched[i])
                i += 1
    return out


def _reorder(out: dict[str, Any], field: str, order: list[Any]) -> None:
    items = out[field]
    key = _merge_key(field, items, None)
    if key is None:
        return
    rank = {entry.get(key): index for index, entry in enumerate(order) if isinstance(entry, dict)}
    out[field] = sorted(items, key=lambda item: rank.get(item.get(key) if isinstance(item, dict) else None,
                                                         len(rank)))


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value
