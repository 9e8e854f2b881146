"""Fixtures of the console's tests: the served console of the pages' and actions' tests
(:mod:`tests.console.console_fixtures`) and a headless Chromium (:mod:`tests.support.browser`)."""

from __future__ import annotations

from tests.console.console_fixtures import console  # noqa: F401  (the pages' and actions' fixture)
from tests.support.browser import browser  # noqa: F401  (the fixture, for this folder's tests)
