"""Cross-site request forgery: every console form carries a token bound to the session, and every
form post must come from the console's own origin.

The token is an HMAC of the session's id under the session key: a page of another site can neither
read it (the cookie is ``HttpOnly``, the page is not readable cross-origin) nor derive it. The
signed-in session's cookie is ``SameSite=Lax`` (a browser sends it on a link followed from another
site, where a ``GET`` changes nothing): the token and the origin check are what refuse a post.
A post is refused unless it carries the token of its session *and* its ``Origin``
header (or, lacking one, its ``Referer``) names the origin the request was sent to.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from fastapi import Request

from otel_prompt_canary.service.console.session import Session

__all__ = ["FIELD", "csrf_problem", "csrf_token"]

#: The form field that carries the token.
FIELD = "csrf_token"


def csrf_token(key: bytes, session: Session) -> str:
    """The token the forms of ``session`` carry."""
    return hmac.new(key, b"csrf:" + session.id.encode(), hashlib.sha256).hexdigest()


def csrf_problem(request: Request, key: bytes, session: Session, presented: str | None) -> str | None:
    """Why a form post of ``session`` is refused (for people and the log), or None when it may pass."""
    origin = _origin_of(request)
    expected = f"{request.url.scheme}://{request.url.netloc}".lower()
    if origin is None:
        return "the form post named no Origin or Referer: it cannot be told from a cross-site post"
    if origin != expected:
        return f"the form was posted from another site ({origin}), not from the console ({expected})"
    if not presented:
        return "the form carried no CSRF token: reload the page and try again"
    if not hmac.compare_digest(presented.encode(), csrf_token(key, session).encode()):
        return "the form's CSRF token is not this session's: reload the page and try again"
    return None


def _origin_of(request: Request) -> str | None:
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return origin.rstrip("/").lower()
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}".lower()
    return None
