"""How a router makes its control plane known to in-app reporting, and forgets it when closed."""

from __future__ import annotations

from collections.abc import Callable

from otel_prompt_canary.routing import PromptRouter
from otel_prompt_canary.routing.control_planes import (
    ControlPlane,
    add_control_plane_listener,
    control_plane_of,
    control_planes,
    remove_control_plane_listener,
)
from tests.routing.fakes import FakeControlPlane, ScriptedRegistry, ramping, rolled_back, version
from tests.support.auth import REPORT_TOKEN
from tests.support.waiting import eventually


def test_a_router_on_a_control_plane_announces_it_until_closed(
    control_plane: FakeControlPlane, make_router: Callable[..., PromptRouter]
) -> None:
    control_plane.add_versions(version("p", 1), version("p", 2))
    control_plane.set_routes(ramping("p", "ro-1", 5000))
    heard: list[ControlPlane] = []
    add_control_plane_listener(heard.append)
    try:
        router = make_router(control_plane.url, token=REPORT_TOKEN)
    finally:
        remove_control_plane_listener(heard.append)
    [plane] = heard
    assert plane.base_url == control_plane.url.rstrip("/") and plane.token == REPORT_TOKEN
    assert REPORT_TOKEN not in repr(plane)
    assert plane in control_planes()
    assert control_plane_of("ro-1") == plane
    assert control_plane_of("ro-other") is None
    # A rollout seen rolled back is still this control plane's: its late results go there.
    control_plane.set_routes(rolled_back("p", "ro-1"))
    eventually(lambda: "ro-1" in router.status().rolled_back, what="the rollback")
    assert control_plane_of("ro-1") == plane
    router.close()
    assert plane not in control_planes() and control_plane_of("ro-1") is None


def test_a_router_on_a_store_announces_nothing(make_router: Callable[..., PromptRouter]) -> None:
    before = control_planes()
    make_router(ScriptedRegistry([ramping("p", "ro-2", 100)], [version("p", 1), version("p", 2)]))
    assert control_planes() == before and control_plane_of("ro-2") is None


def test_a_credential_given_to_any_router_of_a_url_is_the_one_used(
    control_plane: FakeControlPlane, make_router: Callable[..., PromptRouter]
) -> None:
    make_router(control_plane.url, initial_timeout=0, token=None)
    make_router(control_plane.url, initial_timeout=0, token=REPORT_TOKEN)
    [plane] = [p for p in control_planes() if p.base_url == control_plane.url.rstrip("/")]
    assert plane.token == REPORT_TOKEN
