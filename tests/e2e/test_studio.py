"""The studio page in a real headless Chromium (Debian's chromium and chromium-driver) against the
whole pipeline: sign in, upload, watch the preview and then the final arrive, read a bad file's error,
open a trace's waterfall, reload and find the uploads again, drop a file as an admin for another
brand. Screenshots land in test-artifacts/."""

import base64
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from atelier_devtools.local.stack import SERVICES as PROCESSES
from atelier_uploader.keys import ADMIN
from tests.conftest import REPO, Deployment, jpeg_bytes
from tests.e2e.conftest import Pipeline, start_pipeline

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("ATELIER_TEST_ARTIFACTS", REPO / "test-artifacts"))
SERVICES = {"uploader", "tagger", "router", "stylizer", "exporter"}


@pytest.fixture
def held_back(deployment: Deployment) -> Iterator[Pipeline]:
    """Every service but the quality stylizer pool, which the test starts when it has seen the previews:
    so the final always comes after its preview, however loaded the machine."""
    running = start_pipeline(deployment, names=[spec.name for spec in PROCESSES if spec.name != "stylizer-quality"])
    yield running
    running.services.stop_all()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium at a laptop's size (`make test` installs Debian's chromium and chromium-driver)."""
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        "install Debian's chromium and chromium-driver (make test-tools)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # Tests run as root in CI.
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",  # This machine's network is closed: no calls home.
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1440,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


# Drops a file (name, base64 bytes) on the upload zone.
DROP = """
const [name, data] = arguments;
const bytes = Uint8Array.from(atob(data), (char) => char.charCodeAt(0));
const transfer = new DataTransfer();
transfer.items.add(new File([bytes], name, {type: "image/jpeg"}));
const zone = document.getElementById("zone");
for (const type of ["dragenter", "dragover", "drop"]) {
  zone.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
}
"""


def wait_for(driver: webdriver.Chrome, check: Callable[[webdriver.Chrome], Any], timeout_s: float = 60.0) -> Any:
    """Poll `check` until it returns something truthy (stale elements are retried), within the timeout."""

    def attempt(current: webdriver.Chrome) -> Any:
        try:
            return check(current)
        except StaleElementReferenceException:
            return False

    return WebDriverWait(driver, timeout_s, poll_frequency=0.1).until(attempt)


def card(driver: webdriver.Chrome, name: str) -> WebElement | None:
    """The card of an uploaded file, by its name."""
    for element in driver.find_elements(By.CSS_SELECTOR, ".card"):
        if element.find_element(By.CSS_SELECTOR, ".name").text == name:
            return element
    return None


def finished(driver: webdriver.Chrome, name: str, renders: int = 2) -> WebElement | None:
    """The card once its renders are done (every row's wait stopped)."""
    found = card(driver, name)
    if found is None:
        return None
    rows = found.find_elements(By.CSS_SELECTOR, ".run")
    return found if len(rows) == renders and all(row.get_attribute("data-done") == "true" for row in rows) else None


def previewed(driver: webdriver.Chrome, name: str) -> WebElement | None:
    """The card once it shows its preview."""
    found = card(driver, name)
    return found if found is not None and found.get_attribute("data-shown") == "preview" else None


def test_an_artist_uploads_watches_and_finds_the_work_again(
    held_back: Pipeline, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    pipeline = held_back
    files = {"harbour.jpg": jpeg_bytes(640, 480, seed=1), "dunes.jpg": jpeg_bytes(480, 640, seed=2)}
    files["notes.jpg"] = b"meeting notes, not a picture\n" * 20
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)

    browser.get(pipeline.api)
    assert browser.current_url.endswith("/studio/")
    browser.find_element(By.ID, "key").send_keys("atelier_0000_wrong")
    browser.find_element(By.ID, "signin-button").click()
    assert "unknown or revoked" in wait_for(browser, lambda d: d.find_element(By.ID, "signin-error").text)
    browser.get_log("browser")  # Its 401, on purpose; the log is read (and emptied) again at the end.
    browser.find_element(By.ID, "key").clear()
    browser.find_element(By.ID, "key").send_keys(pipeline.keys["acme"])
    browser.find_element(By.ID, "signin-button").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "live").text == "live")
    assert browser.find_element(By.ID, "brand-name").text == "Acme Outdoor"
    styles = [option.text for option in browser.find_elements(By.CSS_SELECTOR, "#style option")]
    assert styles == ["Let the brand rules decide", "brush", "tiles", "udnie"]

    # Several files at once, in "preview, then final" (the default).
    browser.find_element(By.ID, "files").send_keys("\n".join(str(tmp_path / name) for name in files))

    refused = wait_for(browser, lambda d: card(d, "notes.jpg"))
    error = wait_for(browser, lambda d: refused.find_element(By.CSS_SELECTOR, ".error").text)
    assert "not a recognised image" in error
    for name in ("harbour.jpg", "dunes.jpg"):
        preview = wait_for(browser, lambda d, name=name: previewed(d, name))
        assert preview.find_element(By.CSS_SELECTOR, "img.before").get_attribute("src").startswith("http")
        row = preview.find_element(By.CSS_SELECTOR, '.run[data-tier="preview"]')
        wait = row.find_element(By.CSS_SELECTOR, ".wait").text
        assert row.get_attribute("data-done") == "true" and re.fullmatch(r"\d+(\.\d)? s / 4\.0 s", wait), wait
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "studio-previews.png"))
    pipeline.services.start("stylizer-quality")  # Now the finals.
    for name in ("harbour.jpg", "dunes.jpg"):
        done = wait_for(browser, lambda d, name=name: finished(d, name), timeout_s=120)
        assert done.get_attribute("data-shown") == "preview,final", "the preview came first, then the final"
        waits = [row.find_element(By.CSS_SELECTOR, ".wait").text for row in done.find_elements(By.CSS_SELECTOR, ".run")]
        assert all(re.fullmatch(r"\d+(\.\d)? s / \d+(\.\d)? s", text) for text in waits), waits
        assert done.find_element(By.CSS_SELECTOR, "img.after").get_attribute("src").startswith("http")
        assert done.find_element(By.CSS_SELECTOR, ".route").text  # The style and the reason, in words.
        assert done.find_elements(By.CSS_SELECTOR, ".tags li")
    browser.save_screenshot(str(ARTIFACTS / "studio.png"))

    # The trace: a waterfall of the asset's spans across the five services.
    harbour = card(browser, "harbour.jpg")
    assert harbour is not None
    harbour.find_element(By.CSS_SELECTOR, ".trace-link").click()

    def traced(driver: webdriver.Chrome) -> set[str]:
        services = {element.text for element in driver.find_elements(By.CSS_SELECTOR, "#waterfall .svc")}
        return services if services >= SERVICES else set()

    wait_for(browser, traced, timeout_s=30)
    assert "spans across" in browser.find_element(By.ID, "trace-note").text
    browser.save_screenshot(str(ARTIFACTS / "studio-trace.png"))
    browser.find_element(By.ID, "trace-close").click()

    # A reload keeps the key for the tab and finds the brand's uploads again, with their outcome.
    browser.refresh()
    for name in ("harbour.jpg", "dunes.jpg"):
        again = wait_for(browser, lambda d, name=name: finished(d, name))
        assert again.find_element(By.CSS_SELECTOR, "img.after").get_attribute("src").startswith("http")
    assert card(browser, "notes.jpg") is None  # Refused at the door: it never became an asset.

    # An admin key acts for any brand: it picks one, and its uploads name it.
    browser.find_element(By.ID, "signout").click()
    browser.find_element(By.ID, "key").send_keys(pipeline.keys[ADMIN])
    browser.find_element(By.ID, "signin-button").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "live").text == "live")
    preview_only = browser.find_element(By.CSS_SELECTOR, '#modes input[value="preview"]').find_element(By.XPATH, "..")
    # Regression: a switch whose profile did not come closed the brand's live stream (the page still read
    # "live") and dropped its uploads' updates: the page stays on its brand, live.
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/v1/brands/lumen"]})
    Select(browser.find_element(By.ID, "brand-switch")).select_by_value("lumen")
    WebDriverWait(browser, 10).until(lambda d: d.switch_to.alert).accept()
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    assert browser.find_element(By.ID, "brand-name").text == "Acme Outdoor"
    preview_only.click()
    browser.execute_script(DROP, "after-a-failed-switch.jpg", base64.b64encode(files["harbour.jpg"]).decode())
    wait_for(browser, lambda d: finished(d, "after-a-failed-switch.jpg", renders=1))

    Select(browser.find_element(By.ID, "brand-switch")).select_by_value("lumen")
    wait_for(
        browser, lambda d: d.find_element(By.ID, "brand-name").text == "Lumen Cosmetics" and not card(d, "harbour.jpg")
    )
    preview_only.click()
    # Dropped on the zone this time: a drop event carrying the file, as a drag from the desktop makes.
    browser.execute_script(DROP, "dropped.jpg", base64.b64encode(files["dunes.jpg"]).decode())
    wait_for(browser, lambda d: finished(d, "dropped.jpg", renders=1))

    problems = [
        entry["message"]
        for entry in browser.get_log("browser")
        # On purpose: notes.jpg's 415; a trace asked before its spans were exported answers 404 and is asked again.
        if entry["level"] == "SEVERE"
        and "status of 415" not in entry["message"]
        and "ERR_BLOCKED_BY_CLIENT" not in entry["message"]  # The switch blocked above.
        and "/trace - " not in entry["message"]
    ]
    assert not problems, problems
