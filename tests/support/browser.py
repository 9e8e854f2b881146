"""Headless Chromium for the console's browser tests: Debian's ``chromium`` driven by its ``chromedriver``.

::

    def test_the_prompts_page(browser: WebDriver, console: str) -> None:
        browser.get(f"{console}/console/")
        wait_for_text(browser, "greeter")
        screenshot(browser, "prompts")                    # docs/console/prompts.png
        with viewport(browser, PHONE):
            screenshot(browser, "prompts-phone")

The ``browser`` fixture starts one Chromium per test, with a new empty profile and a laptop-sized
viewport, and quits it afterwards. Without Debian's ``chromium`` and ``chromium-driver`` (which
``scripts/bootstrap`` installs) the test is skipped locally and fails in CI, as for the other real
services (:func:`tests.support.services.unavailable`).

Chromium runs as the suites do, as root, on a machine whose only network is loopback: hence no
sandbox (it refuses root otherwise), no GPU, and none of its background connections to Google's
hosts (they are refused here, many at a time, and slow every start).
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from tests.support.services import unavailable
from tests.support.waiting import eventually

__all__ = [
    "LAPTOP",
    "PHONE",
    "SCREENSHOTS",
    "Viewport",
    "browser",
    "console_messages",
    "field",
    "headless_chromium",
    "loaded_from",
    "page_text",
    "screenshot",
    "viewport",
    "wait_for",
    "wait_for_text",
]

#: Where :func:`screenshot` writes: the console's user documentation shows these files.
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "console"


@dataclass(frozen=True)
class Viewport:
    """The size of the page's visible area, in CSS pixels; ``mobile`` emulates a phone (its
    ``<meta name="viewport">`` is honoured, scrollbars overlay the page)."""

    width: int
    height: int
    mobile: bool = False


#: A laptop screen, the size every test starts with.
LAPTOP = Viewport(1366, 900)
#: A phone held upright.
PHONE = Viewport(390, 844, mobile=True)

# Flags of the probe that proved Chromium here (machines/polyglot.md), plus those that keep a run
# quiet and its screenshots plain: no sandbox (root), no GPU, nothing fetched in the background.
_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-proxy-server",
    "--password-store=basic",
    "--hide-scrollbars",
    "--mute-audio",
    "--lang=en-US",
)


def _binaries() -> tuple[str, str]:
    """The paths of ``chromium`` and ``chromedriver``; skips locally, fails in CI, when missing."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        missing = " and ".join(n for n, p in (("chromium", chromium), ("chromedriver", driver)) if not p)
        unavailable(f"{missing} not found (apt-get install chromium chromium-driver)")
    assert chromium and driver
    return chromium, driver


@contextmanager
def headless_chromium(size: Viewport = LAPTOP) -> Iterator[WebDriver]:
    """A headless Chromium with a new, empty profile and a ``size`` viewport; quit at the end.

    Its page's console messages are kept (:func:`console_messages`). Fails the test, with the
    driver's log, when Chromium does not start.
    """
    chromium, driver_path = _binaries()
    root = tempfile.mkdtemp(prefix="pc-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in _FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={root}/profile")
    options.add_argument(f"--window-size={size.width},{size.height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    log = Path(root, "chromedriver.log")
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    service = Service(executable_path=driver_path, log_output=str(log))
    try:
        try:
            driver = webdriver.Chrome(options=options, service=service)
        except WebDriverException as exc:
            detail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            pytest.fail(f"could not start headless Chromium: {exc.msg}\n{detail}")
        try:
            _emulate(driver, size)
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """A headless Chromium at :data:`LAPTOP` size, new for each test (no cookie carries over)."""
    with headless_chromium() as driver:
        yield driver


def _emulate(driver: WebDriver, size: Viewport) -> None:
    # The DevTools protocol sets the viewport itself: a window cannot be made as narrow as a phone.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": size.width, "height": size.height, "deviceScaleFactor": 1, "mobile": size.mobile},
    )


@contextmanager
def viewport(driver: WebDriver, size: Viewport) -> Iterator[WebDriver]:
    """The page seen at ``size`` (a phone, say) inside the block, at :data:`LAPTOP` size again after."""
    _emulate(driver, size)
    try:
        yield driver
    finally:
        _emulate(driver, LAPTOP)


def screenshot(driver: WebDriver, name: str, *, folder: Path = SCREENSHOTS) -> Path:
    """Write the whole page (beyond the viewport, down to its end) as ``folder/<name>.png``; its path."""
    metrics: dict[str, Any] = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    content = metrics["cssContentSize"]
    shot: dict[str, Any] = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": content["width"], "height": content["height"], "scale": 1},
        },
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def page_text(driver: WebDriver) -> str:
    """The text a person sees on the page (the ``<body>``'s rendered text)."""
    text: str = driver.find_element(By.TAG_NAME, "body").text
    return text


def wait_for(driver: WebDriver, condition: Callable[[], object], *, what: str, timeout: float = 20.0) -> None:
    """Wait until ``condition()`` holds; a failure names ``what`` and shows the page's URL and text.

    While a page loads, an element it looks for may be missing or gone (the page it was found on
    was replaced, which Chromium may also report as a node that "does not belong to the document"):
    the condition does not hold yet.
    """

    def holds() -> object:
        try:
            return condition()
        except (NoSuchElementException, StaleElementReferenceException):
            return False
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return False
            raise

    def diagnostics() -> str:
        return f"page {driver.current_url}:\n{page_text(driver)[:3000]}"

    eventually(holds, timeout=timeout, what=what, interval=0.1, diagnostics=diagnostics)


def wait_for_text(driver: WebDriver, text: str, *, timeout: float = 20.0) -> None:
    """Wait until the page shows ``text`` (a page reloaded by the console's script, say)."""
    wait_for(driver, lambda: text in page_text(driver), what=f"the page showing {text!r}", timeout=timeout)


def console_messages(driver: WebDriver, level: str = "SEVERE") -> list[str]:
    """The page's console messages at ``level`` since the last call (scripts' errors, failed loads)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == level]


def loaded_from(driver: WebDriver) -> set[str]:
    """The origins (scheme, host, port) of the page and of every resource it loaded."""
    urls: list[str] = driver.execute_script(
        "return [location.href].concat(performance.getEntriesByType('resource').map(e => e.name))"
    )
    return {"/".join(url.split("/")[:3]) for url in urls}


def field(driver: WebDriver, name: str) -> WebElement:
    """The form field named ``name`` on the page."""
    return driver.find_element(By.NAME, name)
