"""Talking to a real uvicorn server from reliability tests: logged-in sessions, multipart uploads
sent by hand (so a test can time the answer from the body's last byte), the server's RSS."""

import http.client
import time
import uuid
from urllib.parse import urlsplit

from tests.runtime.http import CSRF, session_headers  # noqa: F401  (re-exported)


def multipart(fields: dict[str, str], files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f'{value}\r\n'.encode())
    for filename, data in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                     f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post_body(base_url: str, path: str, body: bytes, headers: dict) -> tuple[int, dict, bytes, float]:
    """POSTs `body`; returns (status, headers, content, seconds from the last byte sent to the
    status line)."""
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    connection.putrequest("POST", path)
    for name, value in {**headers, "Content-Length": str(len(body))}.items():
        connection.putheader(name, value)
    connection.endheaders()
    view = memoryview(body)
    for start in range(0, len(body), 1024**2):
        connection.send(view[start:start + 1024**2])
    sent = time.monotonic()
    response = connection.getresponse()
    took = time.monotonic() - sent
    content = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, content, took


def upload(base_url: str, user, team_id: int, files: list[tuple[str, bytes]], path: str = "/jobs/import/"):
    body, content_type = multipart({"source": "upload", "team": str(team_id), "name": ""}, files)
    return post_body(base_url, path, body, {**session_headers(user), "Content-Type": content_type,
                                           "Referer": base_url + path})
