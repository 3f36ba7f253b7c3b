"""The pure Rollout plan: plan(observed, now) -> (status, actions, requeue). No I/O, no clock.

Decides everything about a Rollout: the spec checks that make it InvalidSpec
(`validation`, `template_checks`, `timing_checks`), the state of one round (`state`), the
step list (`steplist`) and the step passes (`steps`), AnalysisRuns (`runs`), replica counts
(`replicas`, `scaling`), traffic for a round (`routing`), restarts, ownership of Services
(`claims`), the named transitions (`transitions`), conditions and the phase, and the
objects as a round's own writes leave them (`written`). `planner` runs a round in order.
Notifications' pure part lives here too: the ConfigMap's format, triggers and routes
(`notify`) and the bodies rendered from templates (`notify_render`).

May import: rollouts.traffic, rollouts.spec, analysis, rollouts.platform.
"""
