"""The HTTP client of the control plane's API, shared by the router and the CLI.

::

    client = ControlPlaneClient("https://prompt-canary.internal:8000", token=token, timeout=5.0)
    answer = client.request("GET", "/v1/routes", headers={"If-None-Match": etag}, query={"wait": 30},
                            long_poll=30)
    answer.status, answer.headers.get("ETag"), answer.data   # 200 or 304, headers, the parsed JSON
    client.close()                                           # wakes a long poll on another thread

Built on urllib3 and light on purpose: an application imports it with the router. For every request:

- **deadlines**: ``timeout`` seconds to connect and for each read, and a total deadline for the
  whole request, from sending it to the last byte of the answer: ``timeout`` seconds, plus
  ``long_poll`` (the seconds the server may hold a request) for a long poll. A server or proxy that
  drips its answer a byte at a time is cut off at the deadline
  (:mod:`~otel_prompt_canary.routing.deadlines`);
- **size**: an answer body over ``max_answer_bytes`` (16 MiB by default, after decompression) is
  refused, whatever its ``Content-Length`` says, without holding more than that in memory;
- **proxies**: read once, when the client is made, from the environment as urllib and requests
  read them (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, in either case; on macOS
  and Windows the system's settings too): :func:`urllib.request.getproxies` and
  :func:`urllib.request.proxy_bypass`. A proxy URL's ``user:password@`` is sent as
  ``Proxy-Authorization``; an ``https://`` control plane is reached through a ``CONNECT`` tunnel;
- **TLS** (``verify``): ``True`` checks the certificate against the system's trust store
  (``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` apply) and certifi's bundle when certifi is installed; a
  path names a CA bundle file or directory; an :class:`ssl.SSLContext` is used as it is; ``False``
  checks nothing;
- **errors**: an answer ``{"error": {"type": ..., "message": ...}}`` with a status of 400 or more is
  raised as the :mod:`otel_prompt_canary.errors` class of that name (else by status: 409
  :class:`~otel_prompt_canary.errors.ConflictError`, 503 ``RegistryUnavailableError``...); a control
  plane that cannot be reached or does not answer in time raises
  :class:`~otel_prompt_canary.errors.RegistryUnavailableError`. No retries and no redirects: the
  caller decides (the router backs off and tries again).
- **never traced**: every request runs with OpenTelemetry instrumentation suppressed
  (``suppress_instrumentation``), so that the router's long polls and the in-app reports never show
  up as HTTP client spans in the application's traces, whatever instrumentations it runs (urllib3,
  requests, httpx...);
- **not a control plane**: a control plane answers every request, errors included, in its JSON.
  A ``404`` or ``405`` without the control plane's error body, or a success whose body is not JSON,
  comes from a server that is not one (a web server on that port, a URL missing its path...):
  :class:`~otel_prompt_canary.errors.RegistryUnavailableError` saying so. Another status without
  the error body keeps its class by status. An HTML page is named, never echoed.
"""

from __future__ import annotations

import os
import ssl
import threading
import urllib.request
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from json import loads as parse_json
from typing import Any, Final, TypeVar
from urllib.parse import unquote, urlencode

import urllib3
from opentelemetry.instrumentation.utils import suppress_instrumentation
from pydantic import BaseModel, TypeAdapter, ValidationError
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    LocationParseError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util import Url, make_headers, parse_url

from otel_prompt_canary import errors
from otel_prompt_canary._version import __version__
from otel_prompt_canary.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PromptCanaryError,
    RegistryUnavailableError,
    TooLargeError,
)
from otel_prompt_canary.routing.deadlines import Deadline, attach, deadline, shut_down

__all__ = ["DEFAULT_MAX_ANSWER_BYTES", "Answer", "ControlPlaneClient", "is_remote"]

#: The largest answer body the client reads by default, in bytes: far above what a control plane
#: answers with its default limits (a version holds at most a 1 MiB request body), far below what
#: would hurt the application's memory.
DEFAULT_MAX_ANSWER_BYTES: Final = 16 * 1024 * 1024
#: Bytes read at a time.
_CHUNK_BYTES: Final = 64 * 1024

#: Error classes by the name the control plane puts in ``error.type``.
_ERRORS_BY_TYPE: Final[dict[str, type[PromptCanaryError]]] = {
    name: cls
    for name in errors.__all__
    if isinstance(cls := getattr(errors, name), type) and issubclass(cls, PromptCanaryError)
}
#: Error classes for answers that do not name one (a proxy's 502 page, say).
_ERRORS_BY_STATUS: Final[dict[int, type[PromptCanaryError]]] = {
    400: InvalidInputError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
    415: InvalidInputError,
    422: InvalidInputError,
    502: RegistryUnavailableError,
    503: RegistryUnavailableError,
    504: RegistryUnavailableError,
}


def is_remote(target: str | os.PathLike[str]) -> bool:
    """True when ``target`` is the ``http(s)://`` URL of a control plane."""
    return os.fspath(target).lower().startswith(("http://", "https://"))


_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer of the control plane (below HTTP 400, unless asked for with ``answer_errors``)."""

    status: int
    #: The answer's headers (names in any case).
    headers: Mapping[str, str]
    #: The parsed JSON body; None when the body is empty (HTTP 304, say), or, for an error answered
    #: with ``answer_errors``, not JSON.
    data: Any


class _OpenConnections:
    """The connections a client opened, so that closing it can shut their sockets from any thread.

    Closing a connection pool does not wake a thread blocked reading a long poll; shutting the
    socket down does. A connection registers before it connects and checks again once connected,
    so a socket opened while the client closes is closed too.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: weakref.WeakSet[HTTPConnection] = weakref.WeakSet()
        self.closed = False

    def connect(self, connection: HTTPConnection, connect: Callable[[], None]) -> None:
        with self._lock:
            if self.closed:
                raise ConnectionAbortedError("the client is closed")
            self._connections.add(connection)
        connect()
        with self._lock:
            closed = self.closed
        if closed:
            connection.close()
            raise ConnectionAbortedError("the client is closed")

    def close(self) -> None:
        with self._lock:
            self.closed = True
            connections = list(self._connections)
        for connection in connections:
            shut_down(connection)


def _pool_classes(opened: _OpenConnections) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes whose connections register with ``opened`` (one set per client) and
    put themselves under the deadline of the request they carry."""

    class Connection(HTTPConnection):
        def connect(self) -> None:
            opened.connect(self, super().connect)

        def request(self, *args: Any, **kwargs: Any) -> None:
            attach(self)
            super().request(*args, **kwargs)

    class TlsConnection(HTTPSConnection):
        def connect(self) -> None:
            opened.connect(self, super().connect)

        def request(self, *args: Any, **kwargs: Any) -> None:
            attach(self)
            super().request(*args, **kwargs)

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class TlsPool(HTTPSConnectionPool):
        ConnectionCls = TlsConnection

    return {"http": Pool, "https": TlsPool}


def _ssl_context(verify: ssl.SSLContext | str | bool) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if verify is True:
        context = ssl.create_default_context()
        try:
            import certifi
        except ImportError:
            return context
        # Trust what the LLM SDKs beside us trust (httpx verifies against certifi's bundle).
        context.load_verify_locations(cafile=certifi.where())
        return context
    if isinstance(verify, str):
        try:
            if os.path.isdir(verify):
                return ssl.create_default_context(capath=verify)
            return ssl.create_default_context(cafile=verify)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidInputError(f"verify: cannot read the CA bundle {verify!r} ({exc})") from exc
    raise InvalidInputError(
        f"verify must be True, False, a CA bundle path or an ssl.SSLContext, not {type(verify).__name__}"
    )


def _environment_proxy(url: Url) -> Url | None:
    """The proxy the environment names for ``url``, or None (no proxy, or NO_PROXY matches)."""
    proxies = urllib.request.getproxies()
    value = proxies.get(url.scheme or "http") or proxies.get("all")
    if not value or urllib.request.proxy_bypass(url.netloc or ""):
        return None
    if "://" not in value:  # HTTP_PROXY=proxy:3128, as curl and httpx read it
        value = "http://" + value
    try:
        proxy = parse_url(value)
    except LocationParseError as exc:
        raise InvalidInputError(f"invalid proxy URL {value!r} in the environment: {exc}") from exc
    if proxy.scheme not in ("http", "https") or not proxy.host:
        raise InvalidInputError(
            f"unsupported proxy {_hide_password(proxy)!r} in the environment: the control plane client "
            "speaks to http:// and https:// proxies only (set NO_PROXY to reach it directly)"
        )
    return proxy


def _hide_password(url: Url) -> str:
    if url.auth and ":" in url.auth:
        return url._replace(auth=url.auth.split(":", 1)[0] + ":***").url
    return url.url


def _json_or_none(body: bytes) -> Any:
    try:
        return parse_json(body) if body.strip() else None
    except ValueError:
        return None


def _failure(exc: BaseException) -> tuple[str, str]:
    """A transport failure as (kind, detail): ``("ConnectError", "[Errno 111] Connection refused")``."""
    if isinstance(exc, ProxyError):
        return "ProxyError", _failure(exc.original_error)[1]
    if isinstance(exc, NewConnectionError):  # a subclass of ConnectTimeoutError, tested first
        return "ConnectError", str(exc.__cause__ or exc)
    if isinstance(exc, ReadTimeoutError):
        return "ReadTimeout", str(exc)
    if isinstance(exc, Urllib3Timeout):
        return "ConnectTimeout", str(exc)
    if isinstance(exc, SSLError):
        return "SSLError", str(exc)
    if isinstance(exc, ProtocolError) and len(exc.args) > 1:
        return "ProtocolError", f"{exc.args[0]} {exc.args[1]!r}"
    return type(exc).__name__, str(exc)


class ControlPlaneClient:
    """Requests to the control plane at ``base_url``, with JSON in and out. Safe to share between threads.

    ``token`` is sent as ``Authorization: Bearer``; ``timeout`` (seconds) bounds connecting, each
    read, and the whole of a request that is not a long poll; ``max_answer_bytes`` is the largest
    answer body read; ``verify`` is the TLS verification (see the module's documentation). Raises
    :class:`~otel_prompt_canary.errors.InvalidInputError` for a URL, timeout, size, CA bundle or
    proxy setting it cannot use.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        verify: ssl.SSLContext | str | bool = True,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        if not (isinstance(base_url, str) and is_remote(base_url)):
            raise InvalidInputError(
                f"invalid control plane URL {base_url!r}: it must start with http:// or https://"
            )
        if timeout <= 0:
            raise InvalidInputError(f"timeout must be positive, got {timeout}")
        if (
            isinstance(max_answer_bytes, bool)
            or not isinstance(max_answer_bytes, int)
            or max_answer_bytes < 1
        ):
            raise InvalidInputError(f"max_answer_bytes must be a positive integer, got {max_answer_bytes!r}")
        try:
            parsed = parse_url(base_url.rstrip("/"))
        except LocationParseError as exc:
            raise InvalidInputError(f"invalid control plane URL {base_url!r}: {exc}") from exc
        if not parsed.host:
            raise InvalidInputError(f"invalid control plane URL {base_url!r}: it names no host")
        #: The control plane's URL, without a trailing slash.
        self.base_url = parsed.url
        self.timeout = timeout
        #: The largest answer body read, in bytes (after decompression).
        self.max_answer_bytes = max_answer_bytes
        self._headers = {
            "User-Agent": f"otel-prompt-canary/{__version__}",
            "Accept": "application/json",
            **make_headers(accept_encoding=True),
        }
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._proxy = _environment_proxy(parsed)
        pool_options: dict[str, Any] = {"maxsize": 4, "block": False, "retries": False}
        if parsed.scheme == "https":
            pool_options["ssl_context"] = _ssl_context(verify)
        self._http: urllib3.PoolManager
        if self._proxy is None:
            self._http = urllib3.PoolManager(**pool_options)
        else:
            auth = make_headers(proxy_basic_auth=unquote(self._proxy.auth)) if self._proxy.auth else None
            proxy_url = self._proxy._replace(auth=None).url
            self._http = urllib3.ProxyManager(proxy_url, proxy_headers=auth, **pool_options)
        self._connections = _OpenConnections()
        self._http.pool_classes_by_scheme = _pool_classes(self._connections)

    @property
    def proxy(self) -> str | None:
        """The proxy requests go through (password hidden), or None."""
        return None if self._proxy is None else _hide_password(self._proxy)

    def __repr__(self) -> str:
        via = "" if self._proxy is None else f", proxy={self.proxy!r}"
        return f"ControlPlaneClient({self.base_url!r}{via})"

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | float] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        long_poll: float = 0.0,
        answer_errors: bool = False,
    ) -> Answer:
        """Send one request to ``base_url + path`` and return the answer below HTTP 400.

        ``json`` is sent as the JSON body; ``long_poll`` (seconds) is how long the server may hold
        the answer, on top of the timeout: the request's deadline is ``timeout + long_poll``.
        Raises the error class the answer names for HTTP 400 and above,
        :class:`~otel_prompt_canary.errors.RegistryUnavailableError` when the control plane cannot
        be reached, does not answer within the deadline, or answers more than
        ``max_answer_bytes``, and :class:`~otel_prompt_canary.errors.PromptCanaryError` for a body
        that is not JSON. With ``answer_errors``, an answer of HTTP 400 and above is returned too,
        for a caller that decides by its status (a sender that retries 429 and 5xx); only reaching
        the server can then fail.
        """
        url = self.base_url + path
        if query:
            url += "?" + urlencode(query)
        seconds = self.timeout + max(0.0, long_poll)
        timeout = urllib3.Timeout(connect=self.timeout, read=seconds)
        with deadline(seconds) as limit:
            try:
                with suppress_instrumentation():
                    response = self._http.request(
                        method,
                        url,
                        json=json,
                        headers={**self._headers, **(headers or {})},
                        timeout=timeout,
                        redirect=False,
                        preload_content=False,
                    )
                    body = self._read(response, method, path)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise self._unavailable(exc, limit) from exc
            except Exception as exc:
                # Shutting a TLS socket down under a reader can fail in odd ways; closed is closed.
                if self._connections.closed or limit.expired:
                    raise self._unavailable(exc, limit) from exc
                raise
        if limit.expired:  # the answer may look complete, cut off where the deadline shut it
            raise self._unavailable(TimeoutError("the deadline passed"), limit)
        if response.status >= 400:
            if answer_errors:
                return Answer(status=response.status, headers=response.headers, data=_json_or_none(body))
            raise self._error(method, path, response.status, body, response.headers)
        try:
            data = parse_json(body) if body.strip() else None
        except ValueError as exc:
            what = _body_kind(body, response.headers)
            raise self._not_a_control_plane(method, path, response.status, what) from exc
        return Answer(status=response.status, headers=response.headers, data=data)

    def _read(self, response: urllib3.BaseHTTPResponse, method: str, path: str) -> bytes:
        """The answer's body, read in chunks so that one over ``max_answer_bytes`` is refused
        having held no more than that (decompressed, whatever ``Content-Length`` claims)."""
        limit = self.max_answer_bytes
        try:
            declared = int(response.headers.get("Content-Length") or 0)
        except ValueError:
            declared = 0  # malformed: the chunks below are counted anyway
        chunks: list[bytes] = []
        size = 0
        try:
            if declared <= limit:
                while chunk := response.read(min(_CHUNK_BYTES, limit + 1 - size)):
                    size += len(chunk)
                    if size > limit:
                        break
                    chunks.append(chunk)
        except BaseException:
            _discard(response)
            raise
        if declared > limit or size > limit:
            _discard(response)  # never drain it: the rest could be gigabytes
            said = f" (Content-Length: {declared})" if declared > limit else ""
            raise RegistryUnavailableError(
                f"control plane at {self.base_url} answered {method} {path} with more than {limit} "
                f"bytes{said}: over the client's max_answer_bytes, the answer is refused"
            )
        return b"".join(chunks)

    def unexpected(self, detail: str) -> PromptCanaryError:
        """The error for an answer of the wrong shape: ``unexpected answer from the control plane...``."""
        return PromptCanaryError(f"unexpected answer from the control plane at {self.base_url}: {detail}")

    def parse(self, answer: Answer, model: type[_M]) -> _M:
        """``answer``'s JSON read as ``model``; an answer of another shape is :meth:`unexpected`."""
        try:
            return model.model_validate(answer.data)
        except ValidationError as exc:
            raise self.unexpected(str(exc)[:500]) from exc

    def parse_list(self, answer: Answer, model: type[_M]) -> list[_M]:
        """``answer``'s JSON read as a list of ``model``; another shape is :meth:`unexpected`."""
        try:
            return TypeAdapter(list[model]).validate_python(answer.data)  # type: ignore[valid-type]
        except ValidationError as exc:
            raise self.unexpected(str(exc)[:500]) from exc

    def close(self) -> None:
        """Close every connection, waking a request blocked on another thread (a long poll) at once.

        Requests made afterwards raise :class:`~otel_prompt_canary.errors.RegistryUnavailableError`.
        """
        self._connections.close()
        self._http.clear()

    def _unavailable(self, exc: BaseException, limit: Deadline | None = None) -> RegistryUnavailableError:
        if self._connections.closed:
            return RegistryUnavailableError(f"the client of the control plane at {self.base_url} is closed")
        if limit is not None and limit.expired:
            return RegistryUnavailableError(
                f"control plane at {self.base_url} did not answer in time (Deadline: no complete "
                f"answer within {limit.seconds:g} s)"
            )
        kind, detail = _failure(exc)
        if kind in ("ReadTimeout", "ConnectTimeout"):
            return RegistryUnavailableError(
                f"control plane at {self.base_url} did not answer in time ({kind})"
            )
        via = "" if self._proxy is None else f" through the proxy {self.proxy}"
        return RegistryUnavailableError(
            f"cannot reach the control plane at {self.base_url}{via}: {detail} ({kind})"
        )

    def _not_a_control_plane(
        self, method: str, path: str, status: int, what: str
    ) -> RegistryUnavailableError:
        return RegistryUnavailableError(
            f"{self.base_url} is not a control plane: {method} {path} answered HTTP {status} with "
            f"{what}, not the control plane's JSON; give the URL that `prompt-canary serve` listens on"
        )

    def _error(
        self, method: str, path: str, status: int, body: bytes, headers: Mapping[str, str]
    ) -> PromptCanaryError:
        type_: str | None = None
        try:
            error = parse_json(body)["error"]
            type_, message = str(error["type"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            what = _body_kind(body, headers)
            if status in (404, 405):
                return self._not_a_control_plane(method, path, status, what)
            message = f"control plane answered HTTP {status}"
            if what == "an HTML page":
                message += " with an HTML page (from a proxy in front of it, or a server that is not one)"
            elif body.strip():
                message += ": " + body.decode("utf-8", "replace").strip().replace("\n", " ")[:200]
        cls = _ERRORS_BY_TYPE.get(type_ or "") or _ERRORS_BY_STATUS.get(status) or PromptCanaryError
        return cls(message)


def _discard(response: urllib3.BaseHTTPResponse) -> None:
    """Close a response read in part, and its connection, and give the pool its slot back."""
    response.close()
    response.release_conn()


def _body_kind(body: bytes, headers: Mapping[str, str]) -> str:
    """What an answer that is not the control plane's carried, in a few words (never the body itself)."""
    content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type == "text/html" or body.lstrip()[:1] == b"<":
        return "an HTML page"
    if not body.strip():
        return "an empty body"
    return f"a {content_type} body" if content_type else "a body that is not JSON"
