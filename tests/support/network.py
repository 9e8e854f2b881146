"""A guard that fails a test loudly when code under test reaches for anything but loopback.

Frameworks fetch things at import or first use (price lists, tokenizer files, telemetry): the tests
point every SDK at the local simulated LLM and turn those off, and :func:`no_network` proves it. A
connection or name lookup of another host raises ``OSError`` where it is attempted (a framework
that swallows it falls back to its offline path) and is recorded, and the test fails at its end.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["no_network"]

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _local(host: object) -> bool:
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text in _LOCAL_NAMES or text == "":
        return True
    try:
        return ipaddress.ip_address(text.split("%")[0]).is_loopback
    except ValueError:
        return False


@contextmanager
def no_network() -> Iterator[list[str]]:
    """Within the block, any attempt to reach a host other than loopback fails and is listed.

    Yields the list of attempts; the block's exit raises ``AssertionError`` when it is not empty.
    """
    attempts: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _local(host):
            attempts.append(f"name lookup of {host!r}")
            raise OSError(f"network access blocked in tests: {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def check(address: Any) -> None:
        if isinstance(address, tuple) and address and not _local(address[0]):
            attempts.append(f"connection to {address!r}")
            raise OSError(f"network access blocked in tests: {address!r}")

    def connect(self: socket.socket, address: Any) -> Any:
        check(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        check(address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    try:
        yield attempts
    finally:
        socket.getaddrinfo = real_getaddrinfo
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]
    assert attempts == [], f"the code under test tried to reach the network: {attempts}"
