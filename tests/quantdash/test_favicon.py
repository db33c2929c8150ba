"""/favicon.ico is served to anyone (browsers ask for it on every page), and pages link an icon."""

import pytest


@pytest.mark.django_db
def test_favicon_is_an_icon_not_a_404_or_a_login_redirect(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    body = b"".join(response.streaming_content)
    assert body[:4] == b"\x00\x00\x01\x00"  # ICONDIR: reserved 0, type 1 (icon)


@pytest.mark.django_db
def test_pages_link_their_icon(client):
    html = client.get("/login/").content.decode()
    assert 'rel="icon" href="/static/favicon.svg"' in html and 'rel="icon" href="/favicon.ico"' in html
