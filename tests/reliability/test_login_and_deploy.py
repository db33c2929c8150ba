"""Scenario 15: production settings pass `check --deploy`, and repeated failed logins are
rate-limited (accounts.backends.RateLimitedModelBackend) on the real server."""

import subprocess
import sys
import time
import urllib.parse

import pytest
import redis

from tests.reliability.conftest import record
from tests.reliability.web import CSRF, post_body
from tests.support.fixtures import PASSWORD
from tests.support.processes import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_15_check_deploy_is_clean_and_failed_logins_are_rate_limited(teams, web, redis_server):
    env = {"DEBUG": "0", "ALLOWED_HOSTS": "quantdash.example.com", "PATH": "/usr/bin:/bin",
           "SECRET_KEY": "k8#2vL!q9zT4mP0xR7wY1nB6cJ3hF5gD8sA0eU2iO4uK6lZ9-Xq7wE3rT5yU8iO1pA4sD6f"}
    check = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level",
                            "WARNING"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and "no issues" in check.stdout, check.stdout + check.stderr

    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    for name in ("alice", "bob"):  # hashed as the server (default hashers) checks them
        teams[name].password = PBKDF2PasswordHasher().encode(PASSWORD, "reliability15")
        teams[name].save()

    def login(password: str) -> tuple[int, bytes, float]:
        body = urllib.parse.urlencode({"username": "alice", "password": password}).encode()
        started = time.monotonic()
        status, _h, content, _t = post_body(web, "/login/", body, {
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={CSRF}",
            "X-CSRFToken": CSRF, "Referer": web + "/login/"})
        return status, content, time.monotonic() - started

    try:
        statuses = [login("wrong")[0] for _ in range(5)]
        assert statuses == [200] * 4 + [429]  # the form with its error; the 5th locks
        blocked = [login("wrong") for _ in range(5)] + [login(PASSWORD)]
        assert [s for s, _c, _t in blocked] == [429] * 6, "even the right password is refused"
        assert b"Too many failed logins" in blocked[-1][1]
        # bob, from the same address, is not affected
        body = urllib.parse.urlencode({"username": "bob", "password": PASSWORD}).encode()
        status, headers, _c, _t = post_body(web, "/login/", body, {
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={CSRF}",
            "X-CSRFToken": CSRF, "Referer": web + "/login/"})
        assert status == 302 and "sessionid" in headers.get("set-cookie", "")
    finally:
        client = redis.Redis.from_url(redis_server.url)
        for key in client.scan_iter("quantdash:*login-failures:*"):
            client.delete(key)
    record(15, "deploy check + login rate limit", "check --deploy with DEBUG=0: no issues; the 5th failed login "
           "and 6/6 attempts after it (the right password included) answered 429 for 15 min; "
           "another user unaffected")
