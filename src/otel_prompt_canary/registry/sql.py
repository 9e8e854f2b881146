"""The SQL registry: prompts, versions and the routing flag, on an SQLite file or PostgreSQL.

Every write is one transaction (:meth:`Database.write <otel_prompt_canary.registry.database.Database.write>`):
a push stores the version (and, for a new prompt, its routing flag); a transition moves the routing
flag with compare-and-set on ``revision``, updates the rollout and appends its audit record, or does
nothing at all. :meth:`SqlRegistry.flip` is that transition inside a caller's transaction, so that
other stores of the same database (the loop's alert log) can record why a flip happened in the same
commit.

Each environment has its own routing flag of each prompt. A push writes the flag of the default
environment (:data:`~otel_prompt_canary.names.DEFAULT_ENVIRONMENT`); in any other environment, a
prompt's flag *follows* the default environment's stable version (idle, no canary, the same
revision) until its first change there, which gives it a row of its own. So an environment added
later starts where the default one stands, and a router reading it sees revisions that only grow.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime

from pydantic import JsonValue
from sqlalchemy import Connection, func, select

from otel_prompt_canary.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RevisionMismatchError,
)
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry import rollout as machine
from otel_prompt_canary.registry import rows
from otel_prompt_canary.registry import schema as t
from otel_prompt_canary.registry.base import DEFAULT_MAX_TEMPLATE_BYTES
from otel_prompt_canary.registry.bounds import MAX_VERSION, check_integer, check_spec_size, check_storable
from otel_prompt_canary.registry.database import (
    Database,
    Raced,
    inserted_id,
    newest_first,
    open_database,
    utc_now,
)
from otel_prompt_canary.registry.diff import PromptDiff, diff_versions
from otel_prompt_canary.registry.models import (
    Action,
    AuditRecord,
    PromptSpec,
    PromptSummary,
    PromptVersion,
    PushResult,
    Rollout,
    RolloutState,
    Route,
    parse_ramp,
    validate_environment_name,
    validate_prompt_name,
)

__all__ = ["RevertCheck", "SqlRegistry", "StartCheck", "open_store"]

#: What a start checks inside its own transaction, on its connection, before it writes anything:
#: it raises to refuse the start, or returns a note the start's audit reason ends with ("" for none).
StartCheck = Callable[[Connection], str]
#: What a revert to a version of choice checks inside its transaction, before it writes anything:
#: given the connection, the flag before the revert and the version asked for, it raises to refuse.
RevertCheck = Callable[[Connection, Route, int], None]

_FLAG_CONTENDED = "the routing flag kept changing under this write; try again"


class SqlRegistry:
    """A :class:`~otel_prompt_canary.registry.base.Registry` on an SQLite file or PostgreSQL.

    Create it with :func:`open_store`. Safe to share between threads.
    """

    def __init__(self, database: Database, *, max_template_bytes: int = DEFAULT_MAX_TEMPLATE_BYTES) -> None:
        self.database = database
        self.max_template_bytes = max_template_bytes

    def __repr__(self) -> str:
        return f"SqlRegistry({self.database.url!r})"

    @property
    def url(self) -> str:
        """The store's URL, password hidden."""
        return self.database.url

    def close(self) -> None:
        """Release the connection pool."""
        self.database.close()

    def __enter__(self) -> SqlRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- prompts and versions -----------------------------------------------------------------

    def push(self, spec: PromptSpec, *, author: str | None = None) -> PushResult:
        """Store ``spec`` as a new version, or return the version with identical content.

        Its template, ``config``, ``tools`` and output schema are each at most
        ``max_template_bytes`` (:class:`~otel_prompt_canary.errors.TooLargeError` otherwise).
        """
        check_spec_size(spec, self.max_template_bytes)
        if author is not None:
            check_storable(author, "author")
        # Concurrent pushes of one prompt race for the next version number: the loser runs again.
        return self.database.write(
            lambda conn: self._push(conn, spec, author),
            contended=f"could not store a version of {spec.name!r}: too much concurrent pushing",
        )

    def _push(self, conn: Connection, spec: PromptSpec, author: str | None) -> PushResult:
        digest = spec.content_hash()
        existing = conn.execute(
            select(t.versions.c.body).where(
                t.versions.c.name == spec.name, t.versions.c.content_hash == digest
            )
        ).scalar()
        if existing is not None:
            return PushResult(version=PromptVersion.model_validate(existing), created=False)
        latest = conn.execute(
            select(func.max(t.versions.c.version)).where(t.versions.c.name == spec.name)
        ).scalar()
        now = utc_now()
        version = PromptVersion.from_spec(spec, version=(latest or 0) + 1, created_at=now, author=author)
        if latest is None:
            conn.execute(t.prompts.insert().values(name=spec.name, created_at=now))
        conn.execute(
            t.versions.insert().values(
                name=spec.name,
                version=version.version,
                content_hash=digest,
                body=version.model_dump(mode="json"),
                created_at=now,
            )
        )
        if latest is None:
            # The first version of a prompt is its stable version.
            first = Route(prompt=spec.name, stable_version=version.version, revision=1, updated_at=now)
            conn.execute(
                t.routes.insert().values(
                    environment=DEFAULT_ENVIRONMENT, prompt=spec.name, **rows.route_values(first)
                )
            )
        return PushResult(version=version, created=True)

    def list_prompts(
        self,
        *,
        after: str | None = None,
        limit: int | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
    ) -> list[PromptSummary]:
        """Every prompt with its newest version number and routing state in ``environment``, by name
        (the first ``limit`` ones whose name sorts after ``after``, when given)."""
        validate_environment_name(environment)
        query = (
            select(t.versions.c.name, func.max(t.versions.c.version), func.count())
            .group_by(t.versions.c.name)
            .order_by(t.versions.c.name)
        )
        if after is not None:
            query = query.where(t.versions.c.name > after)
        if limit is not None:
            query = query.limit(limit)
        with self.database.read() as conn:
            counts = conn.execute(query).all()
            # A page reads its own routes only; the whole list reads them all at once.
            names = [name for name, _, _ in counts] if limit is not None else None
            routes = {r.prompt: r for r in _routes(conn, environment, names=names)}
        return [
            PromptSummary(name=name, latest_version=latest, versions=n, route=routes[name])
            for name, latest, n in counts
        ]

    def list_versions(
        self, name: str, *, before: int | None = None, limit: int | None = None
    ) -> list[PromptVersion]:
        """Every version of ``name``, oldest first (the newest ``limit`` ones numbered below
        ``before``, when given)."""
        validate_prompt_name(name)
        query = newest_first(
            select(t.versions.c.body).where(t.versions.c.name == name),
            t.versions.c.version,
            before=before,
            limit=limit,
        )
        with self.database.read() as conn:
            result = [PromptVersion.model_validate(b) for b in conn.execute(query).scalars()]
            if not result and not self.prompt_exists(conn, name):
                raise NotFoundError(f"unknown prompt {name!r}")
        result.reverse()
        return result

    def get_version(self, name: str, version: int | None = None) -> PromptVersion:
        """One version of ``name``; the newest when ``version`` is None."""
        validate_prompt_name(name)
        with self.database.read() as conn:
            return self._version(conn, name, version)

    @classmethod
    def _version(cls, conn: Connection, name: str, version: int | None) -> PromptVersion:
        if version is not None:
            check_integer(version, "version", low=1, high=MAX_VERSION)
        query = select(t.versions.c.body).where(t.versions.c.name == name)
        if version is None:
            query = query.order_by(t.versions.c.version.desc()).limit(1)
        else:
            query = query.where(t.versions.c.version == version)
        body = conn.execute(query).scalar()
        if body is None:
            if version is None or not cls.prompt_exists(conn, name):
                raise NotFoundError(f"unknown prompt {name!r}")
            raise NotFoundError(f"prompt {name!r} has no version {version}")
        return PromptVersion.model_validate(body)

    @staticmethod
    def prompt_exists(conn: Connection, name: str) -> bool:
        """Whether ``name`` is a prompt of this store, read on ``conn``."""
        return conn.execute(select(t.prompts.c.name).where(t.prompts.c.name == name)).first() is not None

    def diff(self, name: str, a: int, b: int) -> PromptDiff:
        """What changed from version ``a`` to version ``b`` of ``name``."""
        validate_prompt_name(name)
        with self.database.read() as conn:
            return diff_versions(self._version(conn, name, a), self._version(conn, name, b))

    # -- the routing flag ---------------------------------------------------------------------

    def get_route(self, name: str, *, environment: str = DEFAULT_ENVIRONMENT) -> Route:
        """The routing flag of ``name`` in ``environment``."""
        validate_prompt_name(name)
        validate_environment_name(environment)
        with self.database.read() as conn:
            return self.route_in(conn, name, environment)

    def list_routes(self, *, environment: str = DEFAULT_ENVIRONMENT) -> list[Route]:
        """The routing flags of every prompt in ``environment``, by name."""
        validate_environment_name(environment)
        with self.database.read() as conn:
            return _routes(conn, environment)

    @staticmethod
    def route_in(conn: Connection, name: str, environment: str = DEFAULT_ENVIRONMENT) -> Route:
        """The routing flag of ``name`` in ``environment`` read on ``conn`` (:class:`NotFoundError`
        for an unknown prompt)."""
        found = _routes(conn, environment, names=[name])
        if not found:
            raise NotFoundError(f"unknown prompt {name!r}")
        return found[0]

    def start_rollout(
        self,
        name: str,
        version: int,
        *,
        ramp: tuple[float, ...] | None = None,
        actor: str,
        reason: str = "",
        policy: dict[str, JsonValue] | None = None,
        expected_revision: int | None = None,
        evidence: Mapping[str, JsonValue] | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
        principal: str | None = None,
        checks: tuple[StartCheck, ...] = (),
    ) -> Route:
        """Start canarying ``version`` of ``name`` in ``environment`` along ``ramp`` (default
        1,5,20,50,100 percent); ``principal``, when given, is recorded in the audit record.

        Each of ``checks`` runs inside the start's transaction, before anything is written (again
        when the write is retried), so that what it checks (the version's approvals, the flag a
        promotion comes from) cannot change between the check and the start; a check refuses by
        raising, and its note ends the audit reason.

        ``policy`` is stored with the rollout as it is: the store checks nothing about policies. Start
        rollouts with :func:`otel_prompt_canary.loop.start_rollout`, which resolves and validates the
        policy first. The start's audit record keeps ``{"policy": policy}`` as evidence, and every
        entry of ``evidence`` beside it (what the start checked: its evaluation gate, say); a
        ``policy`` entry in ``evidence`` is refused. ``evidence`` is this store's: the
        :class:`~otel_prompt_canary.registry.base.Registry` interface does not take it.
        """
        validate_prompt_name(name)
        validate_environment_name(environment)
        steps = parse_ramp(ramp)
        _check_actor(actor)
        _check_principal(principal)
        check_integer(version, "version", low=1, high=MAX_VERSION)
        _check_expected_bound(expected_revision)
        check_storable(reason, "reason")
        check_storable(policy, "policy")
        recorded: dict[str, JsonValue] = {"policy": policy}
        if evidence is not None:
            if "policy" in evidence:
                raise InvalidInputError(
                    "a start's evidence holds its policy already: name the entry otherwise"
                )
            check_storable(dict(evidence), "evidence")
            recorded.update(evidence)

        def attempt(conn: Connection) -> Route:
            before = self.route_in(conn, name, environment)
            _check_expected(before, expected_revision)
            self._version(conn, name, version)  # NotFoundError for an unknown version
            noted = reason + "".join(check(conn) for check in checks)
            check_storable(noted, "reason")
            rollout_id = uuid.uuid4().hex[:16]
            after = machine.start(before, candidate=version, ramp=steps, rollout_id=rollout_id, now=utc_now())
            _compare_and_set(conn, before, after)
            conn.execute(
                t.rollouts.insert().values(
                    rollout_id=rollout_id,
                    prompt=name,
                    candidate_version=version,
                    baseline_version=before.stable_version,
                    ramp=list(steps),
                    state=after.state.value,
                    step=after.step,
                    started_at=after.updated_at,
                    ended_at=None,
                    started_by=actor,
                    policy=policy,
                    environment=environment,
                )
            )
            _audit(conn, before, after, Action.START, actor, noted, recorded, principal)
            return after

        return self.database.write(attempt, contended=_FLAG_CONTENDED)

    def transition(
        self,
        name: str,
        action: Action,
        *,
        actor: str,
        reason: str,
        evidence: JsonValue = None,
        expected_revision: int | None = None,
        rollout_id: str | None = None,
        to_version: int | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
        principal: str | None = None,
        revert_check: RevertCheck | None = None,
    ) -> Route:
        """Apply ``action`` to the rollout of ``name`` in ``environment`` (see :class:`~.base.Registry`).

        ``revert_check`` runs, inside the transaction, on a ``revert`` to a ``to_version`` of
        choice (the default target, the promoted rollout's baseline, was stable): with approvals
        required, :func:`otel_prompt_canary.loop.start.reviewed_reverts` refuses a version that was
        never stable in ``environment`` and is not approved, so that a revert is no way around the
        review.
        """
        validate_prompt_name(name)
        validate_environment_name(environment)
        action = Action(action)
        _check_actor(actor)
        _check_principal(principal)
        if not reason or not reason.strip():
            raise InvalidInputError(f"a reason is required to {action} a rollout")
        check_storable(reason, "reason")
        check_storable(evidence, "evidence")
        _check_expected_bound(expected_revision)
        if rollout_id is not None:
            check_storable(rollout_id, "rollout_id")
        if to_version is not None:
            check_integer(to_version, "to_version", low=1, high=MAX_VERSION)

        def attempt(conn: Connection) -> Route:
            before = self.route_in(conn, name, environment)
            _check_expected(before, expected_revision)
            if rollout_id is not None and rollout_id != before.rollout_id:
                raise ConflictError(
                    f"rollout {rollout_id} is not the current rollout of {name!r}{_in(environment)} "
                    f"(current: {before.rollout_id or 'none'})"
                )
            if action is Action.REVERT and to_version is not None and revert_check is not None:
                machine.check_allowed(before, action)  # the state first: only a promotion is reverted
                self._version(conn, name, to_version)  # NotFoundError for an unknown version
                revert_check(conn, before, to_version)
            after, _ = self.flip(
                conn,
                before,
                action,
                actor=actor,
                reason=reason,
                evidence=evidence,
                to_version=to_version,
                principal=principal,
            )
            return after

        return self.database.write(attempt, contended=_FLAG_CONTENDED)

    @staticmethod
    def flip(
        conn: Connection,
        before: Route,
        action: Action,
        *,
        actor: str,
        reason: str,
        evidence: JsonValue,
        now: datetime | None = None,
        to_version: int | None = None,
        principal: str | None = None,
    ) -> tuple[Route, int]:
        """Move the routing flag ``before`` (of its environment) by ``action`` inside the
        transaction of ``conn``; ``principal`` is recorded in the audit record.

        Compare-and-set on ``before.revision`` (raises :class:`~.database.Raced` when the flag moved,
        so that :meth:`Database.write <.database.Database.write>` runs the write again), the rollout's
        state, and the audit record, whose id is returned with the new route. Raises
        :class:`~otel_prompt_canary.errors.IllegalTransitionError` when the state forbids ``action``.

        A ``revert`` makes ``to_version`` stable, by default the promoted rollout's baseline
        (:class:`~otel_prompt_canary.errors.NotFoundError` for a version that does not exist); its
        audit evidence is ``{"from_version", "to_version"}``, plus ``"evidence"`` when given.
        """
        if action is Action.REVERT:
            machine.check_allowed(before, action)  # the state first: an idle prompt has no baseline
            to_version, evidence = SqlRegistry._revert_target(conn, before, to_version, evidence)
        after = machine.apply(before, action, now=now or utc_now(), to_version=to_version)
        _compare_and_set(conn, before, after)
        finished = after.state in (RolloutState.PROMOTED, RolloutState.ROLLED_BACK)
        conn.execute(
            t.rollouts.update()
            .where(t.rollouts.c.rollout_id == before.rollout_id)
            .values(state=after.state.value, step=after.step, ended_at=after.updated_at if finished else None)
        )
        return after, _audit(conn, before, after, action, actor, reason, evidence, principal)

    @staticmethod
    def was_stable(conn: Connection, route: Route, version: int) -> bool:
        """Whether ``version`` is or has been the stable version of ``route``'s prompt in its
        environment, read on ``conn``: its current one, the prompt's first version (stable from its
        push, in every environment), or one an audit record there left stable."""
        if version in (route.stable_version, 1):
            return True
        a = t.audit.c
        found = conn.execute(
            select(a.id)
            .where(a.prompt == route.prompt, a.environment == route.environment, a.stable_version == version)
            .limit(1)
        ).first()
        return found is not None

    @classmethod
    def _revert_target(
        cls, conn: Connection, before: Route, to_version: int | None, evidence: JsonValue
    ) -> tuple[int, JsonValue]:
        """The version a revert of ``before`` makes stable, and the evidence its audit record keeps."""
        if to_version is None:
            assert before.rollout_id is not None  # a promoted flag names its rollout
            promoted = cls.rollout_in(conn, before.prompt, before.rollout_id)
            if promoted is None:
                raise NotFoundError(f"prompt {before.prompt!r} has no rollout {before.rollout_id!r}")
            to_version = promoted.baseline_version
        cls._version(conn, before.prompt, to_version)  # NotFoundError for an unknown version
        recorded: dict[str, JsonValue] = {"from_version": before.stable_version, "to_version": to_version}
        if evidence is not None:
            recorded["evidence"] = evidence
        return to_version, recorded

    # -- rollouts and the audit trail ---------------------------------------------------------

    def get_rollout(
        self, name: str, rollout_id: str | None = None, *, environment: str = DEFAULT_ENVIRONMENT
    ) -> Rollout:
        """The rollout ``rollout_id`` of ``name``, or its current (or last) rollout in ``environment``.

        A rollout id names one rollout whatever its environment (ids are unique across them): the
        rollout's ``environment`` says which it is.
        """
        validate_prompt_name(name)
        validate_environment_name(environment)
        if rollout_id is not None:
            check_storable(rollout_id, "rollout_id")
        with self.database.read() as conn:
            wanted = rollout_id or self.route_in(conn, name, environment).rollout_id
            if wanted is None:
                raise NotFoundError(f"prompt {name!r} has never had a rollout{_in(environment)}")
            found = self.rollout_in(conn, name, wanted)
        if found is None:
            raise NotFoundError(f"prompt {name!r} has no rollout {wanted!r}")
        return found

    @staticmethod
    def rollout_in(conn: Connection, prompt: str, rollout_id: str) -> Rollout | None:
        """The rollout ``rollout_id`` of ``prompt`` read on ``conn``; None when there is none."""
        row = (
            conn.execute(
                select(t.rollouts).where(t.rollouts.c.rollout_id == rollout_id, t.rollouts.c.prompt == prompt)
            )
            .mappings()
            .first()
        )
        return None if row is None else rows.rollout(row)

    def history(
        self,
        name: str,
        *,
        limit: int | None = None,
        before: int | None = None,
        environment: str = DEFAULT_ENVIRONMENT,
    ) -> list[AuditRecord]:
        """The audit records of ``name`` in ``environment``, oldest first (the newest ``limit`` ones
        when given; with ``before``, only records whose id is smaller)."""
        validate_prompt_name(name)
        validate_environment_name(environment)
        with self.database.read() as conn:
            self.route_in(conn, name, environment)
            query = newest_first(
                select(t.audit).where(t.audit.c.prompt == name, t.audit.c.environment == environment),
                t.audit.c.id,
                before=before,
                limit=limit,
            )
            newest = list(conn.execute(query).mappings())
        return [rows.audit_record(row) for row in reversed(newest)]


# -- helpers --------------------------------------------------------------------------------


def _routes(conn: Connection, environment: str, *, names: list[str] | None = None) -> list[Route]:
    """The flags of ``environment`` (of ``names`` only, when given), by prompt: its own rows, and
    for the prompts it has none of, the flag that follows the default environment's."""
    query = select(t.routes).where(t.routes.c.environment.in_({environment, DEFAULT_ENVIRONMENT}))
    if names is not None:
        query = query.where(t.routes.c.prompt.in_(names))
    own: dict[str, Route] = {}
    default: dict[str, Route] = {}
    for row in conn.execute(query).mappings():
        (own if row["environment"] == environment else default)[row["prompt"]] = rows.route(row)
    found = {prompt: own.get(prompt) or _following(route, environment) for prompt, route in default.items()}
    found.update(own)
    return [found[prompt] for prompt in sorted(found)]


def _following(default: Route, environment: str) -> Route:
    """The flag of a prompt in ``environment`` that has never changed there: the default
    environment's stable version, idle, at the default flag's revision."""
    return Route(
        prompt=default.prompt,
        environment=environment,
        stable_version=default.stable_version,
        revision=default.revision,
        updated_at=default.updated_at,
    )


def _compare_and_set(conn: Connection, before: Route, after: Route) -> None:
    """Write ``after`` only if the row is still at ``before.revision``; else :class:`Raced`.

    A flag that followed the default environment's gets its row here, if the default flag it
    followed has not moved meanwhile.
    """
    r = t.routes.c
    result = conn.execute(
        t.routes.update()
        .where(
            r.environment == before.environment,
            r.prompt == before.prompt,
            r.revision == before.revision,
        )
        .values(**rows.route_values(after))
    )
    if result.rowcount == 1:
        return
    if before.environment != DEFAULT_ENVIRONMENT:
        followed = conn.execute(
            select(r.revision).where(r.environment == DEFAULT_ENVIRONMENT, r.prompt == before.prompt)
        ).scalar()
        own = conn.execute(
            select(r.revision).where(r.environment == before.environment, r.prompt == before.prompt)
        ).first()
        if own is None and followed == before.revision:
            # A concurrent first write of the same flag makes this insert fail: the write runs again.
            conn.execute(
                t.routes.insert().values(
                    environment=before.environment, prompt=before.prompt, **rows.route_values(after)
                )
            )
            return
    raise Raced()


def _audit(
    conn: Connection,
    before: Route | None,
    after: Route,
    action: Action,
    actor: str,
    reason: str,
    evidence: JsonValue,
    principal: str | None = None,
) -> int:
    result = conn.execute(
        t.audit.insert().values(
            prompt=after.prompt,
            environment=after.environment,
            principal=principal,
            rollout_id=after.rollout_id,
            action=action.value,
            actor=actor,
            reason=reason,
            evidence=evidence,
            from_state=None if before is None else before.state.value,
            to_state=after.state.value,
            from_revision=None if before is None else before.revision,
            to_revision=after.revision,
            stable_version=after.stable_version,
            canary_version=after.canary_version,
            canary_weight_bp=after.canary_weight_bp,
            at=after.updated_at,
        )
    )
    return inserted_id(result)


def _check_expected(route: Route, expected_revision: int | None) -> None:
    if expected_revision is not None and expected_revision != route.revision:
        raise RevisionMismatchError(
            f"routing flag of {route.prompt!r}{_in(route.environment)} is at revision {route.revision}, "
            f"not {expected_revision}: it changed meanwhile; read it again"
        )


def _check_actor(actor: str) -> None:
    if not actor or not actor.strip() or len(actor) > 256:
        raise InvalidInputError("actor must be a non-empty name of at most 256 characters")
    check_storable(actor, "actor")


def _in(environment: str) -> str:
    """`` in staging`` for messages; nothing for the default environment, which users of one
    environment never name."""
    return "" if environment == DEFAULT_ENVIRONMENT else f" in {environment}"


def _check_principal(principal: str | None) -> None:
    if principal is not None:
        if not principal or len(principal) > 256:
            raise InvalidInputError("principal must be a non-empty name of at most 256 characters")
        check_storable(principal, "principal")


def _check_expected_bound(expected_revision: int | None) -> None:
    if expected_revision is not None:
        check_integer(expected_revision, "expected_revision", low=1)


def open_store(
    target: str | os.PathLike[str], *, max_template_bytes: int = DEFAULT_MAX_TEMPLATE_BYTES
) -> SqlRegistry:
    """Open (creating or upgrading the schema as needed) the registry at a path or database URL.

    ``target`` is a file path or ``sqlite:///PATH`` (SQLite, the embedded default) or a
    ``postgresql://user:pass@host/db`` URL (needs the ``postgres`` extra).
    """
    return SqlRegistry(open_database(target), max_template_bytes=max_template_bytes)
