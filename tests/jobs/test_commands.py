"""`manage.py quantize`, `evaluate` and `score_tasks` (jobs/cli.py): what they print and when they fail.
Running a job inline or waiting for a worker is covered end to end (tests/evaluation)."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from jobs.models import Job, Worker

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker(db):
    return Worker.objects.create(hostname="cpu@n1", queues=["cpu"], methods=["gguf", "evaluate"],
                                 memory_bytes=24 * 2**30, last_seen=timezone.now())


@pytest.mark.parametrize("command, args", [("quantize", ["--method", "gguf"]),
                                           ("evaluate", ["--dataset", "text.txt"])])
def test_an_unknown_variant_is_a_command_error(teams, command, args):
    with pytest.raises(CommandError, match="no variant 999999"):
        call_command(command, "999999", *args)
    assert not Job.objects.exists()


def test_a_rejected_submission_is_a_command_error_naming_the_problem(demo_variant, worker):
    with pytest.raises(CommandError) as caught:
        call_command("evaluate", str(demo_variant.pk), "--dataset", "99999")
    assert "no dataset 99999" in str(caught.value)
    assert not Job.objects.exists()


def test_a_queued_job_is_printed_as_one_line_or_as_json(demo_variant, worker, tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("hello world " * 100)
    call_command("evaluate", str(demo_variant.pk), "--dataset", str(text), "--chunks", "1")
    job = Job.objects.get()
    assert capsys.readouterr().out.strip() == f"job {job.pk}: {job.status}"
    call_command("evaluate", str(demo_variant.pk), "--dataset", str(text), "--chunks", "2", "--json")
    second = Job.objects.exclude(pk=job.pk).get()
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"job": second.pk, "status": "queued", "error": "", "variant": demo_variant.pk,
                       "evaluations": []}


def test_score_tasks_prints_its_queued_job_like_evaluate(demo_variant, worker, tmp_path, capsys):
    from catalog.tasksets import taskset_upload

    worker.methods = ["tasks"]
    worker.save()
    items = tmp_path / "quiz.jsonl"
    items.write_text(json.dumps({"question": "2 + 2 =", "choices": ["3", "4"], "answer": 1}) + "\n")
    quiz = taskset_upload(team_id=demo_variant.model.team_id, user_id=None, kind="mc", path=str(items),
                          name="quiz")
    call_command("score_tasks", str(demo_variant.pk), "--task", str(quiz.pk), "--json")
    job = Job.objects.get()
    assert (job.method, job.params["tasks"]) == ("tasks", [quiz.pk])
    assert json.loads(capsys.readouterr().out) == {"job": job.pk, "status": "queued", "error": "",
                                                   "variant": demo_variant.pk, "evaluations": []}
    with pytest.raises(CommandError, match="no task set 999999 in this team"):
        call_command("score_tasks", str(demo_variant.pk), "--task", "999999")
