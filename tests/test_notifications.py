"""Alert notifications (issue 16; R-OPS-3): routing rules send an alert's message, in Chinese
with its link, to e-mail (a real SMTP server, aiosmtpd), WeCom and DingTalk group robots and a
generic webhook (a local HTTP receiver that checks each robot's documented payload and
DingTalk's signature); a storm of one group is one message; a robot never gets more than 20
messages in any minute; an unacknowledged alert reaches the next level after the rule's delay;
an acknowledgement stops notifications and its lapse starts them again; every attempt is on the
alert's page. Time is a clock the tests move (no sleeps)."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from aiosmtpd.controller import Controller
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from ops.accounts.models import Operator
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind, AlertStatus, ChannelKind, DeliveryStatus, GroupBy, NotificationStatus
from ops.alerts.models import (
    Alert,
    DeliveryAttempt,
    DutyRoster,
    DutyShift,
    Notification,
    NotificationChannel,
    RoutingRule,
)
from ops.alerts.notifications import services as notifications
from ops.alerts.notifications.ratelimit import RateLimiter
from ops.alerts.services import acknowledge, raise_alert
from ops.audit.models import AuditRecord

pytestmark = pytest.mark.django_db

SITE = "https://card.example.edu.cn"
WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DING_TOKEN = "a1b2c3d4e5"
DING_SECRET = "SECd2f1e0c3b4a5968778695a4b3c2d1e0f"
HOOK_SECRET = "hook-secret-for-the-sms-gateway"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- a real SMTP server ------------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((sorted(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp(settings) -> Iterator[Inbox]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"  # pytest-django swaps in locmem
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.DEFAULT_FROM_EMAIL = "campuscard@example.edu.cn"
    try:
        yield inbox
    finally:
        controller.stop()


# -- a local receiver that checks what each robot documents -----------------------------------


@dataclass
class Received:
    path: str
    query: dict[str, str]
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    base: str
    received: list[Received] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fail_next: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (HTTP status, JSON reply)

    def of(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


def _check_wecom(query: dict[str, str], body: dict[str, Any]) -> list[str]:
    problems = []
    if query.get("key") != WECOM_KEY:
        problems.append(f"wecom: wrong key {query.get('key')!r}")
    if set(body) != {"msgtype", "markdown"} or body.get("msgtype") != "markdown":
        problems.append(f"wecom: not a markdown message: {sorted(body)}")
    content = body.get("markdown", {}).get("content")
    if not isinstance(content, str) or not content or len(content.encode()) > 4096:
        problems.append("wecom: markdown.content must be a string of at most 4096 bytes")
    return problems


def _check_dingtalk(query: dict[str, str], body: dict[str, Any]) -> list[str]:
    problems = []
    if query.get("access_token") != DING_TOKEN:
        problems.append("dingtalk: wrong access_token")
    timestamp = int(query.get("timestamp", "0"))
    if abs(timestamp - time.time() * 1000) > 3600_000:  # DingTalk refuses a timestamp an hour off
        problems.append(f"dingtalk: timestamp {timestamp} is more than an hour from now")
    expected = base64.b64encode(
        hmac.new(DING_SECRET.encode(), f"{timestamp}\n{DING_SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    if not hmac.compare_digest(query.get("sign", ""), expected):
        problems.append("dingtalk: sign does not verify")
    markdown = body.get("markdown", {})
    if body.get("msgtype") != "markdown" or not (
        isinstance(markdown.get("title"), str) and isinstance(markdown.get("text"), str) and markdown["text"]
    ):
        problems.append("dingtalk: not a markdown message with a title and a text")
    return problems


def _check_hook(headers: dict[str, str], raw: bytes) -> list[str]:
    expected = "sha256=" + hmac.new(HOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    given = headers.get("x-campuscard-signature", "")
    return [] if hmac.compare_digest(given, expected) else ["webhook: X-Campuscard-Signature does not verify"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = _free_port()
    state = Receiver(base=f"http://127.0.0.1:{port}")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            body = json.loads(raw)
            with lock:
                if state.fail_next:
                    status, reply = state.fail_next.pop(0)
                    self._reply(status, reply)
                    return
                problems = {
                    "/cgi-bin/webhook/send": lambda: _check_wecom(query, body),
                    "/robot/send": lambda: _check_dingtalk(query, body),
                    "/hook": lambda: _check_hook(headers, raw),
                }[parts.path]()
                if "application/json" not in headers.get("content-type", ""):
                    problems.append(f"{parts.path}: Content-Type {headers.get('content-type')}")
                state.problems += problems
                if problems:  # what the robots answer a bad signature or payload with
                    self._reply(200, {"errcode": 310000, "errmsg": "; ".join(problems)})
                    return
                state.received.append(Received(parts.path, query, body, raw, headers))
            self._reply(200, {"errcode": 0, "errmsg": "ok"})

        def _reply(self, status: int, reply: dict[str, Any]) -> None:
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# -- the system's side -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = timezone.now().replace(microsecond=0)
        self.start = self.now

    def at(self, seconds: float) -> datetime:
        self.now = self.start + timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(redis_client) -> RateLimiter:
    return RateLimiter(redis_client)


@pytest.fixture(autouse=True)
def site(settings) -> None:
    settings.SITE_URL = SITE
    settings.NOTIFY_RETRY_BASE_S = 10
    settings.NOTIFY_MAX_ATTEMPTS = 5


def _operator(username: str, role: Role, email_address: str = "", full_name: str = "") -> Any:
    user = get_user_model().objects.create_user(username=username, email=email_address, first_name=full_name)
    Operator.objects.create(user=user, role=role)
    return user


def _channel(kind: ChannelKind, receiver: Receiver | None = None, **extra: Any) -> NotificationChannel:
    values: dict[str, Any] = {"name": f"{kind.value}-{NotificationChannel.objects.count()}", "kind": kind}
    base = receiver.base if receiver else ""
    if kind == ChannelKind.WECOM:
        values.update(address=f"{base}/cgi-bin/webhook/send", token=WECOM_KEY)
    elif kind == ChannelKind.DINGTALK:
        values.update(address=f"{base}/robot/send", token=DING_TOKEN, secret=DING_SECRET)
    elif kind == ChannelKind.WEBHOOK:
        values.update(address=f"{base}/hook", secret=HOOK_SECRET, rate_per_minute=0)
    values.update(extra)
    channel = NotificationChannel(**values)
    channel.full_clean()
    channel.save()
    return channel


def _rule(name: str, channels: list[NotificationChannel], **extra: Any) -> RoutingRule:
    operators, rosters = extra.pop("operators", []), extra.pop("rosters", [])
    rule = RoutingRule.objects.create(name=name, **extra)
    rule.channels.set(channels)
    rule.operators.set(operators)
    rule.rosters.set(rosters)
    return rule


def _raise(kind: AlertKind, subject: str, at: datetime, device: Any) -> Alert:
    raise_alert(kind=kind, subject=subject, at=at, device_id=device.pk)
    return Alert.objects.exclude(status=AlertStatus.RESOLVED).get(kind=kind, subject=subject)


def _tick(clock: Clock, seconds: float, limiter: RateLimiter) -> dict[str, int]:
    return dict(notifications.run(now=clock.at(seconds), limiter=limiter))


def _link(alert: Alert) -> str:
    return f"{SITE}/alerts/{alert.pk}/"


# -- acceptance 1: e-mail and the robots, in their documented formats ---------------------------


def test_an_alert_reaches_the_smtp_server_and_each_robot_in_its_documented_format(
    campus, smtp, receiver, clock, limiter
):
    nic = _operator("nic-wang", Role.NIC, "wang@example.edu.cn", "王工")
    mail = _channel(ChannelKind.EMAIL, address="nic-duty@example.edu.cn")
    wecom, ding, hook = (_channel(k, receiver) for k in (ChannelKind.WECOM, ChannelKind.DINGTALK, ChannelKind.WEBHOOK))
    _rule("设备告警·首次", [mail, wecom, ding, hook], operators=[nic], group_window_s=60)

    alert = _raise(AlertKind.UPLOAD_STOPPED, "D1-01", clock.at(0), campus.dorm_door)
    assert _tick(clock, 0, limiter)["routed"] == 4
    assert not smtp.messages and not receiver.received  # the group window is still open
    assert _tick(clock, 60, limiter)["sent"] == 4

    # e-mail: to the rule's operator and the channel's own address, in Chinese, with the link
    [(to, message)] = smtp.messages
    assert to == ["nic-duty@example.edu.cn", "wang@example.edu.cn"]
    assert message["From"] == "campuscard@example.edu.cn"
    assert "设备停止上传" in message["Subject"] and "D1-01" in message["Subject"]
    text = message.get_content()  # the text part
    assert _link(alert) in text and "1号学生公寓" in text and "王工" in text

    # the robots and the webhook: the receiver verified key, token, DingTalk's signature and
    # timestamp, the payload shapes and the webhook's HMAC
    assert receiver.problems == []
    [wecom_msg] = receiver.of("/cgi-bin/webhook/send")
    assert _link(alert) in wecom_msg.body["markdown"]["content"]
    assert "设备停止上传" in wecom_msg.body["markdown"]["content"]
    [ding_msg] = receiver.of("/robot/send")
    assert "设备停止上传" in ding_msg.body["markdown"]["title"] and _link(alert) in ding_msg.body["markdown"]["text"]
    [hook_msg] = receiver.of("/hook")
    assert hook_msg.body["type"] == "campuscard.alert_notification"
    assert [a["url"] for a in hook_msg.body["alerts"]] == [_link(alert)]
    assert hook_msg.body["recipients"] == [{"username": "nic-wang", "name": "王工", "email": "wang@example.edu.cn"}]

    assert sorted(DeliveryAttempt.objects.values_list("status", flat=True)) == [DeliveryStatus.SENT] * 4
    assert _tick(clock, 600, limiter).get("sent", 0) == 0  # told once; nothing repeats


def test_a_bad_signature_is_refused_by_the_receiver_and_logged_as_a_permanent_failure(campus, receiver, clock, limiter):
    """The receiver really checks the signature: the wrong secret is refused (errcode 310000)
    and the system does not keep retrying what cannot succeed."""
    ding = _channel(ChannelKind.DINGTALK, receiver, secret="SECthe-wrong-secret")
    _rule("wrong secret", [ding], group_window_s=0)
    _raise(AlertKind.TAMPER, "D1-01", clock.at(0), campus.dorm_door)
    assert _tick(clock, 0, limiter)["failed"] == 1
    assert receiver.problems == ["dingtalk: sign does not verify"]
    [attempt] = DeliveryAttempt.objects.all()
    assert attempt.status == DeliveryStatus.FAILED and "310000" in attempt.error
    assert _tick(clock, 3600, limiter).get("failed", 0) == 0 and DeliveryAttempt.objects.count() == 1


# -- acceptance 2: 50 alerts of one group in one minute make one message ------------------------


def test_fifty_alerts_of_one_group_in_one_minute_make_one_message(campus, receiver, clock, limiter):
    ding = _channel(ChannelKind.DINGTALK, receiver)
    _rule("黑名单", [ding], group_by=GroupBy.KIND_BUILDING, group_window_s=60)
    alerts = []
    for i in range(50):  # one every 1.2 s: all within the minute
        at = i * 1.2
        alerts.append(_raise(AlertKind.BLACKLIST_HIT, f"B{i:06d}", clock.at(at), campus.dorm_door))
        _tick(clock, at, limiter)
    assert receiver.received == []  # still collecting
    assert _tick(clock, 60, limiter)["sent"] == 1
    [message] = receiver.of("/robot/send")
    text = message.body["markdown"]["text"]
    assert "50 条" in message.body["markdown"]["title"]
    assert "另有 45 条" in text  # the first five listed, the rest counted
    assert [_link(a) in text for a in alerts[:6]] == [True] * 5 + [False]
    assert Notification.objects.get().items.count() == 50

    # the next alert of that group, after the window, is the next group's message
    late = _raise(AlertKind.BLACKLIST_HIT, "B-LATE", clock.at(61), campus.dorm_door)
    _tick(clock, 61, limiter)
    _tick(clock, 121, limiter)
    assert len(receiver.of("/robot/send")) == 2
    assert _link(late) in receiver.of("/robot/send")[1].body["markdown"]["text"]
    assert receiver.problems == []


# -- acceptance 3: a robot never gets more than its 20 messages a minute -------------------------


def _most_in_any_minute(stamps_ms: list[int]) -> int:
    return max(sum(1 for t in stamps_ms if s <= t < s + 60_000) for s in stamps_ms)


def test_a_robot_never_gets_more_than_20_messages_in_any_minute_even_from_two_supervisors(
    campus, receiver, clock, limiter, settings
):
    ding = _channel(ChannelKind.DINGTALK, receiver)
    _rule("每条单发", [ding], group_by=GroupBy.ALERT, group_window_s=0)
    for i in range(45):
        _raise(AlertKind.CLONE_SUSPECTED, f"C{i:06d}", clock.at(0), campus.dorm_door)
    # two supervisors, each with its own Redis connection, share the limit
    other = RateLimiter(redis.Redis.from_url(settings.REDIS_URL))
    for second in range(0, 200):
        _tick(clock, second, limiter if second % 2 else other)

    messages = receiver.of("/robot/send")
    assert len(messages) == 45 and receiver.problems == []
    stamps = sorted(int(m.query["timestamp"]) for m in messages)  # the signed send times
    assert _most_in_any_minute(stamps) == 20  # the limit is used, and never exceeded
    assert sum(1 for t in stamps if t < stamps[0] + 60_000) == 20
    # a deferral for the limit is not a failed attempt: each message was sent at its first try
    assert set(DeliveryAttempt.objects.values_list("attempt", "status")) == {(1, DeliveryStatus.SENT)}


def test_a_robot_that_says_too_fast_is_retried_a_minute_later(campus, receiver, clock, limiter):
    wecom = _channel(ChannelKind.WECOM, receiver)
    _rule("企业微信", [wecom], group_window_s=0)
    _raise(AlertKind.TAMPER, "D1-01", clock.at(0), campus.dorm_door)
    receiver.fail_next.append((200, {"errcode": 45009, "errmsg": "api freq out of limit"}))
    assert _tick(clock, 0, limiter)["retrying"] == 1
    assert _tick(clock, 59, limiter).get("sent", 0) == 0
    assert _tick(clock, 60, limiter)["sent"] == 1


# -- acceptance 4: escalation after the set time; acknowledgement stops it, its lapse restarts it --


def test_an_unacknowledged_alert_reaches_the_next_level_after_the_rules_delay(campus, smtp, receiver, clock, limiter):
    nic = _operator("nic-wang", Role.NIC, "wang@example.edu.cn")
    on_duty = _operator("leader-zhou", Role.LEADER, "zhou@example.edu.cn", "周主任")
    off_duty = _operator("leader-wu", Role.LEADER, "wu@example.edu.cn")
    roster = DutyRoster.objects.create(name="网信中心值班领导")
    DutyShift.objects.create(roster=roster, user=on_duty)  # all day, every day
    today = str(timezone.localtime(clock.now).isoweekday())
    DutyShift.objects.create(roster=roster, user=off_duty, weekdays="".join(d for d in "1234567" if d != today))
    wecom = _channel(ChannelKind.WECOM, receiver)
    mail = _channel(ChannelKind.EMAIL)
    _rule("首次", [wecom], operators=[nic], group_window_s=0)
    _rule("升级一级", [mail], rosters=[roster], level=1, delay_s=300, group_window_s=0)

    kept = _raise(AlertKind.BLACKLIST_HIT, "A0000001", clock.at(0), campus.dorm_door)
    seen = _raise(AlertKind.BLACKLIST_HIT, "A0000002", clock.at(0), campus.dorm_door)
    _tick(clock, 0, limiter)
    assert len(receiver.of("/cgi-bin/webhook/send")) == 1  # level 0 at once, both in one group
    acknowledge(seen.pk, by=nic, comment="已通知保卫处到场")

    _tick(clock, 299, limiter)
    assert smtp.messages == []  # not yet
    _tick(clock, 300, limiter)
    [(to, message)] = smtp.messages
    assert to == ["zhou@example.edu.cn"]  # whoever is on duty now, not the one off today
    assert "升级·第1级" in message["Subject"]
    text = message.get_content()
    assert _link(kept) in text and _link(seen) not in text  # acknowledged: not escalated
    assert not Notification.objects.filter(level=1, items__alert=seen).exists()  # not even queued

    # acknowledged: nothing more, at any level
    acknowledge(kept.pk, by=nic, comment="到场处理")
    _tick(clock, 1000, limiter)
    assert len(smtp.messages) == 1 and len(receiver.of("/cgi-bin/webhook/send")) == 1

    # the card is used again after the acknowledgement: it lapses, and notifications start again
    _raise(AlertKind.BLACKLIST_HIT, "A0000001", clock.at(1100), campus.dorm_door)
    kept.refresh_from_db()
    assert kept.status == AlertStatus.OPEN and kept.lapses == 1
    _tick(clock, 1100, limiter)
    assert len(receiver.of("/cgi-bin/webhook/send")) == 2
    assert _link(kept) in receiver.of("/cgi-bin/webhook/send")[1].body["markdown"]["content"]
    _tick(clock, 1399, limiter)
    assert len(smtp.messages) == 1
    _tick(clock, 1400, limiter)
    assert len(smtp.messages) == 2 and _link(kept) in smtp.messages[1][1].get_content()
    assert receiver.problems == []


def test_an_acknowledgement_cancels_a_message_still_waiting_for_its_group_window(campus, receiver, clock, limiter):
    nic = _operator("nic-wang", Role.NIC)
    hook = _channel(ChannelKind.WEBHOOK, receiver)
    _rule("短信网关", [hook], group_window_s=60)
    alert = _raise(AlertKind.TAMPER, "D1-01", clock.at(0), campus.dorm_door)
    _tick(clock, 0, limiter)
    acknowledge(alert.pk, by=nic, comment="现场检查")
    assert _tick(clock, 60, limiter)["cancelled"] == 1
    assert receiver.received == [] and Notification.objects.get().status == NotificationStatus.CANCELLED


# -- acceptance 5: the delivery log shows each attempt ----------------------------------------------


def test_a_failed_send_is_retried_with_backoff_and_the_alert_page_shows_each_attempt(
    campus, receiver, clock, limiter, client
):
    create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC)
    client.post("/accounts/login/", {"username": "nic", "password": "pw-nic-123"})
    hook = _channel(ChannelKind.WEBHOOK, receiver, name="短信网关")
    _rule("设备被拆", [hook], group_window_s=0)
    alert = _raise(AlertKind.TAMPER, "D1-01", clock.at(0), campus.dorm_door)
    receiver.fail_next += [(500, {}), (503, {})]

    assert _tick(clock, 0, limiter)["retrying"] == 1  # attempt 1: HTTP 500
    assert _tick(clock, 9, limiter).get("retrying", 0) == 0  # backoff: 10 s
    assert _tick(clock, 10, limiter)["retrying"] == 1  # attempt 2: HTTP 503
    assert _tick(clock, 29, limiter) == {"routed": 0}  # backoff doubled: 20 s
    assert _tick(clock, 30, limiter)["sent"] == 1  # attempt 3
    log = list(DeliveryAttempt.objects.values_list("attempt", "status", "error"))
    assert log == [
        (1, DeliveryStatus.RETRYING, "HTTP 500"),
        (2, DeliveryStatus.RETRYING, "HTTP 503"),
        (3, DeliveryStatus.SENT, ""),
    ]
    assert len(receiver.of("/hook")) == 1 and receiver.problems == []

    html = client.get(reverse("alert-detail", args=[alert.pk])).content.decode()
    section = html.split('id="delivery-log"', 1)[1].split("</table>", 1)[0]
    assert section.count('class="delivery delivery-retrying"') == 2
    assert section.count('class="delivery delivery-sent"') == 1
    assert "HTTP 500" in section and "HTTP 503" in section and "短信网关" in section
    assert "失败，将重试" in section and "已发送" in section


def test_a_send_that_keeps_failing_stops_after_the_last_attempt(campus, receiver, clock, limiter, settings):
    settings.NOTIFY_MAX_ATTEMPTS = 3
    hook = _channel(ChannelKind.WEBHOOK, receiver)
    _rule("总是失败", [hook], group_window_s=0)
    _raise(AlertKind.TAMPER, "D1-01", clock.at(0), campus.dorm_door)
    receiver.fail_next += [(502, {})] * 10
    for second in [*range(0, 300, 10), 3600]:
        _tick(clock, second, limiter)
    statuses = list(DeliveryAttempt.objects.values_list("status", flat=True))
    assert statuses == [DeliveryStatus.RETRYING, DeliveryStatus.RETRYING, DeliveryStatus.FAILED]
    assert Notification.objects.get().status == NotificationStatus.FAILED


# -- routing: what a rule covers -----------------------------------------------------------------


def test_a_rule_covers_only_its_kinds_severity_building_and_owner_department(campus, receiver, clock, limiter):
    hook = _channel(ChannelKind.WEBHOOK, receiver)
    _rule("宿舍楼严重告警", [hook], group_window_s=0, min_severity="critical", kinds=[AlertKind.TAMPER]).buildings.set(
        [campus.dorm]
    )
    _rule("保卫处的设备", [hook], group_window_s=0, kinds=[AlertKind.DEVICE_FAULT]).owner_departments.set([campus.dept])
    _raise(AlertKind.TAMPER, "D1-01", clock.at(0), campus.dorm_door)  # critical, in D1: yes
    _raise(AlertKind.TAMPER, "G-E-01", clock.at(0), campus.gate)  # no building: no
    _raise(AlertKind.SEQUENCE_GAP, "D1-01", clock.at(0), campus.dorm_door)  # a warning, another kind: no
    _raise(AlertKind.DEVICE_FAULT, "V-E-IN", clock.at(0), campus.vehicle_gate)  # owned by SEC: yes
    _tick(clock, 0, limiter)
    told = sorted((m.body["rule"], m.body["alerts"][0]["subject"]) for m in receiver.of("/hook"))
    assert told == [("保卫处的设备", "V-E-IN"), ("宿舍楼严重告警", "D1-01")]


# -- the admin: NIC only, secrets write-only, changes audited -------------------------------------


def test_nic_edits_channels_in_the_admin_the_secret_is_never_shown_back_and_the_change_is_audited(client, db):
    create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC)
    client.post("/accounts/login/", {"username": "nic", "password": "pw-nic-123"})
    response = client.post(
        reverse("admin:alerts_notificationchannel_add"),
        {
            "name": "网信值班群",
            "kind": "dingtalk",
            "address": f"https://oapi.dingtalk.com/robot/send?access_token={DING_TOKEN}",
            "token": "",
            "secret": DING_SECRET,
            "rate_per_minute": "20",
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = NotificationChannel.objects.get(name="网信值班群")
    # the token pasted in the address moved to the write-only field
    assert channel.address == "https://oapi.dingtalk.com/robot/send" and channel.token == DING_TOKEN
    page = client.get(reverse("admin:alerts_notificationchannel_change", args=[channel.pk])).content.decode()
    assert DING_SECRET not in page and DING_TOKEN not in page
    # saved again with the inputs left empty: what is on record stays
    client.post(
        reverse("admin:alerts_notificationchannel_change", args=[channel.pk]),
        {
            "name": "网信值班群",
            "kind": "dingtalk",
            "address": channel.address,
            "rate_per_minute": "15",
            "enabled": "on",
        },
    )
    channel.refresh_from_db()
    assert (channel.token, channel.secret, channel.rate_per_minute) == (DING_TOKEN, DING_SECRET, 15)
    audited = AuditRecord.objects.filter(object_type="notificationchannel", object_id=str(channel.pk))
    assert sorted(audited.values_list("action", flat=True)) == ["admin.add", "admin.change"]
    assert not any(DING_SECRET in json.dumps(r.data) for r in audited)

    # and a rule for it, kinds ticked in the admin
    response = client.post(
        reverse("admin:alerts_routingrule_add"),
        {
            "name": "设备故障",
            "enabled": "on",
            "kinds": [AlertKind.DEVICE_FAULT, AlertKind.TAMPER],
            "min_severity": "warning",
            "level": "0",
            "group_by": GroupBy.KIND_BUILDING,
            "group_window_s": "60",
            "channels": [str(channel.pk)],
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = RoutingRule.objects.get(name="设备故障")
    assert rule.kinds == ["device_fault", "tamper"] and list(rule.channels.all()) == [channel]
    assert AuditRecord.objects.filter(action="admin.add", object_type="routingrule", object_id=str(rule.pk)).exists()


def test_a_robot_may_not_be_set_above_its_20_a_minute(db):
    channel = NotificationChannel(name="x", kind=ChannelKind.WECOM, token="k", rate_per_minute=30)
    with pytest.raises(Exception, match="20"):
        channel.full_clean()


@pytest.mark.parametrize("model", ["notificationchannel", "routingrule", "dutyroster"])
def test_only_nic_opens_the_notification_admin(client, db, model):
    create_or_update_operator(username="sec", password="pw-sec-1234", role=Role.SECURITY, is_superuser=False)
    client.post("/accounts/login/", {"username": "sec", "password": "pw-sec-1234"})
    assert client.get(reverse(f"admin:alerts_{model}_changelist")).status_code == 403
    client.logout()
    create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC)
    client.post("/accounts/login/", {"username": "nic", "password": "pw-nic-123"})
    assert client.get(reverse(f"admin:alerts_{model}_changelist")).status_code == 200
    assert client.get(reverse(f"admin:alerts_{model}_add")).status_code == 200
    assert client.get(reverse("admin:alerts_notification_changelist")).status_code == 200
