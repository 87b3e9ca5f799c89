from django.urls import reverse


def test_team_home_shows_plan_contract_and_admins(admin_client, personas):
    response = admin_client.get(reverse("accounts:team-home", args=[personas.team.slug]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Standard" in body
    assert "Pat Primary" in body and "Sid Secondary" in body
