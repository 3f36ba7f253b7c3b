"""Local demo: a real Prometheus and the pieces that drive a canary on this machine.

Layer: below the CLI. Decides the demo's story (scenario), its processes and their
lifetime, the traffic generator and the summary. May import: rollouts.controller,
rollouts.memory, rollouts.view, rollouts.plan, rollouts.spec, analysis, rollouts.platform.
"""
