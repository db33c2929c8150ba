"""Results a new user can see without hunting: after "Estimate" the planner brings its result into
view (laptop and phone), with a way back to the form; the comparison table shows its key columns
at 1280 px without sideways scrolling and lets the user add the others (remembered)."""

import pytest

from catalog.models import File, Variant
from tests.support.fixtures import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOP_IN_VIEW = """(selector) => { const r = document.querySelector(selector).getBoundingClientRect();
  return [r.top, window.innerHeight]; }"""


@pytest.mark.parametrize("width,height", [(1280, 800), (390, 844)])
def test_estimate_brings_the_result_into_view(page, web_server, teams, width, height):
    page.set_viewport_size({"width": width, "height": height})
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/planner/?preset=llama-3.1-8b&hardware=rtx-4090")
    page.fill("#id_context", "8192")
    # Scrolled down to the button as a user does by hand (it at the bottom of the screen), and
    # straight on to click it: no wait for the plan the typing itself asks for.
    estimate = page.get_by_role("button", name="Estimate")
    estimate.evaluate("b => b.scrollIntoView({block: 'end'})")
    estimate.click()
    page.wait_for_function("document.querySelector('#plan-context').textContent === '8192'")
    page.wait_for_timeout(300)  # a smooth scroll, if any, ends
    top, viewport = page.evaluate(TOP_IN_VIEW, "#results")
    assert 0 <= top < viewport, (top, viewport)
    summary_bottom, _ = page.evaluate(TOP_IN_VIEW.replace("r.top", "r.bottom"), "#plan-model")
    assert summary_bottom <= viewport  # the plan's first line is read without scrolling

    # The form stays one click away.
    page.get_by_role("link", name="Change inputs").click()
    page.wait_for_timeout(300)
    top, viewport = page.evaluate(TOP_IN_VIEW, "#plan-form")
    assert 0 <= top < viewport, (top, viewport)


def test_typing_in_the_form_does_not_scroll_the_page_away(page, web_server, teams):
    """Only Estimate moves the page: the plan that follows each edit updates in place, so a user
    still filling the form keeps their place."""
    page.set_viewport_size({"width": 390, "height": 844})
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/planner/?preset=llama-3.1-8b&hardware=rtx-4090")
    page.locator("#id_batch").scroll_into_view_if_needed()
    before = page.evaluate("window.scrollY")
    page.fill("#id_batch", "2")
    page.wait_for_function("location.search.includes('batch=2')")
    page.wait_for_timeout(500)
    assert abs(page.evaluate("window.scrollY") - before) < 2


@pytest.fixture
def measured(teams, demo_variant):
    """Three variants with every comparison column measured, numbers as long as real ones."""
    from catalog.evaluations import evaluation_record

    variants = [demo_variant]
    for quant_type, size in (("Q4_K_M", 105 * 2**20), ("IQ2_XXS-with-imatrix", 61 * 2**20)):
        child = Variant.objects.create(model=demo_variant.model, parent=demo_variant, format="gguf",
                                       quant_type=quant_type)
        File.objects.create(variant=child, path="model.gguf", bytes=size, sha256="0" * 64)
        variants.append(child)
    method = {"tokens_sha256": "one text", "context": 512, "chunks": 40,
              "dataset": {"name": "wikitext-2 test"}}
    for i, v in enumerate(variants):
        evaluation_record(planner=None, variant=v, kind="perplexity", method=method,
                          metrics={"perplexity": 17.123456 + i, "perplexity_stderr": 0.1234567})
        evaluation_record(planner=None, variant=v, kind="kl",
                          method=method | {"reference_variant": demo_variant.pk},
                          metrics={"ppl_ratio": 1.012345, "ppl_ratio_unc": 0.000456, "kl_mean": 0.0123456,
                                   "kl_mean_unc": 0.000123, "kl_median": 0.004567, "kl_p99": 0.123456,
                                   "kl_p99_9": 0.456789, "kl_max": 3.456789, "dp_rms": 0.0345678,
                                   "dp_rms_unc": 0.000456, "same_top": 0.9345678, "same_top_unc": 0.00123})
        evaluation_record(planner=None, variant=v, kind="speed",
                          method={"prompt_tokens": 128, "gen_tokens": 64},
                          metrics={"decode_tokens_per_s": 123.45, "prefill_tokens_per_s": 812.3})
        evaluation_record(planner=None, variant=v, kind="memory", method={"what": "served at context 512"},
                          metrics={"peak_rss_bytes": 412 * 2**20})
    return variants


FITS = """() => { const t = document.querySelector("table.compare");
  return [t.scrollWidth, t.closest(".table-scroll").clientWidth,
          document.querySelector("#compare-form").scrollWidth, document.querySelector("#compare-form").clientWidth]; }"""


def test_the_comparison_fits_1280_px_and_more_columns_can_be_chosen(page, web_server, measured,
                                                                     session_dir):
    model = measured[0].model_id
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/catalog/models/{model}/compare/")
    folder = session_dir / "screenshots" / "1280"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / "compare-measured.png", full_page=True)
    table = page.locator("table.compare")
    for title in ("Size", "Bits/weight", "PPL ±", "Δ vs base", "Mean KLD ±", "Same top %", "Tokens/s",
                  "Peak memory"):
        assert table.get_by_role("columnheader", name=title).is_visible(), title
    width, room, form_width, form_room = page.evaluate(FITS)
    assert width <= room and form_width <= form_room, (width, room, form_width, form_room)
    assert not table.get_by_role("columnheader", name="Max KLD").is_visible()
    assert not page.locator(f"#compare-{measured[1].pk} td.kl_max").is_visible()

    chooser = page.locator("#compare-columns")
    chooser.locator("summary").click()
    chooser.get_by_label("Max KLD").check()
    assert table.get_by_role("columnheader", name="Max KLD").is_visible()
    assert page.locator(f"#compare-{measured[1].pk} td.kl_max").inner_text() == "3.456789"

    # Remembered: a reload and a sort (htmx swaps the table in) keep it.
    page.reload()
    assert table.get_by_role("columnheader", name="Max KLD").is_visible()
    page.click("a[data-sort-key=ppl]")
    page.wait_for_selector("table.compare[data-sort=ppl]")
    assert table.get_by_role("columnheader", name="Max KLD").is_visible()
    page.locator("#compare-columns summary").click()
    page.locator("#compare-columns").get_by_label("Tokens/s").uncheck()
    assert not table.get_by_role("columnheader", name="Tokens/s").is_visible()
    assert not page.locator(f"#compare-{measured[1].pk} td.tps").is_visible()
