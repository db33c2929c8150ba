"""Deleting variants and models: POST only, refused while a job uses the variant or while it has
children (unless the whole model goes), files removed once the transaction commits."""

import pytest
from django.urls import reverse

from catalog.imports import import_gguf_file, import_hf_folder
from catalog.models import File, Model, Variant
from catalog.services import demo_model_path
from tests.catalog.conftest import leftover_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def family(teams, tiny_hf, artifacts):
    base = import_hf_folder(team_id=teams["red"].pk, user_id=None, folder=str(tiny_hf[0]), name="fam")
    child = import_gguf_file(team_id=teams["red"].pk, user_id=None, path=str(demo_model_path()),
                             model_id=base.model_id, parent_id=base.pk)
    return base, child


def test_delete_is_post_only(client, teams, family):
    client.force_login(teams["alice"])
    assert client.get(reverse("catalog:variant-delete", args=[family[1].pk])).status_code == 405
    assert client.get(reverse("catalog:model-delete", args=[family[0].model_id])).status_code == 405


def test_delete_needs_the_csrf_token(teams, family):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(teams["alice"])
    assert client.post(reverse("catalog:variant-delete", args=[family[1].pk])).status_code == 403
    assert Variant.objects.filter(pk=family[1].pk).exists()


def test_variant_with_children_is_refused_then_leaf_is_deleted_with_its_files(
        client, teams, family, django_capture_on_commit_callbacks):
    base, child = family
    client.force_login(teams["alice"])
    response = client.post(reverse("catalog:variant-delete", args=[base.pk]), follow=True)
    assert b"made from it" in response.content
    assert Variant.objects.filter(pk=base.pk).exists()
    child_dir = child.directory
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("catalog:variant-delete", args=[child.pk]))
    assert not Variant.objects.filter(pk=child.pk).exists()
    assert not child_dir.exists() and base.directory.exists()


def test_variant_used_by_a_running_job_is_refused(client, teams, family):
    from jobs.models import Job

    base, child = family
    job = Job.objects.create(team=teams["red"], kind="evaluate", method="perplexity",
                             input_variant=child, status="running")
    client.force_login(teams["alice"])
    response = client.post(reverse("catalog:variant-delete", args=[child.pk]), follow=True)
    assert f"used by job #{job.pk}, which is running".encode() in response.content
    response = client.post(reverse("catalog:model-delete", args=[base.model_id]), follow=True)
    assert b"running" in response.content
    assert Variant.objects.count() == 2


def test_whole_model_delete_removes_every_variant_and_file(
        client, teams, family, artifacts, django_capture_on_commit_callbacks):
    base, _ = family
    client.force_login(teams["alice"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("catalog:model-delete", args=[base.model_id]))
    assert response.status_code == 302 and response["Location"] == reverse("catalog:list")
    assert not Model.objects.exists() and not Variant.objects.exists() and not File.objects.exists()
    assert leftover_files(artifacts) == []
