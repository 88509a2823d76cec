"""The example project in a real browser: the admin's singleton and content pages, and the
newsletter confirmation flow. Screenshots go to ``build/screenshots/``
(``make screenshots`` copies them to ``docs/img/`` for the documentation)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import ExampleServer

DATABASE = os.environ.get("KEEL_TEST_DB", "sqlite")

pytestmark = pytest.mark.skipif(
    DATABASE != "sqlite",
    reason=f"browser tests run once per `make test`, on the sqlite run (this is {DATABASE})",
)


def wait_for(browser: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 15).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def dropdown(element: Any) -> Any:
    from selenium.webdriver.support.ui import Select as SeleniumSelect

    return SeleniumSelect(element)


def find(browser: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, css)


def submit(browser: Any, css: str) -> None:
    """Click ``css`` and wait until the page it loads has replaced the current one.

    Without the wait, the next lookup can find an element of the old page, which then goes
    stale under it.
    """
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    page = find(browser, "html")
    find(browser, css).click()
    WebDriverWait(browser, 15).until(ec.staleness_of(page))


def log_in(browser: Any, server: ExampleServer) -> None:
    browser.get(server.url + "/admin/")
    if not browser.find_elements("css selector", "#id_username"):
        return  # the session of an earlier test is still logged in
    find(browser, "#id_username").send_keys(server.admin_username)
    find(browser, "#id_password").send_keys(server.admin_password)
    submit(browser, "input[type=submit]")
    wait_for(browser, "#user-tools")


def test_admin_site_settings_is_one_change_form_that_saves(
    browser: Any, example_server: ExampleServer, screenshot_dir: Path
):
    log_in(browser, example_server)

    # The changelist of a singleton opens its one row's change form.
    browser.get(example_server.url + "/admin/system/sitesettings/")
    wait_for(browser, "#sitesettings_form")
    assert browser.current_url.endswith("/admin/system/sitesettings/1/change/")
    # Django < 6.1 separates crumbs with a U+203A in the text, 6.1 with styled list items.
    crumbs = " ".join(re.split(r"[\s\u203a]+", find(browser, ".breadcrumbs").text))
    assert crumbs == "Home System Site settings site settings"
    assert find(browser, "#id_site_name").get_attribute("value") == "Harbour Notes"
    # The encrypted CRM key is a password box that never shows a stored value.
    assert find(browser, "#id_crm_api_key").get_attribute("type") == "password"
    assert not browser.find_elements("css selector", ".deletelink")

    tagline = find(browser, "#id_tagline")
    tagline.clear()
    tagline.send_keys("Edited in a real browser")
    find(browser, "#id_crm_api_key").send_keys("crm-browser-secret")
    submit(browser, "input[name=_save]")
    message = wait_for(browser, ".messagelist .success")

    assert "was changed successfully" in message.text
    assert browser.current_url.endswith("/admin/system/sitesettings/1/change/")
    assert find(browser, "#id_tagline").get_attribute("value") == "Edited in a real browser"
    # The secret was stored and is never sent back: an empty box saying it is set.
    secret = find(browser, "#id_crm_api_key")
    assert secret.get_attribute("value") == ""
    assert "leave empty to keep" in secret.get_attribute("placeholder")
    assert "crm-browser-secret" not in browser.page_source
    assert browser.find_elements("css selector", "input[name=crm_api_key__clear]")
    # The admin is styled: its stylesheet loaded (the header has its dark background).
    header = find(browser, "#header")
    assert header.value_of_css_property("background-color") not in {"rgba(0, 0, 0, 0)", ""}
    # Tall enough to show the masked CRM key near the bottom of the form.
    browser.set_window_size(1280, 1500)
    try:
        browser.save_screenshot(str(screenshot_dir / "admin-site-settings.png"))
    finally:
        browser.set_window_size(1280, 900)

    # The public page reads the new value through keel's cache at once.
    browser.get(example_server.url + "/")
    assert "Edited in a real browser" in wait_for(browser, "header").text


def test_admin_static_content_lists_the_imported_rows(
    browser: Any, example_server: ExampleServer, screenshot_dir: Path
):
    log_in(browser, example_server)

    browser.get(example_server.url + "/admin/system/staticcontent/")
    wait_for(browser, "#result_list")

    keys = [cell.text for cell in browser.find_elements("css selector", "#result_list .field-key")]
    assert keys == [
        "confirm_intro",
        "footer",
        "home_intro",
        "home_intro",
        "signup_help",
        "thank_you",
    ]
    assert "6 static content" in find(browser, ".paginator").text
    assert "Chaque vendredi" in find(browser, "#result_list").text
    browser.save_screenshot(str(screenshot_dir / "admin-static-content.png"))


def test_newsletter_confirmation_peeks_on_get_and_consumes_on_post(
    browser: Any, example_server: ExampleServer, screenshot_dir: Path
):
    address = "grace@example.com"
    browser.get(example_server.url + "/")
    assert "Every Friday: one story from the harbour" in wait_for(browser, "main").text
    assert browser.title == "Harbour Notes: a weekly newsletter"
    find(browser, "#id_email").send_keys(address)
    submit(browser, "main button[type=submit]")
    assert "Check your email" in wait_for(browser, "main h1").text

    emails = example_server.emails_to(address)
    assert len(emails) == 1
    link = re.search(r"http://\S+/newsletter/confirm/\S+/", emails[0])
    assert link is not None

    browser.get(link.group(0))
    assert "Confirm your subscription" in wait_for(browser, "main h1").text
    # GET only peeked: opening the link again shows the same page.
    browser.get(link.group(0))
    main = wait_for(browser, "main").text
    assert f"Subscribe {address} to Harbour Notes?" in main
    assert "One click and you are on the list." in main
    browser.save_screenshot(str(screenshot_dir / "confirm-page.png"))

    submit(browser, "main button[type=submit]")
    main = wait_for(browser, "main").text
    assert browser.current_url == example_server.url + "/newsletter/thanks/"
    assert "You are subscribed" in main
    assert f"{address} is on the list." in main
    assert "Welcome aboard." in main
    browser.save_screenshot(str(screenshot_dir / "thank-you.png"))

    # POST consumed the token: the link is dead now.
    browser.get(link.group(0))
    assert "This link cannot be used" in wait_for(browser, "main h1").text

    # Staff unsubscribe through the admin action: confirmed → unsubscribed, once.
    log_in(browser, example_server)
    browser.get(example_server.url + "/admin/newsletter/subscription/?q=" + address)
    row = wait_for(browser, "#result_list tbody tr")
    assert "Confirmed" in row.text
    find(browser, "#result_list tbody input.action-select").click()
    dropdown(find(browser, "select[name=action]")).select_by_value("unsubscribe")
    submit(browser, "button[name=index]")
    assert "1 unsubscribed." in wait_for(browser, ".messagelist").text
    assert "Unsubscribed" in find(browser, "#result_list tbody tr").text
