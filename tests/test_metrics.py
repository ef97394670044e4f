"""/metrics (issue 16, Build 3): it refuses anonymous and wrongly-tokened scrapes; with the token
its text parses as Prometheus's, and its figures move as events go through the pipeline — taps
published, a processor draining them — and match the database (devices by state, open alerts by
kind, the outbox, the devices' credential versions). The Grafana dashboard in docs/ asks only for
metrics the endpoint exports."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from dashboard.routing import PAGES, desk_of
from ops import instruments
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind, AlertStatus, NotificationStatus
from ops.alerts.models import Alert, DeliveryAttempt, Notification
from ops.alerts.services import raise_alert
from ops.asgi import application
from ops.pipeline.processor import ReaderEventProcessor
from ops.registry.choices import DeviceState
from ops.registry.lifecycle.choices import Topic
from ops.registry.lifecycle.models import OutboxMessage
from ops.registry.models import AccessEvent, Device
from streams import names, producer
from tests.conftest import ROOT
from tests.factories import publish, tap

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]
TOKEN = "scrape-token-0123456789abcdef"
GATE = "G-E-01"
DASHBOARD = ROOT / "docs" / "grafana" / "campuscard.json"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    return TOKEN


@pytest.fixture
def web():
    return Client(HTTP_HOST="127.0.0.1")


class Scrape:
    """One scrape's families, by family name, and a way to read one sample."""

    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}

    def names(self) -> set[str]:
        return set(self.families) | {s.name for f in self.families.values() for s in f.samples}

    def value(self, sample: str, **labels: str) -> float | None:
        for family in self.families.values():
            for s in family.samples:
                if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return None

    def number(self, sample: str, **labels: str) -> float:
        value = self.value(sample, **labels)
        assert value is not None, f"{sample} {labels} is not exported"
        return value

    def labelled(self, sample: str, label: str) -> dict[str, float]:
        return {s.labels[label]: s.value for f in self.families.values() for s in f.samples if s.name == sample}


def scrape(web: Client) -> Scrape:
    response = web.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain")
    return Scrape(response.content.decode())


def _drain(processor: ReaderEventProcessor, count: int) -> None:
    for _ in range(200):
        if AccessEvent.objects.count() >= count:
            break
        processor.poll_once()
    assert AccessEvent.objects.count() == count
    processor.alerts.flush()


# -- who may scrape ------------------------------------------------------------------------------


def test_an_anonymous_scrape_is_refused(web, token):
    response = web.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"campuscard_" not in response.content


@pytest.mark.parametrize("header", ["Bearer wrong-token-0123456789abcdef", f"Token {TOKEN}", "Bearer", TOKEN])
def test_a_wrong_token_is_refused(web, token, header):
    response = web.get("/metrics", HTTP_AUTHORIZATION=header)
    assert response.status_code == 403
    assert b"campuscard_" not in response.content


def test_with_neither_a_token_nor_a_network_set_every_scrape_is_refused(web, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []
    assert web.get("/metrics").status_code == 403
    assert web.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_an_allowed_network_scrapes_without_a_token_and_others_do_not(web, settings, redis_client):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("::1/128")]
    assert web.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert web.get("/metrics", REMOTE_ADDR="::ffff:10.20.3.4").status_code == 200  # a dual-stack listener
    assert web.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert web.get("/metrics", REMOTE_ADDR="10.21.0.1").status_code == 401
    assert web.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401
    # a wrong token is refused even from inside
    assert web.get("/metrics", REMOTE_ADDR="10.20.3.4", HTTP_AUTHORIZATION="Bearer nope").status_code == 403


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("METRICS_ALLOWED_NETWORKS", "10.0.0.0/33", "METRICS_ALLOWED_NETWORKS"),
        ("METRICS_ALLOWED_NETWORKS", "campus-lan", "METRICS_ALLOWED_NETWORKS"),
        ("METRICS_TOKEN", "short", "METRICS_TOKEN must be at least 16 characters"),
    ],
)
def test_a_bad_metrics_setting_stops_start_up(name, value, message, tmp_path):
    env = dict(os.environ, **{name: value, "CAMPUSCARD_VAR_DIR": str(tmp_path)})
    result = subprocess.run(
        [sys.executable, "-c", "import ops.settings"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


# -- the figures ---------------------------------------------------------------------------------


def test_the_figures_move_as_a_processor_drains_the_stream(web, token, campus, redis_client):
    p = str(names.partition_of(GATE, settings.EVENT_PARTITIONS))
    before = scrape(web)
    assert before.value("campuscard_metrics_source_up", source="events") == 1
    assert before.value("campuscard_metrics_source_up", source="redis") == 1
    assert before.value("campuscard_metrics_source_up", source="database") == 1
    assert before.value("campuscard_events_processed_total", partition=p) == 0
    assert before.value("campuscard_stream_length", partition=p) == 0

    publish(redis_client, [tap(uid=campus.cards[i].uid, seq=i + 1) for i in range(12)])
    producer.publish_raw(redis_client, {"junk": "not an event"}, partition=int(p))  # will be dead-lettered
    time.sleep(1.1)  # nobody reads them
    published = scrape(web)
    assert published.value("campuscard_events_added_total", partition=p) == 13
    assert published.value("campuscard_stream_length", partition=p) == 13
    assert published.value("campuscard_stream_undelivered", partition=p) == 13  # no processor yet
    assert 1.0 <= published.number("campuscard_processing_lag_seconds", partition=p) < 30
    assert published.value("campuscard_events_processed_total", partition=p) == 0

    processor = ReaderEventProcessor(redis_client, fanout=None, consumer="metrics-test", block_ms=50)
    _drain(processor, 12)
    processor._flush_seen()  # last heard, the devices' states
    processed = scrape(web)
    assert processed.value("campuscard_events_processed_total", partition=p) == 12
    assert processed.value("campuscard_events_dead_lettered_total", partition=p) == 1
    assert processed.value("campuscard_dead_letters", partition=p) == 1
    assert processed.value("campuscard_events_added_total", partition=p) == 13
    assert processed.value("campuscard_stream_pending", partition=p) == 0
    assert processed.value("campuscard_stream_undelivered", partition=p) == 0
    assert processed.value("campuscard_processing_lag_seconds", partition=p) == 0
    assert processed.value("campuscard_partition_leased", partition=p) == 1
    assert processed.value("campuscard_processors_alive") == 1
    total = sum(processed.labelled("campuscard_events_processed_total", "partition").values())
    assert total == 12  # every partition reported, only this one moved

    # a second batch: read, and left pending as a processor that died would leave it
    publish(redis_client, [tap(uid=campus.cards[0].uid, seq=13)])
    redis_client.xreadgroup(names.PROCESSOR_GROUP, "died", {names.events_stream(int(p)): ">"}, count=10)
    time.sleep(1.1)
    stuck = scrape(web)
    assert stuck.value("campuscard_stream_pending", partition=p) == 1
    assert stuck.value("campuscard_stream_undelivered", partition=p) == 0
    assert 1.0 <= stuck.number("campuscard_processing_lag_seconds", partition=p) < 30
    processor.leases.release_all()


def test_an_unreachable_events_stream_is_reported_not_taken_for_an_idle_one(web, token, campus, settings):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.EVENTS_REDIS_URL = f"redis://127.0.0.1:{port}/0"
    figures = scrape(web)
    assert figures.value("campuscard_metrics_source_up", source="events") == 0
    assert figures.value("campuscard_metrics_source_up", source="database") == 1
    assert figures.value("campuscard_stream_length", partition="0") is None  # absent, not 0
    assert figures.value("campuscard_devices", state="unknown") == Device.objects.count()


def test_devices_alerts_outbox_and_credential_versions_match_the_database(web, token, campus, redis_client):
    now = timezone.now()
    Device.objects.filter(pk=campus.gate.pk).update(state=DeviceState.ONLINE, last_seen_at=now, credential_version=40)
    Device.objects.filter(pk=campus.dorm_door.pk).update(
        state=DeviceState.FAULT, last_seen_at=now, credential_version=42
    )
    Device.objects.filter(pk=campus.vehicle_gate.pk).update(
        state=DeviceState.SILENT,
        last_seen_at=now,
        credential_version=3,  # silent: its version says nothing
    )
    redis_client.set(names.CREDENTIALS_VERSION, 42)
    raise_alert(kind=AlertKind.BLACKLIST_HIT, subject="A0000001", at=now)
    raise_alert(kind=AlertKind.BLACKLIST_HIT, subject="A0000002", at=now)
    raise_alert(kind=AlertKind.BLACKLIST_HIT, subject="A0000002", at=now)  # a repeat: one alert, count 2
    raise_alert(kind=AlertKind.DEVICE_FAULT, subject=GATE, at=now)
    raise_alert(kind=AlertKind.REPLAY, subject=GATE, at=now)
    Alert.objects.filter(kind=AlertKind.DEVICE_FAULT).update(status=AlertStatus.ACKNOWLEDGED)
    Alert.objects.filter(kind=AlertKind.REPLAY).update(status=AlertStatus.RESOLVED)
    OutboxMessage.objects.create(topic=Topic.CREDENTIAL, payload={})
    OutboxMessage.objects.create(topic=Topic.CARD_ACTION, payload={})
    OutboxMessage.objects.create(topic=Topic.CARD_ACTION, payload={}, published_at=now)
    OutboxMessage.objects.filter(topic=Topic.CREDENTIAL).update(created_at=now - timedelta(seconds=90))

    figures = scrape(web)
    for state in DeviceState:
        assert figures.value("campuscard_devices", state=state.value) == Device.objects.filter(state=state).count()
    for kind in AlertKind:
        for status in (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED):
            expected = Alert.objects.filter(kind=kind, status=status).count()
            assert figures.value("campuscard_alerts_open", kind=kind.value, status=status.value) == expected
    assert figures.value("campuscard_alerts_open", kind="blacklist_hit", status="open") == 2
    assert figures.value("campuscard_alerts_open", kind="device_fault", status="acknowledged") == 1
    assert figures.value("campuscard_alerts_open", kind="replay", status="open") == 0  # resolved
    assert figures.value("campuscard_outbox_unpublished", topic="credential") == 1
    assert figures.value("campuscard_outbox_unpublished", topic="card_action") == 1
    assert 89 <= figures.number("campuscard_relay_lag_seconds") < 120
    assert figures.value("campuscard_credential_feed_version") == 42
    assert figures.value("campuscard_device_credential_version_min") == 40
    assert figures.value("campuscard_device_credential_version_max") == 42
    assert figures.value("campuscard_devices_behind_feed") == 1

    OutboxMessage.objects.update(published_at=now)
    assert scrape(web).value("campuscard_relay_lag_seconds") == 0


def test_notification_deliveries_match_the_delivery_log(web, token):
    now = timezone.now()

    def notification(status: NotificationStatus) -> Notification:
        return Notification.objects.create(
            rule_name="r", channel_name="c", group_key="k", opened_at=now, due_at=now, next_at=now, status=status
        )

    sent, failed = notification(NotificationStatus.SENT), notification(NotificationStatus.FAILED)
    notification(NotificationStatus.PENDING)
    notification(NotificationStatus.RETRYING)
    for n, outcomes in ((sent, ["retrying", "sent"]), (failed, ["retrying", "retrying", "failed"])):
        for attempt, outcome in enumerate(outcomes, 1):
            DeliveryAttempt.objects.create(notification=n, group_key="k", attempt=attempt, status=outcome, at=now)
    figures = scrape(web)
    assert figures.labelled("campuscard_notification_deliveries_total", "status") == {
        "sent": 1,
        "retrying": 3,
        "failed": 1,
    }
    assert figures.value("campuscard_notifications_waiting") == 2


def test_websocket_clients_are_counted_per_desk_while_open(web, token, settings):
    settings.WS_RECHECK_S = 60
    assert {desk_of(prefix) for prefix, _app, _allowed in PAGES} == set(instruments.DESKS)
    officer = create_or_update_operator(username="sec", password="not-used-1234", role=Role.SECURITY)
    login = Client()
    login.force_login(officer)
    cookie = (b"cookie", f"{settings.SESSION_COOKIE_NAME}={login.cookies[settings.SESSION_COOKIE_NAME].value}".encode())
    headers = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"), cookie]

    def gates() -> float:
        value = scrape(web).value("campuscard_websocket_clients", desk="gates")
        assert value is not None
        return value

    before = gates()

    async def watch() -> float:
        desk = WebsocketCommunicator(application, "/live/gates/_dash-ws-callback", headers=headers)
        connected, _ = await desk.connect(timeout=10)
        assert connected
        during = await sync_to_async(gates)()
        await desk.disconnect(timeout=10)
        return during

    assert async_to_sync(watch)() == before + 1
    assert gates() == before
    assert scrape(web).value("campuscard_websocket_clients", desk="dorm") is not None  # 0, not absent


def test_a_killed_workers_websockets_are_forgotten(web, token):
    """A web worker killed without exiting leaves its live gauge file; the next scrape drops it."""
    path = settings.PROMETHEUS_MULTIPROC_DIR
    killed = (
        "import os, sys; os.environ['PROMETHEUS_MULTIPROC_DIR'] = sys.argv[1]\n"
        "from ops.instruments import WEBSOCKET_CLIENTS\n"
        "WEBSOCKET_CLIENTS.labels(desk='cards').inc(5)\n"
        "print(os.getpid(), flush=True)\n"
        "os._exit(0)\n"  # no atexit: as if killed
    )
    result = subprocess.run([sys.executable, "-c", killed, path], capture_output=True, text=True, check=True)
    leftover = os.path.join(path, f"gauge_livesum_{int(result.stdout)}.db")
    assert os.path.exists(leftover), "the killed worker left its file"
    assert scrape(web).value("campuscard_websocket_clients", desk="cards") == 0
    assert not os.path.exists(leftover)


# -- the dashboard -------------------------------------------------------------------------------


def test_the_grafana_dashboard_asks_only_for_exported_metrics(web, token, campus, redis_client):
    Device.objects.update(state=DeviceState.ONLINE, last_seen_at=timezone.now())  # reporting devices
    publish(redis_client, [tap(uid=campus.cards[0].uid)])
    exported = scrape(web)
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]
    assert len(exprs) >= 12
    asked = {m for expr in exprs for m in re.findall(r"\bcampuscard_[a-z0-9_]+", expr)}
    names = exported.names()
    missing = sorted(m for m in asked if m not in names and m.removesuffix("_total") not in exported.families)
    assert missing == [], f"the dashboard asks for metrics /metrics does not export: {missing}"
    # and every family the endpoint exports is on the dashboard
    shown = {m.removesuffix("_total") for m in asked}
    assert sorted(set(exported.families) - shown) == []
