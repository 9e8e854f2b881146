"""Expected failures: one ``error:`` line on stderr, exit 2 for bad input and 1 otherwise, no write."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from otel_prompt_canary.cli import EXIT_BAD_INPUT, EXIT_FAILURE
from tests.cli.cli_helpers import SPEC_V1, Cli, write
from tests.support.loopback import http_server


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        (
            "broken.yaml",
            "name: x\nmessages:\n  - role: system\n    content: [unclosed\n",
            "broken.yaml: malformed YAML at line 5, column 1",
        ),
        (
            "tabs.yaml",
            "name: x\n\ttemplate: hi\n",
            "tabs.yaml: malformed YAML at line 2, column 1: found character '\\t'",
        ),
        (
            "broken.json",
            '{"name": "x", "template": }',
            "broken.json: malformed JSON at line 1, column 27: Expecting value",
        ),
        ("noname.yaml", "template: hi\n", "noname.yaml: invalid prompt spec: name: Field required"),
        (
            "notemplate.yaml",
            "name: x\nmodel: gpt-4.1-mini\n",
            "notemplate.yaml: invalid prompt spec: give exactly one of 'template' (text) or "
            "'messages' (chat)",
        ),
        (
            "both.yaml",
            "name: x\ntemplate: hi\nmessages:\n  - {role: user, content: hi}\n",
            "both.yaml: invalid prompt spec: give exactly one of 'template' (text) or 'messages' (chat)",
        ),
        (
            "unknown.yaml",
            "name: x\ntemplate: hi\ntemprature: 0.2\n",
            "unknown.yaml: invalid prompt spec: temprature: unknown field",
        ),
        (
            "badname.yaml",
            "name: has spaces\ntemplate: hi\n",
            "badname.yaml: invalid prompt spec: name: invalid prompt name 'has spaces'",
        ),
        (
            "badrole.yaml",
            "name: x\nmessages:\n  - {role: robot, content: hi}\n",
            "badrole.yaml: invalid prompt spec: messages.0.role: Input should be 'system'",
        ),
        (
            "list.yaml",
            "- name: x\n",
            "list.yaml: a prompt spec is a mapping with 'name' and one of 'template' or 'messages'",
        ),
        (
            "empty.yaml",
            "",
            "empty.yaml: a prompt spec is a mapping with 'name' and one of 'template' or 'messages'",
        ),
    ],
)
def test_bad_spec_files_are_refused_without_a_write(
    any_cli: Cli, tmp_path: Path, filename: str, content: str, message: str
) -> None:
    path = write(tmp_path / filename, content)
    error = any_cli.fails(EXIT_BAD_INPUT, "prompt", "push", path)
    assert error.startswith(str(tmp_path / message.split(":", 1)[0]))
    assert message.split(":", 1)[1] in error
    assert any_cli.json("prompt", "list") == []


def test_missing_spec_file(any_cli: Cli, tmp_path: Path) -> None:
    error = any_cli.fails(EXIT_BAD_INPUT, "prompt", "push", str(tmp_path / "nope.yaml"))
    assert error == f"cannot read {tmp_path / 'nope.yaml'}: No such file or directory"


def test_template_over_the_limit(any_cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path / "big.yaml", "name: big\ntemplate: " + "x" * (300 * 1024) + "\n")
    error = any_cli.fails(EXIT_BAD_INPUT, "prompt", "push", path)
    assert "template of 'big' is 307200 bytes, over the limit" in error
    assert any_cli.json("prompt", "list") == []


@pytest.fixture
def two_versions(any_cli: Cli, tmp_path: Path) -> Cli:
    any_cli.ok("prompt", "push", write(tmp_path / "a.yaml", SPEC_V1))
    any_cli.ok("prompt", "push", write(tmp_path / "b.yaml", SPEC_V1.replace("0.2", "0.9")))
    return any_cli


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("prompt", "show", "nope"), EXIT_FAILURE, "unknown prompt 'nope'"),
        (("prompt", "show", "support-bot@9"), EXIT_FAILURE, "prompt 'support-bot' has no version 9"),
        (("prompt", "show", "support-bot@x"), EXIT_BAD_INPUT, "invalid version 'x' in 'support-bot@x'"),
        (("prompt", "show", "bad name"), EXIT_BAD_INPUT, "invalid prompt name 'bad name'"),
        (("prompt", "diff", "support-bot", "1", "5"), EXIT_FAILURE, "has no version 5"),
        (("prompt", "diff", "support-bot", "1", "two"), EXIT_BAD_INPUT, "'two' is not a valid integer"),
        (
            ("rollout", "start", "support-bot", "2", "--ramp", "1,50,20", "--reason", "r"),
            EXIT_BAD_INPUT,
            "steps must be strictly increasing",
        ),
        (
            ("rollout", "start", "support-bot", "2", "--ramp", "5,50", "--reason", "r"),
            EXIT_BAD_INPUT,
            "the last step must be 100",
        ),
        (("rollout", "start", "support-bot", "7", "--reason", "r"), EXIT_FAILURE, "has no version 7"),
        (
            ("rollout", "start", "support-bot", "1", "--reason", "r"),
            EXIT_BAD_INPUT,
            "already the stable version",
        ),
        (("rollout", "start", "support-bot", "2"), EXIT_BAD_INPUT, "Missing option '--reason'"),
        (
            ("rollout", "start", "support-bot", "2", "--reason", " "),
            EXIT_BAD_INPUT,
            "--reason must not be empty: it goes to the audit log",
        ),
        (
            ("rollout", "revert", "support-bot", "--reason", "x"),
            EXIT_FAILURE,
            "cannot revert prompt 'support-bot': its rollout is idle (revision 1); revert is allowed "
            "from: promoted (no rollout was ever promoted)",
        ),
        (("rollout", "revert", "support-bot"), EXIT_BAD_INPUT, "Missing option '--reason'"),
        (
            ("rollout", "revert", "support-bot", "--reason", "x", "--to", "0"),
            EXIT_BAD_INPUT,
            "'--to': 0 is not in the range x>=1",
        ),
        (
            ("rollout", "start", "support-bot", "2", "--expected-revision", "3", "--reason", "r"),
            EXIT_FAILURE,
            "is at revision 1, not 3",
        ),
        (
            ("rollout", "pause", "support-bot", "--reason", "x"),
            EXIT_FAILURE,
            "cannot pause prompt 'support-bot': its rollout is idle",
        ),
        (("rollout", "pause", "support-bot"), EXIT_BAD_INPUT, "Missing option '--reason'"),
        (("rollout", "pause", "support-bot", "--reason", " "), EXIT_BAD_INPUT, "--reason must not"),
        (
            ("rollout", "pause", "support-bot", "--reason", "x", "--evidence", "{bad"),
            EXIT_BAD_INPUT,
            "--evidence is not valid JSON",
        ),
        (("rollout", "status", "nope"), EXIT_FAILURE, "unknown prompt 'nope'"),
        (("rollout", "history", "nope"), EXIT_FAILURE, "unknown prompt 'nope'"),
        (("rollout", "jump", "support-bot"), EXIT_BAD_INPUT, "No such command 'jump'"),
    ],
)
def test_command_errors(two_versions: Cli, args: tuple[str, ...], code: int, message: str) -> None:
    before = two_versions.json("rollout", "status", "support-bot")
    error = two_versions.fails(code, *args)
    assert message in error
    assert two_versions.json("rollout", "status", "support-bot") == before
    assert two_versions.json("rollout", "history", "support-bot") == []


def test_illegal_transition_after_promotion(two_versions: Cli) -> None:
    two_versions.ok("rollout", "start", "support-bot", "2", "--reason", "r")
    two_versions.ok("rollout", "promote", "support-bot", "--reason", "good")
    error = two_versions.fails(EXIT_FAILURE, "rollout", "rollback", "support-bot", "--reason", "x")
    assert error == (
        "cannot rollback prompt 'support-bot': its rollout is promoted (revision 3); "
        "rollback is allowed from: paused, ramping"
    )


def test_usage_errors_point_to_help(local: Cli) -> None:
    result = local("rollout", "pause")
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stderr.splitlines() == [
        "error: Missing argument 'NAME'.",
        "Try 'prompt-canary rollout pause --help' for help.",
    ]


def test_unsupported_registry(tmp_path: Path) -> None:
    error = Cli("ftp://example/registry").fails(EXIT_BAD_INPUT, "prompt", "list")
    assert error.startswith("unsupported registry 'ftp://example/registry'")


def test_revert_after_promotion_and_its_refusals(two_versions: Cli) -> None:
    two_versions.ok("rollout", "start", "support-bot", "2", "--reason", "r")
    error = two_versions.fails(EXIT_FAILURE, "rollout", "revert", "support-bot", "--reason", "x")
    assert error == (
        "cannot revert prompt 'support-bot': its rollout is ramping (revision 2); revert is allowed "
        "from: promoted (an active rollout is undone with rollback)"
    )
    two_versions.ok("rollout", "promote", "support-bot", "--reason", "good")
    before = two_versions.json("rollout", "history", "support-bot")
    assert two_versions.fails(
        EXIT_FAILURE, "rollout", "revert", "support-bot", "--to", "9", "--reason", "x"
    ) == ("prompt 'support-bot' has no version 9")
    assert two_versions.fails(
        EXIT_BAD_INPUT, "rollout", "revert", "support-bot", "--to", "2", "--reason", "x"
    ) == ("version 2 of 'support-bot' is already the stable version: nothing to revert")
    assert two_versions.json("rollout", "history", "support-bot") == before
    out = two_versions.ok("rollout", "revert", "support-bot", "--reason", "complaints").stdout
    assert out == "support-bot: rolled_back, stable v1, no canary [revision 4]\n"
    last = two_versions.json("rollout", "history", "support-bot")[-1]
    assert (last["action"], last["from_state"], last["to_state"], last["evidence"]) == (
        "revert",
        "promoted",
        "rolled_back",
        {"from_version": 2, "to_version": 1},
    )


@pytest.mark.parametrize("target", ["127.0.0.1:8787", "localhost:8787", "canary.internal:443/", "[::1]:8787"])
def test_a_host_and_port_is_refused_rather_than_made_a_file(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    error = Cli(target).fails(EXIT_BAD_INPUT, "prompt", "list")
    assert error == (
        f"registry {target!r} looks like a host and port, not a file: for a control plane give its "
        f"URL, http://{target} (or https://); for an SQLite file of that name, ./{target}"
    )
    assert list(tmp_path.iterdir()) == []  # no SQLite file of that name
    Cli(f"./{target.rstrip('/')}.db").ok("prompt", "list")  # a file is still a file


def test_a_web_server_that_is_not_a_control_plane_is_named_so(tmp_path: Path) -> None:
    page = b"<!DOCTYPE HTML><html><head><title>Error response</title></head><body>404</body></html>"

    class WebServer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Type", "text/html;charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            return

    with http_server(WebServer) as url:
        error = Cli(url).fails(EXIT_FAILURE, "prompt", "list")
    assert error == (
        f"{url} is not a control plane: GET /v1/prompts answered HTTP 404 with an HTML page, not the "
        "control plane's JSON; give the URL that `prompt-canary serve` listens on"
    )
