"""docs/frameworks.md says what was tested with which version, truthfully: its table names every
framework, SDK and peer the suite runs, with the lower bound ``requirements-test.txt`` declares, and
the environment running the suite is at least that version. The page is linked where a reader of the
instrumentation looks."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from tests.instrumentation.frameworks import TESTED, installed

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "frameworks.md"


def documented() -> dict[str, str]:
    """The rows of the "Tested versions" table: distribution -> version."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("\n## Tested versions\n") :]
    return dict(re.findall(r"^\| ([a-z0-9.-]+) \| ([0-9][0-9a-z.]*) \|$", section, flags=re.M))


def declared() -> dict[str, str]:
    """The lower bound of each requirement of ``requirements-test.txt``."""
    bounds = {}
    for line in (ROOT / "requirements-test.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        lower = [s.version for s in requirement.specifier if s.operator == ">="]
        assert lower, f"{line}: every test dependency has a lower bound"
        bounds[requirement.name] = lower[0]
    return bounds


def test_every_tested_distribution_is_in_the_table() -> None:
    assert sorted(documented()) == sorted(TESTED)


def test_the_table_matches_the_declared_bounds() -> None:
    bounds = declared()
    for name, version in documented().items():
        if name in bounds:
            assert Version(version) == Version(bounds[name]), name


def test_the_suite_runs_at_least_the_documented_versions() -> None:
    for name, version in documented().items():
        assert Version(installed(name)) >= Version(version), name


def test_the_page_is_linked() -> None:
    for page in (ROOT / "README.md", ROOT / "docs" / "instrumentation.md"):
        assert "frameworks.md" in page.read_text(encoding="utf-8"), page
