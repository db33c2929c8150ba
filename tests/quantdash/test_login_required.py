import pytest

PAGES = ["/", "/planner/", "/catalog/", "/jobs/", "/playground/", "/admin/"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
def test_every_page_redirects_anonymous_users_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


@pytest.mark.django_db
def test_login_page_is_public(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"Log in to quantdash" in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES[:-1])
def test_pages_render_for_a_logged_in_member(client, teams, url):
    client.force_login(teams["alice"])
    response = client.get(url)
    assert response.status_code == 200
    for section in (b"Planner", b"Catalog", b"Jobs", b"Playground"):
        assert section in response.content
