"""The control plane's HTTP client: requests, error answers, proxies from the environment, TLS, close().

Every server here is real and on loopback: canned answers and a recording proxy from
:mod:`tests.routing.fakes`, a listener that never answers, an HTTPS server with a certificate made
for the test.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from urllib3.exceptions import InsecureRequestWarning

from otel_prompt_canary._version import __version__
from otel_prompt_canary.errors import (
    AuthenticationError,
    ConflictError,
    IllegalTransitionError,
    InvalidInputError,
    NotFoundError,
    PromptCanaryError,
    RegistryUnavailableError,
    TooLargeError,
)
from otel_prompt_canary.routing import PromptRouter
from otel_prompt_canary.routing.control_plane import ControlPlaneClient
from tests.routing.fakes import (
    Canned,
    Received,
    canned_server,
    recording_proxy,
    route,
    version,
)
from tests.support.loopback import free_port, silent_server
from tests.support.services import unavailable
from tests.support.waiting import eventually

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def answer_json(status: int, body: object, **headers: str) -> Canned:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(body).encode()


def error_answer(type_: str, message: str, status: int) -> Canned:
    return answer_json(status, {"error": {"type": type_, "message": message}})


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without proxy variables, whatever the machine running the suite sets."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


# -- requests and answers --------------------------------------------------------------------------


def test_requests_carry_json_the_token_and_the_user_agent() -> None:
    with canned_server(lambda r: answer_json(201, {"ok": True}, ETag='"r1"')) as (url, received):
        client = ControlPlaneClient(url + "/", token="s3cret", timeout=5)
        answer = client.request(
            "POST", "/v1/things", json={"a": [1, 2]}, query={"x": "y z"}, headers={"X-Extra": "1"}
        )
        client.close()
    assert (answer.status, answer.data, answer.headers["etag"]) == (201, {"ok": True}, '"r1"')
    (request,) = received
    assert (request.method, request.path) == ("POST", "/v1/things?x=y+z")
    assert json.loads(request.body) == {"a": [1, 2]}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer s3cret"
    assert request.headers["user-agent"] == f"otel-prompt-canary/{__version__}"
    assert request.headers["accept"] == "application/json"
    assert request.headers["x-extra"] == "1"


def test_an_empty_answer_has_no_data_and_no_token_sends_no_authorization() -> None:
    with canned_server(lambda r: (304, {"ETag": '"r1"'}, b"")) as (url, received):
        answer = ControlPlaneClient(url).request("GET", "/v1/routes")
    assert (answer.status, answer.data) == (304, None)
    assert "authorization" not in received[0].headers


def test_a_server_that_is_not_a_control_plane_is_named_so_and_its_page_never_echoed() -> None:
    page = b"<!DOCTYPE html><html><body>Directory listing for /</body></html>"
    for status in (200, 404, 405):
        with (
            canned_server(lambda r, status=status: (status, {"Content-Type": "text/html"}, page)) as (url, _),
            pytest.raises(RegistryUnavailableError) as raised,
        ):
            ControlPlaneClient(url).request("GET", "/v1/routes")
        assert str(raised.value) == (
            f"{url} is not a control plane: GET /v1/routes answered HTTP {status} with an HTML page, not "
            "the control plane's JSON; give the URL that `prompt-canary serve` listens on"
        )


@pytest.mark.parametrize(
    ("canned", "error", "message"),
    [
        # By the type the answer names, whatever its status.
        (error_answer("IllegalTransitionError", "cannot pause", 409), IllegalTransitionError, "cannot pause"),
        (error_answer("TooLargeError", "over the limit", 413), TooLargeError, "over the limit"),
        (error_answer("NotFoundError", "unknown prompt 'x'", 404), NotFoundError, "unknown prompt 'x'"),
        (error_answer("AuthenticationError", "invalid bearer token", 401), AuthenticationError, "invalid"),
        # By status when the type is unknown or the body is not the control plane's.
        (error_answer("SomethingNew", "odd", 409), ConflictError, "odd"),
        ((404, {}, b"no such page"), RegistryUnavailableError, "is not a control plane: .* HTTP 404 with a"),
        ((403, {}, b""), AuthenticationError, "^control plane answered HTTP 403$"),
        ((422, {}, b"{}"), InvalidInputError, "HTTP 422"),
        ((409, {}, b"<html>conflict</html>"), ConflictError, "^control plane answered HTTP 409 with an HTML"),
        ((502, {}, b"bad gateway"), RegistryUnavailableError, "HTTP 502: bad gateway"),
        ((503, {}, b"down"), RegistryUnavailableError, "HTTP 503"),
        ((418, {}, b"teapot"), PromptCanaryError, "HTTP 418: teapot"),
    ],
)
def test_error_answers_map_to_the_same_exceptions(
    canned: Canned, error: type[Exception], message: str
) -> None:
    with canned_server(lambda r: canned) as (url, _), pytest.raises(error, match=message) as raised:
        ControlPlaneClient(url).request("GET", "/v1/prompts")
    assert type(raised.value) is error


def test_an_unreachable_control_plane_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(
        RegistryUnavailableError, match=f"cannot reach the control plane at {url}: .*ConnectError"
    ):
        ControlPlaneClient(url).request("GET", "/v1/routes")


@pytest.fixture
def silent() -> Iterator[str]:
    """A URL whose server accepts connections and never answers."""
    with silent_server() as url:
        yield url


def test_a_silent_control_plane_times_out(silent: str) -> None:
    # The read timeout and the request's deadline fall together here: either may say it.
    with pytest.raises(RegistryUnavailableError, match=r"did not answer in time \((ReadTimeout|Deadline)"):
        ControlPlaneClient(silent, timeout=0.2).request("GET", "/v1/routes")


def test_close_wakes_a_long_poll_blocked_on_another_thread(silent: str) -> None:
    client = ControlPlaneClient(silent, timeout=30)
    failures: list[BaseException] = []

    def long_poll() -> None:
        try:
            client.request("GET", "/v1/routes", query={"wait": 60}, long_poll=60)
        except BaseException as exc:
            failures.append(exc)

    poll = threading.Thread(target=long_poll, daemon=True)
    poll.start()
    poll.join(0.3)
    assert poll.is_alive()  # held: no answer for 90 s
    client.close()
    poll.join(20)  # generous: the point is "not after the 90 s read timeout"
    assert not poll.is_alive()
    (failure,) = failures
    assert isinstance(failure, RegistryUnavailableError)
    assert "is closed" in str(failure)
    with pytest.raises(RegistryUnavailableError, match="is closed"):
        client.request("GET", "/v1/routes")


@pytest.mark.parametrize(
    ("url", "timeout", "message"),
    [
        ("ftp://example", 5.0, "must start with http:// or https://"),
        ("http://", 5.0, "invalid control plane URL"),
        ("http://127.0.0.1:1", 0.0, "timeout must be positive, got 0.0"),
    ],
)
def test_bad_settings_are_refused(url: str, timeout: float, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ControlPlaneClient(url, timeout=timeout)


# -- proxies from the environment ------------------------------------------------------------------


def ok(request: Received) -> Canned:
    return answer_json(200, {"path": request.path})


def one_prompt(request: Received) -> Canned:
    """A control plane with one prompt, ``p``, at version 1 (routes once, no long poll)."""
    if request.path.startswith("/v1/routes"):
        return answer_json(200, {"revision": "r1", "routes": [route("p").model_dump(mode="json")]})
    return answer_json(200, version("p", 1).model_dump(mode="json"))


def test_http_proxy_is_used_with_its_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    with canned_server(ok) as (url, received), recording_proxy() as (proxy, through):
        monkeypatch.setenv("HTTP_PROXY", proxy.replace("http://", "http://ana:p%40ss@"))
        client = ControlPlaneClient(url, token="t")
        assert client.proxy == proxy.replace("http://", "http://ana:***@")
        assert "p%40ss" not in repr(client)
        assert client.request("GET", "/v1/routes").data == {"path": "/v1/routes"}
    (forwarded,) = through
    assert (forwarded.method, forwarded.path) == ("GET", url + "/v1/routes")
    assert forwarded.headers["proxy-authorization"] == "Basic YW5hOnBAc3M="  # ana:p@ss
    assert received[0].headers["authorization"] == "Bearer t"


@pytest.mark.parametrize("variable", ["http_proxy", "ALL_PROXY"])
def test_all_proxy_and_lower_case_names_count(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    with canned_server(ok) as (url, _), recording_proxy() as (proxy, through):
        monkeypatch.setenv(variable, proxy.removeprefix("http://"))  # no scheme: http:// is meant
        ControlPlaneClient(url).request("GET", "/v1/routes")
    assert [r.path for r in through] == [url + "/v1/routes"]


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "*", "example.com,127.0.0.1"])
def test_no_proxy_goes_direct(monkeypatch: pytest.MonkeyPatch, no_proxy: str) -> None:
    with canned_server(ok) as (url, received), recording_proxy() as (proxy, through):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.setenv("NO_PROXY", no_proxy)
        client = ControlPlaneClient(url)
        assert client.proxy is None
        client.request("GET", "/v1/routes")
    assert through == []
    assert len(received) == 1


def test_a_proxy_that_cannot_be_reached_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HTTP_PROXY", proxy)
    with pytest.raises(RegistryUnavailableError, match=f"through the proxy {proxy}: .*ProxyError"):
        ControlPlaneClient("http://control-plane.invalid").request("GET", "/v1/routes")


def test_an_unsupported_proxy_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://user:secret@127.0.0.1:1080")
    with pytest.raises(InvalidInputError, match="http:// and https:// proxies only") as raised:
        ControlPlaneClient("http://127.0.0.1:1")
    assert "secret" not in str(raised.value)


def test_the_router_reads_through_the_proxy(
    monkeypatch: pytest.MonkeyPatch, make_router: Callable[..., PromptRouter]
) -> None:
    with canned_server(one_prompt) as (url, _), recording_proxy() as (proxy, through):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        router = make_router(url, long_poll_wait=0)
        assert router.select("p").version == 1
        router.close()
    assert {r.path for r in through} >= {url + "/v1/routes", url + "/v1/prompts/p/versions/1"}


# -- TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        unavailable("the openssl command is needed to make a test certificate (apt-get install openssl)")
    assert openssl is not None
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-days", "2", "-nodes", "-subj", "/CN=127.0.0.1"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", str(key), "-out", str(cert), "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def https_server(certificate: tuple[Path, Path]) -> Iterator[tuple[str, list[Received]]]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    with canned_server(ok, tls=context) as served:
        yield served


def test_tls_is_verified_against_the_trust_store(https_server: tuple[str, list[Received]]) -> None:
    url, received = https_server
    with pytest.raises(RegistryUnavailableError, match=r"CERTIFICATE_VERIFY_FAILED.*\(SSLError\)"):
        ControlPlaneClient(url).request("GET", "/v1/routes")
    assert received == []


def test_tls_verify_is_a_ca_bundle_a_context_or_false(
    https_server: tuple[str, list[Received]], certificate: tuple[Path, Path]
) -> None:
    url, received = https_server
    context = ssl.create_default_context(cafile=str(certificate[0]))
    for verify in (str(certificate[0]), context):
        assert ControlPlaneClient(url, verify=verify).request("GET", "/x").data == {"path": "/x"}
    with pytest.warns(InsecureRequestWarning):  # urllib3 says so, once per process outside tests
        assert ControlPlaneClient(url, verify=False).request("GET", "/x").data == {"path": "/x"}
    assert len(received) == 3
    with pytest.raises(InvalidInputError, match="cannot read the CA bundle"):
        ControlPlaneClient(url, verify=str(certificate[0].parent / "missing.pem"))


def test_https_goes_through_a_connect_tunnel(
    https_server: tuple[str, list[Received]], certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = https_server
    with recording_proxy() as (proxy, through):
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        client = ControlPlaneClient(url, verify=str(certificate[0]))
        assert client.request("GET", "/v1/routes").data == {"path": "/v1/routes"}
    assert [(r.method, r.path) for r in through] == [("CONNECT", url.removeprefix("https://"))]
    assert received[0].path == "/v1/routes"  # end to end encrypted: the proxy saw no path


def test_the_router_passes_verify_through(
    certificate: tuple[Path, Path], make_router: Callable[..., PromptRouter]
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    with canned_server(one_prompt, tls=context) as (url, _):
        trusting = make_router(url, verify=str(certificate[0]), long_poll_wait=0)
        assert trusting.select("p").version == 1
        refusing = make_router(url, initial_timeout=0, fallbacks={"p": "fallback"})
        eventually(lambda: refusing.status().last_error is not None, timeout=10)
        assert "CERTIFICATE_VERIFY_FAILED" in (refusing.status().last_error or "")
        assert refusing.select("p").version == 0
        trusting.close()
        refusing.close()
