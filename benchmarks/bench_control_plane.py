"""Control-plane benchmark: long-poll fan-out, memory per parked poll and ``304`` throughput, each
against a bare uvicorn application measured in the same run.

Both servers run as their own process (``prompt-canary serve`` on a SQLite store, and this script's
``--baseline-server``: a bare ASGI application on the same uvicorn), so that their memory is read
alone from ``/proc/<pid>/status``. Measured:

- **fan-out**: ``--polls`` connections long-poll ``GET /v1/routes?wait=60`` with the current ETag;
  once they are parked, a rollback is posted; each poll's latency runs from sending the rollback to
  its answer's last byte. p50, p99 and max over every poll of ``--rounds`` rounds. The baseline
  parks the same number of requests on one ``asyncio.Event`` that a ``POST`` sets, and answers them
  a body of the same size; its latency is the floor of this machine, client included. Target: p99
  under 250 ms for 1,000 polls;
- **memory per parked poll**: the server's resident memory with every poll parked, less before,
  divided by the polls; the baseline's beside it;
- **``304`` throughput**: requests per second of ``GET /v1/routes`` with the current ETag on one
  keep-alive connection (concurrency 1), against the baseline's ``304`` of a constant ETag. Target:
  at least 2,000 per second.

The client is plain asyncio sockets and a blocking socket, so that it costs both servers alike. It
prints figures and never asserts. ``--json`` prints every figure as one JSON object on the last
line. Run: ``.venv/bin/python benchmarks/bench_control_plane.py [--polls 1000] [--rounds 5]
[--seconds 5] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

PROMPT = "support-reply"
TOKEN = "bench-token-0123456789abcdef"
#: The baseline's answer to a released poll: about the size of the routes document of one prompt.
BASELINE_BODY = b'{"revision":"r' + b"0" * 32 + b'","routes":[' + b'{"x":"' + b"y" * 300 + b'"}]}'


# -- the baseline server ----------------------------------------------------------------------


def baseline_app() -> Callable[..., Any]:
    """A bare ASGI application: ``GET /poll`` parks until ``POST /flip``; ``GET /hello`` is a 304."""
    state = {"event": asyncio.Event()}

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/poll":
            await state["event"].wait()
            status, body = 200, BASELINE_BODY
        elif path == "/flip":
            state["event"].set()
            state["event"] = asyncio.Event()
            status, body = 200, b"{}"
        else:
            status, body = 304, b""
        headers = [(b"etag", b'"r1"'), (b"content-type", b"application/json")]
        if status != 304:
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def run_baseline_server(port: int) -> None:
    import uvicorn

    uvicorn.run(baseline_app(), host="127.0.0.1", port=port, log_level="warning", http="h11")


# -- processes ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc status")


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("the server did not start")


@contextmanager
def _server(command: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_listening(port, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _control_plane(db: Path, port: int) -> list[str]:
    return [
        sys.executable,
        *("-m", "otel_prompt_canary.cli", "serve", "--registry", str(db), "--token", TOKEN),
        *("--port", str(port), "--log-level", "warning", "--no-controller"),
    ]


# -- clients ----------------------------------------------------------------------------------


def _request(path: str, etag: str | None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
    if etag is not None:
        lines.append(f"If-None-Match: {etag}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":", 1)[1]))
    return status


async def _fan_out(
    port: int, path: str, etag: str | None, polls: int, release: Callable[[], None]
) -> list[float]:
    """Park ``polls`` requests, call ``release()``; the ms from the release to each answer."""
    connections = []
    for _ in range(polls):
        connections.append(await asyncio.open_connection("127.0.0.1", port))
    request = _request(path, etag)
    for _, writer in connections:
        writer.write(request)
    await asyncio.gather(*(writer.drain() for _, writer in connections))
    await asyncio.sleep(1.0 + polls / 500)  # every poll parked on the server
    arrivals: list[float] = []

    async def answered(reader: asyncio.StreamReader) -> None:
        status = await _read_answer(reader)
        if status != 200:
            raise RuntimeError(f"a poll was answered {status}, not 200")
        arrivals.append(time.perf_counter())

    waiting = [asyncio.ensure_future(answered(reader)) for reader, _ in connections]
    await asyncio.sleep(0)
    start = time.perf_counter()
    await asyncio.get_running_loop().run_in_executor(None, release)
    await asyncio.wait_for(asyncio.gather(*waiting), timeout=120)
    for _, writer in connections:
        writer.close()
    return [(t - start) * 1000 for t in arrivals]


def _parked_rss(pid: int, port: int, path: str, etag: str | None, polls: int) -> float:
    """KiB of resident memory per parked poll: the server's with ``polls`` parked, less before."""

    async def measure() -> float:
        before = _rss_kib(pid)
        connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(polls)]
        for _, writer in connections:
            writer.write(_request(path, etag))
        await asyncio.sleep(1.0 + polls / 500)
        after = _rss_kib(pid)
        for _, writer in connections:
            writer.close()
        return (after - before) / polls

    return asyncio.run(measure())


def _not_modified_per_s(port: int, path: str, etag: str, seconds: float) -> float:
    request = _request(path, etag)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        done = 0
        start = time.perf_counter()
        end = start + seconds
        while True:
            sock.sendall(request)
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    raise RuntimeError("the server closed the connection")
                answer += chunk
            if not answer.startswith(b"HTTP/1.1 304"):
                raise RuntimeError(f"expected 304, got {answer[:60]!r}")
            done += 1
            now = time.perf_counter()
            if now >= end:
                return done / (now - start)


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(ordered[len(ordered) // 2], 1),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "max": round(ordered[-1], 1),
    }


# -- the two servers --------------------------------------------------------------------------


def measure_control_plane(polls: int, rounds: int, seconds: float) -> dict[str, Any]:
    from otel_prompt_canary.registry import PromptSpec, open_store

    with tempfile.TemporaryDirectory(prefix="bench-cp-") as tmp:
        db = Path(tmp) / "registry.db"
        with open_store(db) as store:
            store.push(PromptSpec(name=PROMPT, template="You are a support agent. {{ question }}"))
            store.push(PromptSpec(name=PROMPT, template="You are a kind support agent. {{ question }}"))
        port = _free_port()
        with _server(_control_plane(db, port), port) as process:
            base = f"http://127.0.0.1:{port}"
            auth = {"Authorization": f"Bearer {TOKEN}", "X-Prompt-Canary-Actor": "bench"}
            with httpx.Client(base_url=base, headers=auth, timeout=60) as http:

                def start() -> str:
                    http.post(
                        f"/v1/prompts/{PROMPT}/rollouts",
                        json={"version": 2, "ramp": [20, 100], "reason": "bench"},
                    ).raise_for_status()
                    return http.get("/v1/routes").headers["ETag"]

                def rollback() -> None:
                    http.post(
                        f"/v1/prompts/{PROMPT}/rollout/rollback", json={"reason": "bench"}
                    ).raise_for_status()

                etag = start()
                asyncio.run(_fan_out(port, "/v1/routes?wait=60", etag, 10, rollback))  # warm up
                etag = http.get("/v1/routes").headers["ETag"]
                rss = _parked_rss(process.pid, port, "/v1/routes?wait=60", etag, polls)
                latencies: list[float] = []
                for _ in range(rounds):
                    etag = start()
                    latencies += asyncio.run(_fan_out(port, "/v1/routes?wait=60", etag, polls, rollback))
                etag = http.get("/v1/routes").headers["ETag"]
                rps = _not_modified_per_s(port, "/v1/routes", etag, seconds)
    return {
        "fanout_ms": _percentiles(latencies),
        "rss_kib_per_poll": round(rss, 2),
        "not_modified_per_s": round(rps),
    }


def measure_baseline(polls: int, rounds: int, seconds: float) -> dict[str, Any]:
    port = _free_port()
    command = [sys.executable, __file__, "--baseline-server", str(port)]
    with _server(command, port) as process, httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:

        def flip() -> None:
            http.post("/flip").raise_for_status()

        asyncio.run(_fan_out(port, "/poll", None, 10, flip))  # warm up
        rss = _parked_rss(process.pid, port, "/poll", None, polls)
        http.post("/flip")
        latencies: list[float] = []
        for _ in range(rounds):
            latencies += asyncio.run(_fan_out(port, "/poll", None, polls, flip))
        rps = _not_modified_per_s(port, "/hello", '"r1"', seconds)
    return {
        "fanout_ms": _percentiles(latencies),
        "rss_kib_per_poll": round(rss, 2),
        "not_modified_per_s": round(rps),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--polls", type=int, default=1000, help="parked long-polls per round")
    parser.add_argument("--rounds", type=int, default=5, help="rollbacks (rounds of parked polls)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of 304 requests per server")
    parser.add_argument("--json", action="store_true", help="print every figure as one JSON line")
    parser.add_argument("--baseline-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_server:
        run_baseline_server(args.baseline_server)
        return 0

    baseline = measure_baseline(args.polls, args.rounds, args.seconds)
    ours = measure_control_plane(args.polls, args.rounds, args.seconds)
    figures = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "polls": args.polls,
        "rounds": args.rounds,
        "control_plane": ours,
        "baseline": baseline,
        "fanout_p99_over_baseline": round(ours["fanout_ms"]["p99"] / baseline["fanout_ms"]["p99"], 2),
        "rss_per_poll_over_baseline": round(ours["rss_kib_per_poll"] / baseline["rss_kib_per_poll"], 2)
        if baseline["rss_kib_per_poll"] > 0
        else None,
        "not_modified_over_baseline": round(ours["not_modified_per_s"] / baseline["not_modified_per_s"], 3),
        "targets": {"fanout_p99_ms": 250, "not_modified_per_s": 2000},
    }
    for name, result in (("control plane", ours), ("bare uvicorn", baseline)):
        f = result["fanout_ms"]
        print(
            f"{name:>14}: fan-out of {args.polls} polls p50 {f['p50']:.0f} ms, p99 {f['p99']:.0f} ms, "
            f"max {f['max']:.0f} ms; {result['rss_kib_per_poll']:.1f} KiB per parked poll; "
            f"{result['not_modified_per_s']:,} 304/s"
        )
    print(
        f"ratios (control plane / bare uvicorn): fan-out p99 {figures['fanout_p99_over_baseline']}x, "
        f"memory per poll {figures['rss_per_poll_over_baseline']}x, "
        f"304/s {figures['not_modified_over_baseline']}x"
    )
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
