"""The Choose page in a browser (uvicorn, Chromium): from the model page to a recommendation for two
machines, switching the metric, with every chart label inside the chart and no sideways scroll.
The data and the hand-checked answers are tests/planner/test_choose.py's."""

import pytest

from tests.planner.test_choose import llama  # noqa: F401  (the measured Llama 3.1 8B family)
from tests.support.fixtures import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def picked(page) -> dict:
    return {kind: page.locator(f"#pick-{kind}").get_attribute("data-variant")
            for kind in ("best", "smallest", "fastest")}


def test_choose_a_quant_for_two_machines(page, web_server, llama, session_dir):  # noqa: F811
    model_id = llama["F16"].model_id
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/catalog/models/{model_id}/")
    # The first plan of a config in the server process imports torch to build the model on the meta
    # device (planner/model_definition.py): seconds, more on a busy machine.
    page.click("#choose-link", timeout=120_000)
    page.wait_for_url(f"**/planner/choose/{model_id}/")

    # Hardware A: an Apple M1 8 GB, where only the 3-bit and 2-bit quants fit.
    page.select_option("#id_hardware", "m1-8gb")
    page.fill("#id_context", "4096")
    page.click("#choose-submit", timeout=60_000)
    page.wait_for_selector("#pareto")
    assert picked(page) == {"best": str(llama["Q3_K_M"].pk), "smallest": "", "fastest": ""}
    assert "no variant within mean KLD ≤ 0.05 runs on Apple M1 8 GB" in page.locator("#pick-smallest").inner_text()
    assert page.locator(f"#candidate-{llama['Q4_K_M'].pk}").get_attribute("data-fit") == "none"
    assert page.locator(f"#pick-best a.chat").get_attribute("href") == f"/playground/?variant={llama['Q3_K_M'].pk}"
    assert "llama-server -m Meta-Llama-3.1-8B-Instruct-Q3_K_M.gguf -c 4096 -ngl 99" in page.locator(
        "#pick-best code.command").inner_text()

    # Hardware B: an RTX 4090, where the F16 itself fits.
    page.select_option("#id_hardware", "rtx-4090")
    page.click("#choose-submit", timeout=60_000)
    page.wait_for_selector("#pareto")
    assert "hardware=rtx-4090" in page.url  # the question is the URL
    assert picked(page) == {"best": str(llama["F16"].pk), "smallest": str(llama["Q4_K_M"].pk),
                            "fastest": str(llama["Q5_K_M"].pk)}
    dominated = page.locator("#pareto g.point.dominated").evaluate_all("gs => gs.map(g => g.dataset.variant)")
    assert dominated == [str(llama["Q3_K_L"].pk)]
    skipped = page.locator(f"#not-drawn-{llama['IQ4_XS'].pk}").inner_text()
    assert "KL skipped" in skipped

    # Every label stays inside the chart.
    box = page.locator("#pareto").bounding_box()
    for label in page.locator("#pareto text.point-label").all():
        b = label.bounding_box()
        assert box["x"] <= b["x"] and b["x"] + b["width"] <= box["x"] + box["width"] + 0.5, label.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=session_dir / "choose-rtx-4090.png", full_page=True)

    # By the 99.9 % KLD, Q3_K_L (2.10) beats Q3_K_M (2.30): on the frontier, no longer greyed.
    page.select_option("#id_metric", "kl_p99_9")
    page.click("#choose-submit", timeout=60_000)
    page.wait_for_selector("#pareto")
    assert page.locator("#pareto g.point.dominated").count() == 0
    assert page.locator(f"#pareto g.point[data-variant='{llama['Q3_K_L'].pk}']").get_attribute(
        "data-frontier") == "true"

    # A phone-width window: the chart scales down, the table scrolls in its box, the page does not.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=session_dir / "choose-390.png", full_page=True)
