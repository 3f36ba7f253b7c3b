"""rollouts.plan.planner."""
