"""Playground and token pages (Django's test client), and the create_api_token command."""

import io

import pytest
from django.core.management import call_command

from runtime.models import ApiToken, Conversation, token_hash
from runtime.services import api_token_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, teams):
    client.force_login(teams["alice"])
    return client


def test_playground_says_when_the_runtime_is_unavailable(logged_in, red_demo, settings):
    settings.RUNTIME_URL = "http://127.0.0.1:9"  # nothing listens there
    page = logged_in.get("/playground/").content.decode()
    assert "runtime is unavailable" in page
    assert f'value="{red_demo.pk}"' in page


def test_conversations_are_listed_for_their_owner_and_deletable(logged_in, client, red_demo, teams):
    mine = Conversation.objects.create(team=teams["red"], user=teams["alice"], variant=red_demo,
                                       title="About the sea")
    theirs = Conversation.objects.create(team=teams["red"], user=teams["carol"], variant=red_demo,
                                         title="Carol's chat")
    page = logged_in.get("/playground/").content.decode()
    assert "About the sea" in page and "Carol&#x27;s chat" not in page
    assert logged_in.get(f"/playground/?c={theirs.pk}").status_code == 404
    assert logged_in.post(f"/playground/conversations/{theirs.pk}/delete/").status_code == 404
    response = logged_in.post(f"/playground/conversations/{mine.pk}/delete/")
    assert response.status_code == 302
    assert list(Conversation.objects.all()) == [theirs]


def test_tokens_page_shows_a_new_key_once_and_stores_only_its_hash(logged_in, teams):
    page = logged_in.post("/playground/tokens/", {"name": "laptop"}).content.decode()
    token = ApiToken.objects.get()
    key = page.split('<code>qd_')[1].split("</code>")[0]
    raw = "qd_" + key
    assert token.digest == token_hash(raw) and raw not in {token.prefix, token.name}
    assert api_token_user(raw=raw) == teams["alice"]
    assert raw not in logged_in.get("/playground/tokens/").content.decode()
    assert logged_in.post(f"/playground/tokens/{token.pk}/delete/").status_code == 302
    assert api_token_user(raw=raw) is None


def test_create_api_token_command_prints_a_working_key(teams):
    out = io.StringIO()
    call_command("create_api_token", "bob", stdout=out)
    raw = out.getvalue().strip()
    assert raw.startswith("qd_") and api_token_user(raw=raw) == teams["bob"]
