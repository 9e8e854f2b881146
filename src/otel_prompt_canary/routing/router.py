"""The prompt router: applies each prompt's routing flag to live traffic.

:class:`PromptRouter` keeps an in-memory copy of every routing flag, refreshed in the background from
the registry store or the control plane, and answers :meth:`PromptRouter.select` from memory: sticky
per unit key, no I/O, no lock, and fail-safe (see docs/routing.md).
"""

from __future__ import annotations

import os
import re
import ssl
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TypeAlias

from pydantic import ValidationError

from otel_prompt_canary.errors import InvalidInputError, NotFoundError
from otel_prompt_canary.feedback import FeedbackKeys
from otel_prompt_canary.names import TOKEN_VARIABLE
from otel_prompt_canary.registry.base import Registry, store_url
from otel_prompt_canary.registry.models import Message, PromptSpec, Route, validate_prompt_name
from otel_prompt_canary.routing.cache import RouteCache, Snapshot
from otel_prompt_canary.routing.cohort import STABLE
from otel_prompt_canary.routing.control_plane import DEFAULT_MAX_ANSWER_BYTES, is_remote
from otel_prompt_canary.routing.control_planes import ControlPlane, announce
from otel_prompt_canary.routing.environments import resolve_environment
from otel_prompt_canary.routing.http_source import (
    DEFAULT_LONG_POLL_WAIT,
    DEFAULT_TIMEOUT,
    HttpSource,
)
from otel_prompt_canary.routing.selection import FALLBACK_VERSION, Arm, Selection
from otel_prompt_canary.routing.source import RouteSource
from otel_prompt_canary.routing.store_source import DEFAULT_POLL_INTERVAL, StoreSource

__all__ = ["DEFAULT_INITIAL_TIMEOUT", "FallbackTemplate", "PromptRouter", "RouterStatus"]

#: Seconds the constructor waits for the first routing state before going on without it.
DEFAULT_INITIAL_TIMEOUT = 2.0

#: A fallback: a text template, a list of ``{role, content}`` messages, or a full PromptSpec.
FallbackTemplate: TypeAlias = str | Sequence[Mapping[str, str]] | PromptSpec

_PASSWORD = re.compile(r"(://[^:/@]*):[^@/]*@")


@dataclass(frozen=True)
class RouterStatus:
    """Where the router reads routes from and how fresh its state is (for health checks)."""

    #: The control-plane URL or the store the routes are read from (password hidden).
    source: str
    #: True once the first routing state was read.
    ready: bool
    #: The prompts the router has routing state for, by name.
    prompts: tuple[str, ...]
    #: When routes were last read successfully.
    last_success: datetime | None
    #: Why the last read failed (unreachable, deadline passed, answer too large, HTTP 5xx...), or
    #: what of the last read could not be applied (a version not readable yet, a malformed route);
    #: None once a read is applied in full.
    last_error: str | None
    #: Rollouts seen rolled back: their canaries are never routed again by this router.
    rolled_back: frozenset[str]


def _fallback_arm(name: str, value: FallbackTemplate) -> Arm:
    validate_prompt_name(name)
    where = f"fallback for prompt {name!r}"
    if isinstance(value, PromptSpec):
        if value.name != name:
            raise InvalidInputError(f"{where} is a PromptSpec named {value.name!r}")
        messages = None if value.messages is None else [m.model_dump() for m in value.messages]
        return Arm(
            prompt_name=name,
            version=FALLBACK_VERSION,
            cohort=STABLE,
            rollout_id=None,
            template=value.template,
            messages=messages,
            model=value.model,
            config=value.config,
        )
    if isinstance(value, str):
        if not value.strip():
            raise InvalidInputError(f"{where} is an empty template")
        return Arm(prompt_name=name, version=FALLBACK_VERSION, cohort=STABLE, rollout_id=None, template=value)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        try:
            parsed = [Message.model_validate(m) for m in value]
        except ValidationError as exc:
            raise InvalidInputError(
                f"{where}: each message needs a 'role' (system, developer, user, assistant or tool) "
                f"and a 'content' string ({exc.error_count()} error(s): {exc.errors()[0]['msg']})"
            ) from None
        if not parsed:
            raise InvalidInputError(f"{where} has no messages")
        return Arm(
            prompt_name=name,
            version=FALLBACK_VERSION,
            cohort=STABLE,
            rollout_id=None,
            messages=[m.model_dump() for m in parsed],
        )
    raise InvalidInputError(
        f"{where} must be a text template, a list of {{role, content}} messages or a PromptSpec, "
        f"not {type(value).__name__}"
    )


def _stop(source: RouteSource, withdraw: Callable[[], None] | None) -> None:
    if withdraw is not None:
        withdraw()
    source.close()


class PromptRouter:
    """Routes each call of a prompt to its stable or canary version.

    ``registry`` says where routing flags come from:

    - an ``http://`` or ``https://`` URL: the control plane, long-polled over HTTP;
    - a filesystem path or a ``sqlite:///...`` / ``postgresql://...`` URL: the registry store, read
      directly and polled every ``poll_interval`` seconds;
    - an open :class:`~otel_prompt_canary.registry.base.Registry` (not closed by the router).

    ``fallbacks`` maps a prompt name to the template served while the registry holds no state for
    that prompt (a cold start with the registry unreachable, say): a text template, a list of
    ``{role, content}`` messages, or a :class:`~otel_prompt_canary.registry.models.PromptSpec`.
    Fallback selections have version ``0`` and cohort ``stable``.

    With a control plane, every request has a total deadline: ``timeout`` seconds (connecting,
    sending, and reading the whole answer), ``long_poll_wait + timeout`` for a long poll; an answer
    over ``max_answer_bytes`` (16 MiB) is refused. Every failure shows in ``status().last_error``
    while the last known routes stay in force, and once the control plane answers again a change
    reaches the router within ``long_poll_wait + timeout`` seconds.

    ``token`` is the control plane credential (default: ``OTEL_PROMPT_CANARY_TOKEN`` from the
    environment): sent with every request, it is also the reporting credential that signs the
    selections' feedback keys. A router on a control plane makes it known to in-app reporting
    (:mod:`~otel_prompt_canary.routing.control_planes`) until it is closed.

    ``environment`` is the environment whose routing flags the router follows (default:
    ``OTEL_PROMPT_CANARY_ENVIRONMENT``, else ``production``; docs/environments.md).

    The constructor waits up to ``initial_timeout`` seconds for the first routing state, then returns
    even if the registry is unreachable; reading continues on a daemon thread until :meth:`close`.
    """

    def __init__(
        self,
        registry: str | os.PathLike[str] | Registry,
        *,
        fallbacks: Mapping[str, FallbackTemplate] | None = None,
        initial_timeout: float = DEFAULT_INITIAL_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        long_poll_wait: float = DEFAULT_LONG_POLL_WAIT,
        timeout: float = DEFAULT_TIMEOUT,
        token: str | None = None,
        verify: ssl.SSLContext | str | bool = True,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        environment: str | None = None,
    ) -> None:
        #: The environment whose routing flags this router follows.
        self.environment = resolve_environment(environment)
        self._fallbacks: dict[str, Arm] = {
            name: _fallback_arm(name, value) for name, value in (fallbacks or {}).items()
        }
        credential = token if token is not None else os.environ.get(TOKEN_VARIABLE) or None
        self._cache = RouteCache(FeedbackKeys([credential]))
        self._source = self._make_source(
            registry,
            poll_interval=poll_interval,
            long_poll_wait=long_poll_wait,
            timeout=timeout,
            token=credential,
            verify=verify,
            max_answer_bytes=max_answer_bytes,
        )
        self._source.start()
        withdraw = None
        if isinstance(self._source, HttpSource):
            plane = ControlPlane(
                self._source.description,
                token=credential,
                verify=verify,
                timeout=timeout,
                environment=self.environment,
            )
            withdraw = announce(plane, self._cache.knows_rollout)
        # A router dropped without close() (or alive at exit) still stops its thread.
        self._finalizer = weakref.finalize(self, _stop, self._source, withdraw)
        if initial_timeout > 0:
            self._cache.ready.wait(initial_timeout)

    def _make_source(
        self,
        registry: str | os.PathLike[str] | Registry,
        *,
        poll_interval: float,
        long_poll_wait: float,
        timeout: float,
        token: str | None,
        verify: ssl.SSLContext | str | bool,
        max_answer_bytes: int,
    ) -> RouteSource:
        if isinstance(registry, str) and is_remote(registry):
            return HttpSource(
                self._cache,
                registry,
                token=token,
                long_poll_wait=long_poll_wait,
                timeout=timeout,
                verify=verify,
                max_answer_bytes=max_answer_bytes,
                environment=self.environment,
            )
        if isinstance(registry, str | os.PathLike):
            location = os.fspath(registry)
            store_url(location)  # refuse an unsupported scheme now, not on the background thread

            def open_registry() -> Registry:
                from otel_prompt_canary.registry import open_store

                store: Registry = open_store(location)
                return store

            return StoreSource(
                self._cache,
                open_registry,
                description=_PASSWORD.sub(r"\1:***@", location),
                owns_registry=True,
                poll_interval=poll_interval,
                environment=self.environment,
            )
        if isinstance(registry, Registry):
            opened = registry
            url = getattr(registry, "url", None)  # SqlRegistry's URL, password hidden
            return StoreSource(
                self._cache,
                lambda: opened,
                description=url if isinstance(url, str) else type(registry).__name__,
                owns_registry=False,
                poll_interval=poll_interval,
                environment=self.environment,
            )
        raise TypeError(
            "registry must be a control-plane URL (http:// or https://), a store path or URL "
            f"(sqlite:///, postgresql://), or a Registry object, not {type(registry).__name__}"
        )

    def select(self, prompt_name: str, unit_key: str | None = None) -> Selection:
        """The version of ``prompt_name`` to use for this call, and its cohort.

        With a ``unit_key`` (user, session or account id) the choice is sticky for the unit during a
        rollout; without one it is random. Never does I/O. Raises
        :class:`~otel_prompt_canary.errors.NotFoundError` only for a prompt the router has no state
        and no fallback for.
        """
        choose = self._cache.snapshot.choosers.get(prompt_name)
        if choose is not None:
            return choose(unit_key)
        fallback = self._fallbacks.get(prompt_name)
        if fallback is not None:
            return Selection(fallback, unit_key)
        raise NotFoundError(self._no_state_message(prompt_name))

    def _no_state_message(self, prompt_name: str) -> str:
        hint = f"pass fallbacks={{{prompt_name!r}: <template>}} to PromptRouter to serve a default"
        if not self._cache.ready.is_set():
            why = f" ({self._cache.last_error})" if self._cache.last_error else ""
            return (
                f"no routing state for prompt {prompt_name!r}: the registry at "
                f"{self._source.description} has not been read yet{why}; {hint}"
            )
        return (
            f"prompt {prompt_name!r} is not in the registry at {self._source.description} (or its "
            f"versions cannot be read) and has no fallback; {hint}"
        )

    def snapshot(self) -> Snapshot:
        """The routing the router applies now: an immutable view, replaced (never changed) on updates.

        Its ``entries`` map each prompt to its stable and canary versions; compare snapshots by
        identity to notice a change.
        """
        return self._cache.snapshot

    def route(self, prompt_name: str) -> Route | None:
        """The last routing flag read for ``prompt_name`` (as the registry sent it), or None."""
        entry = self._cache.snapshot.entries.get(prompt_name)
        return None if entry is None else entry.route

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the first routing state has been read; False if ``timeout`` passed first."""
        return self._cache.ready.wait(timeout)

    def status(self) -> RouterStatus:
        """Where routes come from, and how fresh they are."""
        last = self._cache.last_success
        return RouterStatus(
            source=self._source.description,
            ready=self._cache.ready.is_set(),
            prompts=tuple(sorted(self._cache.snapshot.entries)),
            last_success=None if last is None else datetime.fromtimestamp(last, UTC),
            last_error=self._cache.last_error,
            rolled_back=self._cache.rolled_back,
        )

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (selection keeps working on the last state)."""
        return self._source.closed

    def close(self) -> None:
        """Stop the background reads and release connections; idempotent.

        :meth:`select` keeps answering from the last known state afterwards.
        """
        self._finalizer()

    def __enter__(self) -> PromptRouter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "ready" if self._cache.ready.is_set() else "starting"
        return (
            f"PromptRouter(registry={self._source.description!r}, environment={self.environment!r}, {state})"
        )
