"""The control plane's HTTP resources, one module per resource.

``prompts`` (push, read, diff), ``reviews`` (approvals and requests for changes), ``rollouts``
(start and move a rollout, its verdict and audit trail),
``routes`` (the routing flags routers poll), ``policies`` (the active rollouts' policies, for outside
judges), ``reports`` (rollout statistics from applications and the Collector), ``feedback`` (users'
feedback on answers, by feedback key), ``alerts`` (the alert log), ``datasets`` (golden sets),
``evals`` (evaluation runs) and ``drift`` (drift monitoring of every prompt's live stable
version). The alert receivers are in :mod:`otel_prompt_canary.service.receivers`.
"""

from fastapi import APIRouter

from otel_prompt_canary.service.api import (
    alerts,
    datasets,
    drift,
    evals,
    feedback,
    policies,
    prompts,
    reports,
    reviews,
    rollouts,
    routes,
)

__all__ = ["ROUTERS"]

#: Every resource's router, in the order the API documentation lists them.
ROUTERS: tuple[APIRouter, ...] = (
    prompts.router,
    reviews.router,
    rollouts.router,
    routes.router,
    policies.router,
    alerts.router,
    reports.router,
    feedback.router,
    datasets.router,
    evals.router,
    drift.router,
    drift.prompt_router,
)
