"""A state machine in the example's admin, driven by a real browser: the add form offers only
the initial state, a transition button moves the subscription and the history records it, and
a forbidden state forced into the form comes back as a form error, not a server error."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.browser.conftest import ExampleServer
from tests.browser.test_example_site import find, log_in, pytestmark, submit, wait_for

__all__ = ["pytestmark"]


def _options(browser: Any) -> list[str]:
    return [
        o.get_attribute("value") for o in browser.find_elements("css selector", "#id_state option")
    ]


def test_a_transition_is_driven_in_the_admin(
    browser: Any, example_server: ExampleServer, screenshot_dir: Path
) -> None:
    log_in(browser, example_server)
    address = f"admin-{uuid.uuid4().hex[:8]}@example.com"

    # Creating: only the initial state is offered.
    browser.get(example_server.url + "/admin/newsletter/subscription/add/")
    wait_for(browser, "#subscription_form")
    assert _options(browser) == ["pending"]
    find(browser, "#id_email").send_keys(address)
    submit(browser, "input[name=_continue]")
    wait_for(browser, ".messagelist .success")
    change_url = browser.current_url
    assert change_url.endswith("/change/")

    # Pending: the field offers the current state and its transitions, one button each.
    assert _options(browser) == ["pending", "confirmed", "unsubscribed"]
    buttons = browser.find_elements("css selector", "button.keel-transition")
    assert [b.get_attribute("value") for b in buttons] == ["confirmed", "unsubscribed"]
    browser.save_screenshot(str(screenshot_dir / "admin-state-transitions.png"))

    submit(browser, "button.keel-transition[value=confirmed]")
    assert "was changed successfully" in wait_for(browser, ".messagelist .success").text

    # Confirmed: the way back to pending is not offered...
    browser.get(change_url)
    wait_for(browser, "#subscription_form")
    assert _options(browser) == ["confirmed", "unsubscribed"]
    # Enter in a text box saves without a transition (Django's buttons come first).
    email = find(browser, "#id_email")
    page = find(browser, "html")
    email.send_keys("\n")
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 15).until(ec.staleness_of(page))
    assert "was changed successfully" in wait_for(browser, ".messagelist .success").text
    browser.get(change_url)
    wait_for(browser, "#subscription_form")
    assert _options(browser) == ["confirmed", "unsubscribed"]
    # ...and forcing it into the form is a form error, not an HTTP 500.
    browser.execute_script(
        "const s = document.getElementById('id_state');"
        "s.add(new Option('pending', 'pending')); s.value = 'pending';"
    )
    submit(browser, "input[name=_continue]")
    error = wait_for(browser, ".errorlist")
    assert "Select a valid choice" in error.text
    assert "Server Error" not in browser.page_source

    # The history lists the transition.
    browser.get(change_url.replace("/change/", "/history/"))
    history = wait_for(browser, "#change-history").text
    assert "State: Pending → Confirmed." in history
