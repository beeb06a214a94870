"""The demo's look at the web page: the link `sensorium status` prints, and a screenshot of the page after it
searched for the cat and opened what happened around it, taken by Debian's chromium (headless, driven by
selenium through chromium-driver: no browser download). The tests drive the page with the same browser."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SEARCH = "a cat"


def page_link(status_text: str) -> str | None:
    """The `page: http://…/#token=…` line of `sensorium status`, without its prefix."""
    for line in status_text.splitlines():
        if line.startswith("page: "):
            return line[len("page: ") :].strip()
    return None


def missing() -> str | None:
    """Why no screenshot can be taken here (None: it can)."""
    for tool, pkg in (("chromium", "chromium"), ("chromedriver", "chromium-driver")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {pkg})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[demo]')"
    return None


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """Headless chromium under selenium; --no-sandbox because chromium refuses root (a container) with one."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"):
        opts.add_argument(arg)
    opts.add_argument(f"--window-size={width},{height}")
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=opts)
    try:
        yield browser
    finally:
        browser.quit()


def screenshot(link: str, out: Path, search: str = SEARCH, timeout: float = 30.0) -> Path:
    """Open the page, search, open the best result's moment, and save the page as a PNG."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    with chromium() as browser:
        wait = WebDriverWait(browser, timeout, poll_frequency=0.2)
        browser.get(link)
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#timeline .lane"))
        browser.find_element(By.ID, "search-input").send_keys(search, Keys.ENTER)
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#search-results .result"))[0].click()
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#detail .hit"))
        browser.save_screenshot(str(out))
    return out
