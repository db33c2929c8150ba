"""Task accuracy end to end in a browser (uvicorn, Chromium, the real Celery worker): upload a
multiple-choice JSONL through the task sets page with the user's own field names, "Score tasks"
from the model page on the demo Q4_1 and a Q8_0 made from it, wait for both jobs on their job
pages, and find each variant's accuracy ± standard error in one task column of the comparison
page, sortable. A second upload with a bad line is refused on the file field, naming the line and
the field."""

import json
import math

import pytest

from catalog.models import Evaluation, TaskSet
from jobs.models import Job
from tests.browser.test_evaluate_from_model import q8_child  # noqa: F401  (the demo requantized to Q8_0)
from tests.support.fixtures import browser_login

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Our own questions, in the shape a user's file might have: "prompt", "options" and the answer as
# a letter in "correct" (none of them the form's default names).
ITEMS = [
    ("What color is snow?", ["white", "green", "purple", "orange"], "A"),
    ("How many legs does a cat have?", ["two", "four", "six", "eight"], "B"),
    ("What do cows give us to drink?", ["oil", "ink", "milk", "sand"], "C"),
    ("Which animal says meow?", ["dog", "horse", "duck", "cat"], "D"),
    ("What falls from clouds when it rains?", ["water", "rocks", "coins", "leaves"], "A"),
    ("What is one plus one?", ["one", "two", "three", "four"], "B"),
    ("Which is the hottest?", ["ice", "snow", "fire", "rain"], "C"),
    ("What do you wear on your feet?", ["hats", "gloves", "scarves", "shoes"], "D"),
    ("Which star lights the day?", ["the sun", "the moon", "a comet", "a lamp"], "A"),
    ("How many months are in a year?", ["ten", "twelve", "six", "thirty"], "B"),
    ("Which animal can fly?", ["pig", "cow", "bird", "sheep"], "C"),
    ("What do you sleep in at night?", ["a sink", "a box", "a car", "a bed"], "D"),
]
FIELDS = {"#id_question_field": "prompt", "#id_choices_field": "options", "#id_answer_field": "correct"}


def _write_jsonl(path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def _upload(page, web_server, team_id: int, name: str, path: str) -> None:
    page.goto(f"{web_server}/catalog/tasks/")
    page.select_option("#id_team", str(team_id))
    page.fill("#id_name", name)
    page.select_option("#id_kind", "mc")
    page.set_input_files("#id_file", path)
    for selector, value in FIELDS.items():
        page.fill(selector, value)
    page.click("#add-taskset button[type=submit]")
    page.wait_for_load_state()


def test_score_tasks_from_the_model_page_and_compare(page, web_server, teams, demo_variant, q8_child,  # noqa: F811
                                                     celery_worker, tmp_path):
    browser_login(page, web_server, "alice")
    good = _write_jsonl(tmp_path / "quiz.jsonl",
                        [{"prompt": q, "options": c, "correct": a} for q, c, a in ITEMS])
    _upload(page, web_server, teams["red"].pk, "everyday quiz", good)
    taskset = TaskSet.objects.get(name="everyday quiz")
    row = page.locator(f"#taskset-{taskset.pk}")
    assert "everyday quiz" in row.inner_text() and row.locator("td.num").first.inner_text() == "12"
    assert taskset.records == 12 and taskset.kind == "mc"

    # "Score tasks" beside each variant: its own job form, the variant and method filled in.
    variants = [demo_variant, q8_child]
    jobs = []
    for variant in variants:
        page.goto(f"{web_server}/catalog/models/{demo_variant.model_id}/")
        page.click(f"#variant-{variant.pk} a.score-tasks")
        page.wait_for_url("**/jobs/new?*")
        assert (page.input_value("#id_method"), page.input_value("#id_variant")) == ("tasks", str(variant.pk))
        page.select_option("#id_tasks", str(taskset.pk))
        page.click(".job-form button[type=submit]")
        page.wait_for_url("**/jobs/*/")
        jobs.append(Job.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1])))
    assert [(j.method, j.input_variant_id, j.params["tasks"]) for j in jobs] == [
        ("tasks", v.pk, [taskset.pk]) for v in variants]

    for job in jobs:  # the job page follows the job to its end
        page.goto(f"{web_server}/jobs/{job.pk}/")
        page.wait_for_selector("[data-status=succeeded], [data-status=failed], [data-status=cancelled]",
                               timeout=300_000)
        job.refresh_from_db()
        assert job.status == Job.Status.SUCCEEDED, job.error + job.log_tail[-2000:]

    stored = {v.pk: Evaluation.objects.get(variant=v, kind="tasks") for v in variants}
    protocols = {e.method["protocol"] for e in stored.values()}
    assert len(protocols) == 1  # the same file, scored the same way: one comparable column
    for e in stored.values():
        acc = e.metrics["results"]["acc"]
        assert e.metrics["samples"] == 12 and e.method["taskset_id"] == taskset.pk
        # Checked by hand: a mean of 12 right/wrong answers, and its sample standard error.
        right = round(acc["value"] * 12)
        assert acc["value"] == pytest.approx(right / 12, abs=1e-12)
        p = right / 12
        assert acc["stderr"] == pytest.approx(math.sqrt(p * (1 - p) / 11), abs=1e-9)

    page.goto(f"{web_server}/catalog/models/{demo_variant.model_id}/compare/")
    key = f"task_{protocols.pop()[:12]}"
    assert page.locator("table.compare thead th[class*='col-task_']").count() == 1
    assert page.locator(f"table.compare thead th.col-{key}").inner_text().startswith("everyday quiz acc ±")
    for variant in variants:
        acc = stored[variant.pk].metrics["results"]["acc"]
        cell = page.locator(f"#compare-{variant.pk} td.{key}")
        assert cell.locator(".value").inner_text() == f"{acc['value']:.4f}"
        assert cell.locator(".unc").inner_text() == f"± {acc['stderr']:.4f}"
        assert cell.locator("summary").inner_text() == "n=12"  # the documents scored

    def shown_order() -> list[float]:
        ids = page.locator("table.compare tbody tr").evaluate_all("rows => rows.map(r => r.id)")
        return [stored[int(i.split("-")[1])].metrics["results"]["acc"]["value"] for i in ids
                if int(i.split("-")[1]) in stored]

    # Sorted by the task column (htmx swaps the table and pushes the address); the two variants may
    # well tie on 12 questions, so the order is checked against the values, not a fixed order.
    page.click(f"a[data-sort-key={key}]")
    page.wait_for_selector(f"table.compare[data-sort={key}]")
    assert page.url.endswith(f"?sort={key}")
    assert "asc" in page.get_attribute(f"a[data-sort-key={key}]", "class")
    order = shown_order()
    assert len(order) == 2 and order == sorted(order)
    page.click(f"a[data-sort-key={key}]")  # again: the other way round
    page.wait_for_selector(f"table.compare[data-sort='-{key}']")
    assert "desc" in page.get_attribute(f"a[data-sort-key={key}]", "class")
    order = shown_order()
    assert len(order) == 2 and order == sorted(order, reverse=True)
    for variant in variants:  # the swapped-in table still shows each number
        acc = stored[variant.pk].metrics["results"]["acc"]
        assert page.inner_text(f"#compare-{variant.pk} td.{key} .value") == f"{acc['value']:.4f}"

    # A bad file: line 3's options are a string, not a list. Refused beside the file field.
    bad_rows = [{"prompt": q, "options": c, "correct": a} for q, c, a in ITEMS[:4]]
    bad_rows[2]["options"] = "milk"
    _upload(page, web_server, teams["red"].pk, "broken quiz", _write_jsonl(tmp_path / "broken.jsonl", bad_rows))
    error = page.locator("div:has(> #id_file) .errorlist")
    assert error.count() >= 1
    text = error.first.inner_text()
    assert "line 3" in text and "'options'" in text, text
    assert not TaskSet.objects.filter(name="broken quiz").exists()
    assert TaskSet.objects.count() == 1
