import os
import subprocess
import sys

from tests.support.processes import ROOT


def _check(env_overrides: dict) -> subprocess.CompletedProcess:
    dropped = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_check_deploy_passes_with_production_settings():
    result = _check({
        "DEBUG": "0",
        "SECRET_KEY": "k8#2vL!q9zT4mP0xR7wY1nB6cJ3hF5gD8sA0eU2iO4uK6lZ9-Xq7wE3rT5yU8iO1pA4sD6f",
        "ALLOWED_HOSTS": "quantdash.example.com",
    })
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_with_development_defaults():
    result = _check({"DEBUG": "1"})
    assert result.returncode != 0
    assert "DEBUG" in result.stdout + result.stderr


def test_production_refuses_to_start_without_secret_key():
    result = _check({"DEBUG": "0", "ALLOWED_HOSTS": "x.example"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
