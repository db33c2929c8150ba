"""Submitting a "tasks" job: task set ids of the team become the specs the method runs, another
team's is refused on the field, an lm-eval built-in task is refused at once when the Hub can't be
reached, and the new-job form and the API offer it."""

import hashlib
import json
import re
import time

import pytest
from django.utils import timezone

from catalog.tasksets import taskset_upload
from jobs.methods.base import JobError
from jobs.models import Job, Worker
from jobs.services import job_check

pytestmark = pytest.mark.django_db

OFFLINE_MESSAGE = ("lm-eval's built-in task 'arc_easy' needs the Hugging Face Hub, which this server "
                   "cannot reach (HF_HUB_OFFLINE is set); upload the task as a file instead")


@pytest.fixture
def worker(db):
    return Worker.objects.create(hostname="cpu@tasks", queues=["cpu"], device="cpu",
                                 memory_bytes=24 * 2**30, methods=["tasks"], last_seen=timezone.now())


def _taskset(tmp_path, team, name, user=None):
    path = tmp_path / f"{name}.jsonl"
    path.write_text(json.dumps({"q": "2 + 2 =", "c": ["3", "4"], "a": "4"}) + "\n")
    return taskset_upload(team_id=team.pk, user_id=getattr(user, "pk", None), kind="mc",
                          path=str(path), name=name, question_field="q", choices_field="c",
                          answer_field="a")


@pytest.fixture
def red_quiz(tmp_path, teams):
    return _taskset(tmp_path, teams["red"], "red quiz")


def test_task_set_ids_become_the_specs_the_method_runs(teams, demo_variant, red_quiz):
    check = job_check(team=teams["red"], method="tasks", input_variant=demo_variant, route=False,
                      params={"tasks": [str(red_quiz.pk)], "num_fewshot": 0, "limit": 5})
    normalized = b'{"question": "2 + 2 =", "choices": ["3", "4"], "answer": 1}\n'
    assert red_quiz.items_path.read_bytes() == normalized
    assert check.cleaned["tasks"] == [red_quiz.pk]
    assert check.cleaned["task_specs"] == [{
        "name": "red quiz", "source": "catalog", "taskset_id": red_quiz.pk, "kind": "mc",
        "sha256": hashlib.sha256(normalized).hexdigest(),
        "data_path": str(red_quiz.items_path.resolve()),
        "config": {"task": "red_quiz", "output_type": "multiple_choice",
                   "doc_to_text": "Question: {{question}}\nAnswer:", "doc_to_choice": "{{choices}}",
                   "doc_to_target": "{{answer}}", "target_delimiter": " ", "fewshot_delimiter": "\n\n",
                   "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                                   {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}]}}]
    assert check.cleaned["task_specs"][0]["data_path"].endswith(f"/tasks/{red_quiz.pk}/items.jsonl")


def test_another_teams_or_an_unknown_task_set_is_refused_on_the_field(tmp_path, teams, demo_variant):
    blue = _taskset(tmp_path, teams["blue"], "blue quiz")
    for value, message in ((blue.pk, f"no task set {blue.pk} in this team"),
                           (999_999, "no task set 999999 in this team"),
                           ("quiz", "no task set quiz in this team")):
        with pytest.raises(JobError) as err:
            job_check(team=teams["red"], method="tasks", input_variant=demo_variant, route=False,
                      params={"tasks": [value]})
        assert err.value.errors == {"tasks": message}
    for value in ([], "1", None):
        with pytest.raises(JobError) as err:
            job_check(team=teams["red"], method="tasks", input_variant=demo_variant, route=False,
                      params={"tasks": value} if value is not None else {})
        assert "tasks" in err.value.errors


def test_a_builtin_task_offline_is_refused_at_once_naming_the_hub(teams, demo_variant, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    started = time.monotonic()
    with pytest.raises(JobError) as err:
        job_check(team=teams["red"], method="tasks", input_variant=demo_variant, route=False,
                  params={"tasks": ["builtin:arc_easy"]})
    assert time.monotonic() - started < 2
    assert err.value.errors == {"tasks": OFFLINE_MESSAGE}


def test_a_builtin_task_with_the_hub_unreachable_is_refused_at_once(teams, demo_variant, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    started = time.monotonic()
    with pytest.raises(JobError) as err:
        job_check(team=teams["red"], method="tasks", input_variant=demo_variant, route=False,
                  params={"tasks": ["builtin:hellaswag"]})
    assert time.monotonic() - started < 2
    message = err.value.errors["tasks"]
    assert message.startswith("lm-eval's built-in task 'hellaswag' needs the Hugging Face Hub, "
                              "which this server cannot reach (ConnectError: ")
    assert message.endswith("; upload the task as a file instead")


def test_the_job_form_offers_the_teams_task_sets_and_submits(client, tmp_path, teams, demo_variant,
                                                            red_quiz, worker, monkeypatch):
    _taskset(tmp_path, teams["blue"], "blue quiz")
    client.force_login(teams["alice"])
    html = client.get(f"/jobs/new?variant={demo_variant.pk}&method=tasks").content.decode()
    assert '<option value="tasks" selected>Score tasks' in html
    assert f'<option value="{red_quiz.pk}">red quiz</option>' in html and "blue quiz" not in html
    for name in ("builtin_tasks", "num_fewshot", "limit", "seed", "max_gen_toks"):
        assert f'name="{name}"' in html
    assert '<a class="upload-tasks" href="/catalog/tasks/">or upload one</a>' in html
    model_page = client.get(f"/catalog/models/{demo_variant.model_id}/").content.decode()
    link = f'<a class="score-tasks" href="/jobs/new?variant={demo_variant.pk}&amp;method=tasks">'
    assert link + "Score tasks</a>" in model_page

    form = {"variant": demo_variant.pk, "method": "tasks", "num_fewshot": 1, "limit": 4,
            "seed": 7, "max_gen_toks": 16}
    empty = client.post("/jobs/new", form)
    assert empty.status_code == 200 and "choose at least one task set" in empty.content.decode()

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    offline = client.post("/jobs/new", {**form, "tasks": [red_quiz.pk], "builtin_tasks": "arc_easy"})
    assert OFFLINE_MESSAGE.replace("'", "&#x27;") in offline.content.decode()
    assert not Job.objects.exists()

    response = client.post("/jobs/new", {**form, "tasks": [red_quiz.pk]})
    assert response.status_code == 302, response.content.decode()[-3000:]
    job = Job.objects.get()
    assert (job.method, job.queue) == ("tasks", "cpu")
    assert (job.params["tasks"], job.params["num_fewshot"], job.params["limit"], job.params["seed"],
            job.params["max_gen_toks"]) == ([red_quiz.pk], 1, 4, 7, 16)
    assert [s["taskset_id"] for s in job.params["task_specs"]] == [red_quiz.pk]


def test_the_api_submits_a_tasks_job(client, teams, demo_variant, red_quiz, worker):
    client.force_login(teams["alice"])
    response = client.post("/api/jobs/", json.dumps({
        "variant": demo_variant.pk, "method": "tasks", "params": {"tasks": [red_quiz.pk]}}),
        content_type="application/json")
    assert response.status_code == 201, response.content
    params = response.json()["params"]
    assert (params["tasks"], params["num_fewshot"], params["limit"], params["seed"],
            params["max_gen_toks"]) == ([red_quiz.pk], 0, None, 1234, 32)
    refused = client.post("/api/jobs/", json.dumps({
        "variant": demo_variant.pk, "method": "tasks", "params": {"tasks": [red_quiz.pk + 1]}}),
        content_type="application/json")
    assert refused.status_code == 400
    assert refused.json()["errors"] == {"tasks": f"no task set {red_quiz.pk + 1} in this team"}


def test_the_score_tasks_command_submits_and_refuses_like_the_form(capsys, teams, demo_variant,
                                                                   red_quiz, worker, monkeypatch):
    from django.core.management import CommandError, call_command
    from huggingface_hub import constants

    call_command("score_tasks", str(demo_variant.pk), "--task", str(red_quiz.pk), "--limit", "3",
                 "--json")
    out = json.loads(capsys.readouterr().out)
    job = Job.objects.get(pk=out["job"])
    assert (out["status"], job.method, job.params["tasks"], job.params["limit"]) == (
        "queued", "tasks", [red_quiz.pk], 3)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CommandError, match=re.escape("tasks: " + OFFLINE_MESSAGE)):
        call_command("score_tasks", str(demo_variant.pk), "--task", "builtin:arc_easy")
    assert Job.objects.count() == 1
