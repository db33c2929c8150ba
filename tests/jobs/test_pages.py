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
