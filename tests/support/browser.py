"""Debian's chromium, headless, driven by selenium through chromium-driver (no browser download): the page as
a person's browser runs it. Screenshots go to .cache/test-output/ and stay there after the run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.env import ROOT, require

SHOTS = ROOT / ".cache" / "test-output"
T = TypeVar("T")


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    binary, driver = require("chromium"), require("chromedriver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"):
        opts.add_argument(arg)  # --no-sandbox: the tests run as root here, and chromium refuses root with a sandbox
    opts.add_argument(f"--window-size={width},{height}")
    browser = webdriver.Chrome(service=Service(driver), options=opts)
    try:
        yield browser
    finally:
        browser.quit()


def until(browser: webdriver.Chrome, what: Callable[[webdriver.Chrome], T], timeout: float = 20.0) -> T:
    """The first truthy `what(browser)` within `timeout` (selenium's wait, ignoring elements not there yet)."""
    return WebDriverWait(browser, timeout, poll_frequency=0.2).until(what)


def shot(browser: webdriver.Chrome, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    return path
