"""The new-job form: datasets are picked from a list of the team's text datasets (by name and
size), and the preview validates exactly what submitting would, naming the field it refuses."""

import pytest

from catalog.models import Dataset
from jobs.models import Job, Worker

pytestmark = pytest.mark.django_db

WIKITEXT_TEST_BYTES = 1_256_449  # /work/shared/data/wikitext-2/test.txt: 1.2 MiB


@pytest.fixture
def datasets(teams):
    Worker.objects.create(hostname="cpu@forms", queues=["cpu"], device="cpu",
                          memory_bytes=24 * 1024**3, methods=["gguf", "gptq", "evaluate"])
    return {
        "red": Dataset.objects.create(team=teams["red"], name="wikitext-2 test", kind="txt",
                                      path="test.txt", bytes=WIKITEXT_TEST_BYTES),
        "red-jsonl": Dataset.objects.create(team=teams["red"], name="chats", kind="jsonl",
                                            path="chats.jsonl", bytes=10),
        "blue": Dataset.objects.create(team=teams["blue"], name="blue text", kind="txt",
                                       path="b.txt", bytes=2048),
    }


def _preview(client, variant, **params) -> str:
    return client.get("/jobs/new/placement", {"variant": variant.pk, "method": "evaluate",
                                              "mode": "quick", **params}).content.decode()


def test_the_dataset_is_a_list_of_the_teams_text_datasets_with_an_upload_link(client, teams, demo_variant, datasets):
    client.force_login(teams["alice"])
    html = client.get(f"/jobs/new?variant={demo_variant.pk}&method=evaluate").content.decode()
    assert f'<option value="{datasets["red"].pk}">wikitext-2 test (1.2\xa0MiB)</option>' in html
    assert "chats" not in html and "blue text" not in html  # not text; another team's
    assert '<a class="upload-dataset" href="/catalog/datasets/">or upload one</a>' in html
    client.force_login(teams["carol"])  # in both teams: each dataset says whose it is
    html = client.get(f"/jobs/new?variant={demo_variant.pk}").content.decode()
    assert "wikitext-2 test (1.2\xa0MiB, team red)" in html and "blue text (2.0\xa0KiB, team blue)" in html


def test_the_evaluate_preview_says_what_submitting_does(client, teams, demo_variant, datasets):
    client.force_login(teams["alice"])
    ok = _preview(client, demo_variant, dataset=datasets["red"].pk)
    assert 'id="placement-ok"' in ok and "queue <strong>cpu</strong>" in ok and "error" not in ok
    assert 'id="placement-ok"' in _preview(client, demo_variant, dataset_path="/srv/text/wiki.txt")

    missing = _preview(client, demo_variant)
    assert "Can't run: dataset: choose a text dataset" in missing
    foreign = _preview(client, demo_variant, dataset=datasets["blue"].pk)
    assert f"Can't run: dataset: no text dataset {datasets['blue'].pk} in your teams" in foreign
    assert "dataset: no text dataset" in _preview(client, demo_variant, dataset=datasets["red-jsonl"].pk)
    assert "context: Ensure this value is greater than or equal to 16" in _preview(
        client, demo_variant, dataset=datasets["red"].pk, context=8)
    assert "dataset_path: choose a dataset or give a server path, not both" in _preview(
        client, demo_variant, dataset=datasets["red"].pk, dataset_path="/srv/text/wiki.txt")

    # Submitting the same forms: the refusals land on the same fields, and no job is made.
    refused = client.post("/jobs/new", {"variant": demo_variant.pk, "method": "evaluate",
                                        "dataset": datasets["blue"].pk})
    assert refused.status_code == 200 and Job.objects.count() == 0
    assert f"no text dataset {datasets['blue'].pk} in your teams" in refused.context["form"].errors["dataset"][0]
    done = client.post("/jobs/new", {"variant": demo_variant.pk, "method": "evaluate", "mode": "quick",
                                     "dataset": datasets["red"].pk})
    job = Job.objects.get()
    assert done.url == f"/jobs/{job.pk}/"
    assert job.params["dataset"] == datasets["red"].pk
    assert job.params["dataset_path"] == str(datasets["red"].directory / "test.txt")


def test_a_dataset_of_another_team_of_the_user_is_refused_naming_the_field(client, teams, demo_variant, datasets):
    client.force_login(teams["carol"])  # sees blue's dataset, but the variant is red's
    html = _preview(client, demo_variant, dataset=datasets["blue"].pk)
    assert "dataset: blue text is in team blue, the input variant in team red" in html
    response = client.post("/jobs/new", {"variant": demo_variant.pk, "method": "gptq",
                                         "dataset": datasets["blue"].pk})
    assert response.status_code == 200 and Job.objects.count() == 0
    assert "is in team blue" in response.context["form"].errors["dataset"][0]


def test_per_tensor_overrides_are_one_pattern_type_per_line():
    """Parsed with the GGUF method's own rules (patterns lower-cased as llama-quantize does, types
    spelled as ggml_type_name does); a bad line is named by its number, blank lines counted."""
    from django.forms import ValidationError

    from jobs.forms import parse_tensor_types

    assert parse_tensor_types("  attn_v=Q8_0\n\nblk\\.[0-3]\\.FFN_DOWN=q6_k\r\n") == [
        "attn_v=q8_0", "blk\\.[0-3]\\.ffn_down=q6_K"]
    assert parse_tensor_types("\n \n") == []
    for text, message in [
        ("attn_v=q8_0\n\nffn_down", "line 3 “ffn_down”: 'ffn_down' is not pattern=type (e.g. attn_v=q8_0)"),
        ("=q8_0", "line 1 “=q8_0”: '=q8_0' is not pattern=type (e.g. attn_v=q8_0)"),
        ("attn_v=Q4_K_M", "line 1 “attn_v=Q4_K_M”: unknown ggml type 'Q4_K_M'; choose from f32, f16,"),
        ("attn_(v=q8_0", "line 1 “attn_(v=q8_0”: pattern 'attn_(v' is not a regex: missing ), unterminated"),
        ("attn v=q8_0", "line 1 “attn v=q8_0”: pattern 'attn v': up to 120 letters, digits and regex"),
    ]:
        with pytest.raises(ValidationError) as raised:
            parse_tensor_types(text)
        assert raised.value.messages[0].startswith(message), raised.value.messages[0]


def test_gptq_calibration_defaults_are_sized_for_a_cpu_node_and_say_the_trade_off(client, teams, demo_variant, datasets):
    client.force_login(teams["alice"])
    html = client.get(f"/jobs/new?variant={demo_variant.pk}&method=gptq").content.decode()
    assert 'name="samples" value="16"' in html and 'name="seq_len" value="256"' in html
    # Measured on 2 CPU cores, SmolLM2-135M (from the report that asked for these defaults).
    assert "took 2 min 52 s at 16 × 256 tokens and about 25 min at 128 × 512" in html


def test_a_size_target_is_a_field_of_the_gguf_form_and_its_refusal_stands_beside_it(client, teams, demo_variant,
                                                                                      datasets):
    client.force_login(teams["alice"])
    page = client.get("/jobs/new", {"variant": demo_variant.pk, "method": "gguf"}).content.decode()
    assert 'name="target_size"' in page and 'name="target_chunks"' in page
    response = client.post("/jobs/new", {"variant": demo_variant.pk, "method": "gguf", "types": "Q8_0",
                                         "imatrix_dataset": datasets["red"].pk, "target_size": "5.5 bits"})
    assert response.status_code == 200 and Job.objects.count() == 0
    assert "'<number> GiB'" in response.context["form"].errors["target_size"][0]
