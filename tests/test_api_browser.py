"""The web page (``GET /``) in a real headless Chromium (Debian's chromium + chromium-driver,
driven by selenium): type the seed question, submit with the keyboard, see the answer sentence
and a source dated 2025-08-15; then a question the archive cannot answer shows "not in the
archive". All under the page's Content-Security-Policy: the console shows no violation of it.
`make browser` (run by `make test`) installs Chromium where it can; elsewhere this skips."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import LANDING_SENTENCE
from .test_api import SEED, running_server

pytestmark = pytest.mark.model

CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = Path("/tmp/qabot-page.png")


def _missing() -> str | None:
    if not CHROMEDRIVER.exists():
        return f"{CHROMEDRIVER} is missing: `make browser` installs chromium-driver (as root, with apt-get)"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "chromium is missing: `make browser` installs it (as root, with apt-get)"
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[object]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=420,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, where CSP violations show
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_the_page_answers_and_says_not_in_the_archive(browser, sample_index, e5):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    with running_server(sample_index, e5) as url:
        browser.get(url + "/")
        box = browser.find_element(By.ID, "question")
        assert browser.switch_to.active_element == box  # focused on load: type at once
        box.send_keys(SEED, Keys.ENTER)
        wait = WebDriverWait(browser, 60)
        turn = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#answers .turn")))
        assert turn.find_element(By.CSS_SELECTOR, ".reply mark").text == LANDING_SENTENCE
        assert "2025-08-15" in turn.find_element(By.CSS_SELECTOR, "ol.sources li").text
        browser.save_screenshot(str(SCREENSHOT))

        box = browser.find_element(By.ID, "question")
        box.clear()
        box.send_keys("Was ist die Hauptstadt von Australien?", Keys.ENTER)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#answers .turn")) == 2)
        newest = browser.find_elements(By.CSS_SELECTOR, "#answers .turn")[0]
        assert newest.get_attribute("data-found") == "false"
        assert "not in the archive" in newest.text.lower()
        assert not newest.find_elements(By.CSS_SELECTOR, ".reply mark")
        assert browser.execute_script("return getComputedStyle(document.querySelector('main')).maxWidth") != "none"  # page.css applied
        console = [entry["message"] for entry in browser.get_log("browser")]
        assert not [m for m in console if "Content Security Policy" in m or "Content-Security-Policy" in m], console
