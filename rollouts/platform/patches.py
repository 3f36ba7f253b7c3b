"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902) on plain JSON values.

Rules and invariants:
- Pure: inputs are never mutated; results share no mutable structure with the inputs.
- Merge patch: an object patch merges key by key, `null` deletes a key, and anything that
  is not an object (lists included) replaces the target wholesale.
- JSON patch: ops run in order on a copy; any failing op (a bad path, a missing member,
  a `test` whose value differs) raises `PatchError` and the document is left unchanged,
  as the API server answers 422 and stores nothing.
- `merge_diff(old, new)` is the merge patch that turns `old` into `new`.
"""

from __future__ import annotations

from typing import Any

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
    return a == b


def json_patch(doc: JSON, ops: list[JSON]) -> JSON:
    if not isinstance(ops, list):
        raise PatchError("a JSON patch is a list of operations")
    result = clone(doc)
    for index, op in enumerate(ops):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise PatchError(f"operation {index}: expected an object with an 'op' field")
        result = _apply(result, op, index)
    return result


def _pointer(op: dict[str, JSON], field: str, index: int) -> list[str]:
    path = op.get(field)
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"operation {index} ({op['op']}): '{field}' must be a JSON pointer")
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _parent(doc: JSON, tokens: list[str], op: dict[str, JSON], index: int) -> JSON:
    node = doc
    for token in tokens[:-1]:
        node = _child(node, token, op, index)
    return node


def _child(node: JSON, token: str, op: dict[str, JSON], index: int) -> JSON:
    if isinstance(node, dict) and token in node:
        return node[token]
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    raise PatchError(f"operation {index} ({op['op']} {op.get('path')}): path does not exist")


def _list_index(node: list[JSON], token: str, op: dict[str, JSON], index: int, *, insert: bool) -> int:
    if insert and token == "-":
        return len(node)
    limit = len(node) if insert else len(node) - 1
    if not token.isdigit() or (token != "0" and token.startswith("0")) or int(token) > limit:
        raise PatchError(f"operation {index} ({op['op']} {op.get('path')}): bad array index {token!r}")
    return int(token)


def _get(doc: JSON, tokens: list[str], op: dict[str, JSON], index: int) -> JSON:
    node = doc
    for token in tokens:
        node = _child(node, token, op, index)
    return node


def _add(doc: JSON, tokens: list[str], value: JSON, op: dict[str, JSON], index: int) -> JSON:
    if not tokens:
        return clone(value)
    parent = _parent(doc, tokens, op, index)
    if isinstance(parent, dict):
        parent[tokens[-1]] = clone(value)
    elif isinstance(parent, list):
        parent.insert(_list_index(parent, tokens[-1], op, index, insert=True), clone(value))
    else:
        raise PatchError(f"operation {index} ({op['op']} {op.get('path')}): parent is not a container")
    return doc


def _remove(doc: JSON, tokens: list[str], op: dict[str, JSON], index: int) -> JSON:
    if not tokens:
        raise PatchError(f"operation {index} ({op['op']}): cannot remove the whole document")
    parent = _parent(doc, tokens, op, index)
    if isinstance(parent, dict) and tokens[-1] in parent:
        return parent.pop(tokens[-1])
    if isinstance(parent, list):
        return parent.pop(_list_index(parent, tokens[-1], op, index, insert=False))
    raise PatchError(f"operation {index} ({op['op']} {op.get('path')}): path does not exist")


def _apply(doc: JSON, op: dict[str, JSON], index: int) -> JSON:
    kind, tokens = op["op"], _pointer(op, "path", index)
    if kind in ("add", "replace", "test") and "value" not in op:
        raise PatchError(f"operation {index} ({kind} {op.get('path')}): missing 'value'")
    if kind == "add":
        return _add(doc, tokens, op["value"], op, index)
    if kind == "remove":
        _remove(doc, tokens, op, index)
        return doc
    if kind == "replace":
        if tokens:
            _remove(doc, tokens, op, index)
        return _add(doc, tokens, op["value"], op, index)
    if kind == "test":
        if not json_equal(_get(doc, tokens, op, index), op["value"]):
            raise PatchError(f"operation {index} (test {op['path']}): test failed, the value differs")
        return doc
    if kind in ("move", "copy"):
        source = _pointer(op, "from", index)
        if kind == "move" and tokens[: len(source)] == source and tokens != source:
            raise PatchError(f"operation {index} (move): cannot move a value into itself")
        value = _remove(doc, source, op, index) if kind == "move" else clone(_get(doc, source, op, index))
        return _add(doc, tokens, value, op, index)
    raise PatchError(f"operation {index}: unknown op {kind!r} (use add, remove, replace, move, copy or test)")
