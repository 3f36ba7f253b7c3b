"""The real kube-apiserver's (1.20) object rules that the in-memory cluster follows.

Each rule was checked against the real server (tests/adapters/REAL_API_DIFFERENCES.md):
- Names: a lowercase RFC 1123 subdomain (at most 253 characters, dot-separated labels
  of [a-z0-9-] starting and ending alphanumeric); the error names the field and the rule
  in the real server's words. `generateName` is checked as a prefix (a trailing "-" is
  allowed, a trailing "." is not) and gets 5 characters of the real alphabet appended.
- `metadata.generation`: custom resources, Deployments and ReplicaSets carry it (1 on
  create); other built-in kinds (ConfigMap, Pod, Service, ...) have none. It is bumped when
  anything outside metadata changes, status included, unless the kind has a status
  subresource (then status changes do not count).
- Empty metadata maps and lists (labels, annotations, ownerReferences, finalizers) are
  omitted, as Go's `omitempty` drops them: `{"labels": {}}` is stored without labels.
- A custom resource's update must carry `metadata.resourceVersion` (an unconditional
  update is 422); built-in kinds allow it.
- An Event's `involvedObject.namespace` must be its own namespace (empty is allowed only
  in "default").
- Each ownerReference names apiVersion, kind, name and uid; at most one is the controller.
"""

from __future__ import annotations

import re
from typing import Any

from rollouts.platform.cluster import Invalid
from rollouts.platform.kinds import KindInfo

Obj = dict[str, Any]

_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SUBDOMAIN_RULE = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                   "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                   f"validation is '{_SUBDOMAIN.pattern}')")
MAX_NAME = 253
GENERATED_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand: no vowels, no 0/1/3
GENERATED_LENGTH = 5
_GENERATION_BUILTINS = frozenset({"Deployment", "ReplicaSet"})
_OMIT_EMPTY = ("labels", "annotations", "ownerReferences", "finalizers")


def invalid_field(info: KindInfo, name: Any, field: str, value: Any, rule: str) -> Invalid:
    """The real server's 422 message: `Kind "name" is invalid: field: Invalid value: "value": rule`."""
    return Invalid(f'{info.kind} "{name}" is invalid: {field}: Invalid value: "{value}": {rule}')


def check_name(info: KindInfo, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise Invalid(f'{info.kind} "" is invalid: metadata.name: Required value: name or generateName is required')
    if len(name) > MAX_NAME:
        raise invalid_field(info, name, "metadata.name", name, f"must be no more than {MAX_NAME} characters")
    if not _SUBDOMAIN.fullmatch(name):
        raise invalid_field(info, name, "metadata.name", name, _SUBDOMAIN_RULE)
    return name


def generated_name(info: KindInfo, prefix: str, serial: int) -> str:
    """`prefix` (checked as the real server checks a generateName) and 5 characters from `serial`."""
    masked = prefix[:-1] + "a" if prefix.endswith("-") else prefix
    if not _SUBDOMAIN.fullmatch(masked):
        raise invalid_field(info, prefix + "xxxxx", "metadata.generateName", prefix, _SUBDOMAIN_RULE)
    suffix = ""
    for _ in range(GENERATED_LENGTH):
        serial, digit = divmod(serial, len(GENERATED_ALPHABET))
        suffix += GENERATED_ALPHABET[digit]
    return prefix[: MAX_NAME - GENERATED_LENGTH] + suffix


def has_generation(info: KindInfo) -> bool:
    return info.custom or info.kind in _GENERATION_BUILTINS


def generation_moved(info: KindInfo, old: Obj, new: Obj) -> bool:
    """Whether an update from `old` to `new` bumps metadata.generation."""
    skipped = {"metadata", "status"} if info.status_subresource else {"metadata"}

    def body(obj: Obj) -> Obj:
        return {k: v for k, v in obj.items() if k not in skipped}

    return has_generation(info) and body(old) != body(new)


def omit_empty(meta: Obj) -> None:
    for field in _OMIT_EMPTY:
        if field in meta and meta[field] in ({}, [], None):
            del meta[field]


def check_unconditional(info: KindInfo, name: str, resource_version: Any) -> None:
    if info.custom and not resource_version:
        raise Invalid(f'{info.resource} "{name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: '
                      "must be specified for an update")


def check_event(info: KindInfo, obj: Obj) -> None:
    if info.kind != "Event":
        return
    namespace = (obj.get("metadata") or {}).get("namespace") or ""
    involved = obj.get("involvedObject")
    theirs = str((involved if isinstance(involved, dict) else {}).get("namespace") or "")
    if (theirs or namespace not in ("", "default")) and theirs != namespace:
        raise invalid_field(info, (obj.get("metadata") or {}).get("name"), "involvedObject.namespace", theirs,
                            "does not match event.namespace")


def check_owner_references(info: KindInfo, meta: Obj) -> None:
    refs = meta.get("ownerReferences") or []
    name = meta.get("name") or meta.get("generateName")
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise Invalid(f'{info.kind} "{name}" is invalid: metadata.ownerReferences: must be a list of objects')
    for index, ref in enumerate(refs):
        for field in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(field):
                raise Invalid(f'{info.kind} "{name}" is invalid: metadata.ownerReferences[{index}].{field}: '
                              "Invalid value: \"\": " + ("uid must not be empty" if field == "uid"
                                                         else f"{field} must not be empty"))
    controllers = [r for r in refs if r.get("controller") is True]
    if len(controllers) > 1:
        found = ", ".join(f"{r.get('kind')}/{r.get('name')}" for r in controllers)
        raise Invalid(f'{info.kind} "{name}" is invalid: metadata.ownerReferences: Invalid value: []: Only one '
                      f'reference can have Controller set to true. Found "true" in references for {found}')
