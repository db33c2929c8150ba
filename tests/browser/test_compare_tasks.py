"""Task accuracy in a browser (uvicorn, Chromium): the comparison page's task columns (sorted by a
click, hidden and shown by the column chooser, "other protocol" where a variant was scored another
way) and Choose by a task's accuracy. The data and the hand-checked answers are
tests/catalog/test_compare_tasks.py's and tests/planner/test_choose_tasks.py's."""

import pytest

from tests.catalog.test_compare_tasks import COL0, scored  # noqa: F401  (four variants scored on two tasks)
from tests.planner.test_choose import llama  # noqa: F401
from tests.planner.test_choose_tasks import METRIC
from tests.planner.test_choose_tasks import scored as scored_llama  # noqa: F401
from tests.support.fixtures import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_task_columns_sort_hide_and_say_other_protocol(page, web_server, scored, session_dir):  # noqa: F811
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/catalog/models/{scored['F16'].model_id}/compare/")
    header = page.locator(f"table.compare th.col-{COL0}")
    assert "0-shot, every document, seed 1234, lm-eval 0.4.13" in header.get_attribute("title")
    assert page.locator(f"#compare-{scored['Q2_K'].pk} td.{COL0}").inner_text() == "other protocol: 5-shot, not 0-shot"
    page.click(f"a[data-sort-key={COL0}]")
    page.wait_for_selector(f"table.compare[data-sort={COL0}]")
    order = page.locator("table.compare tbody tr").evaluate_all("rows => rows.map(r => r.id)")
    assert order == [f"compare-{scored[q].pk}" for q in ("Q4_K_M", "Q8_0", "F16", "Q2_K")]
    folder = session_dir / "screenshots" / "1280"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / "compare-tasks.png", full_page=True)

    page.locator("#compare-columns summary").click()
    page.locator(f"#compare-columns input[data-column={COL0}]").uncheck()
    assert not header.is_visible()
    assert not page.locator(f"#compare-{scored['F16'].pk} td.{COL0}").is_visible()
    page.reload()  # remembered in this browser
    assert not page.locator(f"table.compare th.col-{COL0}").is_visible()


def test_choose_by_a_tasks_accuracy(page, web_server, scored_llama, session_dir):  # noqa: F811
    model_id = scored_llama["F16"].model_id
    browser_login(page, web_server, "alice")
    page.goto(f"{web_server}/planner/choose/{model_id}/?hardware=rtx-4090&context=4096", timeout=120_000)
    page.select_option("#id_metric", METRIC)
    page.click("#choose-submit", timeout=120_000)
    page.wait_for_selector("#pareto")
    assert page.locator("#pick-best").get_attribute("data-variant") == str(scored_llama["Q8_0"].pk)
    assert page.locator("#pick-smallest").get_attribute("data-variant") == str(scored_llama["Q5_K_M"].pk)
    assert page.locator(f"#candidate-{scored_llama['Q3_K_L'].pk} td.quality").inner_text() == \
        "other protocol: 5-shot, not 0-shot"
    box = page.locator("#pareto").bounding_box()
    for label in page.locator("#pareto text.point-label").all():
        b = label.bounding_box()
        assert box["x"] <= b["x"] and b["x"] + b["width"] <= box["x"] + box["width"] + 0.5, label.inner_text()
    folder = session_dir / "screenshots" / "1280"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / "choose-task-accuracy.png", full_page=True)
