"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902) on plain JSON values.

Rules and invariants:
- Pure: inputs are never mutated; results share no mutable structure with the inputs.
- Merge patch: an object patch merges key by key, `null` deletes a key, and anything that
  is not an object (lists included) replaces the target wholesale.
- JSON patch (the well-kept `jsonpatch` library): ops run in order on a copy; any
  failing op (a bad path, a missing member, a `test` whose value differs) raises
  `PatchError` naming the op, and the document is left unchanged, as the API server
  answers 422 and stores nothing.
- `merge_diff(old, new)` is the merge patch that turns `old` into `new`.
"""

from __future__ import annotations

from typing import Any

import jsonpatch
import jsonpointer

JSON = Any


class PatchError(ValueError):
    """A JSON patch that cannot be applied; the message names the op and the path."""


def clone(value: JSON) -> JSON:
    """A deep copy of a JSON value (much faster than copy.deepcopy)."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def merge_patch(target: JSON, patch: JSON) -> JSON:
    if not isinstance(patch, dict):
        return clone(patch)
    result = clone(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def merge_diff(old: dict[str, JSON], new: dict[str, JSON]) -> dict[str, JSON]:
    diff: dict[str, JSON] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            inner = merge_diff(before, value)
            if inner:
                diff[key] = inner
        elif key not in old or not json_equal(before, value):
            diff[key] = clone(value)
    return diff


def json_equal(a: JSON, b: JSON) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def json_patch(doc: JSON, ops: list[JSON]) -> JSON:
    """RFC 6902 through the `jsonpatch` library, one op at a time so an error names its op;
    a `test` compares with JSON equality (RFC 6902 §4.6: true is not 1)."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch is a list of operations")
    result = clone(doc)
    for index, op in enumerate(ops):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise PatchError(f"operation {index}: expected an object with an 'op' field")
        where = f"operation {index} ({op['op']} {op.get('path')})"
        try:
            if op["op"] == "test" and "value" in op and not json_equal(
                    jsonpointer.resolve_pointer(result, str(op.get("path"))), op["value"]):
                raise PatchError(f"{where}: test failed, the value differs")
            result = jsonpatch.apply_patch(result, [op], in_place=True)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError,
                IndexError, ValueError) as err:
            if isinstance(err, PatchError):
                raise
            raise PatchError(f"{where}: {err}") from None
    return result
