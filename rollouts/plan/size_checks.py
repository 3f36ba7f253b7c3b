"""Sizes and metadata the Kubernetes API refuses, found before the controller creates anything.

Rules (Kubernetes' apimachinery object-meta validation; etcd's request limit):
- The annotations of one object total at most 256 KiB (keys and values, UTF-8): the Rollout's
  own `metadata.annotations`, and `spec.template.metadata.annotations`, which every ReplicaSet
  and pod of the Rollout carries (the API server would refuse the ReplicaSet: the update could
  never start, and would be retried forever).
- A pod template label value is at most 63 characters of alphanumerics, '-', '_' and '.',
  starting and ending with an alphanumeric (or empty), as the ReplicaSet's selector needs it.
- An analysis arg `value` is at most 64 KiB: every AnalysisRun keeps it in its spec and, in the
  resolved query, in every measurement; a run must stay well under etcd's 1.5 MiB.
- Pure; never raises for bad input (a non-mapping is skipped: the model checks report it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rollouts.spec.model import Rollout
from rollouts.spec.problems import Problem

__all__ = ["MAX_ANNOTATIONS_BYTES", "MAX_ARG_BYTES", "size_problems"]

MAX_ANNOTATIONS_BYTES = 256 * 1024
MAX_ARG_BYTES = 64 * 1024
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def size_problems(rollout: Rollout, analysis_blocks: list[tuple[str, Any]]) -> list[Problem]:
    """Problems of `rollout`; `analysis_blocks` are (path, RolloutAnalysis) of its analysis and analysis steps."""
    found = _annotations("metadata.annotations", rollout.metadata.annotations)
    template: Mapping[str, Any] = rollout.spec.template if isinstance(rollout.spec.template, Mapping) else {}
    found_meta = template.get("metadata")
    meta: Mapping[str, Any] = found_meta if isinstance(found_meta, Mapping) else {}
    found += _annotations("spec.template.metadata.annotations", meta.get("annotations"))
    labels = meta.get("labels")
    for key, value in (labels.items() if isinstance(labels, Mapping) else ()):
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
            found.append(Problem(f"spec.template.metadata.labels.{key}",
                                 f"{str(value)[:80]!r} is not a Kubernetes label value",
                                 "use at most 63 letters, digits, '-', '_' or '.', starting and ending with "
                                 "a letter or digit"))
    for path, block in analysis_blocks:
        for index, arg in enumerate(getattr(block, "args", None) or []):
            size = len(arg.value.encode("utf-8", "replace")) if isinstance(arg.value, str) else 0
            if size > MAX_ARG_BYTES:
                found.append(Problem(f"{path}.args[{index}].value", f"is {size} bytes, more than {MAX_ARG_BYTES}",
                                     "pass a short value (every AnalysisRun and measurement keeps it)"))
    return found


def _annotations(path: str, annotations: Any) -> list[Problem]:
    if not isinstance(annotations, Mapping):
        return []
    size = sum(len(str(k).encode("utf-8", "replace")) + len(str(v).encode("utf-8", "replace"))
               for k, v in annotations.items())
    if size <= MAX_ANNOTATIONS_BYTES:
        return []
    return [Problem(path, f"total {size} bytes, more than Kubernetes' {MAX_ANNOTATIONS_BYTES}",
                    "move the data into a ConfigMap and reference it")]
