"""A headless Chromium driven by selenium, for the page tests; skipped, saying why, where there is none.

Debian's packages (`apt-get install chromium chromium-driver`, which `make test`
does when they are missing) put the browser and its driver on fixed paths;
selenium comes with the test extras. The browser's DevTools performance log
is on, so a test can read every request the page made.
"""
import os
import shutil

import pytest

CHROMIUM = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "chromedriver")


def _first(names):
    for name in names:
        path = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
        if path:
            return path
    return None


def start_browser():
    """A headless Chrome(ium) WebDriver; pytest.skip with the reason if it cannot start here."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    browser, driver = _first(CHROMIUM), _first(CHROMEDRIVER)
    if browser is None or driver is None:
        pytest.skip("no Chromium and chromedriver here (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,760",
                "--disable-background-networking", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    try:
        return webdriver.Chrome(service=Service(driver), options=options)
    except WebDriverException as exc:
        pytest.skip(f"Chromium would not start headless here: {exc.msg}")


def requested_urls(driver) -> list:
    """Every URL the browser asked for since the last call (DevTools Network.requestWillBeSent)."""
    import json
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls
