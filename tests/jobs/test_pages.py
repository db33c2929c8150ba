import pytest

from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind, method, params, subject", [
    ("import", "import-hub", {"repo_id": "org/model", "revision": "main", "name": ""}, "org/model"),
    ("import", "import-upload", {"staged": "/x", "name": "my-upload"}, "my-upload"),
])
def test_import_job_pages_name_what_they_import(client, teams, kind, method, params, subject):
    job = Job.objects.create(team=teams["red"], kind=kind, method=method, params=params)
    client.force_login(teams["alice"])
    detail = client.get(f"/jobs/{job.pk}/")
    assert detail.status_code == 200
    assert subject in detail.content.decode()
    listing = client.get("/jobs/")
    assert subject in listing.content.decode()
    assert "/x" not in listing.content.decode()  # the staging path is not shown


def test_job_detail_polls_until_final_then_stops(client, teams, demo_variant):
    job = Job.objects.create(team=teams["red"], kind="quantize", method="gguf",
                             input_variant=demo_variant, params={"types": ["Q8_0"]})
    client.force_login(teams["alice"])
    assert 'hx-trigger="every 1s"' in client.get(f"/jobs/{job.pk}/").content.decode()
    assert client.get(f"/jobs/{job.pk}/", HTTP_HX_REQUEST="true").status_code == 200
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED)
    assert client.get(f"/jobs/{job.pk}/", HTTP_HX_REQUEST="true").status_code == 286
    assert 'hx-trigger="every 1s"' not in client.get(f"/jobs/{job.pk}/").content.decode()


def test_another_teams_job_page_is_404(client, teams, demo_variant):
    job = Job.objects.create(team=teams["red"], kind="quantize", method="gguf",
                             input_variant=demo_variant)
    client.force_login(teams["bob"])
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    assert client.post(f"/jobs/{job.pk}/cancel").status_code == 404


def test_a_conversion_job_is_titled_timed_and_its_parameters_read_as_text(client, teams, demo_variant):
    from datetime import timedelta

    from django.utils import timezone

    started = timezone.now() - timedelta(minutes=5)
    job = Job.objects.create(team=teams["red"], kind="import", method="hf-from-gguf", input_variant=demo_variant,
                             params={"dtype": "float16"}, status=Job.Status.SUCCEEDED, started_at=started,
                             finished_at=started + timedelta(seconds=31), progress=100,
                             log_tail="converting\n/x/torch/serialization.py:1: UserWarning: slow\n  warnings.warn(\ndone")
    gguf = Job.objects.create(team=teams["red"], kind="quantize", method="gguf", input_variant=demo_variant,
                              params={"types": ["Q6_K", "Q3_K_M"]})
    client.force_login(teams["alice"])
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert f"<h1>Job {job.pk}: Convert GGUF → HF safetensors</h1>" in html
    assert "Import of variant" not in html and "took 31 s" in html
    assert '<th scope="row">dtype</th><td>float16</td>' in html
    assert '<pre class="log">converting\ndone</pre>' in html and "1 library warning (hidden)" in html
    listing = client.get("/jobs/").content.decode()
    assert "types Q6_K, Q3_K_M" in listing and "[&#x27;Q6_K&#x27;" not in listing
    assert f'<a href="/jobs/{gguf.pk}/">Quantize to GGUF</a>' in listing
    home = client.get("/").content.decode()
    assert f'<a href="/jobs/{job.pk}/">Convert GGUF → HF safetensors</a>' in home  # recent jobs link


def test_a_4bit_job_on_a_gguf_variant_offers_the_conversion_that_makes_its_input(client, teams, demo_variant):
    client.force_login(teams["alice"])
    html = client.get(f"/jobs/new/placement?variant={demo_variant.pk}&method=bnb-nf4").content.decode()
    assert "bnb-nf4 needs an HF safetensors variant" in html
    assert f'formaction="/jobs/variants/{demo_variant.pk}/convert" formmethod="post"' in html
    ok = client.get(f"/jobs/new/placement?variant={demo_variant.pk}&method=gguf&types=Q8_0").content.decode()
    assert "formaction" not in ok
