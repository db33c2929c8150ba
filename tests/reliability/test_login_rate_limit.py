"""Scenario 15: repeated failed logins are rate-limited (accounts.backends.RateLimitedModelBackend)
on the real server. (`check --deploy` with production settings is tests/quantdash/test_deploy_check.py.)"""

import time
import urllib.parse

import pytest
import redis
from django.conf import settings

from tests.reliability.conftest import record
from tests.reliability.web import CSRF, post_body
from tests.support.fixtures import PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_15_failed_logins_are_rate_limited(teams, web, redis_server):
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
        client = redis.Redis.from_url(redis_server.url)
        [key] = client.scan_iter("quantdash:*login-failures:*")  # alice's; bob has none
        lockout_ttl = client.ttl(key)
        assert 0 < lockout_ttl <= settings.LOGIN_LOCKOUT_SECONDS, lockout_ttl
    finally:
        client = redis.Redis.from_url(redis_server.url)
        for key in client.scan_iter("quantdash:*login-failures:*"):
            client.delete(key)
    record(15, "login rate limit", "the 5th failed login and 6/6 attempts after it (the right "
           f"password included) answered 429; lockout key's TTL read back from Redis {lockout_ttl} s "
           f"(configuration: LOGIN_LOCKOUT_SECONDS={settings.LOGIN_LOCKOUT_SECONDS}); another user "
           "unaffected")
