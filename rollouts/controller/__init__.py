"""The controller shell: watches, a work queue, workers and the Rollout reconcile around the pure plan.

Decides nothing about a Rollout: it observes (informer cache, the event fan-in), calls
rollouts.plan and analysis.controller, sends the actions, writes status only when it
changed, records events and metrics, leads with a Lease, and keeps its threads alive
(`manager`, `threads`, `fanin`, `reconciler`, `workqueue`, `informer`, `leader`,
`metrics`, `clientset`), and delivers notifications on a thread of their own (`notify`).

May import: rollouts.plan, rollouts.traffic, rollouts.spec, analysis, rollouts.platform.
Not memory or kube: it is given a Cluster.
"""
