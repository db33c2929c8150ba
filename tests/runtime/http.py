"""Talking to the real uvicorn server from tests: a logged-in session, POSTs whose responses we
read as they stream, and server-sent events parsed one at a time."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

CSRF = "t" * 32  # any 32-character secret works when the cookie and the header agree


def session_headers(user) -> dict[str, str]:
    """Cookie + CSRF headers of a logged-in browser session for `user`."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    session = client.cookies["sessionid"].value
    return {"Cookie": f"sessionid={session}; csrftoken={CSRF}", "X-CSRFToken": CSRF}


def post(base_url: str, path: str, body: dict, headers: dict | None = None,
         timeout: float = 60) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """Sends the POST and returns once the status line is in; the body is left to read."""
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    connection.request("POST", path, body=json.dumps(body),
                       headers={"Content-Type": "application/json", **(headers or {})})
    return connection, connection.getresponse()


def sse_events(response: http.client.HTTPResponse) -> Iterator[tuple[float, dict | str]]:
    """(arrival time, data) per event, as each arrives; data is JSON-decoded unless [DONE]."""
    for raw in response:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("data: "):
            data = line[6:]
            yield time.monotonic(), (data if data == "[DONE]" else json.loads(data))
