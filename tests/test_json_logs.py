"""LOG_FORMAT=json (issue 16, Build 5): one JSON object per line, and one line per notable event
carrying the id of what caused it — a login carries its request's id (X-Request-ID, given by a
proxy or made here), an alert raised by a reader event carries that event's id, a dead-lettered
entry its stream id."""

from __future__ import annotations

import io
import json
import logging.config
import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from ops import logs
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind
from ops.alerts.services import raise_alert
from ops.pipeline.processor import ReaderEventProcessor
from streams import producer
from tests.factories import publish, tap

pytestmark = pytest.mark.django_db(transaction=True)  # the lines are written after the commit


@pytest.fixture
def json_lines():
    """The project's logging as LOG_FORMAT=json configures it, written to a buffer; the JSON
    objects logged, one per line (a line that is not one fails the test)."""
    buffer = io.StringIO()
    config = logs.config(fmt="json", level="INFO")
    config["handlers"]["console"]["stream"] = buffer
    logging.config.dictConfig(config)

    def lines() -> list[dict]:
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    try:
        yield lines
    finally:
        logging.config.dictConfig(settings.LOGGING)


def test_a_login_is_one_json_line_with_the_request_id(json_lines):
    create_or_update_operator(username="nic1", password="pw-nic-12345", role=Role.NIC)
    web = Client(HTTP_HOST="127.0.0.1")
    response = web.post(
        "/accounts/login/", {"username": "nic1", "password": "pw-nic-12345"}, HTTP_X_REQUEST_ID="proxy-req-42"
    )
    assert response.status_code == 302
    assert response["X-Request-ID"] == "proxy-req-42"
    logins = [line for line in json_lines() if line.get("event") == "audit" and line["action"] == "auth.login"]
    assert len(logins) == 1
    login = logins[0]
    assert login["request_id"] == "proxy-req-42"
    assert login["actor"] == "nic1" and login["object_id"] == "nic1"
    assert login["level"] == "INFO" and login["logger"] == "ops.audit.services" and login["time"]
    assert "password" not in json.dumps(login)


def test_a_request_without_an_id_gets_one_and_a_forged_one_is_replaced(json_lines):
    web = Client(HTTP_HOST="127.0.0.1")
    made = web.post("/accounts/login/", {"username": "nobody", "password": "wrong-password"})
    failed = [line for line in json_lines() if line.get("action") == "auth.login_failed"]
    assert len(failed) == 1
    assert failed[0]["request_id"] == made["X-Request-ID"]
    assert len(made["X-Request-ID"]) == 32
    forged = web.get("/healthz", HTTP_X_REQUEST_ID='x" injected\nline')
    assert forged["X-Request-ID"] != 'x" injected\nline' and len(forged["X-Request-ID"]) == 32


def test_an_alert_raised_by_a_reader_event_is_one_json_line_with_the_event_id(json_lines, campus, redis_client):
    unknown = tap(device="NOT-REGISTERED", uid=campus.cards[0].uid)
    publish(redis_client, [unknown])
    producer.publish_raw(redis_client, {"junk": "not an event"})
    producer.publish_raw(redis_client, {"e": '{"event_id": "evt-from-a-broken-reader", "type": "bogus"}'})
    processor = ReaderEventProcessor(redis_client, fanout=None, consumer="json-logs", block_ms=50)
    for _ in range(5):
        processor.poll_once()
    processor.alerts.flush()
    processor.leases.release_all()

    lines = json_lines()
    raised = [line for line in lines if line.get("event") == "alert.raised"]
    assert len(raised) == 1
    assert raised[0]["event_id"] == str(unknown.event_id)
    assert raised[0]["kind"] == "unknown_device" and raised[0]["subject"] == "NOT-REGISTERED"
    assert isinstance(raised[0]["alert_id"], int)
    dead = [line for line in lines if line.get("event") == "dead_letter"]
    assert len(dead) == 2 and all(d["level"] == "WARNING" and d["entry_id"] for d in dead)
    assert [d.get("event_id") for d in dead] == [None, "evt-from-a-broken-reader"]
    gained = [line for line in lines if line.get("event") == "partitions.gained"]
    assert gained and gained[0]["consumer"] == "json-logs"


def test_a_card_uid_is_masked_in_the_alert_line(json_lines):
    raise_alert(kind=AlertKind.BLACKLIST_HIT, subject="A1B2C3D4", at=timezone.now())
    (line,) = [line for line in json_lines() if line.get("event") == "alert.raised"]
    assert line["subject"] == "A1****D4"
    assert "A1B2C3D4" not in json.dumps(line)


def _settings_process(**env: str) -> subprocess.CompletedProcess[str]:
    script = (
        "import django, logging; django.setup()\n"
        "from ops import logs\n"
        "logs.event_id.set('evt-7')\n"
        "logging.getLogger('ops.probe').info('probe %s', 'one', extra={'event': 'probe'})\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        env=dict(os.environ, DJANGO_SETTINGS_MODULE="ops.settings", **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_log_format_json_from_the_environment_writes_json_lines(tmp_path):
    result = _settings_process(LOG_FORMAT="json", CAMPUSCARD_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(x) for x in result.stderr.splitlines() if '"probe' in x]
    assert line["message"] == "probe one" and line["event"] == "probe" and line["event_id"] == "evt-7"
    assert line["level"] == "INFO" and line["logger"] == "ops.probe"

    plain = _settings_process(CAMPUSCARD_VAR_DIR=str(tmp_path))
    assert "INFO ops.probe probe one" in plain.stderr


def test_an_unknown_log_format_stops_start_up(tmp_path):
    result = _settings_process(LOG_FORMAT="xml", CAMPUSCARD_VAR_DIR=str(tmp_path / str(uuid.uuid4())))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "LOG_FORMAT='xml'" in result.stderr
