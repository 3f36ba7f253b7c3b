"""Semantic checks of a Rollout and of the objects it references.

Used by `rollouts lint` (offline, on files) and by the controller (to set the
InvalidSpec condition): both get the same `Problem(path, message, fix)` list. An
Experiment object: `validate_experiment` (rollouts.plan.experiment_checks).

Rules (Argo's `pkg/apis/rollouts/validation`, argo-rollouts.md §1-2):
- The spec: 0 <= replicas <= int32 (over MANY_REPLICAS is a WARNING: a typo starts
  that many pods); a selector (not empty) that matches the template labels;
  exactly one of template / workloadRef (workloadRef is an ERROR: Argo runs it, this
  controller does not, and the plan needs the pod template inline); progressDeadlineSeconds > minReadySeconds.
- The strategy: exactly one of canary / blueGreen.
  blueGreen (Argo's ValidateRolloutStrategyBlueGreen): activeService is required and
  differs from previewService; both Services exist when the Services are known;
  counts and delays are not negative; scaleDownDelayRevisionLimit <= revisionHistoryLimit;
  antiAffinity sets exactly one strategy (preferred weight 1..100); a field Argo runs and
  this controller does not (`BLUE_GREEN_NOT_RUN`) is an ERROR; pre/postPromotionAnalysis
  are checked as analysis steps are (templates exist, args, metrics end on their own).
  Lifecycle webhooks: rollouts.plan.hook_checks (blueGreen `webhooks` is an ERROR: canary only).
  canaryService != stableService; maxSurge and maxUnavailable not both 0; scaleDownDelaySeconds, dynamicStableScale and
  setCanaryScale only with trafficRouting; Istio host routing needs both Services.
- Steps: exactly one kind each, but a setCanaryScale goes with any one other kind (Argo
  forbids combining only setWeight, pause, experiment and analysis); a kind Argo runs and this controller does not
  (setHeaderRoute, setMirrorRoute, plugin) is an ERROR
  (`problems.not_run_problem`); setWeight 0..100, or 0..maxTrafficWeight when the router
  has one (Argo: "SetWeight needs to be between 0 and %d" with the max traffic weight);
  pause durations parse (no `d`);
  analysis steps name templates, and every metric of a step template must end on
  its own (an interval with no count "runs indefinitely"); experiment steps: rollouts.plan.experiment_checks.
- References (`References`): a mapping that is None means "not known", and its
  checks are skipped (lint given no AnalysisTemplate at all); a given mapping is
  authoritative: a name not in it is "not found". Templates are flattened through
  their nested `templates`; required args must be supplied; metric names must be
  unique across them; a referenced template's own errors (a condition that does not
  parse, ...) are the Rollout's errors too, unless `template_errors` is off (lint
  reports them on the template). VirtualService routes named in the Rollout must exist and
  carry the canary and stable destinations; DestinationRule subsets must exist.
  A background metric that cannot fail before the steps end is a WARNING
  (`rollouts.plan.timing_checks`).
- Unknown fields: see `rollouts.spec.problems.field_problems`. Sizes and metadata the API
  refuses (annotations, label values, huge args): `rollouts.plan.size_checks`.
- Pure: no file, network or cluster I/O; never raises for bad input.
Size: over 300 lines because Argo's validation of a Rollout, field group by field group,
  in the order Argo checks them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from analysis import checks as template_checks
from analysis.checks import duration_problem, runs_indefinitely
from analysis.model import AnalysisRun, AnalysisTemplate, TemplateRef
from rollouts.plan.hook_checks import webhook_problems
from rollouts.plan.size_checks import size_problems
from rollouts.plan.template_checks import validate_template
from rollouts.plan.timing_checks import background_timing_problems
from rollouts.spec.model import (
    AntiAffinity,
    BlueGreenStrategy,
    CanaryStep,
    CanaryStrategy,
    Rollout,
    RolloutAnalysis,
    RolloutStrategy,
    StepKind,
)  # fmt: skip
from rollouts.spec.problems import (
    ARGO_ONLY_FIELDS,
    Problem,
    Severity,
    did_you_mean,
    field_problems,
    join,
    not_run_problem,
    warning,
)  # fmt: skip
from rollouts.traffic.checks import traffic_problems

if TYPE_CHECKING:  # at run time imported where used: the Experiment models only for files that hold them
    from rollouts.spec.experiment import Experiment, ExperimentAnalysis

__all__ = [
    "ARGO_ONLY_FIELDS", "Problem", "References", "Severity", "errors",
    "validate_analysis_run", "validate_experiment", "validate_rollout", "validate_template",
]  # fmt: skip

CANARY = "spec.strategy.canary"
BLUE_GREEN = "spec.strategy.blueGreen"
_LEAVE_TO_ARGO = "or leave this Rollout to Argo Rollouts with its own controller-instance-id label"
# blueGreen fields Argo runs and this controller does not: wire name -> (what would differ, the fix).
BLUE_GREEN_NOT_RUN = {
    "activeMetadata": ("active pods would not get these labels and annotations",
                       f"select active pods by rollouts-pod-template-hash, {_LEAVE_TO_ARGO}"),
    "previewMetadata": ("preview pods would not get these labels and annotations",
                        f"select preview pods by rollouts-pod-template-hash, {_LEAVE_TO_ARGO}"),
    "maxUnavailable": ("the old ReplicaSet would not be scaled down within maxUnavailable",
                       f"remove it, {_LEAVE_TO_ARGO}"),
    "webhooks": ("lifecycle webhooks are called for the canary strategy only",
                 "move them to spec.strategy.canary.webhooks (a canary with steps), or remove them"),
}
INT32_MAX = 2**31 - 1
MANY_REPLICAS = 10_000  # a warning: more pods than any Rollout we know of runs
TEMPLATE_REQUIRED = Problem("spec.template", "is required", "add a pod template, or a workloadRef")
WORKLOAD_REF_NOT_RUN = Problem("spec.workloadRef", "workloadRef is not run by this controller",
                               "inline the workload's pod template as spec.template, or leave this Rollout to "
                               "Argo Rollouts with its own controller-instance-id label")
_STEP_KINDS = "setWeight, pause, analysis, setCanaryScale, experiment"
_EXCLUSIVE_KINDS = frozenset({"setWeight", "pause", "experiment", "analysis"})  # Argo's hasMultipleStepsType


@dataclass(frozen=True)
class References:
    """Objects a Rollout refers to, by name; None = not known (checks skipped)."""

    templates: Mapping[str, AnalysisTemplate] | None = None
    cluster_templates: Mapping[str, AnalysisTemplate] | None = None
    virtual_services: Mapping[str, Mapping[str, Any]] | None = None
    destination_rules: Mapping[str, Mapping[str, Any]] | None = None
    services: Collection[str] | None = None
    # Report the referenced templates' own errors on the Rollout too (the controller: a
    # broken template must stop the update before any traffic moves). Lint reports them
    # on the template itself and turns this off.
    template_errors: bool = True


def errors(problems: Sequence[Problem]) -> list[Problem]:
    return [p for p in problems if p.is_error]


def validate_rollout(rollout: Rollout, refs: References | None = None) -> list[Problem]:
    """Every problem of `rollout`, errors and warnings, in a stable order."""
    refs = refs or References()
    found = [] if rollout.metadata.name else [Problem("metadata.name", "is required", "add metadata.name")]
    found.extend(field_problems(rollout))
    found.extend(_spec_problems(rollout))
    strategy = rollout.spec.strategy
    found.extend(strategy_problems(strategy))
    if strategy.blue_green is not None and strategy.canary is None:
        found.extend(_blue_green_problems(strategy.blue_green, rollout, refs))
        found.extend(_analysis_ref_problems(_blue_green_blocks(strategy.blue_green), refs))
    if strategy.canary is not None:
        found.extend(_canary_problems(strategy.canary))
        found.extend(traffic_problems(strategy.canary, virtual_services=refs.virtual_services,
                                      destination_rules=refs.destination_rules, services=refs.services))
        found.extend(_analysis_ref_problems(_analysis_blocks(strategy.canary), refs))
        found.extend(_experiment_step_problems(strategy.canary, refs))
        found.extend(_background_timing(strategy.canary, refs))
    found.extend(size_problems(rollout, [(path, block) for path, block, _ in (
        _analysis_blocks(strategy.canary) if strategy.canary is not None else [])]))
    return found


def validate_experiment(ex: Experiment, refs: References | None = None) -> list[Problem]:
    """Every problem of an Experiment object (rollouts.plan.experiment_checks; unknown fields as a Rollout's)."""
    from rollouts.plan import experiment_checks  # lazily: lint of a file without Experiments skips their models

    refs = refs or References()

    def pool(analysis: ExperimentAnalysis) -> tuple[str, Mapping[str, AnalysisTemplate] | None]:
        return _lookup(TemplateRef(template_name=analysis.template_name, cluster_scope=analysis.cluster_scope), refs)

    return [*field_problems(ex), *experiment_checks.experiment_problems(ex, pool=pool)]


def strategy_problems(strategy: RolloutStrategy) -> list[Problem]:
    """Exactly one strategy, and one this controller runs (the plan checks the same)."""
    if strategy.canary is None and strategy.blue_green is None:
        return [Problem("spec.strategy", "no strategy is set", "add strategy.canary with its steps, or blueGreen")]
    if strategy.canary is not None and strategy.blue_green is not None:
        return [Problem("spec.strategy", "canary and blueGreen are both set", "keep only one of them")]
    if strategy.blue_green is not None:  # a field the plan would pass over: an error, never passed over
        return blue_green_not_run(strategy.blue_green)
    return []


def blue_green_not_run(blue_green: BlueGreenStrategy) -> list[Problem]:
    """The blueGreen fields this controller does not run (`BLUE_GREEN_NOT_RUN`), each an ERROR."""
    wire = blue_green.dump()
    return [Problem(f"{BLUE_GREEN}.{alias}", f"{alias} is not run by this controller: {differs}", fix)
            for alias, (differs, fix) in BLUE_GREEN_NOT_RUN.items() if wire.get(alias) is not None]


def _blue_green_problems(bg: BlueGreenStrategy, rollout: Rollout, refs: References) -> list[Problem]:
    found: list[Problem] = []
    if not bg.active_service:
        found.append(Problem(f"{BLUE_GREEN}.activeService", "is required",
                             "name the Service that sends production traffic to the active pods"))
    elif bg.active_service == bg.preview_service:
        found.append(Problem(f"{BLUE_GREEN}.activeService", f"activeService and previewService are both "
                             f"{bg.active_service!r}", "use two different Services"))
    for alias, name in (("activeService", bg.active_service), ("previewService", bg.preview_service)):
        if name and refs.services is not None and name not in refs.services:
            guess = did_you_mean(name, list(refs.services))
            found.append(Problem(f"{BLUE_GREEN}.{alias}", f"Service {name!r} not found",
                                 f"did you mean {guess}?" if guess else "create the Service, or fix the name"))
    for alias, value in (("previewReplicaCount", bg.preview_replica_count),
                         ("autoPromotionSeconds", bg.auto_promotion_seconds),
                         ("scaleDownDelaySeconds", bg.scale_down_delay_seconds),
                         ("scaleDownDelayRevisionLimit", bg.scale_down_delay_revision_limit),
                         ("abortScaleDownDelaySeconds", bg.abort_scale_down_delay_seconds)):  # fmt: skip
        if value is not None and value < 0:
            found.append(Problem(f"{BLUE_GREEN}.{alias}", f"{value} is negative", "use 0 or more"))
    history = rollout.spec.revision_history_limit
    history = 10 if history is None else history
    limit = bg.scale_down_delay_revision_limit
    if limit is not None and limit > history:
        found.append(Problem(f"{BLUE_GREEN}.scaleDownDelayRevisionLimit", f"{limit} is larger than "
                             f"revisionHistoryLimit {history}", "use at most revisionHistoryLimit"))
    found.extend(_anti_affinity_problems(bg.anti_affinity, f"{BLUE_GREEN}.antiAffinity"))
    return found


def _anti_affinity_problems(anti: AntiAffinity | None, path: str) -> list[Problem]:
    if anti is None:
        return []
    preferred = anti.preferred_during_scheduling_ignored_during_execution
    required = anti.required_during_scheduling_ignored_during_execution
    if (preferred is None) == (required is None):
        return [Problem(path, "antiAffinity must set exactly one strategy",
                        "keep one of preferredDuringSchedulingIgnoredDuringExecution, "
                        "requiredDuringSchedulingIgnoredDuringExecution")]
    if preferred is not None and not 1 <= preferred.weight <= 100:
        return [Problem(f"{path}.preferredDuringSchedulingIgnoredDuringExecution.weight",
                        f"{preferred.weight} is not between 1 and 100", "use a weight from 1 to 100")]
    return []


def validate_analysis_run(run: AnalysisRun) -> list[Problem]:
    found = [] if (run.metadata.name or run.metadata.generate_name) else [
        Problem("metadata.name", "is required", "add metadata.name or metadata.generateName")
    ]
    found.extend(field_problems(run))
    found.extend(template_checks.spec_problems(run.spec))
    return found


# ---------------------------------------------------------------- spec


def _spec_problems(rollout: Rollout) -> list[Problem]:
    spec, found = rollout.spec, []
    if spec.replicas is not None and spec.replicas < 0:
        found.append(Problem("spec.replicas", f"{spec.replicas} is negative", "use 0 or more"))
    elif spec.replicas is not None and spec.replicas > INT32_MAX:
        found.append(Problem("spec.replicas", f"{spec.replicas} does not fit Argo's int32", f"use at most {INT32_MAX}"))
    elif spec.replicas is not None and spec.replicas > MANY_REPLICAS:
        found.append(warning("spec.replicas", f"{spec.replicas} replicas is more than {MANY_REPLICAS}",
                             "check for a typo: every one of them is a pod the canary starts"))
    if spec.template is not None and spec.workload_ref is not None:
        found.append(Problem("spec.template", "template and workloadRef are both set",
                             "remove the template: the pods come from workloadRef"))
    elif spec.template is None and spec.workload_ref is None:
        found.append(TEMPLATE_REQUIRED)
    elif spec.workload_ref is not None:  # Argo resolves it; the plan needs the template inline
        found.append(WORKLOAD_REF_NOT_RUN)
    selector = spec.selector
    if selector is None:
        if spec.workload_ref is None:
            found.append(Problem("spec.selector", "is required", "add selector.matchLabels matching the pod labels"))
    elif not (selector.match_labels or selector.match_expressions):
        found.append(Problem("spec.selector", "the selector is empty", "add matchLabels matching the pod labels"))
    elif spec.template is not None:
        meta = spec.template.get("metadata")
        labels = meta.get("labels") if isinstance(meta, Mapping) else None
        labels = labels if isinstance(labels, Mapping) else {}
        for key, value in (selector.match_labels or {}).items():
            if labels.get(key) != value:
                have = f"{key}={labels[key]}" if key in labels else f"no {key} label"
                found.append(Problem(f"spec.selector.matchLabels.{key}",
                                     f"selector {key}={value} does not match the template labels ({have})",
                                     "make spec.template.metadata.labels carry every selector label"))
    min_ready = spec.min_ready_seconds or 0
    deadline = spec.progress_deadline_seconds if spec.progress_deadline_seconds is not None else 600
    if min_ready < 0:
        found.append(Problem("spec.minReadySeconds", f"{min_ready} is negative", "use 0 or more"))
    if deadline <= min_ready:
        found.append(Problem("spec.progressDeadlineSeconds", f"{deadline} is not greater than minReadySeconds "
                             f"{min_ready}", "raise progressDeadlineSeconds above minReadySeconds"))
    if spec.revision_history_limit is not None and spec.revision_history_limit < 0:
        found.append(Problem("spec.revisionHistoryLimit", f"{spec.revision_history_limit} is negative",
                             "use 0 or more"))
    return found


# ---------------------------------------------------------------- canary and steps


def _surge_value(value: int | str | None, default: int, path: str, found: list[Problem]) -> int:
    if value is None:
        return default
    if isinstance(value, int):
        return value
    text = value.strip()
    number = text[:-1] if text.endswith("%") else text
    if not number.isdigit():
        found.append(Problem(path, f"{value!r} is not a count or a percentage",
                             "use a number like 1 or a percentage like 25%"))
        return default
    return int(number)


def _canary_problems(canary: CanaryStrategy) -> list[Problem]:
    found: list[Problem] = []
    routed = canary.traffic_routing is not None
    max_weight = (canary.traffic_routing.max_traffic_weight if canary.traffic_routing else None) or 100
    surge = _surge_value(canary.max_surge, 25, f"{CANARY}.maxSurge", found)
    unavailable = _surge_value(canary.max_unavailable, 25, f"{CANARY}.maxUnavailable", found)
    if surge == 0 and unavailable == 0:
        found.append(Problem(f"{CANARY}.maxSurge", "maxSurge and maxUnavailable are both 0, so no pod can be replaced",
                             "set one of them above 0"))
    if canary.canary_service and canary.canary_service == canary.stable_service:
        found.append(Problem(f"{CANARY}.stableService", f"canaryService and stableService are both "
                             f"{canary.stable_service!r}", "use two different Services"))
    if not routed:
        for alias, value in (("scaleDownDelaySeconds", canary.scale_down_delay_seconds),
                             ("dynamicStableScale", canary.dynamic_stable_scale or None)):  # fmt: skip
            if value is not None:
                found.append(Problem(f"{CANARY}.{alias}", f"{alias} only works with trafficRouting",
                                     "remove it, or add trafficRouting"))
    elif canary.scale_down_delay_seconds is not None and canary.dynamic_stable_scale:
        found.append(Problem(f"{CANARY}.dynamicStableScale", "dynamicStableScale cannot be combined with "
                             "scaleDownDelaySeconds", "remove one of them"))
    steps = canary.steps or []
    for index, step in enumerate(steps):
        found.extend(_step_problems(step, f"{CANARY}.steps[{index}]", routed=routed, max_weight=max_weight))
    background = canary.analysis
    if (background is not None and background.starting_step is not None
            and not 0 <= background.starting_step <= len(steps)):
        found.append(Problem(f"{CANARY}.analysis.startingStep", f"{background.starting_step} is not a step index "
                             f"(there are {len(steps)} steps)", f"use a number from 0 to {len(steps)}"))
    found.extend(webhook_problems(canary))
    return found


def _step_problems(step: CanaryStep, path: str, *, routed: bool, max_weight: int = 100) -> list[Problem]:
    """Argo's hasMultipleStepsType: setWeight, pause, experiment and analysis exclude each
    other; setCanaryScale goes with any one of them (its rules are checked too)."""
    known = [k for k in step.kinds() if k in StepKind._value2member_map_]
    exclusive = [k for k in known if k in _EXCLUSIVE_KINDS]
    if len(exclusive) > 1:
        return [Problem(path, f"a step sets {' and '.join(exclusive)}", "split it into one step per kind")]
    if not known:
        return [] if step.model_extra else [Problem(path, "the step is empty", f"set one of {_STEP_KINDS}")]
    if (not_run := not_run_problem(step, path)) is not None:
        return [not_run]
    if step.kind is None:  # two kinds that are not run here together (setHeaderRoute with setMirrorRoute, ...)
        return [Problem(path, f"a step sets {' and '.join(known)}", "split it into one step per kind")]
    found = _kind_problems(step, path, step.kind, routed=routed, max_weight=max_weight)
    if step.kind is not StepKind.SET_CANARY_SCALE and step.set_canary_scale is not None:
        found += _kind_problems(step, path, StepKind.SET_CANARY_SCALE, routed=routed, max_weight=max_weight)
    return found


def _kind_problems(step: CanaryStep, path: str, kind: StepKind, *, routed: bool, max_weight: int) -> list[Problem]:
    where = join(path, kind.value)
    if kind is StepKind.SET_WEIGHT and not 0 <= (step.set_weight or 0) <= max_weight:
        if max_weight == 100:
            return [Problem(where, f"{step.set_weight} is not between 0 and 100",
                            "use a traffic percentage from 0 to 100")]
        return [Problem(where, f"{step.set_weight} is not between 0 and {max_weight}",
                        f"use a weight from 0 to trafficRouting.maxTrafficWeight ({max_weight})")]
    if kind is StepKind.PAUSE and step.pause is not None and step.pause.duration is not None:
        problem = duration_problem(step.pause.duration, join(where, "duration"))
        return [problem] if problem else []
    if kind is StepKind.ANALYSIS and step.analysis is not None and not step.analysis.templates:
        return [Problem(join(where, "templates"), "the analysis step names no templates",
                        "add templates: [{templateName: NAME}]")]
    if kind is StepKind.SET_CANARY_SCALE and step.set_canary_scale is not None:
        return _canary_scale_problems(step, where, routed=routed)
    return []


def _canary_scale_problems(step: CanaryStep, where: str, *, routed: bool) -> list[Problem]:
    scale = step.set_canary_scale
    assert scale is not None
    if not routed:
        return [Problem(where, "setCanaryScale only works with trafficRouting",
                        "remove the step, or add trafficRouting")]
    chosen = [a for a, v in (("weight", scale.weight), ("replicas", scale.replicas),
                             ("matchTrafficWeight", scale.match_traffic_weight)) if v is not None]  # fmt: skip
    if len(chosen) != 1:
        return [Problem(where, f"setCanaryScale sets {' and '.join(chosen) or 'nothing'}",
                        "set exactly one of weight, replicas, matchTrafficWeight")]
    if scale.weight is not None and not 0 <= scale.weight <= 100:
        return [Problem(join(where, "weight"), f"{scale.weight} is not between 0 and 100",
                        "use a percentage of replicas")]
    if scale.replicas is not None and scale.replicas < 0:
        return [Problem(join(where, "replicas"), f"{scale.replicas} is negative", "use 0 or more")]
    return []


# ---------------------------------------------------------------- analysis references


def _blue_green_blocks(bg: BlueGreenStrategy) -> list[tuple[str, RolloutAnalysis, bool]]:
    """pre/postPromotionAnalysis: run to their end before the switch / the promotion, as analysis steps are."""
    return [(f"{BLUE_GREEN}.{alias}", analysis, True) for alias, analysis in
            (("prePromotionAnalysis", bg.pre_promotion_analysis), ("postPromotionAnalysis", bg.post_promotion_analysis))
            if analysis is not None]


def _analysis_blocks(canary: CanaryStrategy) -> list[tuple[str, RolloutAnalysis, bool]]:
    blocks: list[tuple[str, RolloutAnalysis, bool]] = []
    if canary.analysis is not None:
        blocks.append((f"{CANARY}.analysis", canary.analysis, False))
    for index, step in enumerate(canary.steps or []):
        if step.analysis is not None and step.kind is StepKind.ANALYSIS:
            blocks.append((f"{CANARY}.steps[{index}].analysis", step.analysis, True))
    return blocks


def _lookup(ref: TemplateRef, refs: References) -> tuple[str, Mapping[str, AnalysisTemplate] | None]:
    if ref.cluster_scope:
        return "ClusterAnalysisTemplate", refs.cluster_templates
    return "AnalysisTemplate", refs.templates


def _resolve(ref: TemplateRef, refs: References, where: str, found: list[Problem],
             into: list[AnalysisTemplate], trail: tuple[str, ...] = ()) -> None:  # fmt: skip
    kind, pool = _lookup(ref, refs)
    if pool is None:
        return
    template = pool.get(ref.template_name)
    if template is None:
        guess = did_you_mean(ref.template_name, pool)
        inside = f" (included by {trail[-1]!r})" if trail else ""
        found.append(Problem(where, f"{kind} {ref.template_name!r}{inside} not found",
                             f"did you mean {guess}?" if guess
                             else f"create it, or use one of: {', '.join(sorted(pool)) or '(none)'}"))
        return
    if ref.template_name in trail or template in into:
        return
    into.append(template)
    for nested in template.spec.templates or []:
        _resolve(nested, refs, where, found, into, (*trail, ref.template_name))


def _analysis_ref_problems(blocks: list[tuple[str, RolloutAnalysis, bool]], refs: References) -> list[Problem]:
    found: list[Problem] = []
    for path, analysis, is_step in blocks:
        for index, arg in enumerate(analysis.args or []):
            if arg.value is None and arg.value_from is None:
                found.append(Problem(join(join(path, "args"), index), f"arg {arg.name!r} has no value",
                                     "set value or valueFrom"))
        supplied = {arg.name for arg in analysis.args or []}
        for index, ref in enumerate(analysis.templates or []):
            where = join(join(path, "templates"), index)
            if not ref.template_name:
                found.append(Problem(join(where, "templateName"), "is empty", "name an AnalysisTemplate"))
                continue
            templates: list[AnalysisTemplate] = []
            _resolve(ref, refs, join(where, "templateName"), found, templates)
            for template in templates:
                name = template.metadata.name
                if refs.template_errors:
                    found.extend(Problem(join(where, "templateName"), f"{template.kind} {name!r} is invalid: "
                                         f"{problem.path}: {problem.message}", problem.fix)
                                 for problem in validate_template(template) if problem.is_error)
                for required in template_checks.required_args(template):
                    if required not in supplied:
                        found.append(Problem(join(path, "args"), f"{template.kind} {name!r} requires arg {required!r}",
                                             f"add {{name: {required}, value: ...}} under args"))
                for metric in template.spec.metrics if is_step else []:
                    if runs_indefinitely(metric):
                        found.append(Problem(where, f"{template.kind} {name!r} has metric {metric.name!r} which runs "
                                             f"indefinitely (interval {metric.interval} with no count)",
                                             "set count on the metric, or use the template for background analysis"))
        found.extend(_duplicate_metric_problems(path, analysis, refs))
    return found


def _experiment_step_problems(canary: CanaryStrategy, refs: References) -> list[Problem]:
    def pool(analysis: ExperimentAnalysis) -> tuple[str, Mapping[str, AnalysisTemplate] | None]:
        return _lookup(TemplateRef(template_name=analysis.template_name, cluster_scope=analysis.cluster_scope), refs)

    steps = [(index, step.experiment) for index, step in enumerate(canary.steps or [])
             if step.experiment is not None and step.kind is StepKind.EXPERIMENT]
    if not steps:
        return []
    from rollouts.plan import experiment_checks  # lazily: only a Rollout with experiment steps needs their models

    return [problem for index, experiment in steps
            for problem in experiment_checks.step_problems(experiment, f"{CANARY}.steps[{index}].experiment",
                                                           pool=pool)]


def _background_timing(canary: CanaryStrategy, refs: References) -> list[Problem]:
    """rollouts.plan.timing_checks on the background templates; a ref not known or not found is None."""
    resolved: list[list[AnalysisTemplate] | None] = []
    background = (canary.analysis.templates if canary.analysis else None) or []
    for ref in background:
        missing: list[Problem] = []
        templates: list[AnalysisTemplate] = []
        _resolve(ref, refs, "", missing, templates)
        resolved.append(None if missing or _lookup(ref, refs)[1] is None else templates)
    return background_timing_problems(canary, resolved, path=f"{CANARY}.analysis")


def _duplicate_metric_problems(path: str, analysis: RolloutAnalysis, refs: References) -> list[Problem]:
    owners: dict[str, str] = {}
    found = []
    templates: list[AnalysisTemplate] = []
    for ref in analysis.templates or []:
        _resolve(ref, refs, "", [], templates)
    for template in templates:
        for metric in template.spec.metrics:
            first = owners.setdefault(metric.name, template.metadata.name or "")
            if first != template.metadata.name:
                found.append(Problem(join(path, "templates"), f"metric {metric.name!r} is defined by both {first!r} "
                                     f"and {template.metadata.name!r}", "rename one of the metrics"))
    return found
