"""Real services for the suites, started on loopback and stopped afterwards.

In CI (``CI=true``) a missing service is a failure, never a skip: the test command installs them.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.loopback import free_port
from tests.support.waiting import eventually


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip the test locally; fail it in CI, where everything must be installed."""
    if in_ci():
        pytest.fail(f"{reason} (CI must not skip: the test command installs it)")
    pytest.skip(reason)


def _postgres_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throw-away PostgreSQL cluster on 127.0.0.1; yields the URL of its ``postgres`` database."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not initdb or not pg_ctl:
        unavailable("PostgreSQL server binaries not found (apt-get install postgresql)")
    assert initdb and pg_ctl
    root = tempfile.mkdtemp(prefix="pc-pg-")
    data = os.path.join(root, "data")
    port = free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    try:
        subprocess.run(
            [*as_user, initdb, "-D", data, "-U", "canary", "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
        )
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=200"
        subprocess.run(
            [*as_user, pg_ctl, "-D", data, "-o", opts, "-l", os.path.join(root, "log"), "-w", "start"],
            check=True,
            capture_output=True,
        )
        url = f"postgresql://canary@127.0.0.1:{port}/postgres"

        def accepts_connections() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        eventually(accepts_connections, timeout=20, what="PostgreSQL accepting connections", interval=0.1)
        yield url
    except subprocess.CalledProcessError as exc:
        log = Path(root, "log")
        detail = log.read_text() if log.exists() else exc.stderr.decode(errors="replace")
        pytest.fail(f"could not start PostgreSQL: {detail}")
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _alertmanager_bin() -> str | None:
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@contextmanager
def alertmanager_server(config: str) -> Iterator[str]:
    """A throw-away Prometheus Alertmanager on 127.0.0.1 running ``config`` (YAML); yields its URL.

    Clustering is off (``--cluster.listen-address=``) and its storage is a temporary folder.
    """

    binary = _alertmanager_bin()
    if not binary:
        unavailable("Alertmanager not found (apt-get install prometheus-alertmanager)")
    assert binary
    root = tempfile.mkdtemp(prefix="pc-am-")
    config_file = Path(root, "alertmanager.yml")
    config_file.write_text(config, encoding="utf-8")
    port = free_port()
    command = [
        binary,
        f"--config.file={config_file}",
        f"--storage.path={Path(root, 'data')}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=debug",
    ]
    with _ready_server("Alertmanager", command, root, f"http://127.0.0.1:{port}", timeout=20) as url:
        yield url


def promtool() -> str:
    """The path of ``promtool`` (Debian's ``prometheus`` package); skips locally, fails in CI, if missing."""
    binary = shutil.which("promtool")
    if not binary:
        unavailable("promtool not found (apt-get install prometheus)")
    assert binary
    return binary


@contextmanager
def prometheus_server(config: str, files: dict[str, str] | None = None) -> Iterator[str]:
    """A throw-away Prometheus server on 127.0.0.1 running ``config`` (YAML); yields its URL.

    ``files`` (file name -> text), rule files say, are written beside the configuration, where
    ``rule_files`` finds them by their bare names. Its storage is a temporary folder.
    """

    binary = shutil.which("prometheus")
    if not binary:
        unavailable("Prometheus not found (apt-get install prometheus)")
    assert binary
    root = tempfile.mkdtemp(prefix="pc-prom-")
    config_file = Path(root, "prometheus.yml")
    config_file.write_text(config, encoding="utf-8")
    for name, text in (files or {}).items():
        Path(root, name).write_text(text, encoding="utf-8")
    port = free_port()
    command = [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={Path(root, 'data')}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=debug",
    ]
    with _ready_server("Prometheus", command, root, f"http://127.0.0.1:{port}", timeout=30) as url:
        yield url


@contextmanager
def _ready_server(name: str, command: list[str], root: str, url: str, *, timeout: float) -> Iterator[str]:
    """Runs ``command`` (logging into ``root``) until its ``/-/ready`` answers; stops it and removes
    ``root`` afterwards. Fails the test, with the server's log, when it does not get ready."""
    import urllib.error
    import urllib.request

    log_path = Path(root, "log")

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    try:
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

            def still_running() -> None:
                assert process.poll() is None, f"{name} exited ({process.returncode})"

            try:
                eventually(
                    ready,
                    timeout=timeout,
                    what=f"{name} getting ready",
                    interval=0.1,
                    between=still_running,
                    diagnostics=lambda: f"could not start {name}: {log_path.read_text(errors='replace')}",
                )
                yield url
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
    finally:
        shutil.rmtree(root, ignore_errors=True)
