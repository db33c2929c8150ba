import pytest
from django.core.management import call_command

from accounts.models import Team


@pytest.mark.django_db
def test_ensure_admin_generates_a_password_once(monkeypatch, capsys):
    monkeypatch.delenv("QUANTDASH_ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("QUANTDASH_ADMIN_USER", "root-admin")
    call_command("ensure_admin")
    first = capsys.readouterr().out
    assert "Created admin 'root-admin' with password:" in first
    password = first.split("password:")[1].split()[0]
    from django.contrib.auth import authenticate

    user = authenticate(username="root-admin", password=password)
    assert user is not None and user.is_superuser
    assert Team.objects.get(name="default").members.filter(pk=user.pk).exists()

    call_command("ensure_admin")
    second = capsys.readouterr().out
    assert "password" not in second
    assert "is ready" in second


@pytest.mark.django_db
def test_ensure_admin_uses_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("QUANTDASH_ADMIN_USER", "ops")
    monkeypatch.setenv("QUANTDASH_ADMIN_PASSWORD", "s3cret-from-env")
    call_command("ensure_admin")
    from django.contrib.auth import authenticate

    assert authenticate(username="ops", password="s3cret-from-env") is not None
