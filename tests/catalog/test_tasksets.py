"""Task sets: multiple-choice and question/answer JSONL normalized to items.jsonl with the field
mapping named in the form, lm-eval task YAMLs read safely (no custom Python), every refusal
naming its line and field, and another team's task set a 404."""

import hashlib
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

from catalog.models import TaskSet
from tests.catalog.conftest import leftover_files

pytestmark = pytest.mark.django_db


def _jsonl(*objects) -> bytes:
    return "".join(json.dumps(o) + "\n" for o in objects).encode()


def _post(client, teams, kind, data, *, filename="quiz.jsonl", yaml_text=None, user="alice", **fields):
    client.force_login(teams[user])
    form = {"team": teams["red"].pk, "kind": kind, "file": SimpleUploadedFile(filename, data),
            "question_field": "question", "choices_field": "choices", "answer_field": "answer",
            **fields}
    if yaml_text is not None:
        form["yaml_file"] = SimpleUploadedFile("task.yaml", yaml_text.encode())
    return client.post(reverse("catalog:tasksets"), form)


def test_a_multiple_choice_file_is_normalized_with_the_named_fields(client, teams, artifacts):
    data = _jsonl(
        {"id": 1, "q": "Capital of France?", "opts": ["Lyon", "Paris", "Nice"], "gold": 1},
        {"id": 2, "q": "2 + 2 =", "opts": ["3", "4"], "gold": "B"},
        {"id": 3, "q": "Colour of the sky?", "opts": ["green", "blue", "red"], "gold": "red"},
    )
    response = _post(client, teams, "mc", b"\n" + data, name="Quiz one", question_field="q",
                     choices_field="opts", answer_field="gold")
    assert response.status_code == 302, response.content.decode()[-2000:]
    t = TaskSet.objects.get()
    expected = (
        '{"question": "Capital of France?", "choices": ["Lyon", "Paris", "Nice"], "answer": 1}\n'
        '{"question": "2 + 2 =", "choices": ["3", "4"], "answer": 1}\n'
        '{"question": "Colour of the sky?", "choices": ["green", "blue", "red"], "answer": 2}\n'
    ).encode()
    assert t.items_path == artifacts / "tasks" / str(t.pk) / "items.jsonl"
    assert t.items_path.read_bytes() == expected
    assert (t.kind, t.records, t.bytes) == ("mc", 3, len(expected))
    assert t.sha256 == hashlib.sha256(expected).hexdigest()
    assert t.config == {
        "task": "quiz_one", "output_type": "multiple_choice",
        "doc_to_text": "Question: {{question}}\nAnswer:", "doc_to_choice": "{{choices}}",
        "doc_to_target": "{{answer}}", "target_delimiter": " ", "fewshot_delimiter": "\n\n",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                        {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}]}
    page = client.get(reverse("catalog:tasksets")).content.decode()
    assert "Quiz one" in page and "quiz_one" in page
    download = client.get(reverse("catalog:taskset-download", args=[t.pk]))
    assert b"".join(download.streaming_content) == expected


def test_a_question_answer_file_keeps_every_accepted_answer(client, teams, artifacts):
    data = _jsonl({"prompt": "Opposite of hot?", "gold": "cold"},
                  {"prompt": "A colour of grass?", "gold": ["green", "Green"]})
    response = _post(client, teams, "qa", data, name="opposites", question_field="prompt",
                     answer_field="gold")
    assert response.status_code == 302, response.content.decode()[-2000:]
    t = TaskSet.objects.get()
    assert t.items_path.read_bytes() == (
        b'{"question": "Opposite of hot?", "answers": ["cold"]}\n'
        b'{"question": "A colour of grass?", "answers": ["green", "Green"]}\n')
    assert t.config == {
        "task": "opposites", "output_type": "generate_until",
        "doc_to_text": "Question: {{question}}\nAnswer:", "doc_to_target": "{{answers}}",
        "generation_kwargs": {"until": ["\n"], "do_sample": False},
        "filter_list": [{"name": "strip", "filter": [{"function": "remove_whitespace"},
                                                     {"function": "take_first"}]}],
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
                         "ignore_case": True, "ignore_punctuation": True}]}


GOOD = {"question": "Capital of France?", "choices": ["Lyon", "Paris", "Nice"], "answer": 1}


@pytest.mark.parametrize("kind, data, message", [
    ("mc", _jsonl(GOOD, {**GOOD, "choices": "Lyon, Paris"}),
     "line 2: field 'choices': expected a list of at least 2 strings, got string"),
    ("mc", _jsonl({**GOOD, "choices": ["Paris"]}),
     "line 1: field 'choices': expected a list of at least 2 strings, got a list of 1"),
    ("mc", _jsonl({"question": "Q?", "answer": 0}),
     "line 1: field 'choices': missing (the line has question, answer)"),
    ("mc", _jsonl(GOOD, GOOD, {**GOOD, "answer": 3}),
     "line 3: field 'answer': index 3 is out of range for 3 choices (0..2)"),
    ("mc", _jsonl({**GOOD, "answer": "Marseille"}),
     "line 1: field 'answer': 'Marseille' is not among the choices (nor a letter A..C)"),
    ("mc", _jsonl({**GOOD, "choices": ["B", "A"], "answer": "A"}),
     "line 1: field 'answer': 'A' is ambiguous: the text of choice 1 and the letter of choice 0"),
    ("mc", _jsonl({**GOOD, "answer": 1.0}),
     "line 1: field 'answer': expected a choice index (int), a letter A.. or the text of one "
     "choice, got number"),
    ("mc", _jsonl(GOOD) + b'{"question": "x", "choices": [\n',
     "quiz.jsonl line 2 is not valid JSON"),
    ("mc", _jsonl(GOOD) + b"\n" + b"[1, 2]\n", "quiz.jsonl line 3 is not a JSON object"),
    ("qa", _jsonl({"question": "", "answer": "x"}),
     "line 1: field 'question': expected a non-empty string, got an empty string"),
    ("qa", _jsonl({"question": "Q?", "answer": 7}),
     "line 1: field 'answer': expected a non-empty string or a list of them, got int"),
    ("qa", _jsonl({"question": "Q?", "answer": []}),
     "line 1: field 'answer': expected a non-empty string or a list of them, got an empty list"),
    ("qa", b"\n\n", "quiz.jsonl has no items (no JSON objects)"),
])
def test_a_bad_line_is_refused_naming_its_line_and_field(client, teams, artifacts, kind, data, message):
    response = _post(client, teams, kind, data)
    html = response.content.decode()
    assert response.status_code == 400
    assert html.count(message.replace("'", "&#x27;")) == 1, html[-3000:]
    assert not TaskSet.objects.exists()
    assert leftover_files(artifacts) == []


YAML_OK = """\
task: whatever
output_type: multiple_choice
dataset_path: some/hub-dataset
test_split: validation
doc_to_text: "Q: {{q}}\\nA:"
doc_to_choice: "{{options}}"
doc_to_target: "{{label}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


def test_an_lm_eval_yaml_keeps_its_templates_and_its_data_file_unchanged(client, teams, artifacts):
    data = (b'{"q": "1+1?", "options": ["1", "2"], "label": 1}\n\n'
            b'{"q": "2+1?", "options": ["3", "4"], "label": 0}\n')
    response = _post(client, teams, "yaml", data, filename="data.jsonl", yaml_text=YAML_OK,
                     name="Sums v2")
    assert response.status_code == 302, response.content.decode()[-2000:]
    t = TaskSet.objects.get()
    assert t.items_path.read_bytes() == data
    assert (t.kind, t.records, t.sha256) == ("yaml", 2, hashlib.sha256(data).hexdigest())
    # The data location is the job's to set; the task is named after the task set.
    assert t.config == {"task": "sums_v2", "output_type": "multiple_choice",
                        "doc_to_text": "Q: {{q}}\nA:", "doc_to_choice": "{{options}}",
                        "doc_to_target": "{{label}}",
                        "metric_list": [{"metric": "acc", "aggregation": "mean",
                                         "higher_is_better": True}]}


@pytest.mark.parametrize("yaml_text, message", [
    (YAML_OK + "process_docs: !function utils.process_docs\n",
     "task.yaml line 12: field 'process_docs': !function runs custom Python, which this server "
     "does not run; use Jinja templates and lm-eval's own metrics"),
    (YAML_OK.replace('doc_to_text: "Q: {{q}}\\nA:"', "doc_to_text: !function utils.doc_to_text"),
     "task.yaml line 5: field 'doc_to_text': !function runs custom Python"),
    (YAML_OK + "process_docs: utils.process_docs\n",
     "task.yaml line 12: field 'process_docs': it runs custom Python, which this server does not run"),
    ("include: _default_template.yaml\n" + YAML_OK,
     "task.yaml line 1: field 'include': it pulls in another YAML file; upload one self-contained task"),
    ("class: !function task.MyTask\n", "task.yaml line 1: field 'class': !function runs custom Python"),
    (YAML_OK.replace("multiple_choice", "loglikelihood_rolling"),
     "task.yaml line 2: field 'output_type': expected multiple_choice or generate_until, got "
     "'loglikelihood_rolling'"),
    (YAML_OK + "tokens_please: 3\n",
     "task.yaml line 12: field 'tokens_please': not an lm-eval task option this server accepts"),
    ("task: [a, b\n", "task.yaml line 2: not valid YAML"),
    (YAML_OK + "metadata:\n  when: 2024-01-02\n",
     "task.yaml line 13: field 'metadata.when': a timestamp value is not accepted; quote it as a string"),
    (YAML_OK + "task_alias: !!python/name:os.system\n",
     "task.yaml line 12: field 'task_alias': a python/name:os.system value is not accepted"),
    (YAML_OK + "repeats: 1000000\n",
     "task.yaml line 12: field 'repeats': expected a whole number from 1 to 64, got 1000000"),
    (YAML_OK + "num_fewshot: many\n",
     "task.yaml line 12: field 'num_fewshot': expected a whole number from 0 to 64, got 'many'"),
    ("a: &x [1, 2]\nb: [*x, *x]\n" + YAML_OK,
     "task.yaml line 2: field 'b[0]': YAML aliases (*name) are not accepted; write the value out"),
])
def test_a_yaml_that_would_run_code_or_is_not_a_task_is_refused(client, teams, artifacts,
                                                                 yaml_text, message):
    response = _post(client, teams, "yaml", _jsonl({"q": "x"}), yaml_text=yaml_text)
    html = response.content.decode()
    assert response.status_code == 400
    assert message.replace("'", "&#x27;") in html, html[-3000:]
    assert not TaskSet.objects.exists()
    assert leftover_files(artifacts) == []


@override_settings(UPLOAD_MAX_BYTES=1024)
def test_an_upload_over_the_bound_is_413(client, teams, artifacts):
    response = _post(client, teams, "mc", _jsonl(*[GOOD] * 40))
    assert response.status_code == 413
    assert b"UPLOAD_MAX_BYTES" in response.content
    assert not TaskSet.objects.exists()


def test_names_are_unique_in_a_team(client, teams, artifacts):
    assert _post(client, teams, "mc", _jsonl(GOOD), name="quiz").status_code == 302
    response = _post(client, teams, "mc", _jsonl(GOOD), name="quiz")
    assert response.status_code == 400
    assert "team red already has a task set named &#x27;quiz&#x27;" in response.content.decode()


def test_another_teams_task_set_is_a_404(client, teams, artifacts):
    assert _post(client, teams, "mc", _jsonl(GOOD), name="red quiz").status_code == 302
    t = TaskSet.objects.get()
    client.force_login(teams["bob"])  # team blue only
    assert client.get(reverse("catalog:taskset-download", args=[t.pk])).status_code == 404
    assert client.post(reverse("catalog:taskset-delete", args=[t.pk])).status_code == 404
    assert f'id="taskset-{t.pk}"' not in client.get(reverse("catalog:tasksets")).content.decode()
    assert client.get("/api/catalog/tasksets").json() == {"tasksets": []}
    assert client.delete(f"/api/catalog/tasksets/{t.pk}").status_code == 404
    assert TaskSet.objects.filter(pk=t.pk).exists() and t.items_path.is_file()
    client.force_login(teams["alice"])
    assert client.post(reverse("catalog:taskset-delete", args=[t.pk])).status_code == 302
    assert not TaskSet.objects.exists()


def test_the_api_uploads_lists_and_refuses_naming_the_field(client, teams, artifacts):
    client.force_login(teams["alice"])
    response = client.post("/api/catalog/tasksets", {
        "team": teams["red"].pk, "kind": "qa", "name": "api quiz",
        "file": SimpleUploadedFile("q.jsonl", _jsonl({"question": "Q?", "answer": "yes"}))})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["kind"], body["records"], body["team"]) == ("api quiz", "qa", 1, "red")
    assert [t["id"] for t in client.get("/api/catalog/tasksets").json()["tasksets"]] == [body["id"]]
    bad = client.post("/api/catalog/tasksets", {
        "team": teams["red"].pk, "kind": "mc", "name": "bad",
        "file": SimpleUploadedFile("b.jsonl", _jsonl({**GOOD, "answer": 9}))})
    assert bad.status_code == 400
    assert bad.json()["errors"] == {
        "file": "line 1: field 'answer': index 9 is out of range for 3 choices (0..2)"}
    other_team = client.post("/api/catalog/tasksets", {
        "team": teams["blue"].pk, "kind": "qa", "file": SimpleUploadedFile("q.jsonl", b"{}")})
    assert other_team.status_code == 400 and "team" in other_team.json()["errors"]
    assert client.delete(f"/api/catalog/tasksets/{body['id']}").status_code == 204
    assert not TaskSet.objects.exists()
