"""Blind side-by-side votes: the pair's endpoints (team scoping, CSRF, fields named in errors),
one vote per user, prompt and pair, the leaderboard and the comparison page from stored votes
checked against a hand computation, and the two streams through the real runtime server naming
no variant before the vote."""

import json
import re

import pytest
from django.test import Client

from catalog.models import Model, Variant
from runtime.blind import reply_save, vote_cast
from catalog.models import BlindPair
from tests.runtime.http import post, session_headers
from tests.runtime.test_chat_stream import second_variant  # noqa: F401  (a fixture)

PAIRS = "/playground/blind/pairs/"
DONE = {"finish_reason": "stop", "completion_tokens": 3, "tokens_per_s": 10.0}


@pytest.fixture
def tiny(teams):
    """A model in team red with three variants (rows only: voting needs no weights)."""
    model = Model.objects.create(team=teams["red"], name="Tiny")
    variants = {q: Variant.objects.create(model=model, format="gguf", quant_type=q)
                for q in ("Q8_0", "Q4_0", "Q2_K")}
    return model, variants


def client_for(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def post_json(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


def make_pair(client, variants, prompt="Which is larger, 9.11 or 9.9?") -> BlindPair:
    response = post_json(client, PAIRS, {"variants": [v.pk for v in variants], "content": prompt,
                                         "params": {"temperature": 0}})
    assert response.status_code == 201, response.content
    pair = BlindPair.objects.get(pk=response.json()["id"])
    for side in "ab":  # both replies ended (the streams themselves are tested below, for real)
        reply_save(pair=pair, side=side, text=f"reply {side}", stats=DONE)
    return pair


def vote_for(client, pair: BlindPair, winner: Variant | str):
    """Votes for the side `winner` was drawn as, or "tie" / "both_bad"."""
    vote = winner if isinstance(winner, str) else ("a" if pair.variant_a_id == winner.pk else "b")
    return post_json(client, f"{PAIRS}{pair.pk}/vote/", {"vote": vote})


@pytest.mark.django_db
def test_a_pair_names_no_variant_until_the_vote_reveals_both(teams, tiny):
    _model, v = tiny
    alice = client_for(teams["alice"])
    response = post_json(alice, PAIRS, {"variants": [v["Q8_0"].pk, v["Q4_0"].pk],
                                        "content": "Hi", "params": {"temperature": 0}})
    assert response.status_code == 201
    assert response.json().keys() == {"id", "sides"}
    assert "Q8_0" not in response.content.decode() and "Q4_0" not in response.content.decode()
    pair = BlindPair.objects.get(pk=response.json()["id"])
    assert {pair.variant_a, pair.variant_b} == {v["Q8_0"], v["Q4_0"]}
    assert pair.settings["temperature"] == 0 and "seed" in pair.settings  # one seed for both sides

    early = post_json(alice, f"{PAIRS}{pair.pk}/vote/", {"vote": "a"})
    assert (early.status_code, early.json()["error"]["param"]) == (409, "vote")
    for side in "ab":
        reply_save(pair=pair, side=side, text="x", stats=DONE)
    answer = post_json(alice, f"{PAIRS}{pair.pk}/vote/", {"vote": "tie"}).json()
    assert (answer["a"]["variant"], answer["b"]["variant"]) == (pair.variant_a_id, pair.variant_b_id)
    assert answer["a"]["label"] == f"{pair.variant_a.label} #{pair.variant_a_id}"
    assert answer["a"]["stats"]["tokens_per_s"] == 10.0
    pair.refresh_from_db()
    assert (pair.vote, pair.voted_at is not None) == ("tie", True)


@pytest.mark.django_db
def test_bad_input_is_a_4xx_naming_the_field(teams, tiny):
    model, v = tiny
    alice = client_for(teams["alice"])
    other = Model.objects.create(team=teams["red"], name="Other")
    lonely = Variant.objects.create(model=other, format="gguf", quant_type="F16")
    cases = [
        ({"model": model.pk, "content": "  "}, 400, "content"),
        ({"content": "hi"}, 400, "model"),
        ({"model": other.pk, "content": "hi"}, 400, "model"),  # one variant: no pair to draw
        ({"variants": [v["Q8_0"].pk, lonely.pk], "content": "hi"}, 400, "variants"),
        ({"variants": [v["Q8_0"].pk], "content": "hi"}, 400, "variants"),
        ({"variants": [v["Q8_0"].pk, v["Q8_0"].pk], "content": "hi"}, 400, "variants"),
        ({"model": model.pk, "content": "hi", "params": {"temperature": 9}}, 400, "params.temperature"),
    ]
    for body, status, field in cases:
        response = post_json(alice, PAIRS, body)
        assert (response.status_code, response.json()["error"]["param"]) == (status, field), body
    pair = make_pair(alice, [v["Q8_0"], v["Q4_0"]])
    for body, field in (({"vote": "A wins"}, "vote"), ({}, "vote"), ({"vote": "a", "voter": "me"}, "voter")):
        response = post_json(alice, f"{PAIRS}{pair.pk}/vote/", body)
        assert (response.status_code, response.json()["error"]["param"]) == (400, field), body
    response = post_json(alice, f"{PAIRS}{pair.pk}/c/", {})
    assert (response.status_code, response.json()["error"]["param"]) == (400, "side")


@pytest.mark.django_db
def test_another_teams_or_users_pair_is_404_and_writes_need_csrf(teams, tiny):
    model, v = tiny
    pair = make_pair(client_for(teams["alice"]), [v["Q8_0"], v["Q2_K"]])
    for user in ("bob", "carol"):  # bob: another team; carol: same team, not her pair
        client = client_for(teams[user])
        for path in (f"{PAIRS}{pair.pk}/vote/", f"{PAIRS}{pair.pk}/a/"):
            response = post_json(client, path, {"vote": "a"} if path.endswith("vote/") else {})
            assert (response.status_code, response.json()["error"]["param"]) == (404, "pair")
    bob = client_for(teams["bob"])
    response = post_json(bob, PAIRS, {"model": model.pk, "content": "hi"})
    assert (response.status_code, response.json()["error"]["param"]) == (404, "model")
    assert bob.get(f"/playground/leaderboard/{model.pk}/").status_code == 404
    no_token = client_for(teams["alice"], enforce_csrf_checks=True)
    assert post_json(no_token, f"{PAIRS}{pair.pk}/vote/", {"vote": "a"}).status_code == 403
    assert BlindPair.objects.get(pk=pair.pk).vote == ""


@pytest.mark.django_db
def test_the_leaderboard_and_compare_page_show_the_hand_computed_ratings(teams, tiny):
    model, v = tiny
    A, B, C = v["Q8_0"], v["Q4_0"], v["Q2_K"]
    alice = client_for(teams["alice"])
    # The table of tests/runtime/test_ratings.py (strengths 4 : 2 : 1), one prompt per vote.
    table = ([(A, B, A)] + [(A, B, "tie")] * 2 + [(B, C, B)] * 2 + [(B, C, C)]
             + [(A, C, A)] * 4 + [(A, C, C)] + [(A, C, "both_bad")] * 2)
    for n, (x, y, winner) in enumerate(table):
        assert vote_for(alice, make_pair(alice, [x, y], prompt=f"prompt {n}"), winner).status_code == 200
    # Asked again with the same prompt, the same pair (prompt 6 was A against C): counted once...
    assert vote_for(alice, make_pair(alice, [A, C], prompt="prompt 6"), A).status_code == 200
    # ...and so is a third ask of prompt 7, whose vote is changed (first C, then A): the latest counts.
    again = make_pair(alice, [C, A], prompt="prompt 7")
    vote_for(alice, again, C)
    vote_for(alice, again, A)
    assert BlindPair.objects.exclude(vote="").count() == 15

    page = alice.get(f"/playground/leaderboard/{model.pk}/").content.decode()
    # A 1000 + 400 log10 2 ± 1.96 × 173.718 × sqrt(31/102) = 1120.4 ± 187.7 (see test_ratings)
    assert row(page, A) == ["not enough votes (fewer than 10)", f"GGUF Q8_0 #{A.pk}", "1120.4",
                            "932.7 – 1308.1 (± 187.7)", "8", "5", "2", "1", "2"]
    # B 1000 ± 1.96 × 173.718 × sqrt(1/3) = 196.6
    assert row(page, B)[2:5] == ["1000.0", "803.4 – 1196.6 (± 196.6)", "6"]
    assert row(page, C)[2:5] == ["879.6", "691.9 – 1067.3 (± 187.7)", "8"]
    assert "11 counted votes" in page

    compare = alice.get(f"/catalog/models/{model.pk}/compare/").content.decode()
    assert "col-votes" in compare
    assert "not enough votes (8)" in cell(compare, A)


@pytest.mark.django_db
def test_a_resolved_order_is_ranked_on_both_pages(teams, tiny):
    model, v = tiny
    alice = client_for(teams["alice"])
    for n in range(35):  # 30 to 5: ln 6 is clear of 1.96 × sqrt(1/30 + 1/5)
        pair = make_pair(alice, [v["Q8_0"], v["Q2_K"]], prompt=f"p{n}")
        vote_cast(pair=pair, vote="a" if (pair.variant_a == v["Q8_0"]) == (n < 30) else "b")
    page = alice.get(f"/playground/leaderboard/{model.pk}/").content.decode()
    # theta = ln(6)/2 = 0.895880; se = sqrt(1/30 + 1/5)/2 = 0.241523
    assert row(page, v["Q8_0"])[:5] == ["1", f"GGUF Q8_0 #{v['Q8_0'].pk}", "1155.6",
                                        "1073.4 – 1237.9 (± 82.2)", "35"]
    assert row(page, v["Q2_K"])[0] == "2"
    compare = alice.get(f"/catalog/models/{model.pk}/compare/?sort=-votes").content.decode()
    assert "1156" in cell(compare, v["Q8_0"]) and "± 82 (n=35)" in cell(compare, v["Q8_0"])
    assert compare.index(f'id="compare-{v["Q8_0"].pk}"') < compare.index(f'id="compare-{v["Q2_K"].pk}"')


def row(page: str, variant) -> list[str]:
    """The leaderboard row's cells as text."""
    start = page.index(f'id="rating-{variant.pk}"')
    html = page[start:page.index("</tr>", start)]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)
    return [" ".join(re.sub(r"<[^>]+>", "", c).split()) for c in cells]


def cell(page: str, variant) -> str:
    start = page.index(f'id="compare-{variant.pk}"')
    start = page.index('td class="num votes', start)
    return page[start:page.index("</td>", start)]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_both_sides_stream_through_the_runtime_naming_no_variant(runtime_web_server, red_demo,
                                                                 second_variant, teams):  # noqa: F811
    alice = session_headers(teams["alice"])
    _c, response = post(runtime_web_server, PAIRS, {
        "model": red_demo.model_id, "content": "Name a colour.",
        "params": {"temperature": 0, "max_tokens": 12}}, alice)
    assert response.status == 201
    created = response.read().decode()
    pair_id = json.loads(created)["id"]
    streams = {}
    for side in "ab":
        _c, response = post(runtime_web_server, f"{PAIRS}{pair_id}/{side}/", {}, alice)
        assert response.status == 200
        raw = response.read().decode()
        streams[side] = raw
        events = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: ")]
        assert [e["type"] for e in events][::len(events) - 1] == ["start", "done"]
        for event in events:  # only what is the same for either variant
            assert set(event) <= {"type", "side", "request_id", "prompt_tokens", "max_tokens",
                                  "n_ctx", "text", "stats"}, event
        assert set(events[-1]["stats"]) == {"prompt_tokens", "completion_tokens", "finish_reason"}
    seen = created + "".join(streams.values())
    for variant in (red_demo, second_variant):
        assert f"#{variant.pk}" not in seen and variant.label not in seen
        assert "Q4_1" not in seen and "variant" not in seen
    # a side is generated once
    _c, response = post(runtime_web_server, f"{PAIRS}{pair_id}/a/", {}, alice)
    assert (response.status, json.loads(response.read())["error"]["param"]) == (409, "side")

    pair = BlindPair.objects.get(pk=pair_id)
    assert pair.reply_a and pair.reply_b and pair.stats_a["tokens_per_s"] > 0
    assert pair.reply_a == "".join(json.loads(line[6:]).get("text", "")
                                   for line in streams["a"].splitlines() if line.startswith("data: "))
    _c, response = post(runtime_web_server, f"{PAIRS}{pair_id}/vote/", {"vote": "b"}, alice)
    answer = json.loads(response.read())
    assert (answer["a"]["variant"], answer["b"]["variant"]) == (pair.variant_a_id, pair.variant_b_id)
    assert {answer["a"]["variant"], answer["b"]["variant"]} == {red_demo.pk, second_variant.pk}
    assert answer["b"]["stats"]["tokens_per_s"] > 0
