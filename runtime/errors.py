"""The one exception type the runtime app's services raise; views turn it into a 4xx/5xx."""

from __future__ import annotations


class RuntimeRequestError(Exception):
    def __init__(self, message: str, *, status: int = 400, code: str = "invalid_request",
                 param: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.message, self.status, self.code = message, status, code
        self.param, self.retry_after = param, retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


def runtime_unavailable() -> RuntimeRequestError:
    return RuntimeRequestError("the runtime server is unavailable; it is being restarted, try "
                               "again in a few seconds", status=503, code="runtime_unavailable",
                               retry_after=5)
