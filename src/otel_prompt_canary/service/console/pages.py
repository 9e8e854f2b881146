"""The console's pages (GET): prompts, a prompt, a version's review, a rollout live, the audit
trail, the alert log and drift. Each reads what the API's handlers read, through the same registry,
loop store and drift monitor, a bounded number of queries per page whatever the store holds."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.registry.bounds import MAX_VERSION
from otel_prompt_canary.registry.models import (
    Action,
    PromptSummary,
    PromptVersion,
    Route,
    validate_prompt_name,
)
from otel_prompt_canary.registry.reviews import SqlReviews
from otel_prompt_canary.registry.sql import SqlRegistry
from otel_prompt_canary.service.api.evals import with_evaluations
from otel_prompt_canary.service.console import reads
from otel_prompt_canary.service.console.context import (
    ServiceDep,
    ShownEnvironmentDep,
    readable_environments,
    render,
)
from otel_prompt_canary.service.console.rollout_view import rollout_in, rollout_view
from otel_prompt_canary.service.console.visitors import VisitorDep
from otel_prompt_canary.service.environments import previous_environment
from otel_prompt_canary.service.principals import Role

__all__ = ["router"]

router = APIRouter()

#: Rows per page of the console's lists: a screenful.
PAGE_SIZE = 50
_VERSIONS_PER_PAGE = 20
#: The reviews a prompt's page shows (the audit trail has them all).
_RECENT_REVIEWS = 10

NameQuery = Annotated[str | None, Query(max_length=128)]


def _name(value: str | None) -> str | None:
    return None if value is None or value == "" else validate_prompt_name(value)


def _positive(value: str | None, what: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 2**63 - 1:
        raise InvalidInputError(f"invalid {what} {value!r}: give a positive whole number")
    return int(value)


@router.get("/", response_class=HTMLResponse)
def prompts_page(
    request: Request,
    visitor: VisitorDep,
    service: ServiceDep,
    environment: ShownEnvironmentDep,
    q: Annotated[str | None, Query(max_length=128)] = None,
    after: NameQuery = None,
) -> HTMLResponse:
    """Every prompt: its versions and its routing flag in each environment; search and pages."""
    registry = service.registry
    start = _name(after)
    search = (q or "").strip().lower()
    summaries: list[PromptSummary]
    if search:
        # A search reads the names once (one query) and pages through the matches.
        matches = [p for p in registry.list_prompts(environment=environment) if search in p.name.lower()]
        if start is not None:
            matches = [p for p in matches if p.name > start]
        summaries = matches[: PAGE_SIZE + 1]
    else:
        summaries = registry.list_prompts(after=start, limit=PAGE_SIZE + 1, environment=environment)
    more = len(summaries) > PAGE_SIZE
    summaries = summaries[:PAGE_SIZE]
    # One read of the flags per other environment, not one per prompt.
    flags: dict[str, dict[str, Route]] = {environment: {p.name: p.route for p in summaries}}
    for other in readable_environments(service, visitor):
        if other != environment:
            flags[other] = {r.prompt: r for r in registry.list_routes(environment=other)}
    rows = [
        {
            "name": p.name,
            "versions": p.versions,
            "latest_version": p.latest_version,
            "routes": {env: flags[env][p.name] for env in flags if p.name in flags[env]},
        }
        for p in summaries
    ]
    next_url = (
        _url("/console/", environment=environment, q=q or None, after=summaries[-1].name) if more else None
    )
    first_url = _url("/console/", environment=environment, q=q or None) if start is not None else None
    return render(
        request,
        "prompts.html",
        visitor=visitor,
        service=service,
        environment=environment,
        rows=rows,
        q=q,
        next_url=next_url,
        first_url=first_url,
    )


@router.get("/prompts/{name}", response_class=HTMLResponse)
def prompt_page(
    request: Request,
    name: str,
    visitor: VisitorDep,
    service: ServiceDep,
    environment: ShownEnvironmentDep,
    before: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """A prompt: its versions (newest first, a page at a time), its routing flag in each
    environment, the labels each version holds there, and its rollouts in the environment shown."""
    registry = service.registry
    validate_prompt_name(name)
    end = _positive(before, "page")
    page = registry.list_versions(name, before=end, limit=_VERSIONS_PER_PAGE + 1)
    more = len(page) > _VERSIONS_PER_PAGE
    versions = list(reversed(page[1:] if more else page))
    routes = [
        (env, registry.get_route(name, environment=env)) for env in readable_environments(service, visitor)
    ]
    labels: dict[int, list[str]] = {}
    for env, route in routes:
        labels.setdefault(route.stable_version, []).append(f"{env}: stable")
        if route.canary_version is not None and route.state.active:
            labels.setdefault(route.canary_version, []).append(f"{env}: canary {route.canary_percent:g}%")
    recent = registry.history(name, limit=500, environment=environment)
    rollouts = [r for r in reversed(recent) if r.action is Action.START]
    reviews = reads.review_summaries(registry, name, [v.version for v in versions])
    recent_reviews = (
        SqlReviews(registry).trail(name, limit=_RECENT_REVIEWS) if isinstance(registry, SqlRegistry) else None
    )
    return render(
        request,
        "prompt.html",
        visitor=visitor,
        service=service,
        environment=environment,
        name=name,
        versions=versions,
        routes=routes,
        labels=labels,
        rollouts=rollouts,
        reviews=reviews,
        recent_reviews=recent_reviews,
        next_url=_url(f"/console/prompts/{name}", environment=environment, before=versions[-1].version)
        if more
        else None,
        first_url=_url(f"/console/prompts/{name}", environment=environment) if end is not None else None,
    )


@router.get("/prompts/{name}/versions/{version}", response_class=HTMLResponse)
def version_page(
    request: Request,
    name: str,
    version: int,
    visitor: VisitorDep,
    service: ServiceDep,
    environment: ShownEnvironmentDep,
    against: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """A version's review: its diff against the previous version (or the stable one, or any),
    the environment snapshot changes, the blast radius, the evaluations of both side by side, the
    reviews, and the forms to review it and to start its rollout."""
    registry = service.registry
    validate_prompt_name(name)
    if not 1 <= version <= MAX_VERSION:
        raise InvalidInputError(f"invalid version {version}: give 1 to {MAX_VERSION}")
    target = registry.get_version(name, version)
    route = registry.get_route(name, environment=environment)
    choice = against or "previous"
    base = _base_version(choice, version, route)
    diff = None
    snapshot: list[tuple[str, object, object]] = []
    if base is not None:
        older = registry.get_version(name, base)
        diff = with_evaluations(registry, registry.diff(name, base, version))
        snapshot = _snapshot_changes(older, target)
    # A version stable in the environment before this one is promoted from there (the audit says so).
    previous = previous_environment(service.settings, environment)
    promote_from = None
    if (
        previous is not None
        and visitor.may(Role.READ, previous)
        and registry.get_route(name, environment=previous).stable_version == version
    ):
        promote_from = previous
    choices = [("previous", "the previous version")]
    if route.stable_version != version:
        choices.append(("stable", f"the stable version in {environment} (v{route.stable_version})"))
    choices += [(str(v), f"v{v}") for v in range(max(1, version - 10), version) if v != version]
    return render(
        request,
        "version.html",
        visitor=visitor,
        service=service,
        environment=environment,
        version=target,
        route=route,
        diff=diff,
        snapshot_changes=snapshot,
        against=choice,
        against_choices=choices,
        review=reads.review_of(registry, service.settings, name, version),
        may_review=visitor.may(Role.REVIEW),
        may_operate=visitor.may(Role.OPERATE, environment),
        promote_from=promote_from,
    )


def _base_version(choice: str, version: int, route: Route) -> int | None:
    if choice == "previous":
        return version - 1 if version > 1 else None
    if choice == "stable":
        return route.stable_version if route.stable_version != version else None
    number = _positive(choice, "version to compare with")
    assert number is not None
    if number > MAX_VERSION:
        raise InvalidInputError(f"invalid version to compare with {number}: give 1 to {MAX_VERSION}")
    return number if number != version else None


def _snapshot_changes(a: PromptVersion, b: PromptVersion) -> list[tuple[str, object, object]]:
    """The environment snapshot fields (model, RAG index, tool schemas...) that differ."""
    changes: list[tuple[str, object, object]] = []
    if a.model != b.model:
        changes.append(("model", a.model, b.model))
    labels = {
        "model_id": "model id",
        "rag_index_id": "RAG index",
        "tool_schema_hash": "tool schemas",
        "eval_baseline_id": "evaluation baseline",
    }
    before, after = a.environment.model_dump(), b.environment.model_dump()
    for field, label in labels.items():
        if before.get(field) != after.get(field):
            changes.append((label, before.get(field), after.get(field)))
    return changes


@router.get("/prompts/{name}/rollout", response_class=HTMLResponse)
def rollout_page(
    request: Request,
    name: str,
    visitor: VisitorDep,
    service: ServiceDep,
    environment: ShownEnvironmentDep,
    rollout_id: Annotated[str | None, Query(max_length=256)] = None,
) -> HTMLResponse:
    """A rollout, live: its ramp, weight and signals over time, the verdict and the actions."""
    view = rollout_view(service, visitor, name, environment, rollout_id or None)
    live_url = _url(
        f"/console/prompts/{name}/rollout/live", environment=environment, rollout_id=rollout_id or None
    )
    return render(
        request,
        "rollout.html",
        visitor=visitor,
        service=service,
        environment=environment,
        live_url=live_url,
        **view,
    )


@router.get("/prompts/{name}/rollout/live", response_class=HTMLResponse)
def rollout_live(
    request: Request,
    name: str,
    visitor: VisitorDep,
    service: ServiceDep,
    environment: ShownEnvironmentDep,
    rollout_id: Annotated[str | None, Query(max_length=256)] = None,
) -> HTMLResponse:
    """The live part of the rollout page, which the page polls."""
    view = rollout_view(service, visitor, name, environment, rollout_id or None)
    return render(
        request, "rollout_live.html", visitor=visitor, service=service, environment=environment, **view
    )


#: What each action does, for the confirmation page.
_CONSEQUENCES = {
    "advance": "The canary moves to the next step of the ramp.",
    "promote": "The canary becomes the stable version: every request goes to it.",
    "pause": "The canary keeps its weight but the ramp stops until someone resumes it.",
    "resume": "The ramp goes on; rules a person resumed after are acknowledged.",
    "rollback": "Every request goes back to the stable version at once; the canary is rolled back.",
    "revert": "The promotion is undone: every request goes to the version reverted to.",
}


@router.get("/prompts/{name}/rollout/confirm", response_class=HTMLResponse)
def confirm_page(
    request: Request,
    name: str,
    visitor: VisitorDep,
    service: ServiceDep,
    environment: ShownEnvironmentDep,
    action: Annotated[str, Query(max_length=16)],
    rollout_id: Annotated[str | None, Query(max_length=256)] = None,
) -> HTMLResponse:
    """The confirmation of an action on the rollout, with the flag as it is now."""
    if action not in _CONSEQUENCES:
        raise InvalidInputError(f"unknown action {action!r}: use one of {', '.join(_CONSEQUENCES)}")
    validate_prompt_name(name)
    if rollout_id:
        rollout_in(service.registry, name, rollout_id, environment)
    route = service.registry.get_route(name, environment=environment)
    return render(
        request,
        "confirm.html",
        visitor=visitor,
        service=service,
        environment=environment,
        name=name,
        action=action,
        route=route,
        consequence=_CONSEQUENCES[action],
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    visitor: VisitorDep,
    service: ServiceDep,
    environment: ShownEnvironmentDep,
    prompt: NameQuery = None,
    before: Annotated[str | None, Query(max_length=20)] = None,
    before_review: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """The audit trail of one prompt, or of every prompt, newest first, a page at a time: the
    routing flag's changes in the environment shown and the reviews of the versions, by time."""
    name = _name(prompt)
    end = _positive(before, "page")
    end_review = _positive(before_review, "page")
    page = reads.trail_page(
        service.registry,
        environment,
        name,
        limit=PAGE_SIZE,
        before=end,
        before_review=end_review,
    )
    next_url = None
    if page.more:
        next_url = _url(
            "/console/audit",
            environment=environment,
            prompt=name,
            before=page.next_before,
            before_review=page.next_before_review,
        )
    paged = end is not None or end_review is not None
    return render(
        request,
        "audit.html",
        visitor=visitor,
        service=service,
        environment=environment,
        prompt=name,
        entries=page.entries,
        next_url=next_url,
        first_url=_url("/console/audit", environment=environment, prompt=name) if paged else None,
    )


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    visitor: VisitorDep,
    service: ServiceDep,
    environment: ShownEnvironmentDep,
    prompt: NameQuery = None,
    before: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    """The alert log, newest first, a page at a time."""
    name = _name(prompt)
    end = _positive(before, "page")
    values: dict[str, Any] = {"prompt": name, "records": [], "next_url": None, "first_url": None}
    if service.store is None:
        values["unavailable"] = "This control plane's registry stores no alerts."
    else:
        records = service.store.list_alerts(name, limit=PAGE_SIZE + 1, before=end)
        more = len(records) > PAGE_SIZE
        shown = list(reversed(records[1:] if more else records))
        values["records"] = shown
        if more:
            values["next_url"] = _url(
                "/console/alerts", environment=environment, prompt=name, before=shown[-1].id
            )
        if end is not None:
            values["first_url"] = _url("/console/alerts", environment=environment, prompt=name)
    return render(request, "alerts.html", visitor=visitor, service=service, environment=environment, **values)


@router.get("/drift", response_class=HTMLResponse)
def drift_page(
    request: Request,
    visitor: VisitorDep,
    service: ServiceDep,
    environment: ShownEnvironmentDep,
    after: NameQuery = None,
) -> HTMLResponse:
    """Drift monitoring of every prompt's live stable version, a page at a time."""
    start = _name(after)
    monitor = service.drift
    values: dict[str, Any] = {"prompts": [], "next_url": None, "first_url": None}
    if monitor is None:
        values["unavailable"] = (
            "Drift monitoring is off on this control plane (serve --drift off, or a registry that "
            "stores no statistics)."
        )
    else:
        prompts = monitor.status(after=start, limit=PAGE_SIZE + 1)
        more = len(prompts) > PAGE_SIZE
        shown = prompts[:PAGE_SIZE]
        values.update(
            prompts=shown,
            settings_text=monitor.config.describe(),
            threshold=monitor.config.threshold,
            next_url=_url("/console/drift", environment=environment, after=shown[-1].prompt)
            if more
            else None,
            first_url=_url("/console/drift", environment=environment) if start is not None else None,
        )
    return render(request, "drift.html", visitor=visitor, service=service, environment=environment, **values)


def _url(path: str, **params: object) -> str:
    pairs = [(k, str(v)) for k, v in params.items() if v is not None]
    return f"{path}?{urlencode(pairs)}" if pairs else path
