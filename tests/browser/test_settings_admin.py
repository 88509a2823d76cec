"""The settings admin in a real browser: fieldsets by field group, and each change in the
history with its old and new values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import ExampleServer
from tests.browser.test_example_site import DATABASE, find, log_in, wait_for

pytestmark = pytest.mark.skipif(
    DATABASE != "sqlite",
    reason=f"browser tests run once per `make test`, on the sqlite run (this is {DATABASE})",
)

SETTINGS = "/admin/system/sitesettings/1/"


def test_settings_form_is_grouped_and_its_history_shows_each_change(
    browser: Any, example_server: ExampleServer, screenshot_dir: Path
) -> None:
    log_in(browser, example_server)
    browser.get(example_server.url + SETTINGS + "change/")
    wait_for(browser, "#sitesettings_form")

    headings = [h.text for h in browser.find_elements("css selector", "#sitesettings_form h2")]
    assert headings == ["Contact", "Social networks", "Technical", "Outgoing e-mail", "CRM"]
    # The model's own fields come first, in a fieldset without a heading.
    first = browser.find_elements("css selector", "#sitesettings_form fieldset")[0]
    assert first.find_elements("css selector", "#id_site_name")
    assert not first.find_elements("css selector", "h2")
    assert find(browser, "label[for=id_crm_api_key]").text == "CRM API key:"

    hours = find(browser, "#id_working_hours")
    old = hours.get_attribute("value")
    hours.clear()
    hours.send_keys("Mon-Fri 9-17")
    find(browser, "#id_crm_api_key").send_keys("crm-history-secret")
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    # Clicked from script: a pointer click on this long form was seen to race the page's
    # own scripts ("Node with given id does not belong to the document").
    page = find(browser, "html")
    browser.execute_script("arguments[0].click()", find(browser, "input[name=_save]"))
    WebDriverWait(browser, 15).until(ec.staleness_of(page))
    wait_for(browser, ".messagelist .success")

    browser.get(example_server.url + SETTINGS + "history/")
    history = wait_for(browser, "#change-history").text
    assert f"Working hours (“{old}” → “Mon-Fri 9-17”)" in history
    assert "CRM API key (" in history
    assert "crm-history-secret" not in browser.page_source
    browser.save_screenshot(str(screenshot_dir / "admin-site-settings-history.png"))
