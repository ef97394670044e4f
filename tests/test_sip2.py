"""Issue 18, Build 5 (R-CARD-2, R-CARD-7): the library's SIP2 server, run as it is deployed — a
real `campuscard sip2` process on the test database and Redis — driven over TCP by a SIP2 client
written here from the 3M spec (its own checksum, its own parsing: not the server's library).

Acceptance: "valid" for an active card, "invalid/lost" for a lost one, a refusal of privileges
for a temporary card; with the login, checksums and sequence numbers, bad checksums, unknown
patrons and requests before a login."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from ops.audit.models import AuditRecord
from ops.library import traffic
from ops.registry.choices import HolderKind
from ops.registry.models import Card, Cardholder, Department
from streams.cards import CardStatus, CardType
from tests.browser import free_port
from tests.conftest import campuscard_cmd
from tests.sip2_client import LOGIN, PASSWORD, SIP2Client, running_sip2, sip2_now

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def patrons(campus):
    """An active student card (the campus's), a lost one, a temporary card, an expired, a
    cancelled and a blacklisted one."""
    now = timezone.now()
    active, lost, blacklisted = campus.cards[0], campus.cards[1], campus.cards[2]
    Card.objects.filter(pk=lost.pk).update(status=CardStatus.LOST)
    Card.objects.filter(pk=blacklisted.pk).update(blacklisted=True)
    general = Department.objects.create(code="GEN", name="总务处")

    def holder(number: str, kind: str = HolderKind.CONTRACTOR) -> Cardholder:
        return Cardholder.objects.create(kind=kind, number=number, name="李四", department=general)

    temporary = Card.objects.create(
        uid="T0000001",
        holder=holder("2026WB0001"),
        card_type=CardType.TEMPORARY,
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=30),
        owner_department=general,
        approving_department=general,
    )
    expired = Card.objects.create(
        uid="E0000001",
        holder=holder("2026WB0002"),
        card_type=CardType.TEMPORARY,
        valid_from=now - timedelta(days=30),
        valid_until=now - timedelta(days=1),
        owner_department=general,
        approving_department=general,
    )
    cancelled = Card.objects.create(
        uid="C0000001",
        holder=holder("2020CS00009", HolderKind.STUDENT),
        card_type=CardType.STUDENT,
        status=CardStatus.CANCELLED,
        valid_from=now - timedelta(days=900),
    )
    return {
        "active": active,
        "lost": lost,
        "blacklisted": blacklisted,
        "temporary": temporary,
        "expired": expired,
        "cancelled": cancelled,
    }


@pytest.fixture
def sip2_port(patrons, redis_client, subprocess_env, tmp_path):
    with running_sip2(subprocess_env, tmp_path / "sip2.log") as port:
        yield port


@pytest.fixture
def client(sip2_port):
    sc = SIP2Client(sip2_port)
    try:
        yield sc
    finally:
        sc.close()


def _counts(redis_client) -> dict[str, int]:
    return {kind: count for kind, _label, count in traffic.today(redis_client)}


def test_active_card_is_a_valid_patron_who_may_borrow(client, patrons, redis_client):
    assert client.login().fixed == "1"
    for identifier in (patrons["active"].uid, patrons["active"].uid.lower(), patrons["active"].holder.number):
        reply = client.patron_status(identifier)
        assert reply.command == "24"
        assert reply.fixed[:14] == " " * 14  # no privilege denied, not lost
        assert reply.field("BL") == "Y"
        assert reply.field("AA") == identifier
        assert reply.field("AO") == "CAMPUSLIB"
        # R-SEC-2: the name is masked by default (SIP2_PERSONAL_NAME=full sends it whole)
        assert reply.field("AE") == "张*0"
        assert reply.field("AF") == "校园卡有效，可以借阅"
    counts = _counts(redis_client)
    assert counts["login_ok"] == 1 and counts["patron_status"] == 3 and counts["valid"] == 3
    login = AuditRecord.objects.get(action="library.sip2_login")
    assert login.object_id == LOGIN and login.actor_name.startswith("sip2@127.0.0.1:")


def test_lost_card_is_an_invalid_patron_reported_lost(client, patrons):
    client.login()
    for identifier in (patrons["lost"].uid, patrons["lost"].holder.number):
        reply = client.patron_status(identifier)
        assert reply.field("BL") == "N"
        flags = reply.fixed[:14]
        assert flags[:4] == "YYYY", "charge, renewal, recall and hold privileges denied"
        assert flags[4] == "Y", "card reported lost"
        assert reply.field("AF") == "校园卡已挂失，不能借阅"


def test_temporary_card_is_valid_but_refused_every_privilege(client, patrons, redis_client):
    """R-CARD-7: temporary cards get campus-administration functions only — no library."""
    client.login()
    reply = client.patron_status(patrons["temporary"].uid)
    assert reply.field("BL") == "Y"
    assert reply.fixed[:4] == "YYYY" and reply.fixed[4] == " "
    assert "临时卡" in reply.field("AF") and "不能借阅" in reply.field("AF")
    info = client.patron_information(patrons["temporary"].holder.number)
    assert info.command == "64" and info.field("BL") == "Y" and info.fixed[:4] == "YYYY"
    assert _counts(redis_client)["refused"] == 2


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("expired", "校园卡已过期，不能借阅"),
        ("cancelled", "校园卡已注销，不能借阅"),
        ("blacklisted", "校园卡已被列入黑名单，不能借阅"),
    ],
)
def test_cards_not_in_force_are_invalid_patrons(client, patrons, which, message):
    client.login()
    reply = client.patron_status(patrons[which].uid)
    assert reply.field("BL") == "N" and reply.fixed[:4] == "YYYY" and reply.fixed[4] == " "
    assert reply.field("AF") == message


def test_patron_information_answers_in_english_for_language_001(client, patrons):
    client.login()
    reply = client.patron_information(patrons["active"].holder.number, language="001")
    assert reply.command == "64"
    assert reply.fixed[:14] == " " * 14 and reply.fixed[14:17] == "001"
    assert reply.field("BL") == "Y" and reply.field("AE") == "张*0"
    assert reply.field("AF") == "Campus card valid: may borrow"
    lost = client.patron_information(patrons["lost"].uid, language="001")
    assert lost.field("BL") == "N" and lost.field("AF") == "Campus card reported lost: may not borrow"


def test_unknown_patron_is_invalid_with_no_name(client, patrons, redis_client):
    client.login()
    for identifier in ("FFFFFFFF", "x" * 200):
        reply = client.patron_status(identifier)
        assert reply.field("BL") == "N" and reply.fixed[:4] == "YYYY"
        assert reply.field("AE") == ""
        assert reply.field("AF") == "一卡通系统中没有此读者（卡号或学工号）"
    assert _counts(redis_client)["unknown_patron"] == 2


def test_bad_checksum_asks_for_a_resend_and_the_resent_message_is_answered(client, patrons, redis_client):
    client.login()
    good = client.frame(f"23019{sip2_now()}AOCAMPUSLIB|AA{patrons['active'].uid}|AC|AD|")
    damaged = good[:-5] + (b"0000" if good[-5:-1] != b"0000" else b"0001") + b"\r"
    reply = client.send(damaged)
    assert reply is not None and reply.command == "96" and reply.raw.startswith(b"96AZ")  # checksummed itself
    resent = client.send(good)
    assert resent is not None and resent.command == "24" and resent.field("BL") == "Y"
    # a flipped byte in the body is caught the same way
    other = client.frame(f"23019{sip2_now()}AOCAMPUSLIB|AA{patrons['lost'].uid}|AC|AD|")
    flipped = other.replace(patrons["lost"].uid.encode(), patrons["active"].uid.encode())
    answer = client.send(flipped)
    assert answer is not None and answer.command == "96"
    assert _counts(redis_client)["resend"] == 2


def test_sc_status_reports_what_the_server_answers(client):
    client.login()
    reply = client.request("9900302.00")
    assert reply.command == "98"
    assert reply.fixed[0] == "Y"  # on line
    assert reply.field("AO") == "CAMPUSCARD"
    bx = reply.field("BX")
    assert bx[0] == "Y" and bx[7] == "Y" and bx[6] == "Y"  # patron status, patron information, login
    assert bx[1] == "N" and bx[2] == "N"  # no checkout, no checkin: the card system lends nothing


def test_no_request_is_answered_before_a_login(sip2_port, patrons, redis_client):
    sc = SIP2Client(sip2_port)
    try:
        reply = sc.patron_status(patrons["active"].uid)
        assert reply.command == "94" and reply.fixed == "0"
        assert "AE" not in reply.fields and "BL" not in reply.fields  # nothing about the patron
        assert sc.receive() is None, "the connection is closed"
    finally:
        sc.close()
    assert _counts(redis_client)["not_logged_in"] == 1


@pytest.mark.parametrize(
    ("user", "password"), [(LOGIN, "wrong-password"), ("LIB-SC99", PASSWORD), ("LIB-SC02", PASSWORD)]
)
def test_a_failed_login_is_refused_audited_and_the_connection_closed(sip2_port, redis_client, user, password):
    sc = SIP2Client(sip2_port)
    try:
        assert sc.login(user, password).fixed == "0"
        assert sc.receive() is None, "the connection is closed"
    finally:
        sc.close()
    failed = AuditRecord.objects.get(action="library.sip2_login_failed")
    assert failed.object_id == user and failed.data["location"] == "LIB-1F"
    assert not AuditRecord.objects.filter(action="library.sip2_login").exists()
    assert _counts(redis_client)["login_failed"] == 1


def test_a_client_without_error_detection_is_answered_in_kind(sip2_port, patrons):
    """SIP2_ERROR_DETECTION=auto (the default): plain messages get plain answers."""
    sc = SIP2Client(sip2_port)
    try:
        login = sc.send(f"9300CN{LOGIN}|CO{PASSWORD}|\r".encode())
        assert login is not None and login.fixed == "1" and b"AZ" not in login.raw
        reply = sc.send(f"23019{sip2_now()}AOCAMPUSLIB|AA{patrons['temporary'].uid}|AC|AD|\r".encode())
        assert reply is not None and reply.field("BL") == "Y" and "AY" not in reply.fields
        assert b"AZ" not in reply.raw
    finally:
        sc.close()


@pytest.mark.parametrize(
    ("accounts", "says"),
    [
        ("", "SIP2_ACCOUNTS is empty"),
        ("LIB-SC01:short", "a password of at least 8 characters"),
        ("LIB-SC01", "each account is name:password"),
    ],
)
def test_the_server_does_not_start_without_a_sound_login(accounts, says):
    """No account, or a malformed one: `campuscard sip2` refuses to start and says why."""
    env = dict(os.environ, SIP2_ACCOUNTS=accounts, SIP2_PORT=str(free_port()))
    result = subprocess.run(campuscard_cmd("sip2"), env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert says in result.stderr, result.stderr[-2000:]


def test_a_failed_login_on_a_logged_in_connection_ends_it(client, patrons):
    assert client.login().fixed == "1"
    assert client.patron_status(patrons["active"].uid).field("BL") == "Y"
    assert client.login(LOGIN, "not-the-password").fixed == "0"
    assert client.receive() is None, "the connection is closed"
