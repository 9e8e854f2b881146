"""The control plane's settings: one object, validated when it is built.

:class:`ServiceSettings` is a pydantic-settings object: each field is read from its argument, else
from the environment variable ``OTEL_PROMPT_CANARY_<FIELD>`` (``OTEL_PROMPT_CANARY_TOKEN``,
``OTEL_PROMPT_CANARY_WEBHOOK_SECRET``...), else its default. ``prompt-canary serve`` takes its
options from these fields, so that each setting is declared once.

The service refuses insecure defaults: without a bearer token for writes it does not start, unless
``insecure_dev`` says this is a local development instance (then writes are open to anyone who can
reach the port, and the server listens on loopback only). Secrets of the alert receivers follow the
same rule: an empty secret is refused, unless ``insecure_dev`` (then it means "not configured"), and
a short one is refused always. Reads are open unless ``read_token`` or ``credentials_file`` is set;
the credentials file gives principals their roles (docs/access.md).

The limits (connections, parked long-polls, deadlines, body size) bound what one process holds
whatever its clients do; docs/control-plane.md says what each answers when it is reached.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from otel_prompt_canary.analysis.drift import DriftConfig
from otel_prompt_canary.evals.probes import ProbesText
from otel_prompt_canary.feedback import DEFAULT_KEY_LIFETIME_SECONDS, FeedbackKeys
from otel_prompt_canary.loop.retention import DEFAULT_RETENTION, RetentionText
from otel_prompt_canary.names import DEFAULT_ENVIRONMENT
from otel_prompt_canary.registry.base import DEFAULT_MAX_TEMPLATE_BYTES
from otel_prompt_canary.registry.models import validate_environment_name

if TYPE_CHECKING:
    from otel_prompt_canary.service.credentials_file import Credential

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_LONG_POLLS",
    "DEFAULT_WEBHOOK_TOLERANCE_SECONDS",
    "ENV_PREFIX",
    "GRAFANA_SIGNATURE_HEADER",
    "GRAFANA_TIMESTAMP_HEADER",
    "MAX_LONG_POLL_SECONDS",
    "MIN_TOKEN_LENGTH",
    "ServiceSettings",
    "webhook_key",
]

#: Environment variables of the settings are this prefix and the field's name in capitals.
ENV_PREFIX = "OTEL_PROMPT_CANARY_"

#: Request bodies larger than this are refused with HTTP 413 before they are parsed.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024

#: Open connections of one process; beyond, a new connection is answered 503.
DEFAULT_MAX_CONNECTIONS = 2048

#: Long-polls of ``GET /v1/routes`` parked at once in one process; beyond, 503.
DEFAULT_MAX_LONG_POLLS = 1536

#: The longest ``wait`` a client may ask of ``GET /v1/routes``.
MAX_LONG_POLL_SECONDS = 60.0

#: Shorter tokens are refused: they can be guessed.
MIN_TOKEN_LENGTH = 16

#: Signed webhooks whose timestamp is further than this from the server's clock are refused.
DEFAULT_WEBHOOK_TOLERANCE_SECONDS = 300

#: Where Grafana puts its HMAC signature and, when configured, its timestamp.
GRAFANA_SIGNATURE_HEADER = "X-Grafana-Alerting-Signature"
GRAFANA_TIMESTAMP_HEADER = "X-Grafana-Alerting-Signature-Timestamp"

_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_SECRETS = (
    "alertmanager_token",
    "alertmanager_basic_auth",
    "grafana_secret",
    "webhook_secret",
    "report_token",
    "read_token",
    "drift_webhook_secret",
)


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: ``whsec_<base64>`` decoded, else its UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the webhook secret 'whsec_...' is not valid base64 after 'whsec_'") from None
    return secret.encode()


class ServiceSettings(BaseSettings):
    """How the control plane runs. Building it checks every rule; a bad setting raises at start-up.

    A field's ``json_schema_extra`` may name its command-line option (``option``) when it is not the
    field's name in kebab case, and its ``metavar``.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    token: SecretStr | None = Field(None, description="Bearer token that every write (POST) must present")
    report_token: SecretStr | None = Field(
        None,
        description="Reporting credential: a bearer token that may post reports and feedback, nothing "
        "else (applications' OTEL_PROMPT_CANARY_TOKEN); it also signs feedback keys",
    )
    feedback_key_lifetime_seconds: int = Field(
        DEFAULT_KEY_LIFETIME_SECONDS,
        ge=60,
        le=366 * 86_400,
        description="Seconds a feedback key stays valid after it was issued (default 7 days)",
        json_schema_extra={"option": "--feedback-key-lifetime"},
    )
    read_token: SecretStr | None = Field(
        None,
        description="Bearer token that reads (GET) must present (the write token reads too, and the "
        "reporting credential reads what applications and the Collector need: routes, prompt "
        "versions, policies). Unset: reads are open to anyone who reaches the port",
    )
    credentials_file: Path | None = Field(
        None,
        description="YAML list of credentials with roles (principal, token_sha256 or token, roles, "
        "environments); see docs/access.md. The single tokens keep working beside it",
        json_schema_extra={"metavar": "FILE"},
    )
    required_approvals: int = Field(
        0,
        ge=0,
        le=10,
        description="Approvals a version needs, by principals other than its author, before a "
        "rollout of it may start (docs/reviews.md)",
    )
    environments: Annotated[tuple[str, ...], NoDecode] = Field(
        (DEFAULT_ENVIRONMENT,),
        description="The environments this control plane serves, in promotion order, comma-separated "
        "(e.g. staging,production); each has its own routing flag of every prompt (docs/environments.md)",
        json_schema_extra={"metavar": "NAMES"},
    )
    insecure_dev: bool = Field(
        False,
        description="Local development: allow starting without a token (writes are then "
        "unauthenticated); the server then listens on loopback only",
    )
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY_BYTES,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest accepted request body, in bytes (HTTP 413 above)",
    )
    max_template_bytes: int = Field(
        DEFAULT_MAX_TEMPLATE_BYTES,
        ge=1,
        description="Largest accepted template, in UTF-8 bytes (HTTP 413 above)",
    )
    max_connections: int = Field(
        DEFAULT_MAX_CONNECTIONS,
        ge=2,
        le=65_536,
        description="Open connections per process; beyond, a new connection is answered 503 with "
        "Retry-After and closed",
    )
    max_long_polls: int = Field(
        DEFAULT_MAX_LONG_POLLS,
        ge=1,
        le=65_536,
        description="Long-polls of GET /v1/routes parked at once per process (each holds a "
        "connection); beyond, 503 with Retry-After",
    )
    read_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds a client has to send a request's headers, and again its body; beyond, "
        "408 and the connection is closed",
        json_schema_extra={"option": "--read-timeout"},
    )
    request_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=600,
        description="Seconds a request may take once read, long-polls excepted (their wait plus "
        "this); beyond, 503 with Retry-After",
        json_schema_extra={"option": "--request-timeout"},
    )
    store_poll_seconds: float = Field(
        0.25,
        gt=0,
        le=10,
        description="While long-polls wait, seconds between two reads of the store for changes "
        "made by other replicas",
    )

    # -- alert receivers and reports (docs/alerts.md) -----------------------------------------
    alertmanager_token: SecretStr | None = Field(
        None,
        description="Bearer token Alertmanager presents (http_config.authorization); the write "
        "token is accepted too",
    )
    alertmanager_basic_auth: SecretStr | None = Field(
        None,
        description="'user:password' Alertmanager presents with basic_auth",
        json_schema_extra={"metavar": "USER:PASSWORD"},
    )
    grafana_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 secret of Grafana's webhook contact point (hmacConfig.secret)"
    )
    grafana_signature_header: str = Field(
        GRAFANA_SIGNATURE_HEADER, description="The header Grafana signs into (hmacConfig.header)"
    )
    grafana_timestamp_header: str = Field(
        GRAFANA_TIMESTAMP_HEADER,
        description="The header of Grafana's signed timestamp (hmacConfig.timestampHeader), when set",
    )
    webhook_secret: SecretStr | None = Field(
        None,
        description="Standard Webhooks secret of the Collector processor's alerts and reports "
        "('whsec_<base64>' or any string)",
    )
    webhook_tolerance_seconds: int = Field(
        DEFAULT_WEBHOOK_TOLERANCE_SECONDS,
        ge=1,
        le=24 * 3600,
        description="Seconds a signed timestamp may differ from the server's clock; beyond, it is refused",
        json_schema_extra={"option": "--webhook-tolerance"},
    )

    # -- the rollout controller (docs/control-plane.md) ---------------------------------------
    controller: bool = Field(True, description="Run the rollout controller inside the service")
    controller_interval_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="Seconds between two judgements of every active rollout",
        json_schema_extra={"option": "--controller-interval"},
    )
    time_scale: float = Field(
        1.0,
        gt=0,
        le=86_400,
        description="Policy durations run this many times faster (60: a 60 s step takes 1 s); "
        "for tests and demos",
    )
    # -- retention (docs/registry.md#retention) -----------------------------------------------
    retention: RetentionText = Field(
        str(DEFAULT_RETENTION),
        description="How long de-duplication ids, the de-duplication window of alerts without a start "
        "time, records of alerts that changed nothing, the windows of ended rollouts and of live "
        "traffic, drift alerts of replaced versions and evaluation runs are kept (any subset; "
        "'forever' keeps one); pruned every hour",
        json_schema_extra={"metavar": "NAME=DURATION,..."},
    )

    # -- golden-set probes (docs/evaluations.md) -----------------------------------------------
    probes: ProbesText = Field(
        "",
        description="Evaluate each prompt's live stable version on a dataset at an interval: "
        "PROMPT=DATASET@INTERVAL,... (e.g. support-bot=support-golden@1h); the model and judge "
        "endpoints come from the usual variables (OPENAI_API_KEY...)",
        json_schema_extra={"metavar": "PROMPT=DATASET@EVERY,..."},
    )

    # -- drift monitoring (docs/drift.md) ------------------------------------------------------
    drift: str = Field(
        "on",
        description="Drift monitoring of every prompt's live stable version: 'on' (the defaults), "
        "'off', or settings such as 'alpha=0.01,horizon=30d,window=1m,baseline=1d,"
        "baseline_samples=1000,settle=30s'",
        json_schema_extra={"metavar": "on|off|NAME=VALUE,..."},
    )
    drift_interval_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="Seconds between two ticks of the drift monitor",
        json_schema_extra={"option": "--drift-interval"},
    )
    drift_alertmanager_url: str | None = Field(
        None,
        description="Alertmanager that drift alerts are posted to (its API: <url>/api/v2/alerts)",
        json_schema_extra={"metavar": "URL"},
    )
    drift_webhook_url: str | None = Field(
        None,
        description="URL that drift alerts are posted to as signed webhooks (with --drift-webhook-secret)",
        json_schema_extra={"metavar": "URL"},
    )
    drift_webhook_secret: SecretStr | None = Field(
        None,
        description="Standard Webhooks secret that signs the drift webhooks ('whsec_<base64>' or any string)",
    )

    @field_validator("environments", mode="before")
    @classmethod
    def _environment_list(cls, value: object) -> object:
        # The command line and the variable give "staging,production".
        return [part.strip() for part in value.split(",")] if isinstance(value, str) else value

    @field_validator("environments")
    @classmethod
    def _served_environments(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("give at least one environment")
        for name in value:
            validate_environment_name(name)
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(
                f"environment {repeated[0]!r} is named twice: name each once, in promotion order"
            )
        return value

    @field_validator("drift")
    @classmethod
    def _drift_settings(cls, value: str) -> str:
        if value.strip().lower() not in ("on", "off", ""):
            DriftConfig.parse(value)  # refused with the part that is wrong
        return value.strip()

    @field_validator("drift_alertmanager_url", "drift_webhook_url")
    @classmethod
    def _drift_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s]*)?", value.strip()):
            raise ValueError(f"invalid URL {value!r}: give http(s)://host[:port][/path]")
        return None if value is None else value.strip().rstrip("/")

    @model_validator(mode="after")
    def _drift_webhook(self) -> ServiceSettings:
        if self.drift_webhook_url is not None and self.drift_webhook_secret is None and not self.insecure_dev:
            raise ValueError(
                "--drift-webhook-url needs --drift-webhook-secret: the receiver checks the signature"
            )
        if self.drift_webhook_secret is not None:
            key = webhook_key(self.drift_webhook_secret.get_secret_value())
            if len(key) < MIN_TOKEN_LENGTH:
                raise ValueError(
                    f"the drift webhook secret is too short: use at least {MIN_TOKEN_LENGTH} bytes"
                )
        return self

    @property
    def drift_config(self) -> DriftConfig | None:
        """The drift monitor's settings, or None when drift monitoring is off."""
        text = self.drift.strip().lower()
        if text == "off":
            return None
        return DriftConfig() if text in ("on", "") else DriftConfig.parse(self.drift)

    @field_validator("grafana_signature_header", "grafana_timestamp_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not _HEADER_NAME.fullmatch(value):
            raise ValueError(f"invalid header name {value!r}: use 1-64 letters, digits and '-'")
        return value

    @model_validator(mode="before")
    @classmethod
    def _empty_secrets(cls, data: object) -> object:
        # An empty secret is a configuration mistake (an unset variable, say): refused, except in
        # development where it reads as "not configured".
        if not isinstance(data, dict):
            return data
        cleaned = dict(data)
        for name in _SECRETS:
            value = cleaned.get(name)
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            if isinstance(text, str) and not text.strip():
                if not cleaned.get("insecure_dev"):
                    flag = "--" + name.replace("_", "-")
                    raise ValueError(f"refusing an empty {name} ({flag}): give a secret, or leave it unset")
                cleaned[name] = None
        return cleaned

    @model_validator(mode="after")
    def _strong_secrets(self) -> ServiceSettings:
        for name in ("alertmanager_token", "grafana_secret", "report_token", "read_token"):
            secret: SecretStr | None = getattr(self, name)
            if secret is not None:
                _check_strength(name, secret.get_secret_value())
        if self.alertmanager_basic_auth is not None:
            user, sep, password = self.alertmanager_basic_auth.get_secret_value().partition(":")
            if not sep or not user:
                raise ValueError("alertmanager_basic_auth must be 'user:password'")
            _check_strength("alertmanager_basic_auth password", password)
        if self.webhook_secret is not None:
            key = webhook_key(self.webhook_secret.get_secret_value())
            if len(key) < MIN_TOKEN_LENGTH:
                raise ValueError(
                    f"the webhook secret is too short ({len(key)} bytes of key): use at least "
                    f"{MIN_TOKEN_LENGTH} (e.g. `openssl rand -hex 32`)"
                )
        return self

    _credentials: tuple[Credential, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _load_credentials(self) -> ServiceSettings:
        if self.credentials_file is None:
            return self
        # Imported here: the table of principals needs the server extra, the settings do not.
        from otel_prompt_canary.service.credentials_file import load_credentials
        from otel_prompt_canary.service.principals import token_digest

        self._credentials = load_credentials(self.credentials_file, environments=self.environments)
        digests = {c.digest: c.principal.name for c in self._credentials}
        for name in ("token", "read_token", "report_token", "alertmanager_token"):
            secret: SecretStr | None = getattr(self, name)
            if secret is not None and token_digest(secret.get_secret_value()) in digests:
                principal = digests[token_digest(secret.get_secret_value())]
                raise ValueError(
                    f"the credentials file gives principal {principal!r} the same token as "
                    f"--{name.replace('_', '-')}: give each credential its own"
                )
        return self

    @property
    def credentials(self) -> tuple[Credential, ...]:
        """The credentials of ``credentials_file`` (none without one), tokens hashed."""
        return self._credentials

    @model_validator(mode="after")
    def _refuse_insecure(self) -> ServiceSettings:
        if self.max_long_polls >= self.max_connections:
            raise ValueError(
                f"max_long_polls ({self.max_long_polls}) must be below max_connections "
                f"({self.max_connections}): each parked long-poll holds a connection, and other "
                "requests need some"
            )
        if self.max_template_bytes > self.max_body_bytes:
            raise ValueError(
                f"max_template_bytes ({self.max_template_bytes}) must not exceed "
                f"max_body_bytes ({self.max_body_bytes})"
            )
        if self.token is None:
            if not self.insecure_dev and self.credentials_file is None:
                raise ValueError(
                    "refusing to start without a token: set --token or OTEL_PROMPT_CANARY_TOKEN "
                    "(e.g. `openssl rand -hex 32`) or --credentials-file, or pass --insecure-dev "
                    "for local development"
                )
            return self
        secret = self.token.get_secret_value()
        if secret != secret.strip() or any(c.isspace() for c in secret):
            raise ValueError("the token must not contain whitespace")
        if len(secret) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"the token is too short ({len(secret)} characters): use at least "
                f"{MIN_TOKEN_LENGTH} (e.g. `openssl rand -hex 32`)"
            )
        return self

    @property
    def writes_open(self) -> bool:
        """True when writes need no token (``insecure_dev`` without a token or credentials file)."""
        return self.token is None and self.credentials_file is None

    @property
    def reads_open(self) -> bool:
        """True when reads need no credential (no ``read_token`` and no credentials file)."""
        return self.read_token is None and self.credentials_file is None

    def feedback_keys(self) -> FeedbackKeys:
        """What reads the feedback keys applications made: under the reporting credential, the
        write token, or a credential of the credentials file that may report, and under the empty
        credential (keys anyone can make) only while writes are open."""
        credentials = [s.get_secret_value() for s in (self.report_token, self.token) if s is not None]
        if self.writes_open:
            credentials.append("")
        from otel_prompt_canary.service.principals import Role  # principals reads these settings

        reporters = [c.digest for c in self._credentials if c.principal.may(Role.REPORT)]
        return FeedbackKeys(
            credentials, digests=reporters, lifetime_seconds=self.feedback_key_lifetime_seconds
        )


def _check_strength(name: str, secret: str) -> None:
    if secret != secret.strip() or any(c.isspace() for c in secret):
        raise ValueError(f"the {name} must not contain whitespace")
    if len(secret) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"the {name} is too short ({len(secret)} characters): use at least {MIN_TOKEN_LENGTH} "
            "(e.g. `openssl rand -hex 32`)"
        )
