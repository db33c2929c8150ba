"""The playground's token probabilities work on touch and keyboard, not only on hover: each token is
shaded by its probability and a click (a tap) or Enter opens its alternatives. A reopened chat
keeps the settings it was sent with (a chat at temperature 0 goes on at 0), in real Chromium against
uvicorn and the runtime server with the demo model."""

import re

import pytest
from playwright.sync_api import expect

from tests.support.fixtures import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
REPLY = ".pg-column .pg-msg.assistant"
ALPHA = re.compile(r"rgba\(255, 140, 0, ([\d.]+)\)")


def test_tokens_are_shaded_their_alternatives_open_on_click_and_settings_come_back(
        page, runtime_web_server, demo_variant):
    browser_login(page, runtime_web_server, "alice")
    page.goto(f"{runtime_web_server}/playground/")
    page.fill("input[name=temperature]", "0")
    page.fill("input[name=max_tokens]", "8")
    page.fill("input[name=top_k]", "")  # left blank: it comes back blank
    page.check("#show-logprobs")
    page.fill("#message", "Name a colour.")
    page.click("#send")
    expect(page.locator(f"{REPLY} .pg-stats")).to_contain_text("tok/s", timeout=60_000)

    tokens = page.locator(f"{REPLY} .pg-token")
    assert tokens.count() >= 2
    # Each token's shade follows its probability: a certain token is clear, an unlikely one dark.
    shades = tokens.evaluate_all("""spans => spans.map(s => [Number(s.dataset.p),
                                    getComputedStyle(s).backgroundColor])""")
    for p, colour in shades:
        shade = ALPHA.fullmatch(colour)
        assert shade and 0 < p <= 1 and float(shade.group(1)) == pytest.approx((1 - p) * 0.65, abs=0.01), \
            (p, colour)

    # A click opens the alternatives beside the token: the chosen one first, then the five likeliest.
    first = tokens.first
    popover = page.locator("#token-popover")
    expect(popover).to_be_hidden()
    first.click()
    expect(popover).to_be_visible()
    assert first.get_attribute("aria-expanded") == "true"
    table = popover.locator("table.pg-alternatives").first
    chosen = table.locator("tr.chosen td.tok").inner_text()
    assert chosen == first.evaluate("s => JSON.stringify(s.entries[0].token)")
    shares = [float(t.rstrip("%")) for t in table.locator("tr.alternative td.num").all_inner_texts()]
    assert len(shares) == 5 and shares == sorted(shares, reverse=True), shares
    # At temperature 0 the chosen token is the likeliest alternative.
    assert table.locator("tr.alternative td.tok").first.inner_text() == chosen
    page.keyboard.press("Escape")
    expect(popover).to_be_hidden()
    assert page.evaluate("document.activeElement.classList.contains('pg-token')")

    # From the keyboard: one tab stop per reply, arrows between its tokens, Enter opens.
    assert [tokens.nth(i).get_attribute("tabindex") for i in range(2)] == ["0", "-1"]
    first.focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.p") == tokens.nth(1).get_attribute("data-p")
    page.keyboard.press("Enter")
    expect(popover).to_be_visible()
    assert tokens.nth(1).get_attribute("aria-expanded") == "true"
    popover.get_by_role("button", name="Close").click()
    expect(popover).to_be_hidden()

    # Reopened, the chat is at temperature 0 again (not the form's 0.7), with its other settings.
    page.goto(f"{runtime_web_server}/playground/")
    assert page.locator("input[name=temperature]").input_value() == "0.7"
    page.get_by_role("link", name="Name a colour.").click()
    page.wait_for_url(re.compile(r".*\?c=\d+$"))
    assert page.locator("input[name=temperature]").input_value() == "0"
    assert page.locator("input[name=max_tokens]").input_value() == "8"
    assert page.locator("input[name=top_k]").input_value() == ""
    assert page.locator("#show-logprobs").is_checked()
    from runtime.models import Conversation

    assert Conversation.objects.get().settings == {"temperature": 0.0, "top_p": 0.95, "min_p": 0.05,
                                                   "repeat_penalty": 1.1, "max_tokens": 8, "logprobs": 5}
