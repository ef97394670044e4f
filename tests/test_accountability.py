"""Personal, accountable operator accounts (R-SEC-1, R-SEC-3): every login, failed login, logout
and lockout is audited; django-axes locks an account out after repeated failures; only NIC
administrators grant roles and permissions, and every grant is audited with before and after;
every admin write is audited; a logged-out or disabled operator's websockets close within
seconds; audit records are kept ≥ 184 days and the purge refuses younger ones.

Real Django sessions, the real login view, the real ASGI application (in-process)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from dashboard.guard import REVOKED_CODE
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.asgi import application
from ops.audit import chain
from ops.audit.models import AuditChain, AuditRecord
from ops.audit.services import RetentionError, purge_before, record
from ops.registry.models import Building, Department

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "right-pass-9183"


def _op(username: str, role: Role, **kw):
    return create_or_update_operator(username=username, password=PASSWORD, role=role, **kw)


def _login(client: Client, username: str, password: str = PASSWORD, ip: str = "10.0.0.7"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def _audit(action: str, object_id: str | None = None):
    rows = AuditRecord.objects.filter(action=action)
    if object_id is not None:
        rows = rows.filter(object_id=object_id)
    return list(rows.order_by("id"))


# -- logins ----------------------------------------------------------------------------------


def test_login_logout_and_a_failed_login_are_audited_with_the_address():
    _op("guard1", Role.SECURITY)
    client = Client()
    assert _login(client, "guard1", "wrong-password").status_code == 200  # the form again
    assert _login(client, "guard1").status_code == 302
    client.post("/accounts/logout/", REMOTE_ADDR="10.0.0.7")

    (failed,) = _audit("auth.login_failed", "guard1")
    assert failed.actor is None and failed.data["ip"] == "10.0.0.7"
    (ok,) = _audit("auth.login", "guard1")
    assert ok.actor.username == "guard1" and ok.data["ip"] == "10.0.0.7"
    (out,) = _audit("auth.logout", "guard1")
    assert out.actor.username == "guard1"
    assert "password" not in str(failed.data) and PASSWORD not in str(AuditRecord.objects.all().values_list("data"))
    assert chain.verify().ok


def test_repeated_failures_lock_the_account_out_even_with_the_right_password():
    _op("guard2", Role.SECURITY)
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "guard2", "guess-guess-1")
    locked = _login(client, "guard2")  # the right password, too late
    assert locked.status_code == 429
    assert "账号已暂时锁定" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    assert _audit("auth.locked_out", "guard2")
    # the lock is per account and address: the operator at their own desk still gets in
    assert _login(Client(), "guard2", ip="10.0.0.99").status_code == 302


# -- grants ----------------------------------------------------------------------------------


def test_creating_an_operator_and_changing_their_role_is_audited_with_before_and_after():
    Department.objects.create(code="SAO", name="学生工作处")
    dorm = Building.objects.create(code="D3", name="3号楼", is_dorm=True)
    _op("mgr", Role.DORM_MANAGER, buildings=[dorm])
    (grant,) = _audit("permission.grant", "mgr")
    assert grant.data["role"] == {"from": None, "to": "dorm_manager"}
    assert grant.data["buildings"] == {"from": None, "to": ["D3"]}

    _op("mgr", Role.SECURITY)
    (change,) = _audit("permission.change", "mgr")
    assert change.data["role"] == {"from": "dorm_manager", "to": "security"}
    assert change.data["buildings"] == {"from": ["D3"], "to": []}


def test_only_nic_administrators_see_or_change_operator_accounts():
    nic = _op("nic-admin", Role.NIC)
    hr = _op("hr1", Role.HR)
    # even with every auth permission, a non-NIC account may not administer accounts
    from django.contrib.auth.models import Permission

    hr.user_permissions.set(Permission.objects.filter(content_type__app_label="auth"))
    hr_client, nic_client = Client(), Client()
    _login(hr_client, "hr1")
    _login(nic_client, "nic-admin")

    assert hr_client.get(f"/admin/auth/user/{nic.pk}/change/").status_code == 403
    assert hr_client.get("/admin/auth/user/").status_code == 403
    assert hr_client.get("/admin/auth/group/").status_code == 403
    assert nic_client.get("/admin/auth/user/").status_code == 200


def test_a_grant_through_the_admin_is_audited_and_a_nic_admin_cannot_make_a_superuser():
    _op("nic-admin", Role.NIC)
    target = _op("lib1", Role.LIBRARY)
    client = Client()
    _login(client, "nic-admin")
    page = client.get(f"/admin/auth/user/{target.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert "is_superuser" not in form.fields  # read-only for a NIC admin who is no superuser
    data = {
        "username": "lib1",
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "is_staff": "on",
        "is_superuser": "on",
        "groups": [Group.objects.get(name="role:library").pk],
        "last_login_0": "",
        "last_login_1": "",
        "date_joined_0": "2026-11-01",
        "date_joined_1": "08:00:00",
        "operator-TOTAL_FORMS": "1",
        "operator-INITIAL_FORMS": "1",
        "operator-MIN_NUM_FORMS": "0",
        "operator-MAX_NUM_FORMS": "1",
        "operator-0-id": target.operator.pk,
        "operator-0-user": target.pk,
        "operator-0-role": "finance",
        "operator-0-department": "",
    }
    response = client.post(f"/admin/auth/user/{target.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    target.refresh_from_db()
    assert not target.is_superuser and target.operator.role == "finance"
    (change,) = _audit("permission.change", "lib1")
    assert change.actor.username == "nic-admin"
    assert change.data == {"role": {"from": "library", "to": "finance"}}
    assert _audit("admin.change", str(target.pk))  # the admin's own log entry, too


def test_changing_a_groups_permissions_is_audited_with_what_was_added_and_removed():
    _op("nic-admin", Role.NIC)
    group = Group.objects.get(name="role:nic")
    from django.contrib.auth.models import Permission

    keep = list(group.permissions.values_list("pk", flat=True))[1:]
    added = Permission.objects.get(content_type__app_label="campus", codename="delete_device")
    client = Client()
    _login(client, "nic-admin")
    response = client.post(
        f"/admin/auth/group/{group.pk}/change/", {"name": group.name, "permissions": [*keep, added.pk]}
    )
    assert response.status_code == 302
    change = _audit("permission.group_change", "role:nic")[-1]
    assert change.actor.username == "nic-admin"
    assert change.data["added"] == ["campus.delete_device"] and len(change.data["removed"]) == 1


def test_an_admin_write_is_audited_in_the_same_transaction():
    _op("nic-admin", Role.NIC, is_superuser=True)
    client = Client()
    _login(client, "nic-admin")
    response = client.post("/admin/campus/department/add/", {"code": "CE", "name": "化工系"})
    assert response.status_code == 302
    (added,) = _audit("admin.add")
    assert added.actor.username == "nic-admin" and added.object_type == "department"


# -- websockets close when the right to see ends ---------------------------------------------

WS_PATH = "/live/gates/_dash-ws-callback"


def _session(client: Client) -> tuple[bytes, bytes]:
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode())


async def _closed_within(communicator: WebsocketCommunicator, seconds: float) -> int | None:
    """Wait for the guard's close; other messages from the page are skipped."""
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            message = await communicator.receive_output(timeout=left)
        except TimeoutError:
            return None
        if message["type"] == "websocket.close":
            return message.get("code")
    return None


@pytest.mark.parametrize("how", ["logout", "disable", "role"])
def test_an_operators_open_websocket_closes_within_seconds_when_their_right_ends(how, settings):
    settings.WS_RECHECK_S = 1
    user = _op("guard3", Role.SECURITY)
    client = Client()
    _login(client, "guard3")
    headers = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"), _session(client)]

    def end_right():
        if how == "logout":
            client.post("/accounts/logout/")
        elif how == "disable":
            get_user_model().objects.filter(pk=user.pk).update(is_active=False)
        else:
            _op("guard3", Role.LIBRARY)  # no longer a role that may watch the gates

    async def go():
        communicator = WebsocketCommunicator(application, WS_PATH, headers=headers)
        connected, _detail = await communicator.connect(timeout=10)
        assert connected
        still_open = await communicator.receive_nothing(timeout=2.5)  # allowed: stays open
        await asyncio.get_running_loop().run_in_executor(None, end_right)
        closed = await _closed_within(communicator, 6)
        await communicator.wait(timeout=10)
        return still_open, closed

    still_open, closed = async_to_sync(go)()
    assert still_open is True
    assert closed == REVOKED_CODE


def test_dash_pages_carry_the_security_headers():
    _op("guard4", Role.SECURITY)
    client = Client()
    _login(client, "guard4")

    async def go():
        communicator = HttpCommunicator(
            application, "GET", "/live/gates/", headers=[(b"host", b"127.0.0.1"), _session(client)]
        )
        return await communicator.get_response(timeout=20)

    response = async_to_sync(go)()
    headers = {k.lower(): v for k, v in response["headers"]}
    assert response["status"] == 200
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"x-frame-options"] == b"DENY"
    assert headers[b"referrer-policy"] == b"same-origin"


# -- retention -------------------------------------------------------------------------------


def _aged(days: int, n: int) -> list[int]:
    ids = [record(actor=None, action="card.issue", object_type="card", object_id=f"OLD{i}").pk for i in range(n)]
    AuditRecord.objects.filter(pk__in=ids).update(at=timezone.now() - timedelta(days=days))
    return ids


def _reseal_after_backdating() -> None:
    """Backdating rows in a test changes what was chained: re-chain them with the key (what
    the records would have been had they really been written then)."""
    from django.db import transaction

    from ops.audit.services import _head, _seal

    previous = chain.GENESIS
    for rec in AuditRecord.objects.order_by("id"):
        previous = chain.link(
            previous,
            chain.canonical(
                rec.at, rec.actor_id, rec.actor_name, rec.action, rec.object_type, rec.object_id, rec.basis, rec.data
            ),
        )
        AuditRecord.objects.filter(pk=rec.pk).update(mac=previous)
    with transaction.atomic():
        head = _head()
        head.last_mac = previous
        _seal(head)


def test_the_purge_refuses_records_younger_than_184_days():
    _aged(100, 3)
    _reseal_after_backdating()
    with pytest.raises(RetentionError, match="184"):
        purge_before(timezone.now() - timedelta(days=90))
    with pytest.raises(CommandError, match="184"):
        call_command("audit", "purge", "--older-than-days", "90")
    assert AuditRecord.objects.count() == 3 and chain.verify().ok


def test_purging_old_records_keeps_the_chain_verifiable_and_is_itself_audited():
    old = _aged(400, 4)
    young = _aged(10, 3)
    _reseal_after_backdating()
    call_command("audit", "purge")  # default: older than AUDIT_RETENTION_DAYS

    assert not AuditRecord.objects.filter(pk__in=old).exists()
    assert AuditRecord.objects.filter(pk__in=young).count() == 3
    (purge,) = _audit("audit.purge")
    assert purge.data["deleted"] == 4 and purge.data["anchor_id"] == old[-1]
    head = AuditChain.objects.get(pk=1)
    assert head.base_id == old[-1] and head.purged == 4 and head.count == 4
    verdict = chain.verify()
    assert verdict.ok and verdict.checked == 4

    # the anchor cannot be moved to hide records, nor a record slipped in before it
    AuditChain.objects.filter(pk=1).update(base_id=young[0])
    assert not chain.verify().ok
    AuditChain.objects.filter(pk=1).update(base_id=old[-1])
    assert chain.verify().ok
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditrecord (id, at, actor_name, action, object_type,"
            " object_id, basis, data, mac) SELECT %s, at, actor_name, action,"
            " object_type, object_id, basis, data, mac FROM audit_auditrecord"
            " WHERE id = %s",
            [old[0], young[0]],
        )
    verdict = chain.verify()
    assert not verdict.ok and verdict.broken_id == old[0]


def test_a_purge_refuses_a_chain_that_does_not_verify():
    old = _aged(400, 3)
    _reseal_after_backdating()
    AuditRecord.objects.filter(pk=old[1]).update(object_id="EDITED")
    with pytest.raises(RetentionError):
        purge_before(timezone.now() - timedelta(days=200))
    assert AuditRecord.objects.filter(pk__in=old).count() == 3
