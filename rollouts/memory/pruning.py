"""Pruning of unknown fields, as the real API server does for CRDs with structural schemas.

Rules (checked against kube-apiserver 1.20: tests/adapters/REAL_API_DIFFERENCES.md):
- The schemas are our own CRDs' (rollouts.spec.crdgen, the source of crds/*.yaml), for
  the kinds they define; every other kind is stored as written (the Istio CRDs the
  controller installs preserve unknown fields; built-in kinds are not pruned here).
- On every write (create, update, patch, status), a field of an object node whose schema
  lists `properties` and does not set `x-kubernetes-preserve-unknown-fields` is dropped
  when it is not listed; `additionalProperties` and `items` schemas apply to each value.
  Unknown fields are dropped silently, never refused (1.20 has no strict field validation).
- The root keeps apiVersion, kind and metadata; values are not type-checked here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from rollouts.spec import crdgen

Obj = dict[str, Any]
_ROOT_FIELDS = frozenset({"apiVersion", "kind", "metadata"})


@functools.cache
def _schema(kind: str) -> Mapping[str, Any] | None:
    model = crdgen.KIND_BY_NAME.get(kind)
    if model is None:
        return None
    [version] = [v for v in crdgen.crd(model)["spec"]["versions"] if v.get("storage")]
    schema: Mapping[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def prune(kind: str, obj: Obj) -> Obj:
    """`obj` without the fields its kind's CRD schema does not know (a new dict; `obj` is untouched)."""
    schema = _schema(kind)
    if schema is None:
        return obj
    pruned = _prune(schema, {k: v for k, v in obj.items() if k not in _ROOT_FIELDS})
    return {**{k: v for k, v in obj.items() if k in _ROOT_FIELDS}, **pruned}


def _prune(schema: Mapping[str, Any], value: Any) -> Any:
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        keep_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        out: Obj = {}
        for key, item in value.items():
            if isinstance(properties, Mapping) and key in properties:
                out[key] = _prune(properties[key], item)
            elif isinstance(extra, Mapping):
                out[key] = _prune(extra, item)
            elif keep_unknown or extra is True:
                out[key] = item
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [_prune(schema["items"], item) for item in value]
    return value
