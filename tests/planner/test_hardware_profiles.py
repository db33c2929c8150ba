"""Custom hardware profiles a team saves: validation, use in a plan, team scoping."""

import pytest

from planner.models import HardwareProfile
from planner.presentation import human_bytes

pytestmark = pytest.mark.django_db
GOOD = {"name": "Lab 3090 box", "kind": "gpu", "memory_gb": "24", "bandwidth_gbs": "936", "tflops": "71",
        "ram_gb": "128"}


def test_save_and_plan_with_a_team_profile(client, teams):
    client.force_login(teams["alice"])
    r = client.post("/planner/hardware/", {**GOOD, "team": teams["red"].pk})
    profile = HardwareProfile.objects.get()
    assert r.status_code == 302 and r["Location"] == f"/planner/?hardware=team:{profile.pk}"
    assert profile.team == teams["red"] and profile.created_by == teams["alice"]
    html = client.get(r["Location"]).content.decode()
    assert 'id="plan-hardware">Lab 3090 box' in html
    assert f"capacity <span id=\"plan-capacity\">{human_bytes(int(24 * 2**30 * 0.95))}</span>" in html
    api = client.get("/api/planner/hardware").json()["hardware"]
    assert {"key": f"team:{profile.pk}", "team": "red"}.items() <= next(h for h in api if h.get("id") == profile.pk).items()


def test_other_team_cannot_see_use_or_delete_it(client, teams):
    client.force_login(teams["alice"])
    client.post("/planner/hardware/", {**GOOD, "team": teams["red"].pk}, follow=True)  # shows the message
    profile = HardwareProfile.objects.get()
    client.force_login(teams["bob"])
    assert client.get(f"/planner/?hardware=team:{profile.pk}").status_code == 404
    assert client.get(f"/api/planner/estimate?hardware=team:{profile.pk}").status_code == 404
    assert "Lab 3090 box" not in client.get("/planner/").content.decode()
    assert all(h.get("id") != profile.pk for h in client.get("/api/planner/hardware").json()["hardware"])
    assert client.post(f"/planner/hardware/{profile.pk}/delete").status_code == 404
    assert client.post("/planner/hardware/", {**GOOD, "team": teams["red"].pk}).status_code == 302
    assert HardwareProfile.objects.count() == 1  # bob could not save into red
    client.force_login(teams["carol"])
    assert client.post(f"/planner/hardware/{profile.pk}/delete").status_code == 302
    assert not HardwareProfile.objects.exists()


@pytest.mark.parametrize("change, field", [({"memory_gb": "-1"}, "memory_gb"), ({"tflops": "x"}, "tflops"),
                                           ({"name": ""}, "name"), ({"kind": "toaster"}, "kind")])
def test_bad_profile_is_an_error_naming_the_field(client, teams, change, field):
    client.force_login(teams["alice"])
    r = client.post("/planner/hardware/", {**GOOD, **change, "team": teams["red"].pk}, follow=True)
    assert r.status_code == 200 and f"{field}: " in r.content.decode()
    assert not HardwareProfile.objects.exists()


def test_duplicate_name_in_a_team(client, teams):
    client.force_login(teams["alice"])
    client.post("/planner/hardware/", {**GOOD, "team": teams["red"].pk})
    r = client.post("/planner/hardware/", {**GOOD, "team": teams["red"].pk}, follow=True)
    assert "name: team red already has a profile" in r.content.decode()
