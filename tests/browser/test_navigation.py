"""A new user logs in through the real login page (uvicorn, Chromium) and visits every section."""

import pytest

from tests.support.fixtures import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_in_red(teams):
    from catalog.imports.demo import demo_model_import

    return demo_model_import(team=teams["red"])


def test_login_then_every_section(page, web_server, teams, demo_in_red):
    page.goto(f"{web_server}/catalog/")
    assert "/login/" in page.url  # anonymous users land on the login page

    page.fill("#id_username", "alice")
    page.fill("#id_password", "wrong password")
    page.click("button[type=submit]")
    assert page.locator(".error").is_visible()

    browser_login(page, web_server, "alice")
    assert page.get_by_role("link", name="SmolLM2-135M-Instruct").first.is_visible()

    for section, heading in [("Planner", "planner"), ("Catalog", "Catalog"), ("Jobs", "Jobs"),
                             ("Playground", "Playground")]:
        nav_link = page.get_by_role("navigation").get_by_role("link", name=section, exact=True)
        nav_link.click()
        page.wait_for_load_state()
        assert heading.lower() in page.locator("h1").inner_text().lower()
        assert nav_link.get_attribute("aria-current") == "page"

    page.get_by_role("navigation").get_by_role("link", name="Catalog").click()
    page.get_by_role("link", name="SmolLM2-135M-Instruct").click()
    assert page.locator("h1").inner_text() == "SmolLM2-135M-Instruct"
    assert "Q4_1" in page.locator("table").inner_text()


def test_another_teams_model_is_not_listed_and_its_page_is_404(page, web_server, teams, demo_in_red):
    browser_login(page, web_server, "bob")
    assert page.get_by_text("SmolLM2-135M-Instruct").count() == 0
    response = page.goto(f"{web_server}/catalog/models/{demo_in_red.pk}/")
    assert response.status == 404


def test_layout_fits_a_phone(page, web_server, teams):
    page.set_viewport_size({"width": 390, "height": 844})
    browser_login(page, web_server, "alice")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390
    assert page.get_by_role("link", name="Playground").is_visible()
