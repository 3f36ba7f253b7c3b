"""The checks of an Experiment and of a canary experiment step: one Problem list for lint and the controller.

Rules (Argo's `utils/conditions/experiments.go` VerifyExperimentSpec, `pkg/apis/rollouts/validation`):
- An Experiment: at least one template; every template named, names unique; a selector
  that is not empty and matches the template's labels; minReadySeconds below
  progressDeadlineSeconds (default 600); `duration` parses; analyses named (names unique)
  and naming a templateName; every arg has a value.
- A canary experiment step: templates named and unique, `specRef` is `stable` or `canary`;
  `duration` parses; analyses named, unique, with a templateName, every arg with a value or
  valueFrom; with known templates (`References`), each analysis's template exists and its
  required args are supplied.
- Not run here, so an ERROR with its fix, never passed over: a template `weight` (traffic
  to experiment pods needs the experiment Services in the VirtualService, which this
  controller does not write). A template `service` is run (rollouts.plan.experiment).
- Pure: never raises for bad input (a step that does not load gives its schema problems).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from analysis import checks as template_checks
from analysis.checks import duration_problem
from analysis.model import AnalysisTemplate
from rollouts.spec.experiment import Experiment, ExperimentAnalysis, ExperimentStep
from rollouts.spec.problems import Problem, from_validation_error, join

__all__ = ["experiment_problems", "load_step", "step_problems"]

DEFAULT_DEADLINE = 600
SPEC_REFS = ("stable", "canary")
_NOT_RUN_FIX = "remove it, or leave this Rollout to Argo Rollouts with its own controller-instance-id label"
TemplatePool = Callable[[ExperimentAnalysis], tuple[str, Mapping[str, AnalysisTemplate] | None]]


def load_step(raw: Mapping[str, Any], path: str) -> tuple[ExperimentStep | None, list[Problem]]:
    """The step model, or None with the schema's problems at their wire paths."""
    try:
        return ExperimentStep.load(raw), []
    except ValidationError as err:
        return None, [Problem(join(path, p.path) if p.path else path, p.message, p.fix)
                      for p in from_validation_error(err)]


def _not_run(path: str, what: str, template: str, value: Any) -> Problem | None:
    if value is None:
        return None
    field = path.rsplit(".", 1)[-1]
    return Problem(path, f"template {template!r}: {field} ({what}) is not run by this controller", _NOT_RUN_FIX)


def _not_run_fields(where: str, template: str, weight: int | None) -> list[Problem]:
    problem = _not_run(join(where, "weight"), "traffic to experiment pods", template, weight)
    return [] if problem is None else [problem]


def _names(items: Sequence[Any], path: str, noun: str) -> list[Problem]:
    found, seen = [], set()
    for index, item in enumerate(items):
        name = getattr(item, "name", "")
        if not name:
            found.append(Problem(join(join(path, index), "name"), "is required", f"name the {noun}"))
        elif name in seen:
            found.append(Problem(join(join(path, index), "name"), f"{noun} name {name!r} is repeated",
                                 f"give every {noun} its own name"))
        seen.add(name)
    return found


def _analysis_problems(analyses: Sequence[ExperimentAnalysis], path: str, *,
                       pool: TemplatePool | None) -> list[Problem]:
    found = _names(analyses, path, "analysis")
    for index, analysis in enumerate(analyses):
        where = join(path, index)
        if not analysis.template_name:
            found.append(Problem(join(where, "templateName"), "is empty", "name an AnalysisTemplate"))
            continue
        for at, arg in enumerate(analysis.args or []):
            if arg.value is None and arg.value_from is None:
                found.append(Problem(join(join(where, "args"), at), f"arg {arg.name!r} has no value",
                                     "set value or valueFrom"))
        kind, templates = pool(analysis) if pool is not None else ("", None)
        if templates is None:
            continue
        template = templates.get(analysis.template_name)
        if template is None:
            found.append(Problem(join(where, "templateName"), f"{kind} {analysis.template_name!r} not found",
                                 f"create it, or use one of: {', '.join(sorted(templates)) or '(none)'}"))
            continue
        supplied = {arg.name for arg in analysis.args or []}
        for required in template_checks.required_args(template):
            if required not in supplied:
                found.append(Problem(join(where, "args"), f"{kind} {analysis.template_name!r} requires arg "
                                     f"{required!r}", f"add {{name: {required}, value: ...}} under args"))
    return found


def step_problems(raw: Mapping[str, Any], path: str, *, pool: TemplatePool | None = None) -> list[Problem]:
    """Every problem of a canary `experiment` step at `path` (`...steps[i].experiment`)."""
    step, found = load_step(raw, path)
    if step is None:
        return found
    if not step.templates:
        found.append(Problem(join(path, "templates"), "the experiment step has no templates",
                             "add templates: [{name: canary, specRef: canary}]"))
    found += _names(step.templates, join(path, "templates"), "template")
    for index, template in enumerate(step.templates):
        where = join(join(path, "templates"), index)
        if template.spec_ref not in SPEC_REFS:
            found.append(Problem(join(where, "specRef"), f"{template.spec_ref!r} is not stable or canary",
                                 "use specRef: stable or specRef: canary"))
        found += _not_run_fields(where, template.name, template.weight)
    if step.duration is not None and (problem := duration_problem(step.duration, join(path, "duration"))):
        found.append(problem)
    found += _analysis_problems(step.analyses or [], join(path, "analyses"), pool=pool)
    return found


def experiment_problems(ex: Experiment, *, pool: TemplatePool | None = None) -> list[Problem]:
    """Every problem of an Experiment object (lint and the Experiment controller)."""
    found = [] if (ex.metadata.name or ex.metadata.generate_name) else [
        Problem("metadata.name", "is required", "add metadata.name or metadata.generateName")]
    spec = ex.spec
    if not spec.templates:
        found.append(Problem("spec.templates", "the experiment has no templates", "add at least one template"))
    found += _names(spec.templates, "spec.templates", "template")
    deadline = spec.progress_deadline_seconds if spec.progress_deadline_seconds is not None else DEFAULT_DEADLINE
    for index, template in enumerate(spec.templates):
        where = join("spec.templates", index)
        selector = template.selector
        labels = (template.template.get("metadata") or {}).get("labels") if isinstance(
            template.template.get("metadata"), Mapping) else None
        labels = labels if isinstance(labels, Mapping) else {}
        if selector is None or not (selector.match_labels or selector.match_expressions):
            found.append(Problem(join(where, "selector"), "the selector is empty (it would select every pod)",
                                 "add matchLabels matching the template's labels"))
        else:
            for key, value in (selector.match_labels or {}).items():
                if labels.get(key) != value:
                    found.append(Problem(join(join(where, "selector.matchLabels"), key),
                                         f"selector {key}={value} does not match the template labels",
                                         "make template.metadata.labels carry every selector label"))
        if (template.min_ready_seconds or 0) >= deadline:
            found.append(Problem(join(where, "minReadySeconds"), f"{template.min_ready_seconds} is not below "
                                 f"progressDeadlineSeconds {deadline}", "lower minReadySeconds"))
        if template.replicas is not None and template.replicas < 0:
            found.append(Problem(join(where, "replicas"), f"{template.replicas} is negative", "use 0 or more"))
        found += _not_run_fields(where, template.name, template.weight)
    if spec.duration is not None and (problem := duration_problem(spec.duration, "spec.duration")):
        found.append(problem)
    found += _analysis_problems(spec.analyses or [], "spec.analyses", pool=pool)
    return found
