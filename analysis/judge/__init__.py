"""The statistical canary judge: canary samples against baseline samples, per metric, to one verdict.

What it decides: for each metric of a judge config (analysis.judge.config), whether the canary
moved against the baseline (fixed window: Kayenta's Mann-Whitney classifier, analysis.judge.classify;
sequential: anytime-valid e-processes, analysis.judge.sequential), and from those one 0-100 score and
one verdict (analysis.judge.score): Pass, Marginal, Fail, Continue (sequential, not decided yet) or
Inconclusive (not enough data: its own verdict, never Pass and never a silent Fail).

What it may import: analysis.model (durations) and pydantic for the config, numpy and scipy for the
statistics, lazily (inside the functions), so `rollouts lint` and `rollouts eval`, which import the
config checks, do not load them. Pure: no clock, no I/O, no randomness; the same samples give the
same judgement.
"""
