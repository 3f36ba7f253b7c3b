"""The Rollout's AnalysisRuns: naming, creating, following and terminating them.

Rules (argo-rollouts.md §3.8):
- Runs are named `<rollout>-<podhash>-<revision>` (background) and
  `<rollout>-<podhash>-<revision>-<stepIndex>` (step), with `.1`, `.2`... when a new run
  is needed under the same name (after an inconclusive pause is resumed, after a retry).
  A run recorded in status is the run; else the newest same-name run that is not
  terminated is adopted whatever its phase (its create went through but the status write
  was lost, e.g. the controller was killed: a Failed verdict stands, it is not measured
  again); only a resumed inconclusive run (`again`) skips Failed/Error/Inconclusive ones;
  else the next free name is created. Labels:
  `rollouts-pod-template-hash`, `rollout-type` (Step|Background), `step-index`, the
  Rollout's selector labels, and the Rollout's own
  `argo-rollouts.argoproj.io/controller-instance-id` when it has one (as Argo copies
  it), so the run is measured by the controller that owns the Rollout; annotation
  `rollout.argoproj.io/revision`.
- The step run is created on entering an analysis step (not while aborted or
  `spec.paused`); the background run once `currentStepIndex >= startingStep` while an
  update is in progress. Successful step run -> the step is done; Failed/Error (either
  run) -> abort, the message names the run's verdict (`analysis.explain`: metric, value,
  condition, counts against the limit, query; the run keeps Argo's own message);
  Inconclusive -> pause `InconclusiveAnalysisRun`; resuming it measures again. A
  A Running run that waits for data (a metric with `inconclusive.hold`, analysis.assess's
  `waiting_for_data`) holds the Rollout where it is: its weight stays, the step does not
  advance and nothing is promoted (`Pass.held`, the phase message says why), until the next
  measurement has data. A Successful step run that is not evidence (`analysis.evidence`: a judged metric with
  no successful measurement) aborts: it will not measure again.
- Promotion gate (`gate_promotion`): past the last step, the background run must be
  evidence too; while it is still measuring the promotion waits (phase Progressing,
  the message says for what); a background run that ended without evidence aborts.
  `promote --full` (a human's decision) skips the gate, as it skips analysis.
- A run no longer wanted is terminated (`spec.terminate: true`) while it is still going:
  on promotion, promote-full, a skipped step, a new revision. A run the next round adopts
  is wanted (`adoptable`): the live run of the analysis step this round moved to, and the
  background run, of this revision, that the status does not name yet (a controller killed
  after creating it, before the status write: terminated, the step would run twice). On abort every run of the
  aborted revision is terminated, finished ones too once the abort is in the observed status (so a lost
  status write leaves the verdict to be adopted again, not measured twice), so `retry` measures afresh.
- History (argo-rollouts.md §3.6): completed runs beyond the Rollout's
  `spec.analysis.successfulRunHistoryLimit` (Successful ones, default 5) and
  `unsuccessfulRunHistoryLimit` (Failed, Error, Inconclusive, default 5) are deleted,
  oldest first (creationTimestamp, then revision, then name); a run the status
  follows (the current step or background run, kept for `get rollout` after an
  abort) and a run still going are never deleted, nor counted.
- The run document is built by `analysis.build.build_run` from the templates the caller
  observed (Rollout args resolved first); a template or arg problem is `RunSpecError`
  (InvalidSpec). Pure: nothing here reads a clock or the cluster.
Size: over 300 lines because the run's whole life for the plan (naming, creating,
  following, the promotion gate, terminating, history) in one place, so each rule about
  runs is written once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis import args as arguments
from analysis import assess, evidence, explain
from analysis.args import ArgError
from analysis.build import SpecError, build_run, template_resolver
from analysis.model import AnalysisPhase
from rollouts.plan import transitions
from rollouts.plan.replicas import owner_reference
from rollouts.plan.state import Pass
from rollouts.plan.steps import INCONCLUSIVE_PAUSE
from rollouts.platform.actions import NORMAL, WARNING, CreateAnalysisRun, DeleteAnalysisRun, TerminateAnalysisRun
from rollouts.platform.labels import HASH_LABEL, INSTANCE_LABEL, REVISION
from rollouts.spec.model import PauseCondition, Rollout, RolloutAnalysis, RunStatusRef
from rollouts.spec.problems import Problem

STEP_RUN, BACKGROUND_RUN = "Step", "Background"
BAD_PHASES = frozenset({AnalysisPhase.FAILED, AnalysisPhase.ERROR, AnalysisPhase.INCONCLUSIVE})
DEFAULT_RUN_HISTORY = 5


class RunSpecError(Exception):
    """An AnalysisRun cannot be built from the Rollout's analysis spec."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def run_base_name(rollout_name: str, pod_hash: str, revision: int, step_index: int | None) -> str:
    base = f"{rollout_name}-{pod_hash}-{revision}"
    return base if step_index is None else f"{base}-{step_index}"


def _suffix(name: str, base: str, sep: str) -> int | None:
    if name == base:
        return 0
    tail = name[len(base) + 1:]
    return int(tail) if name.startswith(base + sep) and tail.isdigit() else None


def run_phase(doc: Mapping[str, Any]) -> AnalysisPhase:
    phase = (doc.get("status") or {}).get("phase")
    return AnalysisPhase(phase) if isinstance(phase, str) and phase in AnalysisPhase._value2member_map_ \
        else AnalysisPhase.PENDING


def is_terminated(doc: Mapping[str, Any]) -> bool:
    return bool((doc.get("spec") or {}).get("terminate"))


def pick_named(docs: Sequence[Mapping[str, Any]], *, base: str, sep: str, recorded: str | None,
               live: Callable[[Mapping[str, Any]], bool]) -> tuple[Mapping[str, Any] | None, str]:
    """Of the objects named `base` or `base<sep>N` (a run or an Experiment and its retries): the
    recorded one (None when it is gone, to be created again under its name), else the newest
    `live` one, else None with the next free name."""
    named = ((str((d.get("metadata") or {}).get("name")), d) for d in docs)
    family = {name: d for name, d in named if _suffix(name, base, sep) is not None}
    if recorded is not None and _suffix(recorded, base, sep) is not None:
        return family.get(recorded), recorded
    alive = [n for n, d in family.items() if live(d)]
    if alive:
        newest = max(alive, key=lambda n: _suffix(n, base, sep) or 0)
        return family[newest], newest
    if not family:
        return None, base
    return None, f"{base}{sep}{max(_suffix(n, base, sep) or 0 for n in family) + 1}"


def pick_run(runs: Sequence[Mapping[str, Any]], *, base: str, recorded: str | None,
             again: bool = False) -> tuple[Mapping[str, Any] | None, str]:
    """(the run to follow, or None) and the name to create when it is None; `again`: a human
    resumed an inconclusive run, so a finished bad one is not adopted."""
    return pick_named(runs, base=base, sep=".", recorded=recorded,
                      live=lambda r: not is_terminated(r) and not (again and run_phase(r) in BAD_PHASES))


def verdict(doc: Mapping[str, Any]) -> str:
    """The run's message, or one built from its metric results (metric, phase, last value)."""
    status = doc.get("status") or {}
    if status.get("message"):
        return str(status["message"])
    phase = run_phase(doc)
    for result in status.get("metricResults") or []:
        if result.get("phase") == phase:
            last = (result.get("measurements") or [{}])[-1]
            detail = f": {result['message']}" if result.get("message") else ""
            value = f" (last value {last['value']})" if last.get("value") is not None else ""
            return f'Metric "{result.get("name")}" assessed {phase}{detail}{value}'
    return f"AnalysisRun phase {phase}"


def explained(doc: Mapping[str, Any]) -> str:
    """The verdict the Rollout tells (abort reason, its AnalysisRun event): Argo's head of the run's
    message, then analysis.explain's metric, value, condition, counts and query; else `verdict`."""
    return explain.summary(doc) or verdict(doc)


@dataclass(frozen=True)
class RunRequest:
    kind: str  # STEP_RUN | BACKGROUND_RUN
    name: str
    analysis: RolloutAnalysis
    step_index: int | None
    pod_hash: str
    stable_hash: str | None
    revision: int


def build_run_doc(rollout: Rollout, request: RunRequest, templates: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The AnalysisRun document (raises analysis.build.SpecError / analysis.args.ArgError)."""
    resolve = template_resolver(templates)

    meta = rollout.metadata
    analysis = request.analysis
    selector = (rollout.spec.selector.match_labels if rollout.spec.selector else None) or {}
    labels = {**selector, HASH_LABEL: request.pod_hash, "rollout-type": request.kind}
    if request.step_index is not None:
        labels["step-index"] = str(request.step_index)
    instance = (meta.labels or {}).get(INSTANCE_LABEL)
    if instance:
        labels[INSTANCE_LABEL] = instance
    extra = analysis.analysis_run_metadata
    args = arguments.resolve_rollout_args(analysis.args, rollout.dump(), stable_hash=request.stable_hash,
                                          latest_hash=request.pod_hash)
    run = build_run(
        name=request.name, namespace=str(meta.namespace or "default"),
        templates=[resolve(ref) for ref in analysis.templates or []], args=args,
        labels={**((extra.labels if extra else None) or {}), **labels},
        annotations={**((extra.annotations if extra else None) or {}), REVISION: str(request.revision)},
        owner=owner_reference(rollout),
        dry_run=analysis.dry_run or (), measurement_retention=analysis.measurement_retention or (),
        resolve_ref=resolve,
    )
    return run.model_dump(mode="json", by_alias=True, exclude_none=True)


# ---------------------------------------------------------------- one plan pass


def follow(p: Pass) -> None:
    """Create, read and act on the step and background runs of this pass."""
    st = p.st
    cs = st.canary
    assert cs is not None
    if p.aborted:
        return  # the failed run stays in status, for `get rollout`, until a retry
    if p.promoted or st.promote_full:
        transitions.forget_runs(p)
        return
    resumed = bool(st.controller_pause) and not st.pause_conditions
    background = p.canary.analysis
    if background and background.templates and p.index >= (background.starting_step or 0):
        cs.current_background_analysis_run_status = _follow(
            p, BACKGROUND_RUN, background, None, cs.current_background_analysis_run_status, resumed)
    else:
        cs.current_background_analysis_run_status = None
    step = p.step
    if step is not None and step.analysis is not None and not p.aborted and not p.ro.spec.paused:
        cs.current_step_analysis_run_status = _follow(
            p, STEP_RUN, step.analysis, p.index, cs.current_step_analysis_run_status, resumed)
    else:
        cs.current_step_analysis_run_status = None


def _follow(p: Pass, kind: str, analysis: RolloutAnalysis, step_index: int | None, recorded: RunStatusRef | None,
            resumed: bool) -> RunStatusRef:
    base = run_base_name(str(p.ro.metadata.name), p.pod_hash, p.revision, step_index)
    known = recorded.name if recorded else None
    again = bool(recorded and resumed and recorded.status == AnalysisPhase.INCONCLUSIVE)
    if again:
        known = None  # a human resumed the inconclusive pause: measure again
    doc, name = pick_run(p.runs, base=base, recorded=known, again=again)
    if doc is None:
        request = RunRequest(kind, name, analysis, step_index, p.pod_hash, p.st.stable_rs, p.revision)
        try:
            run = build_run_doc(p.ro, request, p.observed.templates)
        except (SpecError, ArgError) as err:
            where = "spec.strategy.canary." + ("analysis" if step_index is None else f"steps[{step_index}].analysis")
            raise RunSpecError(Problem(where, str(err), "fix the AnalysisTemplate reference or the args")) from err
        p.actions.append(CreateAnalysisRun(run))
        p.event(NORMAL, "AnalysisRunCreated", f"Created {kind} AnalysisRun '{name}'")
        return RunStatusRef(name=name, status=AnalysisPhase.PENDING.value)
    phase = run_phase(doc)
    message = verdict(doc) if phase.completed and phase is not AnalysisPhase.SUCCESSFUL else None
    why = explained(doc) if message is not None else None
    if phase.completed and (recorded is None or (recorded.name, recorded.status) != (name, phase.value)):
        p.event(WARNING if phase in BAD_PHASES else NORMAL, f"AnalysisRun{phase.value}",
                f"{kind} AnalysisRun '{name}' {phase.value}" + (f": {why}" if why else ""))
    if phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR):
        which = "Step-based" if kind == STEP_RUN else "Background"
        transitions.abort(p, f"{which} analysis phase {phase.value}: {why}", cause=transitions.AbortCause.ANALYSIS)
    elif phase is AnalysisPhase.INCONCLUSIVE and not resumed and not any(
            c.reason == INCONCLUSIVE_PAUSE for c in p.st.pause_conditions or []):
        p.st.pause_conditions = [*(p.st.pause_conditions or []),
                                 PauseCondition(reason=INCONCLUSIVE_PAUSE, start_time=p.now)]
        p.st.controller_pause = True
        p.event(NORMAL, "RolloutPaused", f"Rollout is paused ({INCONCLUSIVE_PAUSE})")
    elif phase is AnalysisPhase.RUNNING and (waiting := assess.waiting_for_data(doc)):
        p.held = f"{kind} AnalysisRun '{name}' is {waiting}"
    elif phase is AnalysisPhase.SUCCESSFUL and kind == STEP_RUN:
        if (lacking := evidence.missing(doc)) is None:
            p.step_done = True
        else:
            transitions.abort(p, f"Step-based analysis ended without evidence: {lacking}",
                              cause=transitions.AbortCause.ANALYSIS)
    return RunStatusRef(name=name, status=phase.value, message=message)


def gate_promotion(p: Pass) -> None:
    """Past the last step, the background run must be evidence before promotion (analysis.evidence):
    hold while it is still measuring, abort when it ended without evidence. promote --full skips it.
    The entering round holds too: it routes past the steps, and without the hold its weight cap
    would be 100 (all traffic to an unproven canary for one pass; found by the kill storm)."""
    cs = p.st.canary
    background = p.canary.analysis
    if (p.halted or p.st.promote_full or p.index < len(p.steps) or cs is None
            or not (background and background.templates)):
        return
    ref = cs.current_background_analysis_run_status
    doc = next((r for r in p.runs if ref is not None and r["metadata"]["name"] == ref.name), None)
    if doc is None:
        p.held = "waiting for the background AnalysisRun to start"
        return
    lacking = evidence.missing(doc)
    if lacking is None:
        return
    if run_phase(doc).completed:
        transitions.abort(p, f"Background analysis ended without evidence: {lacking}",
                          cause=transitions.AbortCause.ANALYSIS)
    else:
        p.held = p.held or f"waiting for background analysis evidence: {lacking}"


def followed(p: Pass) -> set[str]:
    """The runs the status follows: the canary's step and background runs, blueGreen's pre/post runs."""
    cs, bg = p.st.canary, p.st.blue_green
    refs = [cs.current_step_analysis_run_status, cs.current_background_analysis_run_status] if cs else []
    refs += [bg.pre_promotion_analysis_run_status, bg.post_promotion_analysis_run_status] if bg else []
    return {ref.name for ref in refs if ref}


def adoptable(p: Pass) -> set[str]:
    """The live runs the canary's next round adopts where this round leaves it (its step move
    included): the run of the analysis step reached and the background run, of this revision,
    when the status does not name one of its family. A controller killed between its create
    and the status write naming the run leaves exactly that; found by the kill storm."""
    cs = p.st.canary
    if p.aborted or p.promoted or p.st.promote_full or cs is None:
        return set()
    name, found = str(p.ro.metadata.name), set()
    background, step = p.canary.analysis, p.step
    families = []
    if background and background.templates and p.index >= (background.starting_step or 0):
        families.append((run_base_name(name, p.pod_hash, p.revision, None), cs.current_background_analysis_run_status))
    if step is not None and step.analysis is not None and not p.ro.spec.paused:
        families.append((run_base_name(name, p.pod_hash, p.revision, p.index), cs.current_step_analysis_run_status))
    for base, ref in families:
        if ref is not None and _suffix(ref.name, base, ".") is not None:
            continue  # the status names the run: followed() has it
        doc, _ = pick_run(p.runs, base=base, recorded=None)
        if doc is not None:
            found.add(str(doc["metadata"]["name"]))
    return found


def terminate_unwanted(p: Pass) -> None:
    wanted = followed(p) | adoptable(p) if not p.aborted and not p.promoted else set()
    for doc in p.runs:
        if is_terminated(doc):
            continue
        labels = (doc.get("metadata") or {}).get("labels") or {}
        # so that a retry measures again; a finished run only once the abort is on record (status
        # observed): were the abort's status write lost, that run's verdict is adopted and aborts again
        aborted_here = (p.aborted and labels.get(HASH_LABEL) == p.pod_hash
                        and (_abort_on_record(p) or not run_phase(doc).completed))
        if aborted_here or (not run_phase(doc).completed and doc["metadata"]["name"] not in wanted):
            p.actions.append(TerminateAnalysisRun(str(doc["metadata"]["name"])))


def _abort_on_record(p: Pass) -> bool:
    """The observed status holds this revision's abort (not an earlier revision's, still there when
    this pass moved to a new one and aborted it at once)."""
    return bool(p.old.abort) and p.old.current_pod_hash == p.pod_hash


def collect(p: Pass) -> None:
    """Delete the completed runs beyond the history limits (see the rules)."""
    limits = p.ro.spec.analysis
    keep = {
        True: _limit(limits.successful_run_history_limit if limits else None),
        False: _limit(limits.unsuccessful_run_history_limit if limits else None),
    }
    kept_in_status = followed(p)
    done = [doc for doc in p.runs if run_phase(doc).completed and doc["metadata"]["name"] not in kept_in_status]
    kept = {True: 0, False: 0}
    for doc in sorted(done, key=_age, reverse=True):  # newest first: those are kept
        successful = run_phase(doc) is AnalysisPhase.SUCCESSFUL
        if kept[successful] < keep[successful]:
            kept[successful] += 1
        else:
            p.actions.append(DeleteAnalysisRun(str(doc["metadata"]["name"])))


def _limit(value: int | None) -> int:
    return DEFAULT_RUN_HISTORY if value is None else max(value, 0)


def _age(doc: Mapping[str, Any]) -> tuple[str, int, list[int | str]]:
    """Older sorts first: creationTimestamp, revision, then the name with numbers as numbers (`.9` < `.10`)."""
    meta = doc.get("metadata") or {}
    revision = str((meta.get("annotations") or {}).get(REVISION) or "0")
    parts = re.split(r"(\d+)", str(meta.get("name")))
    return (str(meta.get("creationTimestamp") or ""), int(revision) if revision.isdigit() else 0,
            [int(part) if index % 2 else part for index, part in enumerate(parts)])
