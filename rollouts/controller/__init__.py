"""rollouts.controller.manager."""
