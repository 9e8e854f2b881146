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
           rollouts; run evaluations; acknowledge drift alerts
review     approve a version or request changes
admin      everything
=========  ==========================================================================================

:func:`principal_for_token` maps a presented token to its principal; :func:`get_principal` is the
route handlers' dependency (the request guard sets the principal on the request before the body
is read).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request

__all__ = [
    "ANONYMOUS",
    "Principal",
    "PrincipalDep",
    "Role",
    "get_principal",
]


class Role(StrEnum):
    """What a credential may do (the table of this module)."""

    READ = "read"
    REPORT = "report"
    ALERT = "alert"
    OPERATE = "operate"
    REVIEW = "review"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """The one a credential speaks for: its ``name``, its ``roles``, and the ``environments`` its
    environment-bound roles are limited to (None: every environment)."""

    name: str
    roles: frozenset[Role]
    environments: frozenset[str] | None = None

    def may(self, role: Role, environment: str | None = None) -> bool:
        """Whether this principal holds ``role`` (``admin`` holds every role), in ``environment``
        when one is given."""
        if Role.ADMIN not in self.roles and role not in self.roles:
            return False
        return environment is None or self.environments is None or environment in self.environments


#: The principal of a request when writes are open (``--insecure-dev`` without credentials).
ANONYMOUS = Principal(name="anonymous", roles=frozenset({Role.ADMIN}))


async def get_principal(request: Request) -> Principal:
    """The principal the request guard found for this request (:data:`ANONYMOUS` when the service
    asks for no credential)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal if principal is not None else ANONYMOUS


PrincipalDep = Annotated[Principal, Depends(get_principal)]
