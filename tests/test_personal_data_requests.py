"""Personal-data queries (R-SEC-2, R-SEC-1): request → leader approves → NIC reviews → the
requester views the unmasked data under a time-limited grant scoped to the request → the grant
expires; without a grant the answer is an audited refusal. Services, API and the server-rendered
pages (Django test client); the real-browser run is tests/test_personal_data_browser.py."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import FileResponse
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ops.accounts.models import Operator
from ops.accounts.roles import Role
from ops.audit.models import AuditRecord
from ops.personal_data import basis_store, services
from ops.personal_data.choices import RequestStatus
from ops.personal_data.models import PersonalDataRequest
from ops.personal_data.services import GrantError, GrantForbidden, PersonalDataRefused
from ops.registry.choices import REASONS, HolderKind
from ops.registry.models import AccessEvent, Cardholder, Department, Device
from streams.cards import DeviceKind
from streams.reasons import Decision, Direction, Reason

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
CITIZEN_ID = "44050720070301123X"
PHONE = "13812345678"
# the audit trail of the whole path (API or pages): a view refused before any grant, then the
# request filed, approved, reviewed and the data viewed
REFUSED_THEN_GRANTED_AND_VIEWED = [
    "personal_data.refused",
    "personal_data.file",
    "personal_data.approve",
    "personal_data.review",
    "personal_data.view",
]


# -- helpers -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _var_dir(tmp_path, monkeypatch):
    """Basis files go to this test's own var directory."""
    monkeypatch.setenv("CAMPUSCARD_VAR_DIR", str(tmp_path / "var"))


def _user(username: str, role: Role | None, department: Department | None = None) -> Any:
    user = get_user_model().objects.create_user(username=username, password="pw-123456789")
    if role is not None:
        Operator.objects.create(user=user, role=role, department=department)
    return user


@pytest.fixture
def people() -> dict[str, Any]:
    dept = Department.objects.create(code="CS", name="计算机系")
    other = Department.objects.create(code="HRD", name="人事处")
    holders = [
        Cardholder.objects.create(
            kind=HolderKind.STUDENT,
            number=f"2025CS{i:05d}",
            name=f"李小{i}明",
            department=dept,
            citizen_id=CITIZEN_ID[:-2] + f"{i:02d}",
            phone=PHONE[:-1] + str(i),
            class_name="计科2501",
        )
        for i in range(3)
    ]
    return {
        "dept": dept,
        "other": other,
        "holders": holders,
        "clerk": _user("clerk", Role.GENERAL, dept),  # files requests
        "leader": _user("leader", Role.LEADER),  # the school's responsible leader
        "nic": _user("nic", Role.NIC),  # reviews
        "hr": _user("hr", Role.HR, other),  # an operator with no say
        "nobody": _user("nobody", None),  # an account with no role
    }


def _file(
    p: dict[str, Any],
    holders: list[Cardholder] | None = None,
    by: Any = None,
    data: bytes = PDF,
    name: str = "申请函.pdf",
) -> PersonalDataRequest:
    holders = holders if holders is not None else p["holders"][:2]
    return services.file_request(
        by=by or p["clerk"],
        purpose="审计核查：校园卡异常消费",
        numbers="\n".join(h.number for h in holders),
        basis_name=name,
        basis_data=data,
    )


def _granted(p: dict[str, Any], **kw: Any) -> PersonalDataRequest:
    req = _file(p, **kw)
    services.approve(req.pk, by=p["leader"], comment="同意")
    return services.review(req.pk, by=p["nic"])


def _expire(req: PersonalDataRequest) -> None:
    """Move past the end of the grant (the clock, not a job, ends it)."""
    PersonalDataRequest.objects.filter(pk=req.pk).update(valid_until=timezone.now() - timedelta(seconds=1))


def _actions(**filters: Any) -> list[str]:
    return list(
        AuditRecord.objects.filter(action__startswith="personal_data.", **filters)
        .order_by("id")
        .values_list("action", flat=True)
    )


def _api(user: Any) -> APIClient:
    client = APIClient()
    token, _created = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def _browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


# -- the whole path (services) -----------------------------------------------------------------


def test_request_approve_review_view_expire_and_refuse(people):
    p = people
    holder = p["holders"][0]
    req = _file(p)
    assert req.status == RequestStatus.FILED and req.basis_type == "application/pdf"
    basis = basis_store.path_for(req.basis_sha256, req.basis_type)
    assert basis is not None and basis.read_bytes() == PDF
    with pytest.raises(PersonalDataRefused) as refused:  # filed, not yet approved/reviewed
        services.view_personal_data(p["clerk"], holder)
    assert refused.value.reason == "pending"

    req = services.approve(req.pk, by=p["leader"], comment="同意查询")
    assert (req.status, req.approver, req.approver_comment) == (RequestStatus.APPROVED, p["leader"], "同意查询")
    assert services.active_grant(p["clerk"], holder) is None  # approval alone grants nothing

    before = timezone.now()
    req = services.review(req.pk, by=p["nic"], comment="已核对书面依据")
    assert req.status == RequestStatus.REVIEWED and req.reviewer == p["nic"]
    hours = services.default_hours()
    assert hours == 24
    assert req.valid_until is not None
    assert before + timedelta(hours=hours) <= req.valid_until <= timezone.now() + timedelta(hours=hours)
    assert services.active_grant(p["clerk"], holder) == req

    data = services.view_personal_data(p["clerk"], holder)
    assert (data.citizen_id, data.phone, data.name, data.number) == (
        holder.citizen_id,
        holder.phone,
        holder.name,
        holder.number,
    )
    assert data.request_id == req.pk

    _expire(req)
    assert services.active_grant(p["clerk"], holder) is None  # expiry is the clock alone
    with pytest.raises(PersonalDataRefused) as refused:
        services.view_personal_data(p["clerk"], holder)
    assert refused.value.reason == "expired"
    assert "过期" in str(refused.value.args[0])
    req.refresh_from_db()
    assert req.status == RequestStatus.EXPIRED  # marked lazily, once

    steps = list(
        AuditRecord.objects.filter(action__startswith="personal_data.")
        .order_by("id")
        .values_list("action", "actor_name", "object_type", "basis")
    )
    ref = f"personal_data_request:{req.pk}"
    assert steps == [
        ("personal_data.file", "clerk", "personal_data_request", ref),
        ("personal_data.refused", "clerk", "cardholder", ref),
        ("personal_data.approve", "leader", "personal_data_request", ref),
        ("personal_data.review", "nic", "personal_data_request", ref),
        ("personal_data.view", "clerk", "cardholder", ref),
        ("personal_data.expire", "system", "personal_data_request", ref),
        ("personal_data.refused", "clerk", "cardholder", ref),
    ]
    view = AuditRecord.objects.get(action="personal_data.view")
    assert view.object_id == str(holder.pk) and view.data["request"] == req.pk
    assert CITIZEN_ID[:6] not in str(view.data)  # the audit names, never copies
    assert AuditRecord.objects.filter(action="personal_data.refused").latest("id").data["reason"] == "expired"


def test_a_refusal_without_any_grant_is_audited(people):
    holder = people["holders"][2]
    with pytest.raises(PersonalDataRefused) as refused:
        services.view_personal_data(people["hr"], holder.pk)
    assert refused.value.reason == "no_grant"
    assert "分管领导审批" in str(refused.value.args[0])
    rec = AuditRecord.objects.get(action="personal_data.refused")
    assert (rec.actor_name, rec.object_type, rec.object_id, rec.data["reason"]) == (
        "hr",
        "cardholder",
        str(holder.pk),
        "no_grant",
    )
    # a person who does not exist answers the same (no hint either way), and is audited too
    with pytest.raises(PersonalDataRefused):
        services.view_personal_data(people["hr"], 999_999)
    assert AuditRecord.objects.filter(action="personal_data.refused").count() == 2


def test_the_grant_covers_only_the_persons_and_the_requester_it_names(people):
    p = people
    _granted(p, holders=p["holders"][:1])
    inside, outside = p["holders"][0], p["holders"][1]
    services.view_personal_data(p["clerk"], inside)
    with pytest.raises(PersonalDataRefused) as refused:
        services.view_personal_data(p["clerk"], outside)
    assert refused.value.reason == "not_in_scope"
    for someone_else in (p["leader"], p["nic"], p["hr"]):  # the grant is the clerk's
        with pytest.raises(PersonalDataRefused):
            services.view_personal_data(someone_else, inside)
    assert _actions().count("personal_data.refused") == 4
    assert _actions().count("personal_data.view") == 1


# -- who may take which step -------------------------------------------------------------------


def test_only_the_leader_approves_and_never_their_own_request(people):
    p = people
    req = _file(p)
    for wrong in (p["nic"], p["hr"], p["clerk"], p["nobody"]):
        with pytest.raises(GrantForbidden):
            services.approve(req.pk, by=wrong)
    own = _file(p, by=p["leader"])
    with pytest.raises(GrantForbidden, match="自己"):
        services.approve(own.pk, by=p["leader"])
    req.refresh_from_db()
    own.refresh_from_db()
    assert req.status == own.status == RequestStatus.FILED
    assert "personal_data.approve" not in _actions()


def test_a_departmental_leader_approves_only_their_departments_requests(people):
    p = people
    hr_leader = _user("hr-leader", Role.LEADER, p["other"])
    cs_leader = _user("cs-leader", Role.LEADER, p["dept"])
    req = _file(p)  # the clerk is in 计算机系
    assert req not in services.pending_approvals(hr_leader)
    assert req in services.pending_approvals(cs_leader) and req in services.pending_approvals(p["leader"])
    with pytest.raises(GrantForbidden, match="分管部门"):
        services.approve(req.pk, by=hr_leader)
    assert services.approve(req.pk, by=cs_leader).status == RequestStatus.APPROVED


def test_only_nic_reviews_only_after_approval_and_never_their_own(people):
    p = people
    req = _file(p)
    with pytest.raises(GrantError, match="审批"):  # NIC, but not approved yet
        services.review(req.pk, by=p["nic"])
    services.approve(req.pk, by=p["leader"])
    for wrong in (p["leader"], p["hr"], p["clerk"]):
        with pytest.raises(GrantForbidden):
            services.review(req.pk, by=wrong)
    own = _file(p, by=p["nic"])
    services.approve(own.pk, by=p["leader"])
    with pytest.raises(GrantForbidden, match="自己"):
        services.review(own.pk, by=p["nic"])
    for bad_hours in (0, 7 * 24 + 1, "abc"):
        with pytest.raises(GrantError):
            services.review(req.pk, by=p["nic"], hours=bad_hours)
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED and req.valid_until is None
    req = services.review(req.pk, by=p["nic"], hours=7 * 24)  # the longest a grant may last
    assert req.valid_until is not None and req.reviewed_at is not None
    assert req.valid_until - req.reviewed_at == timedelta(days=7)
    with pytest.raises(GrantError):  # once only
        services.review(req.pk, by=p["nic"])


def test_rejections_and_revocation_are_audited_and_end_access(people):
    p = people
    rejected = _file(p)
    with pytest.raises(GrantError, match="理由"):
        services.reject(rejected.pk, by=p["leader"], comment="  ")
    services.reject(rejected.pk, by=p["leader"], comment="依据不足")
    refused_at_review = _file(p)
    services.approve(refused_at_review.pk, by=p["leader"])
    with pytest.raises(GrantForbidden):
        services.reject(refused_at_review.pk, by=p["leader"], comment="改主意")  # NIC's stage now
    services.reject(refused_at_review.pk, by=p["nic"], comment="目的与依据不符")
    with pytest.raises(PersonalDataRefused) as refused:
        services.view_personal_data(p["clerk"], p["holders"][0])
    assert refused.value.reason == "rejected"

    granted = _granted(p)
    services.view_personal_data(p["clerk"], p["holders"][0])
    with pytest.raises(GrantForbidden):
        services.revoke(granted.pk, by=p["leader"], reason="x")
    services.revoke(granted.pk, by=p["nic"], reason="查询已完成")
    with pytest.raises(PersonalDataRefused) as refused:
        services.view_personal_data(p["clerk"], p["holders"][0])
    assert refused.value.reason == "revoked"
    with pytest.raises(GrantError):
        services.revoke(granted.pk, by=p["nic"], reason="again")
    rejects = AuditRecord.objects.filter(action="personal_data.reject").order_by("id")
    assert [r.data["stage"] for r in rejects] == ["approval", "review"]
    revoke = AuditRecord.objects.get(action="personal_data.revoke")
    assert (revoke.actor_name, revoke.data["reason"], revoke.data["previous"]) == ("nic", "查询已完成", "reviewed")


# -- bad input changes nothing -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("申请函.exe", b"MZ\x90\x00" + b"\x00" * 100, "PDF"),
        ("申请函.pdf", b"just some text pretending", "PDF"),  # the name lies: content decides
        ("申请函.png", PDF, "PDF"),  # a PDF named .png
        ("申请函.pdf", b"", "上传"),
        ("申请函.pdf", b"%PDF-" + b"0" * basis_store.MAX_BYTES, "10 MB"),
    ],
)
def test_a_bad_basis_file_is_refused_and_nothing_is_created(people, name, data, message):
    with pytest.raises(GrantError, match=message):
        _file(people, data=data, name=name)
    assert PersonalDataRequest.objects.count() == 0
    assert _actions() == []
    assert not any(basis_store.basis_dir().rglob("*.*"))


def test_other_bad_input_is_refused_and_nothing_is_created(people):
    p = people
    cases = [
        dict(purpose=" ", numbers=p["holders"][0].number, match="目的"),
        dict(purpose="核查", numbers=" \n ", match="学工号"),
        dict(purpose="核查", numbers=f"{p['holders'][0].number},2099XX00001", match="2099XX00001"),
    ]
    for case in cases:
        with pytest.raises(GrantError, match=case["match"]):
            services.file_request(
                by=p["clerk"], purpose=case["purpose"], numbers=case["numbers"], basis_name="a.pdf", basis_data=PDF
            )
    with pytest.raises(GrantForbidden):
        services.file_request(
            by=p["nobody"], purpose="核查", numbers=p["holders"][0].number, basis_name="a.pdf", basis_data=PDF
        )
    assert PersonalDataRequest.objects.count() == 0 and _actions() == []


def test_png_scans_and_number_lists_in_any_separator_are_accepted(people):
    p = people
    numbers = "、".join(h.number for h in p["holders"]) + f"，{p['holders'][0].number}"
    req = services.file_request(by=p["clerk"], purpose="核查", numbers=numbers, basis_name="scan.PNG", basis_data=PNG)
    assert req.basis_type == "image/png" and req.cardholders.count() == 3


# -- the API -----------------------------------------------------------------------------------


def test_the_whole_path_over_the_api(people):
    p = people
    holder = p["holders"][1]
    clerk, leader, nic = _api(p["clerk"]), _api(p["leader"]), _api(p["nic"])
    response = clerk.get(f"/api/v1/privacy/holders/{holder.pk}/")
    assert response.status_code == 403 and "分管领导审批" in response.json()["detail"]
    assert response.json()["reason"] == "no_grant"

    upload = SimpleUploadedFile("申请函.pdf", PDF, content_type="application/pdf")
    response = clerk.post(
        "/api/v1/privacy/requests/",
        {"purpose": "纪检监督核查", "numbers": f"{holder.number}\n{p['holders'][2].number}", "basis": upload},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    pk = body["id"]
    assert body["status"] == "filed" and body["numbers"] == sorted([holder.number, p["holders"][2].number])
    assert body["basis"]["content_type"] == "application/pdf" and body["basis"]["size"] == len(PDF)

    assert clerk.post(f"/api/v1/privacy/requests/{pk}/approve/", {}, format="json").status_code == 403
    response = nic.post(f"/api/v1/privacy/requests/{pk}/review/", {}, format="json")
    assert response.status_code == 400 and "审批" in response.json()["detail"]
    response = leader.post(f"/api/v1/privacy/requests/{pk}/approve/", {"comment": "同意"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "approved"
    response = leader.post(f"/api/v1/privacy/requests/{pk}/review/", {}, format="json")
    assert response.status_code == 403 and "网信中心" in response.json()["detail"]
    response = nic.post(f"/api/v1/privacy/requests/{pk}/review/", {"hours": 2}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "reviewed" and response.json()["active"] is True

    response = clerk.get(f"/api/v1/privacy/holders/{holder.pk}/")
    assert response.status_code == 200
    data = response.json()
    assert (data["citizen_id"], data["phone"], data["name"], data["request_id"]) == (
        holder.citizen_id,
        holder.phone,
        holder.name,
        pk,
    )
    assert response["Cache-Control"] == "private, no-store"
    assert _api(p["hr"]).get(f"/api/v1/privacy/holders/{holder.pk}/").status_code == 403
    assert clerk.get(f"/api/v1/privacy/holders/{p['holders'][0].pk}/").status_code == 403  # not named

    _expire(PersonalDataRequest.objects.get(pk=pk))
    response = clerk.get(f"/api/v1/privacy/holders/{holder.pk}/")
    assert response.status_code == 403 and response.json()["reason"] == "expired"
    response = clerk.get(f"/api/v1/privacy/requests/{pk}/")
    assert response.status_code == 200 and response.json()["status"] == "expired"
    assert response.json()["active"] is False

    assert _actions() == [
        *REFUSED_THEN_GRANTED_AND_VIEWED,
        "personal_data.refused",
        "personal_data.refused",
        "personal_data.expire",
        "personal_data.refused",
    ]


def test_the_api_refuses_bad_files_and_roles_with_clear_errors(people):
    p = people
    clerk = _api(p["clerk"])
    response = clerk.post(
        "/api/v1/privacy/requests/",
        {
            "purpose": "核查",
            "numbers": p["holders"][0].number,
            "basis": SimpleUploadedFile("virus.exe", b"MZ\x90\x00", content_type="application/x-msdownload"),
        },
        format="multipart",
    )
    assert response.status_code == 400 and "PDF" in response.json()["detail"]
    response = clerk.post(
        "/api/v1/privacy/requests/", {"purpose": "核查", "numbers": p["holders"][0].number}, format="multipart"
    )
    assert response.status_code == 400 and "书面依据" in response.json()["detail"]
    assert (
        _api(p["nobody"])
        .post(
            "/api/v1/privacy/requests/",
            {"purpose": "核查", "numbers": p["holders"][0].number, "basis": SimpleUploadedFile("a.pdf", PDF)},
            format="multipart",
        )
        .status_code
        == 403
    )
    assert PersonalDataRequest.objects.count() == 0 and _actions() == []
    assert APIClient().get(f"/api/v1/privacy/holders/{p['holders'][0].pk}/").status_code == 401

    req = _file(p)
    assert _api(p["hr"]).get(f"/api/v1/privacy/requests/{req.pk}/").status_code == 404
    assert _api(p["hr"]).post(f"/api/v1/privacy/requests/{req.pk}/approve/").status_code == 403
    assert _api(p["leader"]).post("/api/v1/privacy/requests/999999/approve/").status_code == 404
    response = _api(p["leader"]).post(f"/api/v1/privacy/requests/{req.pk}/reject/", {}, format="json")
    assert response.status_code == 400 and "理由" in response.json()["detail"]


# -- the pages (server side; the real browser run is in test_personal_data_browser.py) ---------


def test_the_pages_take_a_request_through_and_refuse_with_403(people):
    p = people
    holder = p["holders"][0]
    clerk, leader, nic = _browser(p["clerk"]), _browser(p["leader"]), _browser(p["nic"])

    response = clerk.get(f"/privacy/holders/{holder.pk}/")
    assert response.status_code == 403 and 'id="refusal"' in response.content.decode()
    assert CITIZEN_ID[:6] not in response.content.decode()

    response = clerk.post(
        "/privacy/requests/new/",
        {"purpose": "审计核查", "numbers": holder.number, "basis": SimpleUploadedFile("申请函.txt", b"hello")},
    )
    assert response.status_code == 400 and 'id="form-error"' in response.content.decode()
    assert PersonalDataRequest.objects.count() == 0

    response = clerk.post(
        "/privacy/requests/new/",
        {"purpose": "审计核查", "numbers": holder.number, "basis": SimpleUploadedFile("申请函.pdf", PDF)},
    )
    req = PersonalDataRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/privacy/requests/{req.pk}/"

    assert f'id="approval-{req.pk}"' in leader.get("/privacy/requests/").content.decode()
    page = leader.get(f"/privacy/requests/{req.pk}/").content.decode()
    assert 'id="approve-submit"' in page and 'id="review-submit"' not in page
    assert holder.name not in page  # the leader sees the name masked
    assert 'id="approve-submit"' not in clerk.get(f"/privacy/requests/{req.pk}/").content.decode()
    leader.post(f"/privacy/requests/{req.pk}/approve/", {"comment": "同意"})

    assert f'id="review-{req.pk}"' in nic.get("/privacy/requests/").content.decode()
    nic.post(f"/privacy/requests/{req.pk}/review/", {"hours": "1"})
    req.refresh_from_db()
    assert req.status == RequestStatus.REVIEWED

    page = clerk.get(f"/privacy/requests/{req.pk}/").content.decode()
    assert f'id="holder-link-{holder.pk}"' in page
    response = clerk.get(f"/privacy/holders/{holder.pk}/")
    assert response.status_code == 200 and holder.citizen_id in response.content.decode()
    assert response["Cache-Control"] == "private, no-store"

    _expire(req)
    response = clerk.get(f"/privacy/holders/{holder.pk}/")
    assert response.status_code == 403 and 'data-reason="expired"' in response.content.decode()

    assert _browser(p["hr"]).get(f"/privacy/requests/{req.pk}/").status_code == 404
    assert _browser(p["nobody"]).get("/privacy/requests/").status_code == 403
    assert Client().get("/privacy/requests/").status_code == 302  # to the login page
    assert _actions() == [
        *REFUSED_THEN_GRANTED_AND_VIEWED,
        "personal_data.expire",
        "personal_data.refused",
    ]


def test_the_basis_file_is_for_those_who_handle_the_request_and_is_audited(people):
    p = people
    req = _file(p)
    response = _browser(p["leader"]).get(f"/privacy/requests/{req.pk}/basis/")
    assert isinstance(response, FileResponse)
    assert response.status_code == 200 and b"".join(response.streaming_content) == PDF
    assert response["Cache-Control"] == "private, no-store"
    assert "attachment" in response["Content-Disposition"]
    assert _browser(p["hr"]).get(f"/privacy/requests/{req.pk}/basis/").status_code == 404
    assert _actions(action="personal_data.basis_view") == ["personal_data.basis_view"]


# -- a person's passages (R-SEC-2: where somebody went is personal data) ------------------------


def _passages_of(holder: Cardholder) -> list[Any]:
    """Taps of ``holder``: two in September 2026 (campus time), one on 1 October 00:30 campus
    time (= 30 September 16:30 UTC: it belongs to October), and one of somebody else."""
    dept = holder.department
    gate = Device.objects.create(
        code="G-E-01", name="东门人行1号闸", kind=DeviceKind.PEDESTRIAN_GATE, location="东门", owner=dept
    )
    other = Cardholder.objects.create(kind=HolderKind.STUDENT, number="2025CS99999", name="王五", department=dept)
    shanghai = ZoneInfo("Asia/Shanghai")
    made = []
    for who, when, decision, reason in [
        (holder, datetime(2026, 9, 3, 8, 0, tzinfo=shanghai), Decision.ALLOW, Reason.OK),
        (holder, datetime(2026, 9, 30, 23, 50, tzinfo=shanghai), Decision.DENY, Reason.LOST),
        (holder, datetime(2026, 10, 1, 0, 30, tzinfo=shanghai), Decision.ALLOW, Reason.OK),
        (other, datetime(2026, 9, 5, 9, 0, tzinfo=shanghai), Decision.ALLOW, Reason.OK),
    ]:
        made.append(
            AccessEvent.objects.create(
                event_id=uuid.uuid4(),
                device=gate,
                card_uid="A0000001",
                holder=who,
                occurred_at=when,
                direction=Direction.IN,
                decision=decision,
                reason=reason,
            )
        )
    return made


def test_passages_of_a_month_only_under_a_grant_and_audited(people):
    p = people
    holder = p["holders"][0]
    taps = _passages_of(holder)
    with pytest.raises(PersonalDataRefused) as refused:  # no grant yet
        services.view_passages(p["clerk"], holder, "2026-09")
    assert refused.value.reason == "no_grant"
    req = _granted(p, holders=[holder])

    seen = services.view_passages(p["clerk"], holder.pk, "2026-09")
    assert [r["id"] for r in seen.rows] == [str(taps[0].event_id), str(taps[1].event_id)]  # the month, in order
    assert (seen.number, seen.month, seen.request_id, seen.truncated) == (holder.number, "2026-09", req.pk, False)
    assert seen.rows[1]["decision"] == Decision.DENY and seen.rows[1]["device"] == "G-E-01"
    assert seen.rows[1]["reason_label"] == REASONS.label(Reason.LOST)
    assert [r["id"] for r in services.view_passages(p["clerk"], holder, "2026-10").rows] == [str(taps[2].event_id)]

    audit = AuditRecord.objects.filter(action="personal_data.passages").order_by("id")
    assert [(a.actor_name, a.object_id, a.basis, a.data["month"], a.data["rows"]) for a in audit] == [
        ("clerk", str(holder.pk), f"personal_data_request:{req.pk}", "2026-09", 2),
        ("clerk", str(holder.pk), f"personal_data_request:{req.pk}", "2026-10", 1),
    ]
    for someone_else in (p["leader"], p["nic"], p["hr"]):  # the grant is the clerk's alone
        with pytest.raises(PersonalDataRefused):
            services.view_passages(someone_else, holder, "2026-09")
    with pytest.raises(PersonalDataRefused) as refused:  # a person the grant does not name
        services.view_passages(p["clerk"], p["holders"][1], "2026-09")
    assert refused.value.reason == "not_in_scope"
    _expire(req)
    with pytest.raises(PersonalDataRefused) as refused:
        services.view_passages(p["clerk"], holder, "2026-09")
    assert refused.value.reason == "expired"
    assert _actions().count("personal_data.refused") == 6
    assert _actions().count("personal_data.passages") == 2


@pytest.mark.parametrize("month", ["2026-13", "2026-9", "26-09", "septembre", "1999-12", "2026-00"])
def test_a_malformed_month_is_refused_before_anything_is_read_or_audited(people, month):
    p = people
    _granted(p, holders=p["holders"][:1])
    before = AuditRecord.objects.count()
    with pytest.raises(GrantError) as error:
        services.view_passages(p["clerk"], p["holders"][0], month)
    assert "YYYY-MM" in error.value.messages[0]
    assert AuditRecord.objects.count() == before


def test_passages_default_to_this_month(people):
    p = people
    holder = p["holders"][0]
    _granted(p, holders=[holder])
    now = timezone.localtime()
    assert services.view_passages(p["clerk"], holder).month == f"{now.year:04d}-{now.month:02d}"


def test_passages_over_the_api_and_the_pages(people):
    p = people
    holder = p["holders"][0]
    taps = _passages_of(holder)
    url = f"/api/v1/privacy/holders/{holder.pk}/passages/?month=2026-09"
    refused = _api(p["clerk"]).get(url)
    assert refused.status_code == 403 and refused.json()["reason"] == "no_grant"
    _granted(p, holders=[holder])
    response = _api(p["clerk"]).get(url)
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
    body = response.json()
    assert [r["id"] for r in body["rows"]] == [str(taps[0].event_id), str(taps[1].event_id)]
    assert body["rows"][0]["at"].startswith("2026-09-03T00:00:00")  # 08:00 campus time, in UTC
    bad = _api(p["clerk"]).get(f"/api/v1/privacy/holders/{holder.pk}/passages/?month=2026-13")
    assert bad.status_code == 400 and "YYYY-MM" in bad.json()["detail"]
    assert _api(p["hr"]).get(url).status_code == 403

    page = _browser(p["clerk"]).get(f"/privacy/holders/{holder.pk}/passages/?month=2026-09")
    assert (page.status_code, page["Cache-Control"]) == (200, "private, no-store")
    html = page.content.decode()
    assert html.count("<tr><td>2026-09-") == 2 and holder.name in html
    assert (
        f"/privacy/holders/{holder.pk}/passages/"
        in _browser(p["clerk"]).get(f"/privacy/holders/{holder.pk}/").content.decode()
    )
    assert _browser(p["clerk"]).get(f"/privacy/holders/{holder.pk}/passages/?month=x").status_code == 400
    assert _browser(p["hr"]).get(f"/privacy/holders/{holder.pk}/passages/?month=2026-09").status_code == 403
    assert _actions().count("personal_data.passages") == 2
