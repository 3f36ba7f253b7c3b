"""Canary analysis: the condition language, AnalysisRun semantics and metric providers.

Decides: the condition language (expr), AnalysisRun building and its rules (build, checks,
provider_checks, args), the pure run state machine (assess), what a run proves (evidence),
why it ended as it did (explain), one measurement (measure), the providers, the AnalysisRun
controller shell, and the backtest (a run replayed on metric history with a stepped clock).

May import: rollouts.platform only (the Cluster port, its errors, patches, clock, events and
the Problem value), never the Rollout controller or plan: analysis stands alone below them,
so `rollouts analyze`, the backtest and the controller all use the same measuring code.
Inside, the layers are (top to bottom) controller|backtest, measure, providers, evidence|assess|explain,
build, checks, provider_checks, args, expr|jsonpath, model (pyproject.toml).
"""
