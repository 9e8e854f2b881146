"""The application side in an environment: a router (and the instrumentation) follows the flag of
``OTEL_PROMPT_CANARY_ENVIRONMENT``; the controller judges each environment's rollout on its own; an
alert finds the environment of its rollout."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.instrumentation import InstrumentationConfig
from otel_prompt_canary.loop import RolloutController, start_rollout
from otel_prompt_canary.loop.alert_log import AlertLog
from otel_prompt_canary.loop.alerts import AlertAction, AlertNotice
from otel_prompt_canary.registry import Action, PromptSpec, RolloutState, SqlRegistry
from otel_prompt_canary.routing import PromptRouter
from otel_prompt_canary.routing.control_planes import control_planes
from otel_prompt_canary.service import ServiceSettings
from tests.loop.factories import FAST_RAMP_POLICY, feed
from tests.support.auth import TOKEN
from tests.support.loopback import running_server
from tests.support.waiting import eventually

UNITS = [f"user-{i}" for i in range(50)]


@pytest.fixture
def greeter(registry: SqlRegistry) -> SqlRegistry:
    registry.push(PromptSpec(name="greeter", template="Hello {{ name }}."))
    registry.push(PromptSpec(name="greeter", template="Hi {{ name }}!"))
    return registry


@pytest.fixture
def control_plane(greeter: SqlRegistry) -> Iterator[str]:
    settings = ServiceSettings(token=TOKEN, environments="staging,production", controller=False)
    with running_server(greeter, settings) as url:
        yield url


def _versions(router: PromptRouter) -> set[int]:
    return {router.select("greeter", unit).version for unit in UNITS}


def test_an_app_in_staging_is_routed_by_staging_s_flag(
    greeter: SqlRegistry, control_plane: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Everyone on the candidate in staging (a one-step ramp), no one in production.
    greeter.start_rollout("greeter", 2, actor="ana", ramp=(100.0,), environment="staging")
    monkeypatch.setenv("OTEL_PROMPT_CANARY_ENVIRONMENT", "staging")
    with PromptRouter(control_plane, initial_timeout=10) as staging:
        assert staging.environment == "staging"
        assert _versions(staging) == {2}
        assert {(p.base_url, p.environment) for p in control_planes()} == {(control_plane, "staging")}
    # The argument wins over the variable; the default is production.
    with PromptRouter(control_plane, initial_timeout=10, environment="production") as production:
        assert _versions(production) == {1}
    monkeypatch.delenv("OTEL_PROMPT_CANARY_ENVIRONMENT")
    with PromptRouter(greeter, initial_timeout=10) as local:  # an open store, read directly
        assert (local.environment, _versions(local)) == ("production", {1})

    # A change in staging reaches the staging router through its long-poll.
    with PromptRouter(control_plane, initial_timeout=10, environment="staging", long_poll_wait=5) as router:
        greeter.transition("greeter", Action.ROLLBACK, actor="ana", reason="bad", environment="staging")
        eventually(lambda: _versions(router) == {1}, what="the staging rollback to reach the router")


def test_the_instrumentation_reads_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PROMPT_CANARY_ENVIRONMENT", "staging")
    assert InstrumentationConfig.from_env().environment == "staging"
    assert InstrumentationConfig.from_env({}).environment is None
    with pytest.raises(InvalidInputError, match="invalid environment name"):
        InstrumentationConfig(environment="Staging")
    monkeypatch.setenv("OTEL_PROMPT_CANARY_ENVIRONMENT", "Not Valid")
    with pytest.raises(InvalidInputError, match="OTEL_PROMPT_CANARY_ENVIRONMENT: invalid environment name"):
        PromptRouter("http://127.0.0.1:9", initial_timeout=0)


def test_the_controller_judges_each_environment_on_its_own(greeter: SqlRegistry) -> None:
    staging = start_rollout(
        greeter, "greeter", 2, policy=FAST_RAMP_POLICY, actor="ana", reason="try", environment="staging"
    )
    production = start_rollout(greeter, "greeter", 2, policy=FAST_RAMP_POLICY, actor="ana", reason="try")
    assert staging.rollout_id and production.rollout_id
    controller = RolloutController(greeter, time_scale=60, environments=("staging", "production"))
    for _ in range(5):
        feed(controller, staging.rollout_id, canary_valid=0.5)  # staging's canary breaks JSON
        feed(controller, production.rollout_id)
    decisions = controller.tick()
    assert [(d.action, d.rollout_id) for d in decisions if d.applied] == [
        (Action.ROLLBACK, staging.rollout_id)
    ]
    assert greeter.get_route("greeter", environment="staging").state is RolloutState.ROLLED_BACK
    assert greeter.get_route("greeter").state is RolloutState.RAMPING
    assert controller.assessment("greeter", "production") is not None
    # A controller of production alone never looks at staging.
    assert RolloutController(greeter, time_scale=60).environments == ("production",)


def test_an_alert_applies_to_the_environment_of_its_rollout(greeter: SqlRegistry) -> None:
    staged = greeter.start_rollout("greeter", 2, actor="ana", environment="staging")
    greeter.start_rollout("greeter", 2, actor="ana")
    log = AlertLog(greeter)

    def alert(key: str, **about: str | None) -> AlertNotice:
        return AlertNotice(
            source="alertmanager", key=key, prompt="greeter", action=AlertAction.PAUSE, actor="am",
            reason="judge score down", **about,
        )  # fmt: skip

    assert log.receive_alert(alert("k1", rollout_id=staged.rollout_id)).outcome == "applied"
    assert greeter.get_route("greeter", environment="staging").state is RolloutState.PAUSED
    assert greeter.get_route("greeter").state is RolloutState.RAMPING
    # Naming no rollout: the environment label, else the default environment.
    assert log.receive_alert(alert("k2")).outcome == "applied"
    assert greeter.get_route("greeter").state is RolloutState.PAUSED
    greeter.transition("greeter", Action.RESUME, actor="ana", reason="go", environment="staging")
    assert log.receive_alert(alert("k3", environment="staging")).outcome == "applied"
    assert greeter.get_route("greeter", environment="staging").state is RolloutState.PAUSED
