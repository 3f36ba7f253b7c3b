"""What the Kubernetes API would refuse is InvalidSpec before anything is created (rollouts.plan.size_checks).

Found by the hostile corpus: a 1 MB pod-template annotation, an odd label value or a 1 MB
analysis arg went through validation and the embedded API, so the canary ran; a real API
server refuses the ReplicaSet (the update retried forever) and etcd the growing AnalysisRun.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rollouts.plan.size_checks import MAX_ANNOTATIONS_BYTES, MAX_ARG_BYTES
from rollouts.plan.validation import validate_rollout
from rollouts.spec.model import Rollout
from tests.controller.dsl import load_example

C = "spec.strategy.canary"


def problems(edit: Any) -> list[tuple[str, str]]:
    doc = copy.deepcopy(next(d for d in load_example("istio-canary") if d["kind"] == "Rollout"))
    edit(doc)
    return [(p.path, p.message) for p in validate_rollout(Rollout.load(doc)) if p.is_error]


def pod_meta(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"].setdefault("metadata", {})  # type: ignore[no-any-return]


@pytest.mark.parametrize(("edit", "path", "words"), [
    (lambda d: pod_meta(d).setdefault("annotations", {}).update(big="x" * MAX_ANNOTATIONS_BYTES),
     "spec.template.metadata.annotations", "more than Kubernetes' 262144"),
    (lambda d: d["metadata"].setdefault("annotations", {}).update(big="x" * (1 << 20)),
     "metadata.annotations", "total 1048579 bytes"),
    (lambda d: pod_meta(d)["labels"].update(odd="a b"), "spec.template.metadata.labels.odd", "not a Kubernetes label"),
    (lambda d: pod_meta(d)["labels"].update(long="v" * 64), "spec.template.metadata.labels.long", "label value"),
    (lambda d: d["spec"]["strategy"]["canary"]["analysis"]["args"][0].update(value="q" * (MAX_ARG_BYTES + 1)),
     f"{C}.analysis.args[0].value", f"is {MAX_ARG_BYTES + 1} bytes"),
], ids=["pod-annotations", "annotations", "label-odd", "label-long", "arg-huge"])
def test_what_the_api_would_refuse_is_an_error_at_its_field(edit: Any, path: str, words: str) -> None:
    found = problems(edit)
    assert [p for p, _ in found] == [path], found
    assert words in found[0][1]


def test_sizes_within_the_limits_are_fine() -> None:
    def edit(doc: dict[str, Any]) -> None:
        pod_meta(doc).setdefault("annotations", {}).update(big="x" * (MAX_ANNOTATIONS_BYTES - 10))
        pod_meta(doc)["labels"].update(ok="v" * 63, empty="")
        doc["spec"]["strategy"]["canary"]["analysis"]["args"][0]["value"] = "q" * MAX_ARG_BYTES

    assert problems(edit) == []
