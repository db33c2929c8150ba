"""Runtime test data. Who may see what: the demo variant is in team red, so alice and carol may
chat with it and bob (blue) gets 404."""

import pytest


@pytest.fixture
def red_demo(teams):
    """The demo variant in team red, committed so the web and runtime processes see it (tests that
    use it are django_db(transaction=True))."""
    from catalog.imports.demo import demo_model_import

    return demo_model_import(team=teams["red"]).variants.select_related("model").get()


@pytest.fixture
def api_keys(teams):
    from runtime.services import api_token_create

    return {name: api_token_create(user=teams[name], name="test")[1] for name in ("alice", "bob")}
