"""Password authentication with a failed-login limit, for every login form (ours and the
admin's): after LOGIN_FAILURE_LIMIT failures for one username from one address, that pair is
refused — even with the right password — until LOGIN_LOCKOUT_SECONDS pass without a new failure."""

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from accounts.services import login_blocked, login_failure_record, login_failures_clear


def client_address(request) -> str:
    return (request.META.get("REMOTE_ADDR") or "") if request is not None else ""


class RateLimitedModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None or username is None:  # not a login form (e.g. a shell): no limit
            return super().authenticate(request, username=username, password=password, **kwargs)
        address = client_address(request)
        if login_blocked(username=username, address=address):
            raise PermissionDenied("too many failed logins")  # stops authenticate() here
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            login_failure_record(username=username, address=address)
        else:
            login_failures_clear(username=username, address=address)
        return user
