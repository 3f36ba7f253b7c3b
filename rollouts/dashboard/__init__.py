"""The live web dashboard: every Rollout at a glance, the analysis as charts, safe actions.

`rollouts dashboard` (rollouts.cli.dashboard) and `rollouts demo` serve it. One Store per
process watches the cluster (store); pages are built from rollouts.view, never re-deriving
status (pages, charts); Starlette serves them with server-sent events (app); actions are
rollouts.platform.commands, each confirmed and authorized for the user who asks (auth,
actions); server runs it on uvicorn. htmx and uPlot are vendored under static/vendor
(tools/vendor-js.sh; no CDN).

Layer: between the CLI and the demo. May import rollouts.controller (its informer cache),
rollouts.kube, rollouts.memory, rollouts.view and rollouts.platform; starlette, uvicorn and
sse-starlette are imported only here, so no other command pays for them.
"""
