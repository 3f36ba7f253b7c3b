"""Argo's CRD field paths (argo_field_paths.txt) and two ways to follow one: through our
pydantic models by wire name, and through our CRD schema as the API server prunes.

- `model_verdict` answers FIELD (every segment is a field of our models), RAW (the path
  lies under a raw dict / Any field, kept whole), PRESERVED (under a model whose unknown
  fields are kept, see `crdgen.PRESERVED`), or MISSING (with the segment where it stops).
- `crd_verdict` answers TYPED (with our schema node and its parent), PRESERVED (under an
  `x-kubernetes-preserve-unknown-fields` node), or PRUNED (with the segment where it stops).
"""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from analysis.model import AnalysisRun, AnalysisTemplate
from rollouts.spec import crdgen
from rollouts.spec.model import Rollout

PATHS_FILE = Path(__file__).with_name("argo_field_paths.txt")
ROOTS: Mapping[str, type[BaseModel]] = {
    "Rollout": Rollout, "AnalysisTemplate": AnalysisTemplate, "AnalysisRun": AnalysisRun,
}  # fmt: skip
ARGO_TYPES = frozenset({"string", "integer", "boolean", "int-or-string", "object", "array", "map"})
_SEGMENT = re.compile(r"(?P<name>[A-Za-z0-9]+)(?P<suffix>\[\]|\{\})?")


@dataclass(frozen=True)
class ArgoPath:
    kind: str
    path: str
    type: str
    required: bool
    line: int

    def __str__(self) -> str:
        return f"{self.kind} {self.path} (argo_field_paths.txt:{self.line})"


def segments(path: str) -> list[tuple[str, str]]:
    out = []
    for part in path.split("."):
        match = _SEGMENT.fullmatch(part)
        if match is None:
            raise ValueError(f"bad path segment {part!r} in {path!r}")
        out.append((match["name"], match["suffix"] or ""))
    return out


def load_paths() -> list[ArgoPath]:
    kind, found = None, []
    for number, raw in enumerate(PATHS_FILE.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            kind = line[1:-1]
            continue
        path, argo_type, *flags = line.split()
        if kind not in ROOTS or argo_type not in ARGO_TYPES or flags not in ([], ["required"]):
            raise ValueError(f"argo_field_paths.txt:{number}: cannot read {raw!r}")
        segments(path)
        found.append(ArgoPath(kind, path, argo_type, bool(flags), number))
    return found


# ---------------------------------------------------------------- through the models


class Verdict(StrEnum):
    FIELD = "field"
    RAW = "raw"
    PRESERVED = "preserved"
    MISSING = "missing"
    TYPED = "typed"
    PRUNED = "pruned"


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]  # noqa: UP007
    return annotation


def _is_raw(annotation: Any) -> bool:
    """Any, or a dict whose values are Any: kept whole, nothing below it is pruned."""
    if annotation is Any:
        return True
    return typing.get_origin(annotation) is dict and typing.get_args(annotation)[1] is Any


def _field(model: type[BaseModel], alias: str) -> Any:
    for name, info in model.model_fields.items():
        if (info.alias or name) == alias:
            return _without_none(info.annotation)
    return None


@dataclass(frozen=True)
class ModelVerdict:
    verdict: Verdict
    where: str  # the path prefix that decided it
    owner: type[BaseModel] | None = None  # PRESERVED: the model keeping the unknown key
    key: str | None = None


def model_verdict(kind: str, path: str) -> ModelVerdict:
    """How our models hold `path` of `kind`."""
    current: Any = ROOTS[kind]
    walked = ""
    for name, suffix in segments(path):
        walked = f"{walked}.{name}{suffix}".lstrip(".")
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return ModelVerdict(Verdict.MISSING, walked)
        annotation = _field(current, name)
        if annotation is None:
            if current.__name__ in crdgen.PRESERVED:
                return ModelVerdict(Verdict.PRESERVED, walked, current, name)
            return ModelVerdict(Verdict.MISSING, walked)
        origin = {"[]": list, "{}": dict}.get(suffix)
        if origin is not None:
            if typing.get_origin(annotation) is not origin:
                return ModelVerdict(Verdict.MISSING, walked)
            annotation = _without_none(typing.get_args(annotation)[-1])
        if _is_raw(annotation):
            return ModelVerdict(Verdict.RAW, walked)
        current = annotation
    return ModelVerdict(Verdict.FIELD, walked)


# ---------------------------------------------------------------- through our CRD schema


@dataclass(frozen=True)
class CrdNode:
    verdict: Verdict
    where: str
    node: Mapping[str, Any] | None = None
    parent: Mapping[str, Any] | None = None


@functools.cache
def our_schema(kind: str) -> Mapping[str, Any]:
    """The openAPIV3Schema `rollouts crds` writes for `kind` (tests/test_crds.py: crds/ is the same)."""
    crd = crdgen.crd(crdgen.KIND_BY_NAME[kind])
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def crd_verdict(kind: str, path: str) -> CrdNode:
    node: Mapping[str, Any] = our_schema(kind)
    parent: Mapping[str, Any] | None = None
    walked = ""
    for name, suffix in segments(path):
        walked = f"{walked}.{name}{suffix}".lstrip(".")
        props = node.get("properties", {})
        if name in props:
            parent, node = node, props[name]
        elif node.get("x-kubernetes-preserve-unknown-fields"):
            return CrdNode(Verdict.PRESERVED, walked)
        else:
            return CrdNode(Verdict.PRUNED, walked)
        if suffix:
            key = "items" if suffix == "[]" else "additionalProperties"
            if isinstance(node.get(key), Mapping):
                node = node[key]
            elif node.get("x-kubernetes-preserve-unknown-fields"):
                return CrdNode(Verdict.PRESERVED, walked)
            else:
                return CrdNode(Verdict.PRUNED, walked)
    return CrdNode(Verdict.TYPED, walked, node, parent)


def accepts(node: Mapping[str, Any], argo_type: str) -> bool:
    """True when every value Argo's schema allows for `argo_type` is allowed by `node`."""
    if node.get("x-kubernetes-int-or-string"):
        return argo_type in ("integer", "string", "int-or-string")
    ours = node.get("type")
    if ours is None:
        return bool(node.get("x-kubernetes-preserve-unknown-fields"))  # any JSON value
    wanted = {"string": {"string"}, "integer": {"integer", "number"}, "boolean": {"boolean"},
              "int-or-string": set(), "object": {"object"}, "map": {"object"}, "array": {"array"}}  # fmt: skip
    return ours in wanted[argo_type]


# ---------------------------------------------------------------- Argo's schema, from the facts

_LEAF: Mapping[str, dict[str, Any]] = {
    "string": {"type": "string"}, "integer": {"type": "integer"}, "boolean": {"type": "boolean"},
    "int-or-string": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
    "object": {"type": "object"}, "map": {"type": "object"}, "array": {"type": "array"},
}  # fmt: skip


def argo_schema(kind: str) -> dict[str, Any]:
    """A JSON schema of `kind` built from argo_field_paths.txt alone: every object whose fields
    are listed is closed (an unlisted field is an error), an object listed without fields is
    open (the pod template, plugin configs, ...), maps hold strings unless their values are
    listed, `required` follows Argo's. What it accepts, Argo's CRD accepts."""
    root: dict[str, Any] = {"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}}  # fmt: skip
    maps: list[dict[str, Any]] = []
    for item in (p for p in load_paths() if p.kind == kind):
        node, parent, name = root, root, ""
        for name, suffix in segments(item.path):
            parent = node
            node = node.setdefault("properties", {}).setdefault(name, {"type": "object"})
            if suffix:
                node = node.setdefault("items" if suffix == "[]" else "additionalProperties", {"type": "object"})
        if "properties" not in node:
            node.pop("type", None)
            node.update(_LEAF[item.type])
        if item.type == "map":
            maps.append(node)
        if item.required:
            parent.setdefault("required", []).append(name)
    for node in maps:
        node.setdefault("additionalProperties", {"type": "string"})
    _close(root)
    return root


def _close(node: dict[str, Any]) -> None:
    if "properties" in node:
        node.setdefault("additionalProperties", False)
        for sub in node["properties"].values():
            _close(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _close(node[key])
