"""After login every operator lands where their work is: a desk for the roles that watch live
traffic, otherwise a workbench listing exactly the places and record lists the role may open."""

from __future__ import annotations

import pytest

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator

pytestmark = pytest.mark.django_db


def _login(client, role: Role | None, username: str):
    user = create_or_update_operator(username=username, password="pw-bench-1234", role=role or Role.HR)
    if role is None:  # an account whose role was taken away
        user.operator.delete()
    client.post("/accounts/login/", {"username": username, "password": "pw-bench-1234"})


@pytest.mark.parametrize(
    ("role", "desk"), [(Role.SECURITY, "/live/gates/"), (Role.NIC, "/live/devices/"), (Role.GENERAL, "/live/cards/")]
)
def test_desk_roles_land_on_their_desk(client, role, desk):
    _login(client, role, f"u-{role.value}")
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == desk


def test_hr_gets_a_workbench_of_its_own_records(client):
    _login(client, Role.HR, "hr1")
    html = client.get("/").content.decode()
    assert 'href="/admin/campus/cardholder/"' in html  # HR looks up staff
    assert 'href="/admin/cards/importbatch/"' in html  # and imports the staff list
    assert 'href="/privacy/requests/"' in html
    for foreign in (
        "/live/gates/",
        "/live/devices/",
        "/admin/campus/card/",
        "/admin/cards/feecharge/",
        "/admin/auth/user/",
    ):
        assert f'href="{foreign}"' not in html
    assert "建设中" not in html


def test_the_leader_sees_the_personal_data_requests_and_no_admin(client):
    _login(client, Role.LEADER, "leader1")
    html = client.get("/").content.decode()
    assert 'href="/privacy/requests/"' in html and 'href="/admin/"' not in html


def test_an_account_without_a_role_is_told_to_ask_nic(client):
    _login(client, None, "norole")
    html = client.get("/").content.decode()
    assert "尚未分配角色" in html and 'id="places"' not in html
