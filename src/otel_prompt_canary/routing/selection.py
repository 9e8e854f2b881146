"""What the router hands the application: a :class:`Selection` of one prompt version for one call.

A selection names the prompt, the version and the cohort it was routed to, renders the template, and
can be made the *current* selection in the OpenTelemetry context so that instrumentation tags the LLM
call it wraps::

    with router.select("support-reply", unit_key=user_id) as selection:
        messages = selection.render(question=question)
        client.chat.completions.create(model=selection.model or "gpt-4.1-mini", messages=messages)

:func:`current_selection` returns the innermost selection entered in the current context (thread or
asyncio task), or None.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Final, Literal, final

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from pydantic import JsonValue

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.feedback import FeedbackKeys
from otel_prompt_canary.registry.models import PromptVersion
from otel_prompt_canary.registry.template import render_text
from otel_prompt_canary.routing.cohort import Cohort

__all__ = ["FALLBACK_VERSION", "Arm", "Selection", "current_selection"]

#: The ``version`` of a selection served from an application-supplied fallback template.
FALLBACK_VERSION: Final = 0

_SELECTION_KEY: Final = otel_context.create_key("prompt_canary.selection")
# One stack of attach tokens per context (thread or asyncio task), so that the same Selection may be
# entered in several threads at once and nested selections detach in order.
_TOKENS: ContextVar[tuple[Token[Context], ...]] = ContextVar("prompt_canary_selection_tokens", default=())


@final
class Arm:
    """One side of a split: the version served to one cohort of one prompt, under one rollout.

    Built once per snapshot and shared by every selection routed to it, so that selecting costs one
    small object.
    """

    __slots__ = (
        "_messages",
        "_template",
        "cohort",
        "config",
        "feedback_keys",
        "model",
        "prompt_name",
        "prompt_version",
        "rollout_id",
        "version",
    )

    def __init__(
        self,
        *,
        prompt_name: str,
        version: int,
        cohort: Cohort,
        rollout_id: str | None,
        prompt_version: PromptVersion | None = None,
        template: str | None = None,
        messages: Sequence[Mapping[str, str]] | None = None,
        model: str | None = None,
        config: Mapping[str, JsonValue] | None = None,
        feedback_keys: FeedbackKeys | None = None,
    ) -> None:
        self.prompt_name = prompt_name
        self.version = version
        self.cohort: Cohort = cohort
        self.rollout_id = rollout_id
        self.prompt_version = prompt_version
        self._template = template
        self._messages = (
            None
            if messages is None
            else tuple({"role": m["role"], "content": m["content"]} for m in messages)
        )
        self.model = model
        self.config: dict[str, JsonValue] = dict(config or {})
        #: What mints the feedback keys of this arm's selections (None: they have none).
        self.feedback_keys = feedback_keys

    @classmethod
    def of_version(
        cls,
        pv: PromptVersion,
        cohort: Cohort,
        rollout_id: str | None,
        feedback_keys: FeedbackKeys | None = None,
    ) -> Arm:
        """The arm serving registry version ``pv`` to ``cohort``."""
        return cls(
            prompt_name=pv.name,
            version=pv.version,
            cohort=cohort,
            rollout_id=rollout_id,
            prompt_version=pv,
            model=pv.model,
            config=pv.config,
            feedback_keys=feedback_keys,
        )

    def feedback_key(self) -> str | None:
        """A new feedback key for a call served by this arm; None without a rollout (or a minter)."""
        keys, rollout_id = self.feedback_keys, self.rollout_id
        if keys is None or rollout_id is None:
            return None
        try:
            return keys.mint(self.prompt_name, self.version, self.cohort, rollout_id)
        except InvalidInputError:  # a name too long for a key: no feedback for this prompt
            return None

    @property
    def is_chat(self) -> bool:
        """True for a chat (messages) template, False for a text template."""
        if self.prompt_version is not None:
            return self.prompt_version.messages is not None
        return self._messages is not None

    def render(self, variables: Mapping[str, object]) -> str | list[dict[str, str]]:
        """The rendered text, or the rendered ``{role, content}`` messages."""
        if self.prompt_version is not None:
            return self.prompt_version.render(**variables)
        if self._template is not None:
            return render_text(self._template, variables)
        return [
            {"role": m["role"], "content": render_text(m["content"], variables)} for m in self._messages or ()
        ]

    def __repr__(self) -> str:
        return (
            f"Arm(prompt_name={self.prompt_name!r}, version={self.version}, "
            f"cohort={self.cohort!r}, rollout_id={self.rollout_id!r})"
        )


@final
class Selection:
    """The version of a prompt chosen for one call, with its cohort and rollout.

    ``version`` is the registry version number, or ``0`` (:data:`FALLBACK_VERSION`) when the
    application's fallback template is served because the registry holds no state for the prompt.
    ``rollout_id`` is set while a rollout is active (state ``ramping`` or ``paused``), on both
    cohorts, and None otherwise. Use the selection as a context manager to make it current (see
    :func:`current_selection`).
    """

    __slots__ = ("_arm", "_feedback_key", "unit_key")

    _feedback_key: str | None

    def __init__(self, arm: Arm, unit_key: str | None) -> None:
        self._arm = arm
        #: The unit key the call was routed by (None: routed at random).
        self.unit_key = unit_key

    @property
    def prompt_name(self) -> str:
        """The prompt's name."""
        return self._arm.prompt_name

    @property
    def version(self) -> int:
        """The version number, ``0`` for the application's fallback template."""
        return self._arm.version

    @property
    def cohort(self) -> Cohort:
        """``"stable"`` or ``"canary"``."""
        return self._arm.cohort

    @property
    def rollout_id(self) -> str | None:
        """The active rollout this call was routed by, or None when no rollout is active."""
        return self._arm.rollout_id

    @property
    def feedback_key(self) -> str | None:
        """This call's feedback key, or None when no rollout is active.

        Store it with the answer; later, in any process, ``record_feedback(key, score)`` (Python) or
        ``POST /v1/feedback`` counts a user's feedback on the answer in this call's rollout and
        cohort. URL-safe and signed with the reporting credential (``token``, else
        ``OTEL_PROMPT_CANARY_TOKEN``): an end user can neither forge nor alter it. Made on first
        read, then the same for this selection (docs/reporting.md).
        """
        try:
            return self._feedback_key
        except AttributeError:  # selections are made without __init__: the slot starts unset
            key = self._feedback_key = self._arm.feedback_key()
            return key

    @property
    def is_fallback(self) -> bool:
        """True when the application's fallback template is served."""
        return self._arm.prompt_version is None

    @property
    def prompt_version(self) -> PromptVersion | None:
        """The registry version, or None for the fallback template."""
        return self._arm.prompt_version

    @property
    def model(self) -> str | None:
        """The model the version was written for, if it names one."""
        return self._arm.model

    @property
    def config(self) -> dict[str, JsonValue]:
        """A copy of the version's model configuration (temperature, max_tokens...)."""
        return copy.deepcopy(self._arm.config)

    @property
    def is_chat(self) -> bool:
        """True when :meth:`render` returns chat messages rather than text."""
        return self._arm.is_chat

    def render(self, **variables: object) -> str | list[dict[str, str]]:
        """Render the template: a string for a text template, ``{role, content}`` dicts for chat.

        Raises :class:`~otel_prompt_canary.errors.TemplateError` naming any missing variable; extra
        variables are ignored.
        """
        return self._arm.render(variables)

    def __enter__(self) -> Selection:
        token = otel_context.attach(otel_context.set_value(_SELECTION_KEY, self))
        _TOKENS.set((*_TOKENS.get(), token))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        tokens = _TOKENS.get()
        if tokens:
            _TOKENS.set(tokens[:-1])
            otel_context.detach(tokens[-1])
        return False

    def _key(self) -> tuple[str, int, str, str | None, str | None]:
        arm = self._arm
        return (arm.prompt_name, arm.version, arm.cohort, arm.rollout_id, self.unit_key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Selection):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        arm = self._arm
        return (
            f"Selection(prompt_name={arm.prompt_name!r}, version={arm.version}, "
            f"cohort={arm.cohort!r}, rollout_id={arm.rollout_id!r}, unit_key={self.unit_key!r})"
        )


def current_selection() -> Selection | None:
    """The innermost :class:`Selection` entered in the current context, or None."""
    value = otel_context.get_value(_SELECTION_KEY)
    return value if isinstance(value, Selection) else None
