"""What a kill storm must never break, checked over the whole recorded history and the end state.

Each check returns violations (one line naming the object and what it did); `check` runs
them all and counts what it looked at, so a run that checked nothing cannot pass unseen.
- promotion: no Rollout version has a bad image's pods as `stableRS`, and no active
  Service version of a blueGreen Rollout selects them;
- steps: for one pod hash, `currentStepIndex` only stays or moves +1; it goes to 0 only on
  a new pod hash, an abort or a retry (no step skipped, none run twice); a new pod hash may
  first be seen at step 1 only when step 0 is a setWeight whose weight the VirtualService
  took in between (the killed process did step 0, its status write was lost);
- pauses: while one pause holds (same pod hash, step and reason, no abort between), its
  `startTime` never moves, and a pause that ended is not entered again at the same step;
- weights: every VirtualService version gives the canary a weight the steps allow (or 100
  past the last step, before the stable switches, as Argo does, for a canary with its
  evidence: never to a bad revision, whose analysis never succeeds), and
  the route's weights add up to 100;
- runs: at most one AnalysisRun per (pod hash, kind, step) that measured anything (one
  terminated before its first measurement may be replaced), never more measurements than
  its `count`; every promoted good revision of an analyzed shape had a Successful run;
- at rest: every Rollout's status agrees with its VirtualService (or active Service); a
  Healthy canary sends the canary nothing; every AnalysisRun and ReplicaSet is owned by a
  live Rollout, every AnalysisRun has finished, and only stable pods run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rollouts.platform.labels import HASH_LABEL
from tests.storm import fleet
from tests.storm.history import History

TERMINAL = {"Successful", "Failed", "Error", "Inconclusive"}
# FINDINGS: printed in the summary, not failed on, until the product settles them (none open now;
# weight 100 to a bad revision, once one, is a violation since the promotion gate holds the
# round that enters past the last step too).
Obj = dict[str, Any]


@dataclass
class Report:
    violations: list[str] = field(default_factory=list)
    looked_at: Counter[str] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)  # printed, not failed on (see FINDINGS)

    def summary(self) -> str:
        counts = ", ".join(f"{what} {n}" for what, n in sorted(self.looked_at.items()))
        found = f"; findings ({len(self.findings)}): " + " | ".join(self.findings[:5]) if self.findings else ""
        return f"{len(self.violations)} violations; checked: {counts}{found}"


def _status(obj: Obj) -> Obj:
    return dict(obj.get("status") or {})


def _image(obj: Obj) -> str:
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def images_by_hash(history: History) -> dict[tuple[str, str], str]:
    """(namespace, pod hash) -> image, from every ReplicaSet version seen."""
    found: dict[tuple[str, str], str] = {}
    for (namespace, _), versions in history.by_name("ReplicaSet").items():
        for rs in versions:
            pod_hash = (rs["metadata"].get("labels") or {}).get(HASH_LABEL)
            if pod_hash:
                found[(namespace, pod_hash)] = _image(rs)
    return found


def promotion(history: History, report: Report) -> None:
    images = images_by_hash(history)
    for (namespace, name), versions in history.by_name("Rollout").items():
        for ro in versions:
            stable = _status(ro).get("stableRS")
            report.looked_at["rollout versions"] += 1
            if stable and fleet.is_bad(images.get((namespace, stable), "")):
                report.violations.append(f"Rollout {namespace}/{name}: the bad image {images[(namespace, stable)]} "
                                         f"was promoted (stableRS {stable}, resourceVersion "
                                         f"{ro['metadata']['resourceVersion']})")
    for (namespace, name), versions in history.by_name("Service").items():
        if not name.endswith("-active"):
            continue
        for svc in versions:
            selected = (svc["spec"].get("selector") or {}).get(HASH_LABEL)
            report.looked_at["active service versions"] += 1
            if selected and fleet.is_bad(images.get((namespace, selected), "")):
                report.violations.append(f"Service {namespace}/{name} sent production traffic to the bad image "
                                         f"{images[(namespace, selected)]}")


def steps(history: History, report: Report) -> None:
    services = history.by_name("VirtualService")
    for (namespace, name), versions in history.by_name("Rollout").items():
        routed = [(int(vs["metadata"]["resourceVersion"]), _weights(vs, f"{name}-canary")[0])
                  for vs in services.get((namespace, f"{name}-vsvc"), [])]
        shape_steps = fleet.STEPS.get(fleet.shape_of(name), [])
        previous: Obj | None = None
        previous_version = 0
        for ro in versions:
            now, version = _status(ro), int(ro["metadata"]["resourceVersion"])
            if previous is not None and not _step_move_allowed(previous, now) and not _landed_after_a_lost_write(
                    previous, now, shape_steps, [w for rv, w in routed if previous_version < rv < version]):
                report.violations.append(
                    f"Rollout {namespace}/{name}: step {previous.get('currentStepIndex')} -> "
                    f"{now.get('currentStepIndex')} (pod hash {previous.get('currentPodHash')} -> "
                    f"{now.get('currentPodHash')}, abort {previous.get('abort')} -> {now.get('abort')}) "
                    f"at resourceVersion {version}: a step skipped or run twice")
            if previous is not None and previous.get("currentStepIndex") != now.get("currentStepIndex"):
                report.looked_at["step moves"] += 1
            previous, previous_version = now, version


def _step_move_allowed(before: Obj, after: Obj) -> bool:
    old, new = before.get("currentStepIndex"), after.get("currentStepIndex")
    if old == new or old is None:
        return True
    same_hash = before.get("currentPodHash") == after.get("currentPodHash")
    if same_hash and new == old + 1 and not (after.get("abort") and not before.get("abort")):
        return True
    restarted = not same_hash or bool(after.get("abort")) != bool(before.get("abort"))
    return new == 0 and restarted


def _landed_after_a_lost_write(before: Obj, after: Obj, shape_steps: list[Obj], weights_between: list[int]) -> bool:
    """A new revision first seen at step 1: the killed process entered step 0 (a setWeight) and set
    its weight, but its status write (step 0) was lost; the next process found the step done.
    Allowed only when the VirtualService took that weight between the two Rollout versions."""
    if before.get("currentPodHash") == after.get("currentPodHash") or after.get("currentStepIndex") != 1:
        return False
    first = shape_steps[0] if shape_steps else {}
    return "setWeight" in first and int(first["setWeight"]) in weights_between


def pauses(history: History, report: Report) -> None:
    for (namespace, name), versions in history.by_name("Rollout").items():
        started: dict[tuple[Any, ...], str] = {}
        ended: set[tuple[Any, ...]] = set()
        epoch = 0
        aborted = False
        for ro in versions:
            st = _status(ro)
            if bool(st.get("abort")) != aborted:
                aborted, epoch = bool(st.get("abort")), epoch + 1
            at = (st.get("currentPodHash"), st.get("currentStepIndex"))
            holding = {(*at, c.get("reason"), epoch): c.get("startTime") for c in st.get("pauseConditions") or []}
            for key, start in holding.items():
                report.looked_at["pause observations"] += 1
                if key in ended:
                    report.violations.append(f"Rollout {namespace}/{name}: the pause at step {key[1]} of {key[0]} "
                                             f"ended and started again (startTime {start})")
                first = started.setdefault(key, str(start))
                if first != str(start):
                    report.violations.append(f"Rollout {namespace}/{name}: the pause at step {key[1]} of {key[0]} "
                                             f"restarted: startTime {first} -> {start}")
            ended |= {key for key in started if key not in holding}


def weights(history: History, report: Report) -> None:
    images = images_by_hash(history)
    rollouts = history.by_name("Rollout")
    for (namespace, name), versions in history.by_name("VirtualService").items():
        rollout = name.removesuffix("-vsvc")
        allowed = fleet.allowed_weights(fleet.shape_of(rollout))
        for vs in versions:
            report.looked_at["virtualservice versions"] += 1
            canary, total = _weights(vs, f"{rollout}-canary")
            if canary == 100:
                version = int(vs["metadata"]["resourceVersion"])
                before = [ro for ro in rollouts.get((namespace, rollout), [])
                          if int(ro["metadata"]["resourceVersion"]) < version]
                current = _status(before[-1]).get("currentPodHash") if before else None
                if fleet.is_bad(images.get((namespace, str(current)), "")):
                    report.violations.append(f"VirtualService {namespace}/{name}: all the traffic to the bad "
                                             f"revision {images[(namespace, str(current))]}")
            if canary not in allowed or total != 100:
                report.violations.append(f"VirtualService {namespace}/{name}: canary weight {canary} (of {total}) "
                                         f"is not one the steps allow ({sorted(allowed)}) at resourceVersion "
                                         f"{vs['metadata']['resourceVersion']}")


def _weights(vs: Obj, canary_host: str) -> tuple[int, int]:
    route = ((vs.get("spec") or {}).get("http") or [{}])[0].get("route") or []
    canary = sum(int(d.get("weight", 0)) for d in route if d["destination"]["host"] == canary_host)
    return canary, sum(int(d.get("weight", 0)) for d in route)


def runs(history: History, report: Report, promoted: Iterable[tuple[str, str, str]]) -> None:
    """`promoted`: (namespace, rollout, pod hash) of every good revision the storm saw promoted."""
    names: dict[tuple[str, ...], set[str]] = {}
    last: dict[tuple[str, str], Obj] = {}
    for (namespace, name), versions in history.by_name("AnalysisRun").items():
        labels = versions[0]["metadata"].get("labels") or {}
        owner = (versions[0]["metadata"].get("ownerReferences") or [{}])[0].get("name", "?")
        key = (namespace, owner, labels.get(HASH_LABEL, "?"), labels.get("rollout-type", "?"),
               labels.get("step-index", ""))
        names.setdefault(key, set()).add(name)
        last[(namespace, name)] = versions[-1]
        report.looked_at["analysis runs"] += 1
        for metric in versions[-1]["spec"].get("metrics") or []:
            result = next((r for r in _status(versions[-1]).get("metricResults") or []
                           if r.get("name") == metric["name"]), {})
            taken = len(result.get("measurements") or [])
            if metric.get("count") is not None and taken > int(metric["count"]):
                report.violations.append(f"AnalysisRun {namespace}/{name}: {taken} measurements of "
                                         f"{metric['name']}, more than its count {metric['count']}")
    for key, found in names.items():
        # a run terminated before its first measurement, replaced by `.1`: no evidence was thrown
        # away (the killed process created it, its status write was lost, the next terminated it)
        unmeasured = {n for n in found if is_terminated_unmeasured(last[(key[0], n)])}
        report.looked_at["runs replaced unmeasured"] += len(unmeasured) if len(found) > 1 else 0
        if len(found - unmeasured) > 1 or (len(found) > 1 and not found - unmeasured):
            seen = "; ".join(f"{n}: {_run_story(last[(key[0], n)])}" for n in sorted(found))
            report.violations.append(f"Rollout {key[0]}/{key[1]}: {len(found)} AnalysisRuns for pod hash {key[2]} "
                                     f"({key[3]} {key[4]}), the analysis ran twice: {seen}")
    for namespace, rollout, pod_hash in promoted:
        shape = fleet.shape_of(rollout)
        if shape not in fleet.ANALYZED:
            continue
        report.looked_at["promotions with evidence"] += 1
        kind = {"steps": "Step", "background": "Background", "bluegreen": "PrePromotion"}[shape]
        evidence = [name for key, found in names.items() if key[:4] == (namespace, rollout, pod_hash, kind)
                    for name in found if _status(last[(namespace, name)]).get("phase") == "Successful"
                    or (kind == "Background" and _measured_ok(last[(namespace, name)]))]
        if not evidence:
            report.violations.append(f"Rollout {namespace}/{rollout}: pod hash {pod_hash} was promoted with no "
                                     f"successful {kind} AnalysisRun")


def is_terminated_unmeasured(run: Obj) -> bool:
    return bool(run["spec"].get("terminate")) and not any(
        r.get("measurements") for r in _status(run).get("metricResults") or [])


def _run_story(run: Obj) -> str:
    st = _status(run)
    taken = [m.get("phase") for r in st.get("metricResults") or [] for m in r.get("measurements") or []]
    return (f"phase {st.get('phase')}, terminate {run['spec'].get('terminate')}, measurements {taken}, "
            f"message {st.get('message')!r}, created {run['metadata'].get('creationTimestamp')}")


def _measured_ok(run: Obj) -> bool:
    """A background run ends terminated on promotion: its evidence is a successful measurement."""
    return any(m.get("phase") == "Successful" for r in _status(run).get("metricResults") or []
               for m in r.get("measurements") or [])


def at_rest(cluster: Any, namespaces: list[str], report: Report) -> None:
    """The end state, once every Rollout has settled."""
    for namespace in namespaces:
        rollouts = {ro["metadata"]["name"]: ro for ro in cluster.list("Rollout", namespace)}
        uids = {ro["metadata"]["uid"] for ro in rollouts.values()}
        for name, ro in rollouts.items():
            report.looked_at["rollouts at rest"] += 1
            _agrees(cluster, namespace, name, ro, report)
        for kind in ("AnalysisRun", "ReplicaSet"):
            for obj in cluster.list(kind, namespace):
                report.looked_at[f"{kind}s at rest"] += 1
                owners = {ref.get("uid") for ref in obj["metadata"].get("ownerReferences") or []}
                if not owners & uids:
                    report.violations.append(f"{kind} {namespace}/{obj['metadata']['name']} is orphaned: "
                                             f"no live Rollout owns it")
                if kind == "AnalysisRun" and _status(obj).get("phase") not in TERMINAL:
                    report.violations.append(f"AnalysisRun {namespace}/{obj['metadata']['name']} is still "
                                             f"{_status(obj).get('phase') or 'unstarted'} at rest")
                if kind == "ReplicaSet" and int(obj["spec"].get("replicas") or 0) > 0:
                    owner = next((ro for ro in rollouts.values()
                                  if ro["metadata"]["uid"] in owners), None)
                    pod_hash = (obj["metadata"].get("labels") or {}).get(HASH_LABEL)
                    if owner is not None and pod_hash != _status(owner).get("stableRS"):
                        report.violations.append(f"ReplicaSet {namespace}/{obj['metadata']['name']} still runs "
                                                 f"{obj['spec']['replicas']} pods at rest; only the stable may")


def _agrees(cluster: Any, namespace: str, name: str, ro: Obj, report: Report) -> None:
    st = _status(ro)
    if fleet.shape_of(name) == "bluegreen":
        active = cluster.get("Service", f"{name}-active", namespace)
        selected = (active["spec"].get("selector") or {}).get(HASH_LABEL)
        if selected != st.get("stableRS"):
            report.violations.append(f"Rollout {namespace}/{name}: the active Service selects {selected}, "
                                     f"status says the stable is {st.get('stableRS')}")
        return
    vs = cluster.get("VirtualService", f"{name}-vsvc", namespace)
    canary, _ = _weights(vs, f"{name}-canary")
    said = ((st.get("canary") or {}).get("weights") or {}).get("canary", {}).get("weight")
    if said is not None and int(said) != canary:
        report.violations.append(f"Rollout {namespace}/{name}: status says canary weight {said}, "
                                 f"the VirtualService gives {canary}")
    if (st.get("phase") == "Healthy" or st.get("abort")) and canary != 0:
        report.violations.append(f"Rollout {namespace}/{name} is {st.get('phase')} but the VirtualService "
                                 f"still sends the canary {canary}%")


def check(history: History, cluster: Any, namespaces: list[str],
          promoted: Iterable[tuple[str, str, str]]) -> Report:
    report = Report(violations=[f"history incomplete: {gap}" for gap in history.gaps])
    promotion(history, report)
    steps(history, report)
    pauses(history, report)
    weights(history, report)
    runs(history, report, promoted)
    at_rest(cluster, namespaces, report)
    return report
