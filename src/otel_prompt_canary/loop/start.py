"""Starting a rollout with its policy: the one way a rollout starts.

A rollout is judged by one policy (:mod:`otel_prompt_canary.analysis.policy`). :func:`start_rollout`
resolves what the caller gave into the policy that applies, validates it, and only then asks the
registry to start the rollout, storing the policy with it; the CLI, the control plane's API and the
demo all start rollouts through it. :func:`resolve_rollout_policy` does the first half alone:

- no policy: :data:`~otel_prompt_canary.analysis.DEFAULT_POLICY`;
- a policy that cannot be decided is refused (:class:`~otel_prompt_canary.errors.InvalidInputError`,
  HTTP 422, CLI exit 2), so that no rollout discovers a broken policy while it runs.

The ramp and the policy's ``ramp.steps`` must agree, since the judge's step index is an index into
both. The rule:

- the policy gives ``ramp.steps`` and no ramp is given: the policy's steps are the ramp;
- a ramp is given and the policy leaves ``ramp.steps`` out (or there is no policy): the ramp fills
  the policy's steps;
- both are given: they must be equal, else the start is refused;
- neither: the default ramp, 1, 5, 20, 50, 100.

The policy is stored on the rollout in full (defaults filled in, null fields left out), so the audit
record of the start says exactly what applied.

Two more refusals, before anything is written:

- a start without a reason (:class:`~otel_prompt_canary.errors.InvalidInputError`): like every
  transition, it records why in the audit log;
- a policy with a ``must_have_data`` signal that no one produces: no step of such a rollout could
  ever become ready. A signal is *produced* when a report for the prompt has ever carried it (any
  earlier rollout of the prompt, either cohort: in-app reports, the Collector processor, the
  controller's own observations). A first rollout therefore cannot require data; its rules still
  judge every signal as soon as its data arrives, and the next rollout may require it. The check
  runs where the statistics are: on a local store here, behind the API on a control plane.

A policy with a ``gate:`` also needs a passing golden-set evaluation of the candidate
(:mod:`otel_prompt_canary.evals.gate`): without one the start is refused
(:class:`~otel_prompt_canary.errors.ConflictError`, HTTP 409, CLI exit 1), saying what is missing
or which cases failed or got worse. ``skip_gate`` starts it anyway: the start's audit record then
says the gate was skipped, and what it would have refused; a start that passes the gate names the
run in its audit record. The gate is checked where the runs are, like the signals.

The audit record says it twice: in words, at the end of its reason (``[evaluation gate passed:
run ... on dataset@version]``, ``[evaluation gate skipped; it would refuse: ...]``), and as
structured evidence beside the policy, ``{"policy": ..., "gate": {"outcome": "passed" |
"skipped", "run_id", "baseline_run_id", "totals", "signals", "problems", ...}}``
(:meth:`~otel_prompt_canary.evals.gate.GateVerdict.evidence`). The evidence is written by the store
that checks the gate: a local store (an :class:`~otel_prompt_canary.registry.sql.SqlRegistry`), or
a control plane on its own. The :class:`~otel_prompt_canary.registry.base.Registry` interface's
``start_rollout`` takes no evidence, so that registries written against it keep working; a start on
one of those keeps the words only.

A rollout belongs to one environment (``environment``, default the default environment). With
``from_environment``, the rollout *promotes* between environments: its candidate is the version
stable in ``from_environment`` (:func:`promotion_candidate`), refused when that version is already
stable in ``environment``, and the audit record says where it came from (``[promoted from staging,
where version 3 is stable at revision 7]``, and ``{"promotion": {"from_environment", "version",
"revision"}}`` as evidence). Whether ``from_environment`` may promote into ``environment`` (the
previous one in the control plane's order) is checked by :func:`check_promotion_order` when the order
is known: behind a control plane's API, or when the caller gives ``environments``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from pydantic import JsonValue
from sqlalchemy import Connection

from otel_prompt_canary.analysis.policy import DEFAULT_POLICY, Gate, Policy, load_policy
from otel_prompt_canary.errors import ConflictError, InvalidInputError
from otel_prompt_canary.evals.gate import gate_verdict
from otel_prompt_canary.evals.store import EvalStore, SqlEvalStore
from otel_prompt_canary.loop.store import LoopStore, SqlLoopStore
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry.base import Registry
from otel_prompt_canary.registry.models import Action, Route, parse_ramp, validate_environment_name
from otel_prompt_canary.registry.reviews import SqlReviews, check_approvals
from otel_prompt_canary.registry.sql import RevertCheck, SqlRegistry, StartCheck

__all__ = [
    "EnvironmentPromotion",
    "GateCheck",
    "RolloutPolicy",
    "check_gate",
    "check_promotion_order",
    "check_signals_produced",
    "move_rollout",
    "policy_document",
    "promotion_candidate",
    "resolve_rollout_policy",
    "reviewed_reverts",
    "start_rollout",
    "with_steps",
]


@dataclass(frozen=True, slots=True)
class RolloutPolicy:
    """The policy that applies to a rollout, and the ramp it walks (``policy.ramp.percents``)."""

    policy: Policy
    ramp: tuple[float, ...]

    @property
    def document(self) -> dict[str, JsonValue]:
        """The policy as stored on the rollout: every field explicit, null fields left out."""
        return policy_document(self.policy)


def policy_document(policy: Policy) -> dict[str, JsonValue]:
    """``policy`` as a JSON object: every field explicit, null fields left out."""
    document: dict[str, JsonValue] = policy.model_dump(mode="json", exclude_none=True)
    return document


def with_steps(policy: Policy, steps: tuple[float, ...]) -> Policy:
    """``policy`` with ``steps`` as its ``ramp.steps`` (validated again when they change).

    The new steps are bare percentages: minimums that the policy's own steps set go with those steps.
    """
    if policy.ramp.percents == steps:
        return policy
    data = policy.model_dump(mode="json", exclude_none=True)
    data["ramp"]["steps"] = list(steps)
    return load_policy(data)


def _gives_steps(policy: Mapping[str, Any]) -> bool:
    ramp = policy.get("ramp")
    return isinstance(ramp, Mapping) and "steps" in ramp


def _steps_text(steps: Sequence[float]) -> str:
    return ",".join(f"{s:g}" for s in steps)


def resolve_rollout_policy(
    policy: Mapping[str, Any] | None,
    ramp: str | Sequence[float] | None = None,
) -> RolloutPolicy:
    """The policy and ramp a rollout starts with (see the module docstring for the rules).

    Raises :class:`~otel_prompt_canary.errors.InvalidInputError` for an invalid ramp, a policy that
    cannot be decided, or a ramp that disagrees with the policy's ``ramp.steps``.
    """
    steps = None if ramp is None else parse_ramp(list(ramp) if not isinstance(ramp, str) else ramp)
    if policy is None:
        base, explicit = DEFAULT_POLICY, False
    else:
        if not isinstance(policy, Mapping):
            raise InvalidInputError("invalid policy: a policy is a JSON object with 'signals' and 'rules'")
        base, explicit = load_policy(policy), _gives_steps(policy)
    if explicit:
        if steps is not None and steps != base.ramp.percents:
            raise InvalidInputError(
                f"the ramp {_steps_text(steps)} disagrees with the policy's ramp.steps "
                f"{_steps_text(base.ramp.percents)}: give the ramp in one place, or the same steps in both"
            )
        steps = base.ramp.percents
    elif steps is None:
        steps = base.ramp.percents
    return RolloutPolicy(policy=with_steps(base, steps), ramp=steps)


def check_signals_produced(policy: Policy, prompt: str, reported: Collection[str]) -> None:
    """Refuse ``policy`` if a ``must_have_data`` signal of it is not among the ``reported`` attributes.

    ``reported`` holds the signal attributes ever reported for ``prompt``
    (:meth:`~otel_prompt_canary.loop.LoopStore.reported_signals`).
    """
    missing = [s for s in policy.signals if s.must_have_data and s.attribute not in reported]
    if not missing:
        return
    names = ", ".join(repr(s.name) for s in missing)
    attributes = ", ".join(s.attribute for s in missing)
    raise InvalidInputError(
        f"the policy must have data from signal {names} (must_have_data), but no one produces it: no "
        f"report for prompt {prompt!r} has ever carried {attributes}, so no step could become ready. "
        "Turn it on in the application (docs/checks.md), or start without must_have_data on it: its "
        "rules still judge it once its data arrives"
    )


#: The longest account of a skipped gate kept in the audit record's reason.
_SKIPPED_NOTE_CHARS = 600


@dataclass(frozen=True, slots=True)
class GateCheck:
    """What a start that the evaluation gate lets through records: a ``note`` for the end of its
    audit reason, and ``evidence`` for its audit record (``{"outcome": "passed" | "skipped", ...}``)."""

    note: str
    evidence: dict[str, JsonValue]


def check_gate(
    registry: Registry,
    evals: EvalStore,
    gate: Gate,
    name: str,
    version: int,
    *,
    skip_gate: bool,
    environment: str = DEFAULT_ENVIRONMENT,
) -> GateCheck:
    """What the start's audit record adds for ``gate`` when the candidate passes it, or when
    ``skip_gate`` is set; raises :class:`ConflictError` when the candidate does not pass and
    ``skip_gate`` is not set."""
    stable = registry.get_route(name, environment=environment).stable_version
    verdict = gate_verdict(evals, gate, version=registry.get_version(name, version), stable_version=stable)
    if verdict.passed:
        dataset = f"{verdict.dataset}@{verdict.dataset_version}"
        return GateCheck(
            note=f" [evaluation gate passed: run {verdict.run_id} on {dataset}]",
            evidence={"outcome": "passed", **verdict.evidence()},
        )
    if skip_gate:
        account = "; ".join(verdict.problems)
        if len(account) > _SKIPPED_NOTE_CHARS:
            account = account[: _SKIPPED_NOTE_CHARS - 3] + "..."
        return GateCheck(
            note=f" [evaluation gate skipped; it would refuse: {account}]",
            evidence={"outcome": "skipped", **verdict.evidence()},
        )
    raise ConflictError(
        verdict.explain() + ". Evaluate the version and start again, or start with --skip-gate "
        "(skip_gate) and a reason, which the audit trail keeps"
    )


@dataclass(frozen=True, slots=True)
class EnvironmentPromotion:
    """A version promoted from ``from_environment``, where it is stable at ``revision``."""

    from_environment: str
    version: int
    revision: int

    @property
    def note(self) -> str:
        """What the start's audit reason ends with."""
        return (
            f" [promoted from {self.from_environment}, where version {self.version} is stable "
            f"at revision {self.revision}]"
        )

    @property
    def evidence(self) -> dict[str, JsonValue]:
        """What the start's audit evidence keeps under ``promotion``."""
        return {"from_environment": self.from_environment, "version": self.version, "revision": self.revision}

    def still_holds(self, name: str, environment: str) -> StartCheck:
        """The check the start runs in its transaction: the flag of ``name`` in
        ``from_environment`` is still at the revision this promotion read, else the start is refused
        (:class:`~otel_prompt_canary.errors.ConflictError`, 409): that environment moved meanwhile
        (reverted, say), and what was read there is no longer what would be promoted."""

        def check(conn: Connection) -> str:
            now = SqlRegistry.route_in(conn, name, self.from_environment)
            if now.revision != self.revision:
                raise ConflictError(
                    f"cannot promote {name!r} into {environment}: its flag in {self.from_environment} "
                    f"moved from revision {self.revision} (version {self.version} stable) to revision "
                    f"{now.revision} (version {now.stable_version} stable, {now.state}) meanwhile; "
                    "look at it again and promote again"
                )
            return ""

        return check


def check_promotion_order(environments: Sequence[str], environment: str, from_environment: str) -> None:
    """Refuse (:class:`~otel_prompt_canary.errors.InvalidInputError`) a promotion into
    ``environment`` from anything but the environment before it in ``environments``."""
    if from_environment not in environments:
        raise InvalidInputError(
            f"unknown environment {from_environment!r} to promote from: the environments are "
            + ", ".join(environments)
        )
    index = list(environments).index(environment) if environment in environments else -1
    previous = environments[index - 1] if index > 0 else None
    if from_environment != previous:
        expected = f"only from {previous}" if previous else "from no environment: it is the first"
        raise InvalidInputError(
            f"cannot promote into {environment} from {from_environment}: in the order "
            f"{' -> '.join(environments)}, {environment} is promoted into {expected}"
        )


def promotion_candidate(
    registry: Registry, name: str, *, environment: str, from_environment: str, version: int | None = None
) -> EnvironmentPromotion:
    """The version stable in ``from_environment`` that a rollout in ``environment`` starts.

    Refused (:class:`~otel_prompt_canary.errors.InvalidInputError`) when ``from_environment`` is
    ``environment``, when ``version`` is given and is not that version, and when that version is
    already stable in ``environment`` (nothing to promote).
    """
    if from_environment == environment:
        raise InvalidInputError(f"cannot promote {name!r} from {environment} into itself")
    source = registry.get_route(name, environment=from_environment)
    target = registry.get_route(name, environment=environment)
    if version is not None and version != source.stable_version:
        raise InvalidInputError(
            f"version {version} of {name!r} is not the version stable in {from_environment} "
            f"({source.stable_version}): give that version, or leave the version out"
        )
    if source.stable_version == target.stable_version:
        raise InvalidInputError(
            f"version {source.stable_version} of {name!r} is stable in {from_environment} and already "
            f"stable in {environment}: nothing to promote"
        )
    return EnvironmentPromotion(from_environment, source.stable_version, source.revision)


def reviewed_reverts(registry: SqlRegistry, required_approvals: int) -> RevertCheck | None:
    """What keeps a revert from going around the review when ``required_approvals`` are required
    (None when none are): a revert to a version of choice goes only to one that has been stable in
    the flag's environment (:meth:`SqlRegistry.was_stable
    <otel_prompt_canary.registry.sql.SqlRegistry.was_stable>`) or is approved; else it is refused
    (:class:`~otel_prompt_canary.errors.ConflictError`, 409) saying what is missing. Give it to
    :meth:`SqlRegistry.transition <otel_prompt_canary.registry.sql.SqlRegistry.transition>`
    (``revert_check``), which runs it inside the revert's transaction."""
    if required_approvals <= 0:
        return None
    reviews = SqlReviews(registry)

    def check(conn: Connection, route: Route, version: int) -> None:
        if SqlRegistry.was_stable(conn, route, version):
            return
        status = reviews.review_status(route.prompt, version, required=required_approvals)
        if not status.approved:
            there = "" if route.environment == DEFAULT_ENVIRONMENT else f" in {route.environment}"
            raise ConflictError(
                f"cannot revert {route.prompt!r}{there} to version {version}: it has never been stable "
                f"there and is not approved ({status.explain()}). Revert to a version that was stable, "
                f"or review it first: prompt-canary prompt approve {route.prompt} {version}"
            )

    return check


def move_rollout(
    registry: Registry,
    name: str,
    action: Action,
    *,
    required_approvals: int,
    actor: str,
    reason: str,
    evidence: JsonValue = None,
    expected_revision: int | None = None,
    rollout_id: str | None = None,
    to_version: int | None = None,
    environment: str = DEFAULT_ENVIRONMENT,
    principal: str | None = None,
) -> Route:
    """Apply ``action`` to the rollout of ``name``, as :meth:`Registry.transition
    <otel_prompt_canary.registry.base.Registry.transition>` does, with the review's hold on
    reverts (:func:`reviewed_reverts`) where the registry stores reviews: what the API and the
    console both do when a person moves a rollout."""
    reviewed: dict[str, Any] = {}
    if isinstance(registry, SqlRegistry):
        reviewed["revert_check"] = reviewed_reverts(registry, required_approvals)
    return registry.transition(
        name,
        action,
        actor=actor,
        reason=reason,
        evidence=evidence,
        expected_revision=expected_revision,
        rollout_id=rollout_id,
        to_version=to_version,
        environment=environment,
        principal=principal,
        **reviewed,
    )


class _ControlPlane(Protocol):
    """A control plane's registry, whose start can be asked to skip the evaluation gate, or to
    promote the version stable in another environment (``version`` None)."""

    def start_rollout(
        self,
        name: str,
        version: int | None,
        *,
        ramp: tuple[float, ...] | None,
        actor: str,
        reason: str,
        policy: dict[str, Any] | None,
        expected_revision: int | None,
        skip_gate: bool,
        environment: str,
        from_environment: str | None,
    ) -> Route: ...


def start_rollout(
    registry: Registry,
    name: str,
    version: int | None,
    *,
    policy: Mapping[str, Any] | RolloutPolicy | None = None,
    ramp: str | Sequence[float] | None = None,
    actor: str,
    reason: str,
    expected_revision: int | None = None,
    store: LoopStore | None = None,
    skip_gate: bool = False,
    evals: EvalStore | None = None,
    environment: str = DEFAULT_ENVIRONMENT,
    from_environment: str | None = None,
    environments: Sequence[str] | None = None,
    principal: str | None = None,
    required_approvals: int = 0,
) -> Route:
    """Start canarying ``version`` of ``name``, judged by ``policy``; the new routing flag.

    ``policy`` is a policy document (validated here; nothing is written when it is invalid), a
    :class:`RolloutPolicy` already resolved (then ``ramp`` must be None), or None for the default
    policy. ``ramp`` follows the rules of the module docstring. ``reason`` is required (not blank).
    ``store`` holds the statistics that tell which signals are produced (default: the loop's tables
    of a local store; a control plane's registry is checked by the control plane). ``evals`` holds
    the evaluation runs the policy's gate reads (default: those of a local store; a control plane
    checks the gate behind its API, and ``skip_gate`` is passed on to it).

    The rollout is in ``environment``. With ``from_environment``, ``version`` may be None: the
    candidate is the version stable there (see the module docstring); ``environments``, when given,
    is the promotion order it must follow. ``principal`` is recorded in the audit record.

    ``required_approvals`` (the control plane's setting) refuses (409) a version without that many
    approvals by principals other than its author
    (:func:`~otel_prompt_canary.registry.reviews.check_approvals`); the audit reason names them.
    On a local store, the approvals and the flag a promotion comes from are read again inside the
    start's transaction, so that a request for changes, or a revert there, landing meanwhile stops it.
    """
    if isinstance(policy, RolloutPolicy):
        if ramp is not None:
            raise InvalidInputError("give the ramp to resolve_rollout_policy(), not with a resolved policy")
        resolved = policy
    else:
        resolved = resolve_rollout_policy(policy, ramp)
    if not reason or not reason.strip():
        raise InvalidInputError("a reason is required to start a rollout")
    validate_environment_name(environment)
    if environments is not None and environment not in environments:
        raise InvalidInputError(
            f"unknown environment {environment!r}: the environments are {', '.join(environments)}"
        )

    def ask_control_plane(candidate: int | None, *, promoted_from: str | None) -> Route:
        """The start, asked of the control plane behind ``registry`` (it checks what it holds)."""
        return cast(_ControlPlane, registry).start_rollout(
            name,
            candidate,
            ramp=resolved.ramp,
            actor=actor,
            reason=reason,
            policy=resolved.document,
            expected_revision=expected_revision,
            skip_gate=skip_gate,
            environment=environment,
            from_environment=promoted_from,
        )

    promotion: EnvironmentPromotion | None = None
    if from_environment is not None:
        validate_environment_name(from_environment)
        if environments is not None:
            check_promotion_order(environments, environment, from_environment)
        if not isinstance(registry, SqlRegistry):
            # A control plane reads both flags and checks its order behind its API (version None:
            # it takes the version stable there).
            return ask_control_plane(version, promoted_from=from_environment)
        promotion = promotion_candidate(
            registry, name, environment=environment, from_environment=from_environment, version=version
        )
        version = promotion.version
        reason += promotion.note
    if version is None:
        raise InvalidInputError("give the version to start, or the environment to promote it from")
    checks: list[StartCheck] = []
    if promotion is not None:
        checks.append(promotion.still_holds(name, environment))
    if required_approvals and isinstance(registry, SqlRegistry):
        reviews, candidate = SqlReviews(registry), version
        # Checked now, for a refusal before the gate's work, and again inside the start's transaction.
        check_approvals(reviews, name, candidate, required=required_approvals)
        checks.append(lambda _conn: check_approvals(reviews, name, candidate, required=required_approvals))
    if store is None and isinstance(registry, SqlRegistry):
        store = SqlLoopStore(registry)
    if store is not None and any(s.must_have_data for s in resolved.policy.signals):
        registry.get_route(name)  # an unknown prompt is NotFoundError, not "no one produces"
        check_signals_produced(resolved.policy, name, store.reported_signals(name))
    if evals is None and isinstance(registry, SqlRegistry):
        evals = SqlEvalStore(registry)
    gate = resolved.policy.gate
    checked: GateCheck | None = None
    if gate is not None and evals is not None:
        checked = check_gate(
            registry, evals, gate, name, version, skip_gate=skip_gate, environment=environment
        )
        reason += checked.note
    elif skip_gate and evals is None:
        # The control plane holds the runs and checks the gate: ask it to skip.
        return ask_control_plane(version, promoted_from=None)
    evidence: dict[str, JsonValue] = {}
    if checked is not None:
        evidence["gate"] = checked.evidence
    if promotion is not None:
        evidence["promotion"] = promotion.evidence
    extra: dict[str, Any] = {}
    if isinstance(registry, SqlRegistry):
        extra = {"evidence": evidence or None, "environment": environment, "principal": principal}
        extra["checks"] = tuple(checks)
    else:
        # A registry written before environments is asked as it knows, for the default environment.
        if environment != DEFAULT_ENVIRONMENT:
            extra["environment"] = environment
        if principal is not None:
            extra["principal"] = principal
    return registry.start_rollout(
        name,
        version,
        ramp=resolved.ramp,
        actor=actor,
        reason=reason,
        policy=resolved.document,
        expected_revision=expected_revision,
        **extra,
    )
