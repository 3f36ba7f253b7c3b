"""The Kubernetes client adapter: the Cluster port over the official `kubernetes` client.

Decides: how port calls become API requests (Content-Type per patch kind, 410 Gone,
bookmarks, kubeconfig and in-cluster config). The only package that imports `kubernetes`.

May import: rollouts.platform (and the kubernetes client).
"""
