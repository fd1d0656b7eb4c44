"""The dashboard in a real headless Chromium (Debian's chromium and chromedriver, through
selenium): log in, look at every page, click pause / resume / run now and see the state
change, see a run arrive by the live (server-sent events) refresh, and check that a task
named ``<script>`` stays text.

With ``TICKWORK_SCREENSHOTS=1`` it writes the docs' screenshots to ``docs/images/``.
Outside CI a missing browser skips the tests; with ``CI=true`` it fails them."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from web_server import serve

from tickwork.schedulers import BackgroundScheduler
from tickwork.stores import store_from_url

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import (  # noqa: E402
    NoAlertPresentException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

pytestmark = pytest.mark.slow

TOKEN = "browser-admin-token"
NASTY = "<script>alert('x')</script>"
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def _binaries() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        reason = (
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return browser, driver


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    browser, chromedriver = _binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,860",
    ):
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=webdriver.ChromeService(chromedriver))
    chrome.set_page_load_timeout(30)
    try:
        yield chrome
    finally:
        chrome.quit()


def report(name: str) -> str:
    return f"Weekly report {name}"


def wait_for(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def screenshot(driver: Any, name: str) -> None:
    if os.environ.get("TICKWORK_SCREENSHOTS") == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(IMAGES / f"{name}.png"))


def text(driver: Any, element_id: str) -> str | None:
    """An element's text, read in one script: the live refresh replaces elements, so a
    found element can go stale before it is read."""
    value: str | None = driver.execute_script(
        "var e = document.getElementById(arguments[0]); return e && e.innerText.trim();",
        element_id,
    )
    return value


def count(driver: Any, selector: str) -> int:
    found: int = driver.execute_script(
        "return document.querySelectorAll(arguments[0]).length;", selector
    )
    return found


def click(driver: Any, element_id: str) -> None:
    """Click, trying again if the live refresh replaced the element meanwhile."""
    for _ in range(5):
        try:
            driver.find_element(By.ID, element_id).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.05)
    raise AssertionError(f"#{element_id} kept going stale")


def no_alert(driver: Any) -> bool:
    try:
        driver.switch_to.alert  # noqa: B018 (raises when there is none)
    except NoAlertPresentException:
        return True
    return False


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[tuple[str, BackgroundScheduler]]:
    store = store_from_url(f"sqlite:///{tmp_path / 'tasks.db'}")
    scheduler = BackgroundScheduler(stores={"default": store}, identity="web-1")
    scheduler.add_task("web_targets:noop", "cron", hour=6, id="report", name="Weekly report")
    scheduler.add_task("web_targets:fail", "interval", hours=6, id="sync", name="Sync invoices")
    scheduler.add_task(
        "web_targets:noop", "cron", day_of_week="sun", hour=2, timezone="Europe/Berlin",
        id="cleanup", name="Clean up uploads",
    )  # fmt: skip
    scheduler.add_task("web_targets:noop", "interval", minutes=15, id="nasty", name=NASTY)
    scheduler.start()
    try:
        for _ in range(3):
            scheduler.request_run("report")
        scheduler.request_run("sync")
        wait_for(
            lambda: len(scheduler.get_runs()) == 4 and scheduler.get_runs("sync", outcome="error")
        )
        app = scheduler.admin_app(token=TOKEN, refresh_seconds=0.5)
        with serve(app) as url:
            yield url, scheduler
    finally:
        scheduler.shutdown()


def test_dashboard_in_a_browser(driver: Any, app_url: tuple[str, BackgroundScheduler]) -> None:
    url, scheduler = app_url
    driver.get(url + "/")
    assert driver.find_element(By.ID, "token")  # not logged in: the login form
    driver.find_element(By.ID, "token").send_keys(TOKEN)
    driver.find_element(By.ID, "login").click()
    wait_for(lambda: driver.find_elements(By.ID, "tasks"))

    # The task list: the <script> task's name is text, and no script ran.
    rows = driver.find_elements(By.CSS_SELECTOR, "#tasks tbody tr")
    assert len(rows) == 4
    assert NASTY in text(driver, "tasks")
    assert no_alert(driver)
    screenshot(driver, "dashboard-tasks")

    # Search, on the server.
    driver.find_element(By.ID, "search").send_keys("report\n")
    wait_for(lambda: count(driver, "#tasks tbody tr") == 1)

    # A task's page: pause, resume, run now.
    driver.get(url + "/tasks/report")
    assert text(driver, "task-state") == "active"
    click(driver, "pause")
    wait_for(lambda: text(driver, "task-state") == "paused")
    assert text(driver, "message") == "paused"
    assert scheduler.get_task("report").next_run_time is None  # type: ignore[union-attr]
    click(driver, "resume")
    wait_for(lambda: text(driver, "task-state") == "active")
    assert scheduler.get_task("report").next_run_time is not None  # type: ignore[union-attr]

    click(driver, "run-now")
    # (The page still shows "resumed" until the answer to the click replaces it: wait for
    # the new message, not for a message.)
    wait_for(lambda: text(driver, "message") == "run requested")
    wait_for(lambda: scheduler.get_runs("report")[0].outcome == "success")
    assert len(scheduler.get_runs("report")) == 4, scheduler.get_runs("report")
    wait_for(lambda: count(driver, "#timeline .tick") == 4)
    screenshot(driver, "dashboard-task")

    # A change made elsewhere (here: by the scheduler's own API, as a fleet member's
    # would be) reaches the open page by the live refresh (server-sent events), with
    # no reload.
    driver.execute_script("document.body.dataset.marker = 'same page'")
    scheduler.pause_task("report")
    wait_for(lambda: text(driver, "task-state") == "paused")
    assert driver.execute_script("return document.body.dataset.marker") == "same page"
    assert int(driver.execute_script("return document.body.dataset.refreshed")) >= 1
    scheduler.resume_task("report")

    # A new trigger from the form; a wrong one is refused with the error shown.
    Select(driver.find_element(By.ID, "trigger")).select_by_visible_text("interval")
    driver.find_element(By.ID, "trigger-args").send_keys("minutes=30")
    click(driver, "reschedule")
    wait_for(lambda: text(driver, "message") == "rescheduled")
    assert "0:30:00" in (text(driver, "task-trigger") or "")
    Select(driver.find_element(By.ID, "trigger")).select_by_visible_text("cron")
    driver.find_element(By.ID, "trigger-args").send_keys("hour=31")
    click(driver, "reschedule")
    wait_for(lambda: driver.find_elements(By.ID, "error"))
    assert "31" in (text(driver, "error") or "")
    assert "0:30:00" in str(scheduler.get_task("report").trigger)  # type: ignore[union-attr]

    # A failed run's page, with its traceback.
    driver.get(url + "/tasks/sync")
    driver.find_element(By.CSS_SELECTOR, "#timeline .tick.error").click()
    wait_for(lambda: driver.find_elements(By.ID, "traceback"))
    assert (
        "RuntimeError: <script>alert('traceback')</script>"
        in driver.find_element(By.ID, "traceback").text
    )
    assert no_alert(driver)
    screenshot(driver, "dashboard-run")

    # Next runs with the DST change marked.
    driver.get(url + "/tasks/cleanup")
    assert driver.find_elements(By.CSS_SELECTOR, ".preview li")

    driver.get(url + "/fleet")
    wait_for(lambda: "yes (term" in (text(driver, "fleet") or ""))  # it leads its SQL store
    assert "web-1" in text(driver, "fleet")
    screenshot(driver, "dashboard-fleet")

    # The <script> task's own page: its name is the page's heading, as text.
    driver.find_element(By.LINK_TEXT, "Tasks").click()
    driver.find_element(By.LINK_TEXT, NASTY).click()
    wait_for(lambda: driver.find_elements(By.ID, "task-name"))
    assert text(driver, "task-name") == NASTY
    assert no_alert(driver)
    driver.get("about:blank")  # closes the page's event stream before the server stops
