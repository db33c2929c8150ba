"""The processes tests start (workers, web, runtime) get the test database through DATABASE_URL:
the URL built from the test settings must parse back to the same database (SQLite `<db>.test`,
PostgreSQL `test_<NAME>`, odd characters in the password included)."""

import pytest

from quantdash.env import database_from_url
from tests.support.processes import database_url


@pytest.mark.parametrize("entry", [
    {"ENGINE": "django.db.backends.postgresql", "NAME": "test_quantdash", "USER": "quant dash",
     "PASSWORD": "p@ss:w/rd%", "HOST": "db.internal", "PORT": "5433",
     "OPTIONS": {"sslmode": "require"}},
    {"ENGINE": "django.db.backends.postgresql", "NAME": "test_quantdash", "USER": "quantdash",
     "PASSWORD": "", "HOST": "127.0.0.1", "PORT": "54321", "OPTIONS": {}},
    {"ENGINE": "django.db.backends.postgresql", "NAME": "test_quantdash", "USER": "", "PASSWORD": "",
     "HOST": "", "PORT": "", "OPTIONS": {}},  # local socket, peer authentication
])
def test_a_postgres_test_database_round_trips(entry):
    parsed = database_from_url(database_url(entry), "/unused")
    for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS"):
        assert parsed[key] == entry[key], key


@pytest.mark.django_db
def test_the_session_database_is_the_test_one():
    from django.conf import settings

    url = database_url()
    name = settings.DATABASES["default"]["NAME"]
    assert url.endswith(name) or f"/{name}?" in url
    assert name.endswith(".test") or name.startswith("test_")


@pytest.mark.django_db
def test_the_servers_tests_start_keep_djangos_async_safety_guard_on():
    """The test process allows sync ORM calls from Playwright's event loop; uvicorn, workers and
    the runtime must not inherit that, so an async view calling the ORM directly fails its test."""
    import os

    from tests.support.processes import child_env

    assert os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE") == "true"
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in child_env()
