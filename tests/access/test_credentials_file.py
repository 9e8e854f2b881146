"""The credentials file: validated at start-up with messages naming the entry and the field; tokens
kept as hashes; the single tokens keep working as principals of their own."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from otel_prompt_canary.cli import cli
from otel_prompt_canary.errors import describe_validation_errors
from otel_prompt_canary.service import ServiceSettings
from otel_prompt_canary.service.principals import Principal, Role, principal_for_token
from tests.support.auth import (
    ALERTMANAGER_TOKEN,
    READ_TOKEN,
    REPORT_TOKEN,
    TOKEN,
    Credential,
    write_credentials,
)

ALICE = Credential("alice", ["operate", "review"])
CI = Credential("ci-staging", ["operate"], environments=["staging"])


def _settings(path: Path, **extra: object) -> ServiceSettings:
    return ServiceSettings(credentials_file=path, **extra)  # type: ignore[arg-type]


def _refusal(path: Path, text: str, **extra: object) -> str:
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        _settings(path, **extra)
    return describe_validation_errors(caught.value.errors())  # what `serve` prints


def test_principals_of_the_file_and_of_the_single_tokens(tmp_path: Path) -> None:
    settings = _settings(
        write_credentials(tmp_path, [ALICE, CI]),
        environments="staging,production",
        token=TOKEN,
        read_token=READ_TOKEN,
        report_token=REPORT_TOKEN,
        alertmanager_token=ALERTMANAGER_TOKEN,
    )
    assert principal_for_token(settings, ALICE.token) == Principal(
        "alice", frozenset({Role.OPERATE, Role.REVIEW})
    )
    assert principal_for_token(settings, CI.token) == Principal(
        "ci-staging", frozenset({Role.OPERATE}), frozenset({"staging"})
    )
    expected = {
        TOKEN: "admin",
        READ_TOKEN: "reader",
        REPORT_TOKEN: "reporter",
        ALERTMANAGER_TOKEN: "alertmanager",
    }
    for token, name in expected.items():
        found = principal_for_token(settings, token)
        assert found is not None and found.name == name
    assert principal_for_token(settings, "x" * 30) is None
    assert principal_for_token(settings, "") is None
    assert principal_for_token(settings, ALICE.token + "x") is None


def test_tokens_are_kept_as_hashes(tmp_path: Path) -> None:
    path = tmp_path / "credentials.yaml"
    plain = "plain-token-0123456789abcdef"
    path.write_text(f"- principal: bob\n  token: {plain}\n  roles: [read]\n", encoding="utf-8")
    settings = _settings(path, token=TOKEN)
    assert [c.digest for c in settings.credentials] == [hashlib.sha256(plain.encode()).digest()]
    assert plain not in repr(settings.credentials) and plain not in repr(settings)
    found = principal_for_token(settings, plain)
    assert found is not None and found.name == "bob"


def test_a_credentials_file_replaces_the_write_token(tmp_path: Path) -> None:
    settings = _settings(write_credentials(tmp_path, [ALICE]))
    assert settings.token is None
    assert not settings.writes_open and not settings.reads_open


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "give a list of entries"),
        ("principal: alice\n", "give a list of entries"),
        (
            "- principal: alice\n  roles: [read]\n",
            "entry 1 (principal 'alice'): give exactly one of 'token_sha256'",
        ),
        (
            f"- principal: alice\n  token: abcdefghijklmnopq\n  token_sha256: '{'0' * 64}'\n"
            "  roles: [read]\n",
            "give exactly one of",
        ),
        ("- principal: alice\n  token_sha256: abc\n  roles: [read]\n", "token_sha256: give the SHA-256"),
        ("- principal: alice\n  token: short\n  roles: [read]\n", "the token is too short (5 characters)"),
        (
            f"- principal: alice\n  token_sha256: '{'0' * 64}'\n  roles: [reader]\n",
            "entry 1 (principal 'alice'): roles.0",
        ),
        (f"- principal: alice\n  token_sha256: '{'0' * 64}'\n  roles: []\n", "roles"),
        (f"- principal: 'no spaces'\n  token_sha256: '{'0' * 64}'\n  roles: [read]\n", "invalid principal"),
        (
            f"- principal: alice\n  token_sha256: '{'0' * 64}'\n  roles: [read]\n  extra: 1\n",
            "extra: unknown field",
        ),
        (
            f"- principal: alice\n  token_sha256: '{'0' * 64}'\n  roles: [read]\n"
            f"- principal: bob\n  token_sha256: '{'0' * 64}'\n  roles: [read]\n",
            "entry 2 (principal 'bob'): the same token as entry 1",
        ),
        (
            f"- principal: alice\n  token_sha256: '{'0' * 64}'\n  roles: [read]\n  environments: [Staging]\n",
            "invalid environment name 'Staging'",
        ),
        (
            f"- principal: alice\n  token_sha256: '{'0' * 64}'\n  roles: [read]\n  environments: [qa]\n",
            "environment 'qa' is not served here (this control plane serves production)",
        ),
        ("- [unclosed\n", "is not valid YAML"),
        (
            f"- principal: alice\n  token_sha256: {'1' * 64}\n  roles: [read]\n",
            "YAML read it as a number: quote it",
        ),
    ],
)
def test_a_bad_credentials_file_is_refused_at_start_up(tmp_path: Path, text: str, message: str) -> None:
    assert message in _refusal(tmp_path / "credentials.yaml", text)


def test_a_missing_file_and_a_reused_single_token_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read the credentials file"):
        _settings(tmp_path / "nowhere.yaml")
    path = write_credentials(tmp_path, [ALICE])
    with pytest.raises(ValidationError, match="gives principal 'alice' the same token as --read-token"):
        _settings(path, read_token=ALICE.token)


def test_serve_refuses_a_bad_file_before_it_listens(tmp_path: Path) -> None:
    path = tmp_path / "credentials.yaml"
    path.write_text(f"- principal: alice\n  token_sha256: '{'0' * 64}'\n  roles: [root]\n", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["--registry", str(tmp_path / "r.db"), "serve", "--credentials-file", str(path), "--port", "0"]
    )
    assert result.exit_code == 2, result.output
    assert "entry 1 (principal 'alice'): roles.0" in result.output
    assert "--credentials-file FILE" in CliRunner().invoke(cli, ["serve", "--help"]).output
    assert "--required-approvals" in CliRunner().invoke(cli, ["serve", "--help"]).output


def test_the_example_of_the_docs_is_a_valid_credentials_file(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "access.md").read_text(encoding="utf-8")
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "credentials.yaml"
    path.write_text(example, encoding="utf-8")
    settings = _settings(path, environments="staging,production")
    names = [c.principal.name for c in settings.credentials]
    assert names == ["alice", "bob", "ci-staging", "support-app", "oncall-grafana"]
    assert settings.credentials[2].principal.environments == frozenset({"staging"})
