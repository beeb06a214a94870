"""The page as a person's browser runs it: Debian's chromium, headless, driven by selenium through chromium-driver
(no browser download; demo/page.py starts it, for the demo's screenshot too). Screenshots go to
.cache/test-output/ and stay there after the run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.webdriver.support.ui import WebDriverWait

from demo import page
from tests.support.env import ROOT, require

SHOTS = ROOT / ".cache" / "test-output"
T = TypeVar("T")


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    require("chromium")
    require("chromedriver")
    with page.chromium() as browser:
        yield browser


def until(browser: webdriver.Chrome, what: Callable[[webdriver.Chrome], T], timeout: float = 20.0) -> T:
    """The first truthy `what(browser)` within `timeout` (selenium's wait, ignoring elements not there yet)."""
    return WebDriverWait(browser, timeout, poll_frequency=0.2).until(what)


def shot(browser: webdriver.Chrome, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    return path
