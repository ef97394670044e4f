"""Issue 19, items 2 and 3, in a real browser against real daphne, processor, supervisor,
PostgreSQL and Redis: a kind of alert on many devices is ONE row on the NIC desk (its devices on
expand, R-OPS-3) and the alert panel stays short; on the security desk a blacklist hit is on top
of newer clone suspicions and anti-passback warnings (R-OPS-2, R-SEC-5)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard import alert_view
from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind
from ops.alerts.models import Alert
from ops.alerts.services import raise_alert
from ops.masking import mask_uid
from streams.cards import DeviceKind
from tests.browser import chromium, log_in
from tests.factories import make_device

pytestmark = [pytest.mark.browser, pytest.mark.pipeline, pytest.mark.slow]
PASSWORD = "flood-desk-pass-7"
DEVICES = alert_view.FLEET_MIN_DEVICES + 7


def test_a_fleet_wide_kind_is_one_row_and_blacklist_hits_lead_the_security_desk(campus, redis_client, stack):
    now = timezone.now()
    for i in range(DEVICES):
        d = make_device(
            f"T-{i:02d}", f"测试门{i}", DeviceKind.DORM_DOOR, "1号学生公寓", campus.dept, building=campus.dorm
        )
        raise_alert(
            kind=AlertKind.REVOCATION_MISSING, subject=f"{d.code}#v9", device_id=d.pk, at=now, detail={"version": 9}
        )
    raise_alert(kind=AlertKind.DEVICE_FAULT, subject=campus.gate.code, device_id=campus.gate.pk, at=now)
    gate = campus.gate.pk
    hit = campus.cards[0].uid
    raise_alert(
        kind=AlertKind.BLACKLIST_HIT,
        subject=hit,
        device_id=gate,
        at=now - timedelta(minutes=5),
        detail={"card": mask_uid(hit)},
    )
    for card in campus.cards[1:4]:  # newer ones, which used to bury it
        raise_alert(kind=AlertKind.CLONE_SUSPECTED, subject=card.uid, device_id=gate, at=now)
    raise_alert(kind=AlertKind.PASSBACK_VIOLATION, subject=campus.cards[5].uid, device_id=gate, at=now)
    hit_id = Alert.objects.get(kind=AlertKind.BLACKLIST_HIT).pk
    create_or_update_operator(username="nic-duty", password=PASSWORD, role=Role.NIC)
    create_or_update_operator(username="guard", password=PASSWORD, role=Role.SECURITY)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        log_in(page, stack, "nic-duty", PASSWORD, "/live/devices/")
        page.wait_for_selector("#fleet-revocation_missing", timeout=20_000)
        page.wait_for_selector("#nic-alerts .alert:has-text('设备故障')", timeout=10_000)
        assert page.locator("#nic-alerts .alert-fleet").count() == 1
        assert page.get_attribute("#fleet-revocation_missing", "data-devices") == str(DEVICES)
        # one row for the twelve, one for the fault: no per-device rows of the grouped kind
        assert page.locator("#nic-alerts .alert").count() == 2
        box = page.locator("#nic-alerts").bounding_box()
        assert box is not None and box["height"] < 400
        # the devices on expand, each a link to its own alert
        assert not page.locator("#fleet-revocation_missing .fleet-devices").is_visible()
        page.click("#fleet-revocation_missing summary")
        page.wait_for_selector("#fleet-revocation_missing .fleet-devices", state="visible", timeout=5_000)
        assert page.locator("#fleet-revocation_missing .fleet-devices a").count() == DEVICES

        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        log_in(page, stack, "guard", PASSWORD, "/live/gates/")
        page.wait_for_selector(".security-alerts .alert:has-text('防潜回违规')", timeout=20_000)
        order = page.eval_on_selector_all(
            ".security-alerts .alert", "els => els.map(e => e.querySelector('strong').textContent)"
        )
        assert page.get_attribute(".security-alerts .alert", "data-alert") == str(hit_id)
        assert order == ["黑名单卡刷卡", "疑似克隆卡", "疑似克隆卡", "疑似克隆卡", "防潜回违规"]
