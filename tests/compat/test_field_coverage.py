"""Our models and CRDs cover every field of Argo's CRDs (DESIGN §1: a superset of Argo's).

For each path in argo_field_paths.txt (derived from Argo's CRD schemas, see its header):
- the models hold it: a field (by wire name), under a raw dict kept whole, or under a model
  whose unknown fields are kept; a field kept as an unknown key is one `rollouts lint`
  reports as a warning (`ARGO_ONLY_FIELDS`), never as an error;
- our CRD (what `rollouts crds` writes) does not prune it, accepts every value type Argo's
  accepts, and requires or enumerates nothing Argo leaves open, except where Argo's
  controller rejects the object anyway (the lists below, each with the Argo fact).
"""

from __future__ import annotations

from collections import Counter

import pytest

from rollouts.spec.problems import ARGO_ONLY_FIELDS
from tests.compat.argo_paths import (
    ArgoPath,
    Verdict,
    accepts,
    crd_verdict,
    load_paths,
    model_verdict,
    our_schema,
    segments,
)  # fmt: skip

PATHS = load_paths()

# Fields our CRD requires that Argo's CRD leaves optional: Argo's controller rejects (or
# cannot run) an object without them, so no object Argo accepts is refused.
REQUIRED_ONLY_HERE = {
    ("Rollout", "spec.strategy"):
        "Argo's ValidateRolloutStrategy: \"Rollout has missing field '.spec.strategy.canary or "
        ".spec.strategy.blueGreen'\"",
    ("Rollout", "spec.workloadRef.apiVersion"): "Argo resolves workloadRef by apiVersion, kind and name",
    ("Rollout", "spec.workloadRef.kind"): "Argo resolves workloadRef by apiVersion, kind and name",
    ("Rollout", "spec.workloadRef.name"): "Argo resolves workloadRef by apiVersion, kind and name",
    ("Rollout", "spec.strategy.canary.analysis.templates[].templateName"):
        "Argo looks templates up by name: a ref without one is not found (InvalidSpec)",
    ("Rollout", "spec.strategy.canary.steps[].analysis.templates[].templateName"):
        "Argo looks templates up by name: a ref without one is not found (InvalidSpec)",
    ("AnalysisTemplate", "spec.templates[].templateName"):
        "Argo looks nested templates up by name: a ref without one is not found",
    ("AnalysisTemplate", "spec.metrics[].provider.prometheus.authentication.basicAuth.username"):
        "Argo's Prometheus provider needs both username and password for basic auth",
    ("AnalysisTemplate", "spec.metrics[].provider.prometheus.authentication.basicAuth.password"):
        "Argo's Prometheus provider needs both username and password for basic auth",
}

# Fields where our CRD lists the values and Argo's has a plain string.
ENUM_ONLY_HERE = {
    ("Rollout", "spec.workloadRef.kind"):
        "Argo supports Deployment, ReplicaSet and PodTemplate (argo-rollouts.md §1.1)",
    ("Rollout", "spec.workloadRef.scaleDown"): "Argo knows never, onsuccess, progressively (argo-rollouts.md §1.1)",
    ("Rollout", "spec.strategy.canary.analysis.args[].valueFrom.podTemplateHashValue"):
        "Argo resolves Stable or Latest only (docs/features/analysis.md)",
    ("Rollout", "spec.strategy.canary.steps[].analysis.args[].valueFrom.podTemplateHashValue"):
        "Argo resolves Stable or Latest only (docs/features/analysis.md)",
    ("AnalysisTemplate", "spec.metrics[].provider.web.method"): "docs/analysis/web.md: valid values are GET|POST|PUT",
    ("AnalysisRun", "spec.metrics[].provider.web.method"): "docs/analysis/web.md: valid values are GET|POST|PUT",
    # Status is written by controllers: these are every value Argo's types define.
    ("Rollout", "status.phase"): "RolloutPhase: Progressing, Paused, Healthy, Degraded",
    ("Rollout", "status.conditions[].status"): "a Kubernetes ConditionStatus: True, False, Unknown",
    ("AnalysisRun", "status.phase"): "AnalysisPhase: Pending ... Inconclusive",
    ("AnalysisRun", "status.metricResults[].phase"): "AnalysisPhase: Pending ... Inconclusive",
    ("AnalysisRun", "status.metricResults[].measurements[].phase"): "AnalysisPhase: Pending ... Inconclusive",
}


def report(failures: list[str]) -> str:
    return f"{len(failures)} Argo field(s):\n  " + "\n  ".join(failures)


def test_the_paths_file_holds_argo_schema_facts_for_each_kind() -> None:
    counts = Counter(p.kind for p in PATHS)
    assert counts["Rollout"] > 300 and counts["AnalysisTemplate"] > 100 and counts["AnalysisRun"] > 70, counts
    assert len({(p.kind, p.path) for p in PATHS}) == len(PATHS), "a path is listed twice"
    rollout = {p.path: p for p in PATHS if p.kind == "Rollout"}
    example = rollout["spec.strategy.canary.trafficRouting.istio.destinationRule.canarySubsetName"]
    assert (example.type, example.required) == ("string", True)
    assert rollout["spec.strategy.canary.steps[].pause.duration"].type == "int-or-string"
    assert not any(p.path.startswith("spec.template.") for p in rollout.values())


def test_every_argo_field_is_held_by_our_models() -> None:
    missing = [f"{p}: stops at {v.where}" for p in PATHS
               if (v := model_verdict(p.kind, p.path)).verdict is Verdict.MISSING]
    assert missing == [], report(missing)
    verdicts = Counter(model_verdict(p.kind, p.path).verdict for p in PATHS)
    assert verdicts[Verdict.FIELD] > 250  # most of Argo's canary surface is modelled, not just kept


def test_argo_fields_kept_as_unknown_keys_are_lint_warnings_not_errors() -> None:
    """An unmodelled key on a preserved model reaches lint as an extra: it must be one lint
    knows is Argo's (a WARNING "not supported by this controller"), or the status."""
    wrong = []
    for path in PATHS:
        verdict = model_verdict(path.kind, path.path)
        if verdict.verdict is not Verdict.PRESERVED or path.path.startswith("status."):
            continue
        assert verdict.owner is not None and verdict.key is not None
        if verdict.key not in ARGO_ONLY_FIELDS.get(verdict.owner, ()):
            wrong.append(f"{path}: {verdict.owner.__name__} keeps {verdict.key!r} but lint would call it a typo")
    assert wrong == [], report(wrong)


def test_our_crds_prune_no_argo_field() -> None:
    pruned = [f"{p}: pruned at {n.where}" for p in PATHS
              if (n := crd_verdict(p.kind, p.path)).verdict is Verdict.PRUNED]
    assert pruned == [], report(pruned)


def test_our_crds_accept_every_value_type_argo_accepts() -> None:
    narrower = []
    for path in PATHS:
        node = crd_verdict(path.kind, path.path)
        if node.verdict is Verdict.TYPED and node.node is not None and not accepts(node.node, path.type):
            ours = node.node.get("type") or "int-or-string"
            narrower.append(f"{path}: Argo {path.type}, ours {ours}")
    assert narrower == [], report(narrower)


def test_our_crds_require_nothing_argo_leaves_optional_without_an_argo_reason() -> None:
    extra = []
    for path in PATHS:
        node = crd_verdict(path.kind, path.path)
        name = segments(path.path)[-1][0]
        required_here = node.verdict is Verdict.TYPED and node.parent and name in node.parent.get("required", ())
        if required_here and not path.required and (path.kind, path.path) not in REQUIRED_ONLY_HERE:
            extra.append(str(path))
    assert extra == [], report(extra)


def test_our_crds_enumerate_values_only_where_argo_rejects_others() -> None:
    extra = [str(p) for p in PATHS if (n := crd_verdict(p.kind, p.path)).verdict is Verdict.TYPED and n.node
             and "enum" in n.node and (p.kind, p.path) not in ENUM_ONLY_HERE]  # fmt: skip
    assert extra == [], report(extra)


@pytest.mark.parametrize("table", [REQUIRED_ONLY_HERE, ENUM_ONLY_HERE], ids=["required", "enum"])
def test_every_listed_deviation_is_still_real(table: dict[tuple[str, str], str]) -> None:
    """An entry whose deviation is gone (or whose path Argo does not have) must be removed."""
    known = {(p.kind, p.path): p for p in PATHS}
    stale = []
    for kind, path in table:
        node = crd_verdict(kind, path)
        assert (kind, path) in known, f"{kind} {path} is not one of Argo's paths"
        name = segments(path)[-1][0]
        real = node.node is not None and ("enum" in node.node if table is ENUM_ONLY_HERE
                                          else name in (node.parent or {}).get("required", ()))  # fmt: skip
        if not real:
            stale.append(f"{kind} {path}")
    assert stale == [], report(stale)


# ---------------------------------------------------------------- the checks can fail


def test_the_walkers_see_a_gap_when_there_is_one() -> None:
    gap = ArgoPath("Rollout", "spec.strategy.canary.notAnArgoField", "string", False, 0)
    assert model_verdict(gap.kind, gap.path).verdict is Verdict.MISSING
    assert crd_verdict(gap.kind, gap.path).verdict is Verdict.PRUNED
    kept = model_verdict("Rollout", "spec.strategy.canary.trafficRouting.someNewRouter.field")
    assert (kept.verdict, kept.key) == (Verdict.PRESERVED, "someNewRouter")
    assert "someNewRouter" not in ARGO_ONLY_FIELDS[kept.owner]  # type: ignore[index]  # would fail the lint test
    assert model_verdict("Rollout", "spec.template.spec.containers[].image").verdict is Verdict.RAW
    assert model_verdict("Rollout", "spec.replicas.deeper").verdict is Verdict.MISSING
    assert model_verdict("Rollout", "spec.strategy.canary.steps[].setWeight").verdict is Verdict.FIELD
    steps = crd_verdict("Rollout", "spec.strategy.canary.steps[].setWeight")
    assert steps.verdict is Verdict.TYPED and steps.node == {"type": "integer"}
    assert not accepts({"type": "string"}, "int-or-string") and not accepts({"type": "integer"}, "string")
    assert accepts({"x-kubernetes-int-or-string": True}, "integer") and accepts({"type": "integer"}, "integer")
    schema = our_schema("Rollout")
    assert schema["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] is True
