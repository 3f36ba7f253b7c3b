"""The in-memory API: a Kubernetes API server of our own, as product code.

Decides: an InMemoryCluster that keeps resourceVersions, answers 409 on a stale one, keeps
status apart from spec, emits watch events and stands in for the ReplicaSet controller and
the kubelet (workloads); its change log for watches; and the HTTP server that serves it with
the Kubernetes REST subset (local mode, the demo, a second terminal, crash tests).

May import: rollouts.platform. Not the controller, the plan or the spec.
"""
