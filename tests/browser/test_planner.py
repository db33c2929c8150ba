"""The planner in Chromium: inputs update the results in place (htmx), the URL is the plan."""

import re

import pytest

from tests.support.fixtures import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def q4_row(page):
    return page.locator('tr.plan-row[data-scheme="Q4_K_M"]')


def test_plan_changes_without_reload_and_the_url_reopens_it(page, web_server, teams):
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/planner/")
    page.select_option("#id_source", "preset")
    page.select_option("#id_preset", "llama-3.1-8b")
    page.select_option("#id_hardware", "rtx-4090")
    page.wait_for_function("location.search.includes('hardware=rtx-4090')")
    page.evaluate("window.__noReload = true")

    page.fill("#id_context", "8192")
    page.locator("#id_context").press("Tab")
    page.wait_for_function("document.querySelector('#plan-context').textContent === '8192'")
    assert page.evaluate("window.__noReload") is True  # the results were swapped in, not a new page
    assert re.search(r"[?&]context=8192", page.url) and "preset=llama-3.1-8b" in page.url
    row = q4_row(page)
    assert "plan-row fits" in row.get_attribute("class")

    table = page.locator("#plan-table").inner_text()
    weights = row.locator('details[data-key="weights_bytes"]')
    assert not weights.locator("code").is_visible()
    weights.locator("summary").click()
    assert weights.locator("code").is_visible()
    assert "4,912,898,304" in weights.locator("code").inner_text()

    shared_url = page.url
    total = row.get_attribute("data-total-bytes")
    other = page.context.new_page()
    other.goto(shared_url)
    assert other.locator('tr.plan-row[data-scheme="Q4_K_M"]').get_attribute("data-total-bytes") == total
    assert other.locator("#plan-table").inner_text() == table
    assert other.locator("#id_context").input_value() == "8192"
    assert other.locator("#id_hardware").input_value() == "rtx-4090"
    other.close()


def test_plan_memory_from_the_catalog(page, web_server, teams, demo_variant):
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/catalog/models/{demo_variant.model_id}/")
    page.get_by_role("link", name="Plan memory").click()
    page.wait_for_url(re.compile(rf".*/planner/\?model={demo_variant.model_id}$"))
    assert page.locator("#plan-model").inner_text() == "SmolLM2-135M-Instruct"
    assert page.locator("#id_model").input_value() == str(demo_variant.model_id)
    page.select_option("#id_hardware", "cpu-2core-24gb")
    page.wait_for_function("location.search.includes('hardware=cpu-2core-24gb')")
    assert f"model={demo_variant.model_id}" in page.url
    assert "measured:" in q4_row(page).locator("td.measured").inner_text()  # planner/measured.json


def test_fit_card_for_an_moe_on_a_16gb_gpu_and_copying_its_command(page, web_server, teams):
    """Mixtral 8x7B Q4_K_M on a 16 GiB T4: --n-cpu-moe 16 (derived in tests/planner/test_fit.py)."""
    command = "llama-server -m <path/to/Mixtral-8x7B-Q4_K_M.gguf> -c 4096 -ngl 99 --n-cpu-moe 16 -fa off"
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web_server)
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/planner/")
    page.select_option("#id_source", "preset")
    page.select_option("#id_preset", "mixtral-8x7b")
    page.wait_for_function("location.search.includes('preset=mixtral-8x7b')")
    page.select_option("#id_hardware", "t4")
    page.wait_for_function("location.search.includes('hardware=t4')")
    card = page.locator("#fit-card")
    assert card.get_attribute("data-scheme") == "Q4_K_M"
    assert page.locator("#fit-command").inner_text() == command
    assert "--n-cpu-moe" in page.locator("#fit-command").inner_text()
    # no published llama.cpp figure for a T4: the card shows no decode speed, and says why
    assert page.locator("#fit-decode").inner_text() == "—"
    assert page.locator("#fit-decode-withheld").inner_text() == (
        "(not shown: no published llama.cpp figure for NVIDIA T4 16 GB; measure it on a node of ours)")

    card.get_by_role("button", name="Copy").click()
    page.wait_for_function("document.querySelector('button[data-copy]').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == command

    page.fill("#id_n_cpu_moe", "20")               # the override reaches the command in place
    page.locator("#id_n_cpu_moe").press("Tab")
    page.wait_for_function("document.querySelector('#fit-command').textContent.includes('--n-cpu-moe 20')")
    assert "n_cpu_moe=20" in page.url
