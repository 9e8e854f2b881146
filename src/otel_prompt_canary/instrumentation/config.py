"""The instrumentation's settings: one value object, filled from keyword arguments and the environment.

Every setting has an environment variable prefixed ``OTEL_PROMPT_CANARY_`` so that
``opentelemetry-instrument`` can configure it with no code change; keyword arguments given to
:meth:`PromptCanaryInstrumentor.instrument` win over the environment. docs/instrumentation.md holds the
table of settings; :data:`ENVIRONMENT` is its source.

An invalid environment value is logged and its default used (a typo in a deployment must not stop the
application); an invalid keyword argument raises :class:`~otel_prompt_canary.errors.InvalidInputError`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, Final, Literal

from otel_prompt_canary.errors import InvalidInputError
from otel_prompt_canary.feedback import DEFAULT_KEY_LIFETIME_SECONDS
from otel_prompt_canary.names import ENVIRONMENT_VARIABLE, TOKEN_VARIABLE
from otel_prompt_canary.registry.models import validate_environment_name

__all__ = ["CHECK_NAMES", "ENVIRONMENT", "InstrumentationConfig", "SpanMode"]

logger = logging.getLogger("otel_prompt_canary.instrumentation")

SpanMode = Literal["auto", "own", "attach"]

#: The built-in inline checks and scores ``checks`` may name (``max_output_tokens:BUDGET`` takes a budget).
CHECK_NAMES: Final = frozenset(
    {"json_valid", "max_output_tokens", "truncation", "refusal", "escalation", "output_tokens"}
)
_MIRRORS: Final = frozenset({"openinference", "langfuse"})
_LIBRARIES: Final = frozenset({"openai", "anthropic", "httpx", "requests"})
_SPAN_MODES: Final = ("auto", "own", "attach")


@dataclass(frozen=True, kw_only=True, slots=True)
class InstrumentationConfig:
    """How the instrumentation behaves. Build it with :meth:`from_env` (environment + overrides).

    Attributes:
        registry: Where prompts and routes come from, for zero-code identification: a registry file
            path, an ``sqlite:///`` or ``postgresql://`` URL, or the ``http(s)://`` URL of the control
            plane. None: only calls made under a router ``Selection`` are tagged.
        registry_token: The control plane credential (``OTEL_PROMPT_CANARY_TOKEN``): sent with route
            reads, it authenticates in-app reports and signs feedback keys. It is a **reporting
            credential**: whoever holds it can report statistics, so can make a canary look healthy.
        registry_wait: Seconds ``instrument()`` waits for the first routes from ``registry`` (the
            application starts anyway when they do not come; calls are then untagged until they do).
        environment: The environment whose routing flags the application follows
            (``OTEL_PROMPT_CANARY_ENVIRONMENT``; None: ``production``, see docs/environments.md);
            its in-app reports name it.
        scoring: Path of a scoring settings YAML file (a ``default`` configuration and per-prompt
            overrides, see docs/checks.md). None: the scoring defaults.
        checks: Which built-in inline checks run, overriding the default configuration's choice:
            names from :data:`CHECK_NAMES` (``max_output_tokens:1024`` sets the budget); an empty
            tuple runs none. None: as the scoring settings say.
        judge_endpoint: OpenAI-compatible base URL of the LLM judge; None leaves the judge as the
            scoring settings configure it (off by default).
        judge_model: The judge's model name (needed with ``judge_endpoint``).
        judge_sample_rate: Fraction of responses (0..1) sent to the judge, in the background.
        judge_api_key_env: Environment variable holding the judge's API key.
        rewrite: Zero-code canary: replace the stable version's text by the canary version's in
            requests routed to the canary cohort (off by default; see docs/instrumentation.md).
        fingerprint: Identify prompts from the request's system prompt when no Selection is active.
        mirrors: Extra attribute sets for other tools: ``openinference``, ``langfuse``.
        span_mode: ``auto`` (own the LLM span unless another GenAI instrumentation or the SDK makes
            one), ``own`` (always make one) or ``attach`` (never make one; tag others' spans).
        libraries: The client libraries to patch: ``openai``, ``anthropic``, ``httpx`` (``httpx`` and
            ``httpx2``), ``requests``.
        feedback_capacity: How many recent response ids :func:`record_feedback` can resolve.
        report_interval: Seconds between two in-app reports to the control plane (``0``: no
            reports). Reports go to the control plane of ``registry`` and of every router on a
            control plane URL (docs/reporting.md).
        feedback_key_lifetime: Seconds a feedback key stays valid for :func:`record_feedback`.
        span_events: Also write each check and score result as a ``gen_ai.evaluation.result`` event
            on the LLM span (off by default: the span's ``prompt_canary.check.*`` and
            ``prompt_canary.score.*`` attributes and the metrics carry the same outcomes, and each
            event adds to every call's cost). Late results are log records either way.
    """

    registry: str | None = None
    registry_token: str | None = field(default=None, repr=False)
    registry_wait: float = 1.0
    environment: str | None = None
    scoring: str | None = None
    checks: tuple[str, ...] | None = None
    judge_endpoint: str | None = None
    judge_model: str | None = None
    judge_sample_rate: float = 0.05
    judge_api_key_env: str | None = None
    rewrite: bool = False
    fingerprint: bool = True
    mirrors: frozenset[str] = frozenset()
    span_mode: SpanMode = "auto"
    libraries: frozenset[str] = _LIBRARIES
    feedback_capacity: int = 10_000
    report_interval: float = 10.0
    feedback_key_lifetime: float = DEFAULT_KEY_LIFETIME_SECONDS
    span_events: bool = False

    def __post_init__(self) -> None:
        for check in self.checks or ():
            name, _, argument = check.partition(":")
            if name not in CHECK_NAMES:
                raise InvalidInputError(f"unknown check {name!r}: choose from {sorted(CHECK_NAMES)}")
            if argument and (name != "max_output_tokens" or not argument.isdigit() or int(argument) < 1):
                raise InvalidInputError(
                    f"check {check!r}: only max_output_tokens takes an argument, a budget"
                )
        if self.judge_endpoint is not None and not self.judge_model:
            raise InvalidInputError("judge_endpoint needs judge_model")
        if self.environment is not None:
            validate_environment_name(self.environment)
        if not 0.0 <= self.registry_wait <= 60.0:
            raise InvalidInputError(f"registry_wait must be in [0, 60] seconds, got {self.registry_wait!r}")
        if not 0.0 <= self.judge_sample_rate <= 1.0:
            raise InvalidInputError(f"judge_sample_rate must be in [0, 1], got {self.judge_sample_rate!r}")
        unknown = set(self.mirrors) - _MIRRORS
        if unknown:
            raise InvalidInputError(f"unknown mirror(s) {sorted(unknown)}: choose from {sorted(_MIRRORS)}")
        unknown = set(self.libraries) - _LIBRARIES
        if unknown:
            raise InvalidInputError(
                f"unknown librar(y/ies) {sorted(unknown)}: choose from {sorted(_LIBRARIES)}"
            )
        if self.span_mode not in _SPAN_MODES:
            raise InvalidInputError(f"span_mode must be one of {_SPAN_MODES}, got {self.span_mode!r}")
        if isinstance(self.feedback_capacity, bool) or self.feedback_capacity < 0:
            raise InvalidInputError(
                f"feedback_capacity must be a non-negative integer, got {self.feedback_capacity!r}"
            )
        if not 0.0 <= self.report_interval <= 3600.0:
            raise InvalidInputError(
                f"report_interval must be in [0, 3600] seconds (0: no reports), got {self.report_interval!r}"
            )
        if not self.feedback_key_lifetime > 0:
            raise InvalidInputError(
                "feedback_key_lifetime must be a positive number of seconds, "
                f"got {self.feedback_key_lifetime!r}"
            )
        if not isinstance(self.span_events, bool):
            raise InvalidInputError(f"span_events must be true or false, got {self.span_events!r}")
        if self.rewrite and not self.fingerprint:
            raise InvalidInputError("rewrite needs fingerprint: the stable text must be identified first")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> InstrumentationConfig:
        """The settings of the environment (``os.environ`` by default), then ``overrides`` on top.

        Keyword overrides use the attribute names above; sequences are accepted for ``checks``,
        ``mirrors`` and ``libraries``.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, (variable, parse, _doc) in ENVIRONMENT.items():
            raw = env.get(variable)
            if (raw is None or not raw.strip()) and name in _FORMER_NAMES:
                raw = env.get(_FORMER_NAMES[name])
            if raw is None or not raw.strip():
                continue
            try:
                values[name] = parse(raw.strip())
            except (ValueError, InvalidInputError) as exc:
                logger.error("ignoring %s=%r: %s", variable, raw, exc)
        try:
            base = cls(**values)
        except InvalidInputError as exc:
            logger.error("ignoring the OTEL_PROMPT_CANARY_* settings: %s", exc)
            base = cls()
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise InvalidInputError(
                f"unknown instrumentation setting(s) {sorted(unknown)}: use {sorted(known)}"
            )
        return replace(base, **{k: _coerce(k, v) for k, v in overrides.items()})


def _coerce(name: str, value: Any) -> Any:
    if name == "checks" and isinstance(value, str):
        return _names(value)
    if name == "checks" and isinstance(value, Sequence):
        return tuple(value)
    if name in ("mirrors", "libraries") and isinstance(value, str):
        return frozenset(_names(value))
    if name in ("mirrors", "libraries") and isinstance(value, Sequence | frozenset | set):
        return frozenset(value)
    return value


def _names(raw: str) -> tuple[str, ...]:
    if raw.strip().lower() == "none":
        return ()
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError("use true or false")


def _rate(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError("a sample rate is in [0, 1]")
    return value


def _seconds(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 60.0:
        raise ValueError("a wait is in [0, 60] seconds")
    return value


def _count(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("a capacity is a non-negative integer")
    return value


def _interval(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 3600.0:
        raise ValueError("an interval is in [0, 3600] seconds (0: off)")
    return value


def _lifetime(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("a lifetime is a positive number of seconds")
    return value


def _span_mode(raw: str) -> str:
    if raw not in _SPAN_MODES:
        raise ValueError(f"use one of {', '.join(_SPAN_MODES)}")
    return raw


def _text(raw: str) -> str:
    return raw


#: Setting name -> (environment variable, parser, description): the documented table.
ENVIRONMENT: Final[Mapping[str, tuple[str, Callable[[str], Any], str]]] = MappingProxyType(
    {
        "registry": (
            "OTEL_PROMPT_CANARY_REGISTRY",
            _text,
            "registry path, sqlite:/// or postgresql:// URL, or control-plane http(s):// URL",
        ),
        "registry_token": (
            TOKEN_VARIABLE,
            _text,
            "the control plane's reporting credential: reports, feedback keys (formerly "
            "OTEL_PROMPT_CANARY_REGISTRY_TOKEN, still read)",
        ),
        "registry_wait": (
            "OTEL_PROMPT_CANARY_REGISTRY_WAIT",
            _seconds,
            "seconds to wait for the first routes at start",
        ),
        "environment": (
            ENVIRONMENT_VARIABLE,
            validate_environment_name,
            "the environment whose routing flags the application follows (default production)",
        ),
        "scoring": ("OTEL_PROMPT_CANARY_SCORING", _text, "scoring settings YAML file"),
        "checks": (
            "OTEL_PROMPT_CANARY_CHECKS",
            _names,
            "comma-separated built-in checks (name or max_output_tokens:BUDGET); none to run none",
        ),
        "judge_endpoint": ("OTEL_PROMPT_CANARY_JUDGE_ENDPOINT", _text, "LLM judge base URL"),
        "judge_model": ("OTEL_PROMPT_CANARY_JUDGE_MODEL", _text, "LLM judge model"),
        "judge_sample_rate": (
            "OTEL_PROMPT_CANARY_JUDGE_SAMPLE_RATE",
            _rate,
            "fraction of responses judged",
        ),
        "judge_api_key_env": (
            "OTEL_PROMPT_CANARY_JUDGE_API_KEY_ENV",
            _text,
            "variable holding the judge's API key",
        ),
        "rewrite": ("OTEL_PROMPT_CANARY_REWRITE", _boolean, "zero-code canary rewrite"),
        "fingerprint": (
            "OTEL_PROMPT_CANARY_FINGERPRINT",
            _boolean,
            "identify prompts by their system text",
        ),
        "mirrors": (
            "OTEL_PROMPT_CANARY_MIRRORS",
            lambda raw: frozenset(_names(raw)),
            "openinference, langfuse",
        ),
        "span_mode": ("OTEL_PROMPT_CANARY_SPAN_MODE", _span_mode, "auto, own or attach"),
        "libraries": (
            "OTEL_PROMPT_CANARY_LIBRARIES",
            lambda raw: frozenset(_names(raw)),
            "libraries to patch",
        ),
        "feedback_capacity": (
            "OTEL_PROMPT_CANARY_FEEDBACK_CAPACITY",
            _count,
            "recent response ids kept for feedback",
        ),
        "report_interval": (
            "OTEL_PROMPT_CANARY_REPORT_INTERVAL",
            _interval,
            "seconds between in-app reports to the control plane; 0 turns them off",
        ),
        "feedback_key_lifetime": (
            "OTEL_PROMPT_CANARY_FEEDBACK_KEY_LIFETIME",
            _lifetime,
            "seconds a feedback key stays valid",
        ),
        "span_events": (
            "OTEL_PROMPT_CANARY_SPAN_EVENTS",
            _boolean,
            "also write each check result as a gen_ai.evaluation.result event on the span",
        ),
    }
)

#: Variables read for a setting when its own is unset: the names it had before.
_FORMER_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {"registry_token": "OTEL_PROMPT_CANARY_REGISTRY_TOKEN"}
)
