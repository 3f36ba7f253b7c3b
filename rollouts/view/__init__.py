"""The view-model of a Rollout, as `kubectl argo rollouts get rollout` shows it.

Rules and invariants:
- Pure: built from plain API dicts (the Rollout, the ReplicaSets and AnalysisRuns of its
  namespace) and `now`; nothing here reads a clock or the cluster, nothing styles.
  `rollouts.view.render` draws it; `summary_line` prints it as one plain line per change.
- `facts`: what a client may believe about a Rollout (Argo's phase, step and weight
  rules); `rows`: the frozen values of the view; `tree`: building them, by revision.
- Half-written objects never raise: a missing or malformed field reads as empty or 0.

Layer: decides what `get rollout` and `list rollouts` show (facts, rows, tree) and how rich
draws it (render). May import: rollouts.platform. Not the cluster, the controller or the plan.
"""

from rollouts.platform.labels import HASH_LABEL
from rollouts.platform.times import parse_time
from rollouts.view.facts import (
    ICONS,
    NOT_OBSERVED,
    REVISION_ANNOTATION,
    UNPAUSING,
    ListRow,
    StepRow,
    StepState,
    age,
    current_step_index,
    describe_step,
    generation_observed,
    human_duration,
    icon,
    list_row,
    owned_by,
    rollout_phase,
    set_weight,
    step_rows,
    step_text,
    steps_of,
)
from rollouts.view.rows import (
    AnalysisRunRow,
    Counts,
    HookRow,
    ImageRow,
    MetricRow,
    Replicas,
    ReplicaSetRow,
    RevisionRow,
    RolloutView,
)
from rollouts.view.tree import (
    analysis_run_row,
    build,
    change_key,
    hook_rows,
    metric_row,
    replica_set_row,
    summary_line,
)

__all__ = [
    "HASH_LABEL", "ICONS", "NOT_OBSERVED", "REVISION_ANNOTATION", "UNPAUSING", "AnalysisRunRow", "Counts",
    "HookRow", "ImageRow", "ListRow", "MetricRow", "ReplicaSetRow", "Replicas", "RevisionRow", "RolloutView", "StepRow",
    "StepState", "age", "analysis_run_row", "build", "change_key", "current_step_index", "describe_step",
    "generation_observed", "hook_rows", "human_duration", "icon", "list_row", "metric_row", "owned_by", "parse_time",
    "replica_set_row", "rollout_phase", "set_weight", "step_rows", "step_text", "steps_of", "summary_line",
]
