import hashlib
import logging
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction

from accounts.models import Team

DEFAULT_TEAM = "default"
logger = logging.getLogger(__name__)


def team_get_or_create(*, name: str) -> Team:
    team, _ = Team.objects.get_or_create(name=name)
    return team


@transaction.atomic
def admin_ensure(*, username: str, email: str = "", password: str = "") -> tuple[object, str | None]:
    """Creates the first admin if missing and puts it in the default team.

    Returns (user, generated_password). The password is generated (and returned, to be printed
    once) only when the user is new and none was given; an existing user is left as it is.
    """
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    generated = None
    if user is None:
        if not password:
            password = generated = secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username=username, email=email, password=password)
    team_get_or_create(name=DEFAULT_TEAM).members.add(user)
    return user, generated


# --- failed-login rate limit (accounts.backends.RateLimitedModelBackend) ----------------------
def _login_key(username: str, address: str) -> str:
    raw = f"{username.strip().lower()}\0{address}".encode()
    return "login-failures:" + hashlib.sha256(raw).hexdigest()


def login_failures(*, username: str, address: str) -> int:
    """Failed logins for this username from this address within LOGIN_LOCKOUT_SECONDS. A cache
    outage counts as none: a Redis restart must not lock every user out."""
    try:
        return int(cache.get(_login_key(username, address), 0))
    except Exception:
        logger.warning("login rate limit: cache unavailable", exc_info=True)
        return 0


def login_blocked(*, username: str, address: str) -> bool:
    return login_failures(username=username, address=address) >= settings.LOGIN_FAILURE_LIMIT


def login_failure_record(*, username: str, address: str) -> None:
    key = _login_key(username, address)
    try:
        cache.add(key, 0, timeout=settings.LOGIN_LOCKOUT_SECONDS)
        cache.incr(key)
        cache.touch(key, timeout=settings.LOGIN_LOCKOUT_SECONDS)
    except Exception:
        logger.warning("login rate limit: cache unavailable", exc_info=True)


def login_failures_clear(*, username: str, address: str) -> None:
    try:
        cache.delete(_login_key(username, address))
    except Exception:
        logger.warning("login rate limit: cache unavailable", exc_info=True)
