"""rollouts.memory.cluster."""
