"""rollouts.platform."""
