"""Canary analysis: the condition language, AnalysisRun semantics and metric providers."""
