"""Chatting in the playground in Chromium: tokens appear one by one and the new chat joins the list
at once; two variants stream side by side at the same time and are saved as one comparison; token
probabilities show on hover (real uvicorn, real runtime server, the demo model)."""

import os
import re
import time

import pytest
from playwright.sync_api import expect

from tests.support.fixtures import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
REPLY = ".pg-column .pg-msg.assistant"


@pytest.fixture
def two_variants(teams):
    """The demo variant in red, and a second variant row whose file is a hard link to the same GGUF."""
    from catalog.models import File, Variant
    from catalog.imports.demo import demo_model_import

    model = demo_model_import(team=teams["red"])
    first = model.variants.get()
    original = first.files.get()
    second = Variant.objects.create(model=model, format=Variant.Format.GGUF, quant_type="Q4_1",
                                    params={"copy_of": first.pk})
    second.directory.mkdir(parents=True, exist_ok=True)
    os.link(original.absolute_path, second.directory / original.path)
    File.objects.create(variant=second, path=original.path, bytes=original.bytes,
                        sha256=original.sha256)
    return first, second


def set_params(page, *, max_tokens: int) -> None:
    page.fill("input[name=temperature]", "0")
    page.fill("input[name=seed]", "11")
    page.fill("input[name=max_tokens]", str(max_tokens))


def test_a_reply_streams_in_token_by_token(page, runtime_web_server, teams, two_variants):
    browser_login(page, runtime_web_server, "alice")
    page.goto(f"{runtime_web_server}/playground/")
    assert page.locator(".pg-column").count() == 1
    set_params(page, max_tokens=120)
    page.fill("#message", "Tell me a story about a lighthouse.")
    page.click("#send")

    lengths = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = page.locator(f"{REPLY} .pg-text").first.text_content() or ""
        if not lengths or len(text) != lengths[-1]:
            lengths.append(len(text))
        if page.locator(f"{REPLY} .pg-stats").first.text_content():
            break
        page.wait_for_timeout(20)
    growing = [n for n in lengths if n > 0]
    assert len(growing) >= 3 and growing == sorted(growing), lengths  # grew over several polls
    stats = page.locator(f"{REPLY} .pg-stats").first.text_content()
    assert "tok/s" in stats and "first token" in stats and "context" in stats
    # The last token and the stats can land in one read between two polls: take the text shown
    # once the reply is done, not the last length polled.
    streamed = page.locator(f"{REPLY} .pg-text").first.text_content()
    assert len(streamed) >= growing[-1]
    # the list shows the new chat without a reload, marked as the open one, with its variant
    new = page.locator("#conversations li").filter(has_text="Tell me a story about a lighthouse.")
    expect(new.locator("a[aria-current=page]")).to_be_visible()
    expect(new.locator(".pg-variants")).to_have_text(f"GGUF Q4_1 #{two_variants[0].pk}")
    assert re.search(r"\?c=\d+$", page.url)

    page.goto(f"{runtime_web_server}/playground/")
    page.get_by_role("link", name="Tell me a story about a lighthouse.").click()
    assert page.locator(".pg-msg.user").first.text_content().endswith("lighthouse.")
    assert page.locator(f"{REPLY} .pg-text").first.text_content() == streamed  # stored as shown


def test_two_variants_stream_side_by_side(page, runtime_web_server, teams, two_variants):
    first, second = two_variants
    browser_login(page, runtime_web_server, "alice")
    page.goto(f"{runtime_web_server}/playground/")
    page.check(f"input[name=variant][value='{second.pk}']")
    assert page.locator(".pg-column").count() == 2
    set_params(page, max_tokens=80)
    page.fill("#message", "Describe a forest.")
    page.click("#send")

    replies = page.locator(f"{REPLY} .pg-text")
    both_streaming = False
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        texts = [replies.nth(i).text_content() or "" for i in range(2)]
        busy = page.locator(".pg-column[aria-busy=true]").count()
        if all(texts) and busy == 2:
            both_streaming = True  # both columns had text while both were still generating
        if busy == 0 and page.locator(f"{REPLY} .pg-stats").nth(1).text_content():
            break
        page.wait_for_timeout(20)
    assert both_streaming
    texts = [replies.nth(i).text_content() for i in range(2)]
    assert texts[0] and texts[0] == texts[1]  # same file, prompt and seed, temperature 0
    assert "tok/s" in page.locator(f"{REPLY} .pg-stats").nth(0).text_content()

    # saved as one comparison, listed once (no reload), whose columns have distinct titles
    from runtime.models import Comparison

    entries = page.locator("#conversations li")
    expect(entries).to_have_count(1)
    expect(entries.locator(".pg-variants")).to_have_text(f"GGUF Q4_1 #{first.pk} · GGUF Q4_1 #{second.pk}")
    comparison = Comparison.objects.get()
    titles = list(comparison.conversations.order_by("variant").values_list("title", flat=True))
    assert titles == [f"Describe a forest. · GGUF Q4_1 #{v.pk}" for v in (first, second)]
    page.goto(f"{runtime_web_server}/playground/")
    page.get_by_role("link", name="Describe a forest.").click()  # reopens both columns
    expect(page.locator(".pg-column")).to_have_count(2)
    assert [replies.nth(i).text_content() for i in range(2)] == texts
    assert page.locator(".pg-msg.user").all_text_contents() == ["user: Describe a forest."] * 2


def test_token_probabilities_show_on_hover(page, runtime_web_server, demo_variant):
    browser_login(page, runtime_web_server, "alice")
    page.goto(f"{runtime_web_server}/playground/")
    set_params(page, max_tokens=8)
    page.check("#show-logprobs")
    page.fill("#message", "Name a colour.")
    page.click("#send")
    expect(page.locator(f"{REPLY} .pg-stats")).to_contain_text("tok/s", timeout=60_000)

    tokens = page.locator(f"{REPLY} .pg-token")
    # every token of the reply is a span with its probabilities
    assert "".join(tokens.all_text_contents()) == page.locator(f"{REPLY} .pg-text").text_content()
    tokens.first.hover()
    title = tokens.first.get_attribute("title")
    line, alternatives = title.split("\n")[:2]
    # '"<token>" p%', then its 5 likeliest alternatives: at temperature 0 the token is the first
    chosen = re.fullmatch(r'(".*") (\d+\.\d\d)%', line).groups()
    assert alternatives.startswith("alternatives: " + " ".join(chosen) + "%, "), title
    shares = [float(p) for p in re.findall(r"(\d+\.\d\d)%", alternatives)]
    assert len(shares) == 5 and shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 100.01
