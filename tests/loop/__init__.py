"""The loop suite: starting rollouts, the rollout controller, and windowed rollout statistics."""
