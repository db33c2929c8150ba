"""Who may see what: red's models, variants, files, datasets and lineage are 404 to bob on every
route; anonymous users are redirected to log in (pages) or get 401 JSON (API)."""

import pytest
from django.urls import reverse

from catalog.datasets import dataset_upload
from catalog.imports import import_hf_folder
from catalog.models import Dataset, Model, Variant

pytestmark = pytest.mark.django_db


@pytest.fixture
def red(teams, tiny_hf, artifacts, tmp_path):
    folder, _ = tiny_hf
    variant = import_hf_folder(team_id=teams["red"].pk, user_id=None, folder=str(folder), name="red-m")
    text = tmp_path / "red.txt"
    text.write_text("one two three\n")
    dataset = dataset_upload(team_id=teams["red"].pk, user_id=None, path=str(text))
    return {"model": variant.model, "variant": variant, "file": variant.files.first(),
            "dataset": dataset}


def _routes(red) -> list[tuple[str, str]]:
    m, v, f, d = red["model"].pk, red["variant"].pk, red["file"].pk, red["dataset"].pk
    return [
        ("get", reverse("catalog:model", args=[m])),
        ("get", reverse("catalog:lineage", args=[m])),
        ("get", reverse("catalog:download", args=[f])),
        ("get", reverse("catalog:dataset-download", args=[d])),
        ("post", reverse("catalog:variant-delete", args=[v])),
        ("post", reverse("jobs:variant-convert", args=[v])),
        ("post", reverse("catalog:model-delete", args=[m])),
        ("post", reverse("catalog:dataset-delete", args=[d])),
        ("get", f"/api/catalog/models/{m}"),
        ("get", f"/api/catalog/variants/{v}"),
    ]


def test_another_team_gets_404_on_every_route(client, teams, red):
    client.force_login(teams["bob"])
    for method, url in _routes(red):
        response = getattr(client, method)(url, headers={"HX-Request": "true"})
        assert response.status_code == 404, (method, url, response.status_code)
    assert Model.objects.filter(pk=red["model"].pk).exists()
    assert Variant.objects.filter(pk=red["variant"].pk).exists()
    assert Dataset.objects.filter(pk=red["dataset"].pk).exists()
    listing = client.get(reverse("catalog:list"))
    assert b"red-m" not in listing.content
    assert client.get("/api/catalog/models").json() == {"models": []}
    assert b"red.txt" not in client.get(reverse("catalog:datasets")).content


def test_members_of_the_team_see_it(client, teams, red):
    for user in ("alice", "carol"):
        client.force_login(teams[user])
        assert client.get(reverse("catalog:model", args=[red["model"].pk])).status_code == 200
        assert client.get(reverse("catalog:lineage", args=[red["model"].pk])).status_code == 200
        assert client.get(reverse("catalog:download", args=[red["file"].pk])).status_code == 200
        assert client.get(f"/api/catalog/variants/{red['variant'].pk}").status_code == 200


def test_anonymous_pages_redirect_and_api_answers_401(client, red):
    for method, url in _routes(red):
        response = getattr(client, method)(url)
        if url.startswith("/api/"):
            assert response.status_code == 401 and response.json()["error"]
        else:
            assert response.status_code == 302 and "/login/" in response["Location"], url
    assert client.get("/api/catalog/models").status_code == 401


def test_a_user_cannot_import_into_another_team(client, teams, tiny_hf, artifacts):
    from tests.catalog.factories import uploads

    client.force_login(teams["bob"])
    response = client.post(reverse("jobs:import"), {
        "source": "upload", "team": teams["red"].pk, "files": uploads(tiny_hf[0])})
    assert response.status_code == 400
    assert not Model.objects.exists()


def test_non_staff_cannot_import_a_server_path(client, teams):
    client.force_login(teams["alice"])
    response = client.post(reverse("jobs:import"), {
        "source": "path", "team": teams["red"].pk, "server_path": "/etc"})
    assert response.status_code == 400
    assert not Model.objects.exists()
