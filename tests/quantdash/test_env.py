import pytest

from quantdash.env import ConfigError, database_from_url, env_bool, env_float, env_int, env_list


def test_env_bool_reads_common_spellings(monkeypatch):
    monkeypatch.setenv("X_FLAG", "off")
    assert env_bool("X_FLAG", True) is False
    monkeypatch.setenv("X_FLAG", "1")
    assert env_bool("X_FLAG", False) is True
    monkeypatch.delenv("X_FLAG")
    assert env_bool("X_FLAG", True) is True


def test_env_bool_and_int_name_the_variable_on_bad_values(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ConfigError, match="X_FLAG"):
        env_bool("X_FLAG", True)
    monkeypatch.setenv("X_NUM", "12GB")
    with pytest.raises(ConfigError, match="X_NUM"):
        env_int("X_NUM", 1)


def test_env_float_reads_a_number_at_or_above_its_floor(monkeypatch):
    monkeypatch.setenv("X_AGE", "0.5")
    assert env_float("X_AGE", 2.0) == 0.5
    monkeypatch.delenv("X_AGE")
    assert env_float("X_AGE", 2.0) == 2.0
    for bad, said in (("2s", "must be a number"), ("-1", "at least 0"), ("nan", "at least 0")):
        monkeypatch.setenv("X_AGE", bad)
        with pytest.raises(ConfigError, match=f"X_AGE {said}|X_AGE must be {said}"):
            env_float("X_AGE", 2.0)


def test_env_list_splits_and_strips(monkeypatch):
    monkeypatch.setenv("X_HOSTS", " a.example , b.example,,")
    assert env_list("X_HOSTS", []) == ["a.example", "b.example"]


def test_sqlite_url_relative_and_absolute():
    rel = database_from_url("sqlite:///var/db.sqlite3", "/srv/app")
    assert rel["NAME"] == "/srv/app/var/db.sqlite3"
    assert rel["TEST"]["NAME"] == "/srv/app/var/db.sqlite3.test"
    absolute = database_from_url("sqlite:////tmp/x.sqlite3", "/srv/app")
    assert absolute["NAME"] == "/tmp/x.sqlite3"


def test_postgres_url():
    db = database_from_url("postgres://qd:p%40ss@db.internal:5433/quantdash?sslmode=require", "/")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "qd", "p@ss", "db.internal", "5433", "quantdash")
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_unknown_database_scheme_is_refused():
    with pytest.raises(ConfigError, match="mysql"):
        database_from_url("mysql://x/y", "/")
