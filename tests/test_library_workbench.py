"""Issue 18, Build 5: the Library's workbench — its readers, their faults, the SIP2 server's
traffic today. The library and NIC only (R-SEC-3); the library lands on it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from ops.accounts.models import Operator
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind, AlertStatus, Severity
from ops.alerts.models import Alert
from ops.library import traffic
from ops.registry.models import Department
from streams.cards import DeviceKind
from tests.browser import chromium, log_in
from tests.factories import make_device
from tests.sip2_client import SIP2Client, running_sip2

PASSWORD = "library-desk-pass-7"


@pytest.fixture
def library(campus):
    """The library department, its two readers (a library reader, and the entrance gate it owns)
    and another department's gate; one open fault and one resolved fault."""
    dept = Department.objects.create(code="LIB", name="图书馆")
    reader = make_device("L-1F-01", "图书馆一楼借阅台", DeviceKind.LIBRARY_READER, "图书馆一楼", dept)
    entrance = make_device("L-GATE", "图书馆入口闸机", DeviceKind.PEDESTRIAN_GATE, "图书馆入口", dept)
    now = timezone.now()
    Alert.objects.create(
        kind=AlertKind.UPLOAD_STOPPED, severity=Severity.CRITICAL, subject=reader.code, device=reader, first_at=now,
        last_at=now,
    )  # fmt: skip
    Alert.objects.create(
        kind=AlertKind.DEVICE_FAULT, severity=Severity.WARNING, subject=entrance.code, device=entrance, first_at=now,
        last_at=now, status=AlertStatus.RESOLVED,
    )  # fmt: skip
    create_or_update_operator(username="lib1", password=PASSWORD, role=Role.LIBRARY, department=dept)
    return {"dept": dept, "reader": reader, "entrance": entrance}


def _client(username: str, role: Role | None = None) -> Client:
    if role is not None:
        create_or_update_operator(username=username, password=PASSWORD, role=role)
    c = Client()
    c.force_login(User.objects.get(username=username))
    return c


@pytest.mark.django_db
def test_the_library_lands_on_its_workbench_with_its_readers_faults_and_traffic(library, redis_client):
    counter = traffic.Counter(redis_client)
    counter.count("login_ok")
    counter.count("patron_status", "refused")
    counter.count("patron_status", "valid")
    c = _client("lib1")
    assert c.get("/")["Location"] == "/library/"
    page = c.get("/library/")
    assert page.status_code == 200 and page["Cache-Control"] == "private, no-store"
    readers = {d.code: d for d in page.context["readers"]}
    assert set(readers) == {"L-1F-01", "L-GATE"}  # not the campus's own gates
    assert readers["L-1F-01"].open_faults == 1 and readers["L-GATE"].open_faults == 0
    assert [a.device.code for a in page.context["faults"]] == ["L-1F-01"]  # the resolved one is gone
    counts = {kind: n for kind, _label, n in page.context["traffic"]}
    assert counts["patron_status"] == 2 and counts["login_ok"] == 1 and counts["refused"] == 1
    html = page.content.decode()
    assert "图书馆工作台" in html and "SIP2 接口今日流量" in html and "L-1F-01" in html
    assert 'data-kind="patron_status"><td>读者状态查询（23）</td><td class="num count">2</td>' in html


@pytest.mark.django_db
def test_only_the_library_and_nic_open_the_workbench(library):
    assert Client().get("/library/")["Location"].startswith("/accounts/login/")
    assert _client("nic1", Role.NIC).get("/library/").status_code == 200
    for role in (Role.SECURITY, Role.DORM_MANAGER, Role.FINANCE, Role.LEADER, Role.GENERAL):
        assert _client(f"op-{role.value}", role).get("/library/").status_code == 403, role
    # an operator with no role yet (an SSO newcomer) has no rights at all
    create_or_update_operator(username="newcomer", password=PASSWORD, role=Role.LIBRARY)
    Operator.objects.filter(user__username="newcomer").update(role="")
    assert _client("newcomer").get("/library/").status_code == 403


@pytest.mark.browser
@pytest.mark.slow
def test_the_librarian_sees_the_sip2_traffic_of_a_real_client(campus, library, stack, subprocess_env, tmp_path):
    """A circulation system checks two patrons over SIP2 (one refused); the librarian logs in and
    finds those requests counted on the workbench, in Chinese, and in English when chosen."""
    with running_sip2(subprocess_env, tmp_path / "sip2.log") as port:
        sc = SIP2Client(port)
        try:
            assert sc.login().fixed == "1"
            assert sc.patron_status(campus.cards[0].uid).field("BL") == "Y"
            assert sc.patron_information(campus.cards[1].holder.number).field("BL") == "Y"
            assert sc.patron_status("NO-SUCH-CARD").field("BL") == "N"
        finally:
            sc.close()
    with chromium() as browser:
        page = browser.new_page()
        log_in(page, stack, "lib1", PASSWORD, "/library/")
        row = "#library-sip2 tr[data-kind='{}'] .count"
        assert page.inner_text(row.format("login_ok")) == "1"
        assert page.inner_text(row.format("patron_status")) == "2"
        assert page.inner_text(row.format("patron_information")) == "1"
        assert page.inner_text(row.format("unknown_patron")) == "1"
        assert page.inner_text("#library-readers tr[data-code='L-1F-01'] .open-faults") == "1"
        faults = page.inner_text("#library-faults")
        assert "L-1F-01" in faults and str(AlertKind.UPLOAD_STOPPED.label) in faults and "L-GATE" not in faults
        page.select_option("header select[name=language]", "en")
        page.wait_for_selector("text=SIP2 traffic today")
        assert "Patron status (23)" in page.inner_text("#library-sip2")
