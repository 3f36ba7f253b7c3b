"""rollouts.spec."""
