"""Playground and token pages (Django's test client), side-by-side comparisons, and the
create_api_token command."""

import io
import json

import pytest
from django.core.management import call_command

from catalog.models import Variant
from runtime.models import ApiToken, Comparison, Conversation, token_hash
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


def initial(page: str) -> dict:
    """The data the page hands playground.js."""
    return json.loads(page.split('id="playground-initial" type="application/json">')[1]
                      .split("</script>")[0])


def test_a_comparison_is_listed_once_reopens_with_all_its_columns_and_is_deleted_whole(
        logged_in, red_demo, teams):
    red, alice = teams["red"], teams["alice"]
    comparison = Comparison.objects.create(team=red, user=alice, title="Describe a forest.")
    columns = [Conversation.objects.create(team=red, user=alice, variant=red_demo,
                                           comparison=comparison, title=f"Describe a forest. · {n}")
               for n in ("left", "right")]
    single = Conversation.objects.create(team=red, user=alice, variant=red_demo, title="About the sea")
    carols = Comparison.objects.create(team=red, user=teams["carol"], title="Carol's comparison")
    Conversation.objects.create(team=red, user=teams["carol"], variant=red_demo, comparison=carols,
                                title="Carol's column")

    page = logged_in.get("/playground/").content.decode()
    assert page.count(f"?comparison={comparison.pk}") == 1  # once, not once per column
    assert f"?c={columns[0].pk}" not in page and f"?c={single.pk}" in page
    assert page.count(f"{red_demo.label} #{red_demo.pk}") == 3  # the single chat's, both columns'
    assert "Carol" not in page
    opened = logged_in.get(f"/playground/?comparison={comparison.pk}").content.decode()
    assert initial(opened)["comparison"] == comparison.pk
    assert [c["conversation"] for c in initial(opened)["columns"]] == [c.pk for c in columns]
    # what playground.js swaps in once a new chat has started: the list alone, the chat marked
    fragment = logged_in.get(f"/playground/?comparison={comparison.pk}", HTTP_HX_REQUEST="true")
    text = fragment.content.decode()
    assert text.lstrip().startswith('<ul class="pg-conversations" id="conversations">')
    assert "<html" not in text and text.count('aria-current="page"') == 1
    for query in (f"comparison={carols.pk}", "comparison=abc", "c=abc"):
        assert logged_in.get(f"/playground/?{query}").status_code == 404

    assert logged_in.post(f"/playground/conversations/{columns[1].pk}/delete/").status_code == 302
    assert not Comparison.objects.filter(pk=comparison.pk).exists()
    assert set(Conversation.objects.filter(user=alice)) == {single}


def test_a_comparison_is_started_for_visible_distinct_variants_only(client, red_demo, teams):
    other = Variant.objects.create(model=red_demo.model, format=Variant.Format.GGUF, quant_type="Q8_0")

    def start(user, body):
        client.force_login(teams[user])
        return client.post("/playground/comparisons/", body, content_type="application/json")

    response = start("alice", {"title": "  Describe a forest.  ", "variants": [red_demo.pk, other.pk]})
    assert response.status_code == 201
    comparison = Comparison.objects.get(pk=response.json()["id"])
    assert (comparison.user, comparison.team, comparison.title) == (
        teams["alice"], teams["red"], "Describe a forest.")
    refused = [start("bob", {"title": "t", "variants": [red_demo.pk, other.pk]}),
               start("alice", {"title": "t", "variants": [red_demo.pk, red_demo.pk]}),
               start("alice", {"title": "t", "variants": [red_demo.pk]})]
    assert [(r.status_code, r.json()["error"]["param"]) for r in refused] == [
        (404, "variants"), (400, "variants"), (400, "variants")]
    assert Comparison.objects.count() == 1
    Conversation.objects.create(team=teams["red"], user=teams["alice"], variant=red_demo,
                                comparison=comparison, title="t")
    client.force_login(teams["alice"])
    assert client.get(f"/playground/?comparison={comparison.pk}").status_code == 200
    teams["red"].members.remove(teams["alice"])  # out of its team: gone for her too
    assert client.get(f"/playground/?comparison={comparison.pk}").status_code == 404


def test_tokens_page_shows_a_new_key_once_and_stores_only_its_hash(logged_in, teams):
    page = logged_in.post("/playground/tokens/", {"name": "laptop"}).content.decode()
    token = ApiToken.objects.get()
    key = page.split('<code id="new-token-key">qd_')[1].split("</code>")[0]
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
