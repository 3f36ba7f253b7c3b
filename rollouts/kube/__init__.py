"""rollouts.kube.cluster."""
