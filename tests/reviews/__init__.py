"""The review workflow: approvals and requests for changes of prompt versions, and the rollout gate."""
