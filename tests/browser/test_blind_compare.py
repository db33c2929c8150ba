"""Blind compare in Chromium: two votes on pairs drawn from the demo model's two variants (real
uvicorn, real runtime server); the replies are labelled A and B only, the names come with the
vote, and the leaderboard and the comparison page rate the variants from the stored votes."""

import pytest
from playwright.sync_api import expect

from catalog.models import BlindPair
from tests.browser.test_playground import two_variants  # noqa: F401  (a fixture)
from tests.support.fixtures import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
TITLES = "#blind-columns h3"


def send_and_wait(page, prompt: str) -> BlindPair:
    page.fill("#blind-message", prompt)
    page.click("#blind-send")
    # a fieldset is never "disabled" to Playwright; the buttons in it are, while it is
    expect(page.locator("#blind-vote button[data-vote=a]")).to_be_enabled(timeout=90_000)
    return BlindPair.objects.get(prompt=prompt)


def assert_blind(page, variants) -> None:
    """Nothing in the pair's part of the page names a variant: not the text, not an attribute."""
    expect(page.locator(TITLES)).to_have_text(["A", "B"])
    shown = page.locator("#blind-columns").inner_html() + page.locator("#blind-result").inner_html()
    for v in variants:
        assert f"#{v.pk}" not in shown and v.label not in shown and f'"{v.pk}"' not in shown
    assert all(page.locator(".bl-reply").all_text_contents())  # both replies are there to judge


def test_blind_votes_reveal_the_names_only_after_voting(page, runtime_web_server, teams,
                                                        two_variants):  # noqa: F811
    first, second = two_variants
    browser_login(page, runtime_web_server, "alice")
    page.goto(f"{runtime_web_server}/playground/")
    page.click("#blind-link")
    page.locator("details summary").filter(has_text="System prompt and sampling").click()
    page.fill("input[name=temperature]", "0")
    page.fill("input[name=max_tokens]", "12")

    pair = send_and_wait(page, "Name a colour.")
    assert_blind(page, two_variants)
    page.click("button[data-vote=a]")
    expect(page.locator(TITLES)).to_have_text([f"A: GGUF Q4_1 #{pair.variant_a_id}",
                                               f"B: GGUF Q4_1 #{pair.variant_b_id}"])
    expect(page.locator("#blind-side-a .bl-stats")).to_contain_text("tok/s")
    assert BlindPair.objects.get(pk=pair.pk).vote == "a"
    loser = pair.variant_b_id

    # The next prompt hides the names again; this time vote for the first vote's loser: 1 to 1.
    pair = send_and_wait(page, "Name an animal.")
    assert_blind(page, two_variants)
    page.click(f"button[data-vote={'a' if pair.variant_a_id == loser else 'b'}]")
    expect(page.locator(TITLES).first).to_contain_text(f"#{pair.variant_a_id}")
    assert {p.vote for p in BlindPair.objects.all()} <= {"a", "b"}

    page.click("#blind-leaderboard-link")
    # One win each: equal strengths, 1000 ± 1.96 × (400 / ln 10) × sqrt(1/1 + 1/1) / 2 = ± 240.8
    for v in (first, second):
        row = page.locator(f"#rating-{v.pk}")
        expect(row.locator("td.rating")).to_have_text("1000.0")
        expect(row.locator("td.interval")).to_have_text("759.2 – 1240.8 (± 240.8)")
        expect(row.locator("td.votes")).to_have_text("2")
        expect(row.locator("td.rank")).to_have_text("not enough votes (fewer than 10)")
    page.goto(f"{runtime_web_server}/catalog/models/{first.model_id}/compare/")
    expect(page.locator(f"#compare-{first.pk} td.votes")).to_have_text("not enough votes (2)")
