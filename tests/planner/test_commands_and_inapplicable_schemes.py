"""What the API says that a new user can act on: a scheme that does nothing for the model (MXFP4_MOE
on a dense one) is marked so, with the reason. The commands' placeholders: test_commands_run.py."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client, teams):
    client.force_login(teams["alice"])
    return client


def _plan(client, query):
    response = client.get(f"/api/planner/estimate?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_moe_only_schemes_are_marked_as_not_applying_to_a_dense_model(alice):
    rows = {r["scheme"]: r for r in _plan(alice, "preset=llama-3.1-8b&hardware=rtx-4090")["schemes"]}
    mxfp4 = rows["MXFP4_MOE"]
    assert mxfp4["applies"] is False
    assert mxfp4["applies_note"] == ("MXFP4_MOE quantizes only the expert (MoE) tensors; this model has none, "
                                     "so every matrix becomes Q8_0: the same file as Q8_0")
    assert mxfp4["weights_bytes"] == rows["Q8_0"]["weights_bytes"]   # what the note says
    assert all(r["applies"] and r["applies_note"] == "" for s, r in rows.items() if s != "MXFP4_MOE")

    moe = {r["scheme"]: r for r in _plan(alice, "preset=mixtral-8x7b&hardware=rtx-4090")["schemes"]}
    assert moe["MXFP4_MOE"]["applies"] is True and moe["MXFP4_MOE"]["applies_note"] == ""
