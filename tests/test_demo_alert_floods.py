"""Issue 19, Acceptance 2, shortened: the demo's processes on the demo campus with a loss report
made through the card service leave the NIC desk quiet — no device "behind on credentials" or
"missing the revocation" (the simulated doors follow the feed and say so in their heartbeats,
R-USE-1), no fleet-wide kind repeated per device, under 30 open alerts — and no clone suspicion
the simulator did not intend (its default trouble makes none; R-SEC-5).

Real parts: ``campuscard relay``, ``process``, ``supervise`` and ``simulate`` as processes, as
``campuscard demo`` runs them, on the test's PostgreSQL and Redis; the loss report through
``report_loss``. About 80 s."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard import alert_view
from dashboard.pages.devices import DEVICE_KINDS
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind, AlertStatus
from ops.alerts.models import Alert
from ops.alerts.selectors import alert_snapshot
from ops.demo.seed import seed_demo_campus
from ops.pipeline.supervision import CREDENTIAL_LAG_S
from ops.registry.lifecycle.choices import Topic
from ops.registry.lifecycle.models import OutboxMessage
from ops.registry.lifecycle.services import report_loss
from ops.registry.models import AccessEvent, Card, Device
from streams.reasons import Reason
from tests.conftest import campuscard_cmd
from tests.private_servers import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline, pytest.mark.slow]
WATCHED_S = CREDENTIAL_LAG_S + 15  # past the lag checks' grace, several supervisor rounds


def test_a_demo_run_with_a_loss_report_leaves_the_nic_desk_quiet(redis_client, subprocess_env, tmp_path):
    seed_demo_campus(holders=300)
    assert Device.objects.count() >= 60
    logs = {name: tmp_path / f"{name}.log" for name in ("relay", "process", "supervise", "simulate")}
    commands = {
        "relay": campuscard_cmd("relay"),
        "process": campuscard_cmd("process"),
        "supervise": campuscard_cmd("supervise"),
        # the demo's rhythm, at a higher rate and with short heartbeats
        "simulate": campuscard_cmd("simulate", "--rate", "40", "--speed", "30", "--heartbeat", "2", "--seed", "19"),
    }
    procs = {
        name: subprocess.Popen(cmd, env=subprocess_env, stdout=logs[name].open("w"), stderr=subprocess.STDOUT)
        for name, cmd in commands.items()
    }
    try:
        admitted = AccessEvent.objects.filter(reason=Reason.OK)
        wait_until(admitted.exists, 60, "an admitted tap")
        card = Card.objects.get(uid=admitted.values_list("card_uid", flat=True).first())
        nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC, is_superuser=True)
        report_loss(card=card, operator=nic, basis="本人挂失")
        published = OutboxMessage.objects.filter(topic=Topic.CREDENTIAL, published_at__isnull=False)
        wait_until(published.exists, 20, "the loss report published")
        version = published.order_by("-version").values_list("version", flat=True).first()
        time.sleep(WATCHED_S)

        # R-USE-1: the doors hold the revocation and their heartbeats say so
        heard = Device.objects.filter(last_seen_at__gte=timezone.now() - timedelta(seconds=10))
        assert heard.count() >= 50
        assert not heard.filter(credential_version__lt=version).exists()
        kinds = set(Alert.objects.values_list("kind", flat=True))
        assert AlertKind.CREDENTIAL_LAG not in kinds
        assert AlertKind.REVOCATION_MISSING not in kinds
        assert AlertKind.CLONE_SUSPECTED not in kinds  # the default trouble intends none
        # the NIC desk: under 30 open, no kind on many devices (nothing a grouped row would hide)
        rows = [r for r in alert_snapshot(kinds=DEVICE_KINDS)["rows"] if r["status"] != AlertStatus.RESOLVED]
        assert len(rows) < 30, sorted(r["kind"] for r in rows)
        groups, _single = alert_view.fleet_split(rows)
        assert groups == [], [g[0]["kind"] for g in groups]
        assert not Alert.objects.filter(kind=AlertKind.REPLAY).exists()
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    for name, proc in procs.items():
        assert proc.returncode == 0, logs[name].read_text()[-2000:]
