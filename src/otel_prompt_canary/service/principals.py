"""Who a request speaks for: the principal of the credential it presents, with its roles.

A credential (a bearer token, or a console session signed in with one) belongs to a *principal*, a
name recorded in every audit record, review and version it writes, and grants *roles*, optionally
limited to some environments:

=========  ==========================================================================================
role       may
=========  ==========================================================================================
read       read everything the API and the console show
report     post reports and feedback, read what applications read (routes, versions, policies)
alert      post alerts to the receivers
operate    push versions, policies and datasets; start, advance, pause, resume, roll back and revert
           rollouts; run evaluations; acknowledge drift alerts (and read)
review     approve a version or request changes (and read)
admin      everything
=========  ==========================================================================================

A principal limited to some environments holds its roles there only for what belongs to an
environment: reading routing flags and rollouts, and starting or moving rollouts
(:mod:`otel_prompt_canary.service.access` has the table). Prompts, versions and reviews belong to
no environment.

Where principals come from (:func:`principal_for_token`): the credentials file
(``--credentials-file``, :mod:`otel_prompt_canary.service.credentials_file`), and the single tokens,
which keep working as principals of their own:

=========================  =================  =================
setting                    principal          roles
=========================  =================  =================
``token``                  ``admin``          admin
``read_token``             ``reader``         read
``report_token``           ``reporter``       report
``alertmanager_token``     ``alertmanager``   alert
=========================  =================  =================

:func:`require_role` refuses (403) a principal acting beyond its scope, with a message naming the
principal, the role it lacks and the environment; :func:`get_principal` is the route handlers'
dependency (the request guard sets the principal on the request before the body is read).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from otel_prompt_canary.errors import AuthenticationError, PermissionDeniedError

if TYPE_CHECKING:
    from otel_prompt_canary.service.settings import ServiceSettings

__all__ = [
    "ADMIN",
    "ALERTMANAGER",
    "ANONYMOUS",
    "ANONYMOUS_READER",
    "COLLECTOR",
    "GRAFANA",
    "READER",
    "REPORTER",
    "Principal",
    "PrincipalDep",
    "Role",
    "get_principal",
    "known_credentials",
    "principal_for_digest",
    "principal_for_token",
    "require_role",
    "token_digest",
]


class Role(StrEnum):
    """What a credential may do (the table of this module)."""

    READ = "read"
    REPORT = "report"
    ALERT = "alert"
    OPERATE = "operate"
    REVIEW = "review"
    ADMIN = "admin"


#: Roles that come with another: an operator or a reviewer must see what they act on.
_IMPLIED: dict[Role, frozenset[Role]] = {
    Role.OPERATE: frozenset({Role.READ}),
    Role.REVIEW: frozenset({Role.READ}),
    Role.ADMIN: frozenset(Role),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The one a credential speaks for: its ``name``, its ``roles``, and the ``environments`` its
    environment-bound roles are limited to (None: every environment)."""

    name: str
    roles: frozenset[Role]
    environments: frozenset[str] | None = None

    def holds(self, role: Role) -> bool:
        """Whether this principal holds ``role``, given or implied (``admin`` holds every role;
        ``operate`` and ``review`` include ``read``), whatever the environment."""
        return any(role is held or role in _IMPLIED.get(held, ()) for held in self.roles)

    def may(self, role: Role, environment: str | None = None) -> bool:
        """Whether this principal holds ``role`` (see :meth:`holds`), in ``environment`` when one
        is given."""
        if not self.holds(role):
            return False
        return environment is None or self.environments is None or environment in self.environments

    def describe(self) -> str:
        """Its roles and environments in words: ``read, review in staging``."""
        roles = ", ".join(sorted(role.value for role in self.roles)) or "no role"
        if self.environments is None:
            return roles
        return f"{roles} in {', '.join(sorted(self.environments)) or 'no environment'}"


def require_role(
    principal: Principal,
    role: Role,
    environment: str | None = None,
    *,
    doing: str,
    also: Role | None = None,
) -> None:
    """Refuse (:class:`~otel_prompt_canary.errors.PermissionDeniedError`, 403) ``principal`` unless
    it holds ``role`` (or ``also``, when given), in ``environment`` when given; ``doing`` says what
    it asked, in words (``start or move rollouts``)."""
    if principal.may(role, environment) or (also is not None and principal.may(also, environment)):
        return
    where = f" in environment {environment!r}" if environment is not None else ""
    needed = repr(role.value) + (f" or {also.value!r}" if also is not None else "")
    raise PermissionDeniedError(
        f"principal {principal.name!r} may not {doing}{where}: that needs the role {needed} "
        f"(it has {principal.describe()})"
    )


#: The principal of a request when writes are open (``--insecure-dev`` without credentials).
ANONYMOUS = Principal(name="anonymous", roles=frozenset({Role.ADMIN}))
#: The principal of a request without a credential when reads are open (no read credential set).
ANONYMOUS_READER = Principal(name="anonymous", roles=frozenset({Role.READ}))
#: The principals of the single tokens (``token``, ``read_token``, ``report_token``,
#: ``alertmanager_token`` and basic auth) and of the receivers' signatures.
ADMIN = Principal(name="admin", roles=frozenset({Role.ADMIN}))
READER = Principal(name="reader", roles=frozenset({Role.READ}))
REPORTER = Principal(name="reporter", roles=frozenset({Role.REPORT}))
ALERTMANAGER = Principal(name="alertmanager", roles=frozenset({Role.ALERT}))
GRAFANA = Principal(name="grafana", roles=frozenset({Role.ALERT}))
COLLECTOR = Principal(name="collector", roles=frozenset({Role.ALERT, Role.REPORT}))


def token_digest(token: str | bytes) -> bytes:
    """The SHA-256 of a token (of its UTF-8 bytes): how the credentials file names tokens
    (``token_sha256``, in hex) and how they are kept in memory."""
    return hashlib.sha256(token.encode() if isinstance(token, str) else token).digest()


def known_credentials(settings: ServiceSettings) -> Iterator[tuple[bytes, Principal]]:
    """Every credential of ``settings`` as (SHA-256 of its token, its principal): the single
    tokens first (see the module docstring), then the credentials file's entries."""
    for secret, principal in (
        (settings.token, ADMIN),
        (settings.read_token, READER),
        (settings.report_token, REPORTER),
        (settings.alertmanager_token, ALERTMANAGER),
    ):
        if secret is not None:
            yield token_digest(secret.get_secret_value()), principal
    for credential in settings.credentials:
        yield credential.digest, credential.principal


def principal_for_digest(settings: ServiceSettings, digest: bytes) -> Principal | None:
    """The principal whose token has the SHA-256 ``digest``, as ``settings`` know it now, or None
    when it is no one's (any more). Every candidate is compared in constant time.

    The console binds a session to its credential's digest and asks this on every request: a
    session whose credential was removed, or whose principal changed, ends at once.
    """
    found: Principal | None = None
    for known, principal in known_credentials(settings):
        if hmac.compare_digest(digest, known):
            found = found or principal
    return found


def principal_for_token(settings: ServiceSettings, token: str) -> Principal | None:
    """The principal whose credential ``token`` is, or None when it is no one's.

    The single tokens first (see the module docstring), then the credentials file. Every candidate
    is compared in constant time, on the SHA-256 of the token.
    """
    if not token:
        return None
    return principal_for_digest(settings, token_digest(token))


async def get_principal(request: Request) -> Principal:
    """The principal the request guard found for this request.

    A request the guard did not decide (the console's, whose session decides) has none: it is
    :data:`ANONYMOUS` when the service asks for no credential (open writes), else refused (401).
    """
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None:
        return principal
    if request.app.state.settings.writes_open:
        return ANONYMOUS
    raise AuthenticationError("missing credentials: this request names no principal")


PrincipalDep = Annotated[Principal, Depends(get_principal)]
