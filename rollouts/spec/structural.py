"""A structural-schema checker: the OpenAPI 3.0 subset our generated CRD schemas use, without jsonschema.

`rollouts lint` checks every document against the schema of its kind; importing jsonschema
and openapi_schema_validator for that cost more than the rest of the command. The schemas
`crdgen` generates (after `crdschema.k8sify`) use only `type`, `properties`, `required`,
`items`, `additionalProperties`, `anyOf`, `enum` and `format`, so this module checks those.

Rules:
- It answers as openapi_schema_validator's OAS30Validator does, error for error and in the
  same order (tests/spec/test_structural.py compares the two over the lint corpus and
  mutations of it): keywords are applied in the schema's own key order, depth first; a
  None whose schema is not `nullable: true` fails `type` twice ("None for not nullable",
  then the type itself), as OAS30Validator reports it; `integer` excludes bools and floats,
  `number` excludes bools; `required` yields one error per missing name; `enum` compares
  as jsonschema does (True is not 1); `anyOf` fails once, when no branch passes; `format`
  is not checked (OAS30Validator checks formats only when given a format checker, and
  crdschema gives none); `additionalProperties: false` names the unexpected keys.
- A keyword it does not know is a ValueError at check time, never passed over: a schema
  that grows a keyword must grow this checker (or go back to jsonschema) first.
- Pure: no I/O, no clock; schemas and documents are plain JSON data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SchemaError", "iter_errors"]

# Keywords that never produce an error themselves and descend nowhere.
_ANNOTATIONS = frozenset({"description", "title", "default", "example", "format", "nullable", "readOnly",
                          "writeOnly", "deprecated", "x-kubernetes-preserve-unknown-fields"})


@dataclass(frozen=True)
class SchemaError:
    """One failed keyword: the keyword, its value in the schema, the instance it judged, where, and why."""

    validator: str
    validator_value: Any
    instance: Any
    path: tuple[str | int, ...]
    message: str
    schema: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _is(instance: Any, kind: str) -> bool:
    check = _TYPES.get(kind)
    if check is None:
        raise ValueError(f"unknown type {kind!r} in a structural schema")
    return bool(check(instance))


def _equal(one: Any, other: Any) -> bool:
    """jsonschema's equality: bools equal only bools; lists and mappings element-wise."""
    if isinstance(one, bool) or isinstance(other, bool):
        return type(one) is type(other) and one == other
    if isinstance(one, list) and isinstance(other, list):
        return len(one) == len(other) and all(_equal(a, b) for a, b in zip(one, other, strict=True))
    if isinstance(one, dict) and isinstance(other, dict):
        return one.keys() == other.keys() and all(_equal(one[k], other[k]) for k in one)
    return bool(one == other)


def iter_errors(schema: Mapping[str, Any], instance: Any, path: tuple[str | int, ...] = ()) -> Iterator[SchemaError]:
    """Every error of `instance` against `schema`, in OAS30Validator's order."""
    for keyword, value in schema.items():
        if keyword == "type":
            yield from _type(schema, value, instance, path)
        elif keyword == "properties":
            if isinstance(instance, dict):
                for name, sub in value.items():
                    if name in instance:
                        yield from iter_errors(sub, instance[name], (*path, name))
        elif keyword == "required":
            if isinstance(instance, dict):
                for name in value:
                    if name not in instance:
                        yield SchemaError("required", value, instance, path, f"{name!r} is a required property", schema)
        elif keyword == "items":
            if isinstance(instance, list):
                for index, item in enumerate(instance):
                    yield from iter_errors(value, item, (*path, index))
        elif keyword == "additionalProperties":
            yield from _additional(schema, value, instance, path)
        elif keyword == "anyOf":
            if not any(next(iter_errors(sub, instance, path), None) is None for sub in value):
                yield SchemaError("anyOf", value, instance, path,
                                  f"{instance!r} is not valid under any of the given schemas", schema)
        elif keyword == "enum":
            if all(not _equal(option, instance) for option in value):
                yield SchemaError("enum", value, instance, path, f"{instance!r} is not one of {value!r}", schema)
        elif keyword not in _ANNOTATIONS:
            raise ValueError(f"keyword {keyword!r} is not supported by rollouts.spec.structural")


def _type(schema: Mapping[str, Any], kind: str, instance: Any, path: tuple[str | int, ...]) -> Iterator[SchemaError]:
    if instance is None:
        if schema.get("nullable") is True:
            return
        yield SchemaError("type", kind, instance, path, "None for not nullable", schema)
    if not _is(instance, kind):
        yield SchemaError("type", kind, instance, path, f"{instance!r} is not of type {kind!r}", schema)


def _additional(schema: Mapping[str, Any], value: Any, instance: Any,
                path: tuple[str | int, ...]) -> Iterator[SchemaError]:
    if not isinstance(instance, dict):
        return
    known: Sequence[str] | Mapping[str, Any] = schema.get("properties") or {}
    extras = [name for name in instance if name not in known]
    if not extras:
        return
    if isinstance(value, dict):
        for name in extras:
            yield from iter_errors(value, instance[name], (*path, name))
    elif value is False:
        listed = ", ".join(repr(name) for name in sorted(extras, key=str))
        verb = "was" if len(extras) == 1 else "were"
        yield SchemaError("additionalProperties", value, instance, path,
                          f"Additional properties are not allowed ({listed} {verb} unexpected)", schema)
