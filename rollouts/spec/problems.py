"""Problems found in a spec, and the fields Argo accepts that this controller does not run.

Rules:
- A `Problem` is a value: the wire path of the field (`spec.strategy.canary.steps[0].setWeight`),
  what is wrong, and how to fix it. `str(problem)` is `path: message (fix)`; lint prefixes
  the file and `Kind/name`, the controller puts it in the InvalidSpec condition.
- Severity ERROR means the object cannot run as written (lint exits 1, the controller
  sets InvalidSpec and shifts no traffic). WARNING means Argo Rollouts accepts it but this
  controller ignores it; it never fails lint.
- Unknown fields are never dropped by the models (`extra="allow"`). `field_problems`
  sorts them: another traffic router (nginx, alb, ...) is an ERROR "not run by this
  controller" (`router_not_run`: its traffic would never move); a field Argo has for a
  feature we do not run whose absence is safe (other metric providers end in Error
  measurements, ...) is a WARNING "not supported by this controller"; anything else is
  a typo or a field no controller knows, an ERROR with a did-you-mean.
- Fields the models know, that Argo acts on and this controller only keeps
  (`NOT_RUN_FIELDS`: ephemeral metadata, anti-affinity, Prometheus range
  queries, ...), are a WARNING "not supported by this controller" too, naming what
  differs here; what is under them is not looked at.
- Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from analysis.model import (
    AnalysisRunSpec,
    ArgoModel,
    MetricProvider,
    ObjectMeta,
    WebMetric,
)
from rollouts.platform.problems import Problem, Severity, did_you_mean, join, warning
from rollouts.spec.model import (
    SUPPORTED_STEPS,
    CanaryStep,
    CanaryStrategy,
    RolloutSpec,
    RolloutStatus,
    StepKind,
    TrafficRouting,
)

__all__ = ["ARGO_ONLY_FIELDS", "NOT_RUN_FIELDS", "Problem", "Severity", "did_you_mean", "field_problems", "join",
           "not_run_problem", "router_not_run", "warning"]



# Fields Argo Rollouts has on these objects that our models do not model (kept as extras).
ARGO_ONLY_FIELDS: Mapping[type[ArgoModel], frozenset[str]] = {
    TrafficRouting: frozenset(
        {"nginx", "alb", "smi", "ambassador", "appMesh", "traefik", "apisix", "plugins"}
    ),
    MetricProvider: frozenset(
        {"kayenta", "datadog", "wavefront", "newRelic", "cloudWatch", "graphite", "influxdb", "skywalking"}
    ),
    WebMetric: frozenset({"authentication"}),
}

_NOT_RUN: Mapping[type[ArgoModel], str] = {
    MetricProvider: "its measurements would end in Error here; use prometheus or web",
    WebMetric: "requests are sent without it",
}


_ARGO_RUNS_IT = "let Argo Rollouts run this Rollout"
# Fields the models know that Argo acts on and this controller keeps without acting on:
# wire name -> (what differs here; what to do). The consequence opens the fix.
NOT_RUN_FIELDS: Mapping[type[ArgoModel], Mapping[str, tuple[str, str]]] = {
    RolloutSpec: {
        "rollbackWindow": ("a rollback to a recent revision replays every step here",
                           f"remove it, or {_ARGO_RUNS_IT}"),
    },
    CanaryStrategy: {
        "antiAffinity": ("no anti-affinity is added between canary and stable pods",
                         f"put the affinity in spec.template, or {_ARGO_RUNS_IT}"),
        "canaryMetadata": ("canary pods do not get these labels and annotations",
                           f"select canary pods by rollouts-pod-template-hash, or {_ARGO_RUNS_IT}"),
        "stableMetadata": ("stable pods do not get these labels and annotations",
                           f"select stable pods by rollouts-pod-template-hash, or {_ARGO_RUNS_IT}"),
        "replicaProgressThreshold": ("steps wait for every canary pod to be available",
                                     f"remove it, or {_ARGO_RUNS_IT}"),
        "dynamicStableScale": ("the stable ReplicaSet keeps all its pods during the update",
                               f"remove it (the update runs with up to twice the pods), or {_ARGO_RUNS_IT}"),
        "scaleDownDelayRevisionLimit": ("every old ReplicaSet keeps its pods until its own scale-down deadline",
                                        f"remove it, or {_ARGO_RUNS_IT}"),
    },
    AnalysisRunSpec: {
        "ttlStrategy": ("completed runs are not deleted after a time", "delete old runs yourself, or remove it"),
    },
}


def router_not_run(key: str, path: str) -> Problem:
    """A traffic router Argo runs and this controller does not: an ERROR (its canary would be
    run as a replica-count canary whose traffic never moves). Lint and the plan both say this."""
    return Problem(path, f"traffic router '{key}' is not run by this controller",
                   "use trafficRouting.istio, or leave this Rollout to Argo Rollouts with its own "
                   "controller-instance-id label")


def not_run_problem(step: CanaryStep, path: str) -> Problem | None:
    """A step kind Argo runs and this engine does not: an error, never passed over (it may gate
    the canary, as an experiment's analysis does), alone or beside another kind. The one rule
    lint and the controller share."""
    kind = next((StepKind(k) for k in step.kinds()
                 if k in StepKind._value2member_map_ and StepKind(k) not in SUPPORTED_STEPS), None)
    if kind is None:
        return None
    return Problem(f"{path}.{kind.value}", f"the {kind.value} step is not run by this controller",
                   "remove the step, or leave this Rollout to Argo Rollouts "
                   "with its own controller-instance-id label")


def _aliases(cls: type[ArgoModel]) -> list[str]:
    return [f.alias or name for name, f in cls.model_fields.items()]


def _unknown(model: ArgoModel, key: str, path: str) -> Problem:
    cls = type(model)
    known = _aliases(cls) + sorted(ARGO_ONLY_FIELDS.get(cls, ()))
    guess = did_you_mean(key, known)
    if cls is CanaryStep:
        fix = f"did you mean {guess}?" if guess else "a step is one of setWeight, pause, analysis, setCanaryScale"
        return Problem(path, f"unknown step kind {key!r}", fix)
    if cls is MetricProvider:
        fix = f"did you mean {guess}?" if guess else "use one of prometheus, web"
        return Problem(path, f"unknown metric provider {key!r}", fix)
    fix = f"did you mean {guess}?" if guess else "remove it or check the spelling"
    return Problem(path, f"unknown field {key!r}", fix)


def field_problems(model: ArgoModel, path: str = "") -> list[Problem]:
    """Unknown fields under `model`, extras first then fields in model order.

    `metadata` and `status` are skipped: the API server and the controllers own their
    extra fields (managedFields, finalizers, Argo's status fields, ...)."""
    found: list[Problem] = []
    argo_only = ARGO_ONLY_FIELDS.get(type(model), frozenset())
    for key in model.model_extra or {}:
        where = join(path, key)
        if key in argo_only and isinstance(model, TrafficRouting):
            found.append(router_not_run(key, where))
        elif key in argo_only:
            found.append(warning(where, f"{key} is not supported by this controller", _NOT_RUN[type(model)]))
        else:
            found.append(_unknown(model, key, where))
    fields = type(model).model_fields
    not_run = NOT_RUN_FIELDS.get(type(model), {})
    for name in fields:
        if name not in model.model_fields_set:
            continue
        value = getattr(model, name)
        if name == "status" or isinstance(value, (RolloutStatus, ObjectMeta)):
            continue  # written by controllers and the API server, not by users
        alias = fields[name].alias or name
        if alias in not_run and value is not None:
            differs, fix = not_run[alias]
            found.append(warning(join(path, alias), f"{alias} is not supported by this controller",
                                 f"{differs}; {fix}"))
        elif isinstance(value, ArgoModel):
            found.extend(field_problems(value, join(path, alias)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, ArgoModel):
                    found.extend(field_problems(item, join(join(path, alias), index)))
    return found


def from_validation_error(err: ValidationError) -> list[Problem]:
    """pydantic's errors at their wire paths (`spec.strategy.canary.steps[0].setWeight`)."""
    found = []
    for item in err.errors():
        path = ""
        for part in item["loc"]:
            path = join(path, part if isinstance(part, int) else str(part))
        found.append(Problem(path, item["msg"][0].lower() + item["msg"][1:], "see the schema in crds/"))
    return found
