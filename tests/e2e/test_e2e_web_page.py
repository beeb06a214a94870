"""The page in a real browser (Debian's chromium, headless, through selenium) against the real daemon on the
virtual screen: search finds the cat and shows its thumbnail, the timeline shows the minute it was on screen,
pause shows in the panel and in `sensorium status`, forget removes it from the page. Screenshots are kept in
.cache/test-output/ (web-*.png)."""

from __future__ import annotations

import time

import cv2
import skimage.data
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec

from agent.web.security import read_token
from sinks.client import backfill, query
from tests.support.browser import chromium, shot, until
from tests.support.daemon import ONLY_SCREEN, start_daemon, status, stop_daemon
from tests.support.env import sensorium

CONFIG = "[device]\nname = 'CPU'\n[screen]\nfps = 2.0\nforce_keep_s = 2.0\n[store]\nflush_s = 0.2\n" + ONLY_SCREEN
CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}


def state_of(browser, source: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, f'#status-panel .source[data-source="{source}"] .state').text


def test_page_searches_shows_the_timeline_pauses_and_forgets(xvfb, home, tmp_path):
    xvfb.show(skimage.data.chelsea())
    proc, cfg = start_daemon(tmp_path, CONFIG)
    endpoint = f"ipc://{cfg.daemon.runtime_dir / 'query.sock'}"
    cfg_path = str(tmp_path / "cfg.toml")
    try:
        deadline = time.monotonic() + 30
        while len(hits := query(endpoint, "a cat", k=3)) < 2 and time.monotonic() < deadline:
            time.sleep(0.3)  # two kept frames (force_keep_s): the first has a neighbour to show around it
        assert hits and CATS & set(hits[0]["labels"]), hits
        link = sensorium("--config", cfg_path, "status").stdout.splitlines()[-1]
        assert link.startswith("page: http://127.0.0.1:") and "#token=" in link, link
        assert link.endswith(read_token(cfg.daemon.data_dir))

        with chromium() as browser:
            browser.get(link[len("page: ") :])
            until(browser, lambda b: state_of(b, "screen0") == "running")
            facts = browser.find_element(By.CSS_SELECTOR, "#status-panel .facts").text
            assert "storage" in facts and "MB" in facts and "effnet-lite0" in facts, facts  # used, model, device
            assert "#token" not in browser.current_url  # the token left the address bar (and the history)
            lane = until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, '.lane[data-lane="screen0"] .item'))
            assert lane, "the screen's lane shows what it captured this minute"
            shot(browser, "web-timeline")

            box = browser.find_element(By.ID, "search-input")
            box.send_keys("a cat", Keys.ENTER)
            first = until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#search-results .result"))[0]
            thumb = first.find_element(By.CSS_SELECTOR, "img.thumb")
            until(browser, lambda b: b.execute_script("return arguments[0].naturalWidth", thumb) > 0)  # loaded
            ids = [
                r.get_attribute("data-id") for r in browser.find_elements(By.CSS_SELECTOR, "#search-results .result")
            ]
            assert hits[0]["id"] in ids[:3], (hits[0]["id"], ids)
            shot(browser, "web-search")

            photo = tmp_path / "cat.jpg"  # the same photo from a file, as a person picks (or drops) one
            cv2.imwrite(str(photo), cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR))
            browser.find_element(By.ID, "search-input").clear()
            browser.find_element(By.ID, "search-image").send_keys(str(photo))
            until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#search-summary img.query-image"))
            until(browser, lambda b: b.find_element(By.ID, "search-summary").text.startswith(("1 ", "2 ", "3 ")))
            top = until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#search-results .result"))[0]
            assert "screen0" in top.text and CATS & set(top.text.replace("\n", ", ").split(", ")), top.text
            shot(browser, "web-search-image")

            first = browser.find_element(By.CSS_SELECTOR, "#search-results .result")
            first.click()  # that moment, with what else happened around it
            until(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#detail .hit"))
            shot(browser, "web-around")

            browser.find_element(By.CSS_SELECTOR, '#status-panel .source[data-source="screen0"] .pause').click()
            until(browser, lambda b: state_of(b, "screen0") == "paused")
            assert status(cfg)["sources"]["screen0"]["state"] == "paused"
            assert "paused" in sensorium("--config", cfg_path, "status").stdout
            shot(browser, "web-paused")
            browser.find_element(By.ID, "resume-all").click()
            until(browser, lambda b: state_of(b, "screen0") == "running")

            browser.find_element(By.CSS_SELECTOR, '#forget-panel [data-last="3600"]').click()
            until(browser, ec.alert_is_present()).accept()  # the confirmation
            until(browser, lambda b: hits[0]["id"] not in [
                r.get_attribute("data-id") for r in b.find_elements(By.CSS_SELECTOR, "#search-results .result")
            ])  # fmt: skip
            shot(browser, "web-forgotten")
        since = hits[0]["ts"] - 1
        assert not [m for m in backfill(endpoint, since) if m.id == hits[0]["id"]]  # gone from memory too
    finally:
        stop_daemon(proc, tmp_path)
