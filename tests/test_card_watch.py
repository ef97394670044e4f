"""Clone detection and misuse alerts (R-SEC-5): a card at two sites too far apart for the time
between the taps; a replaced card's old UID still used; blacklisted cards presented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.alerts.choices import AlertKind
from ops.alerts.models import Alert
from ops.pipeline.processor import ReaderEventProcessor
from ops.registry.lifecycle import services
from ops.registry.models import Device
from streams.reasons import Decision, Reason
from tests.factories import publish, tap

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]


def _process(redis_client):
    ReaderEventProcessor(redis_client, fanout=None, consumer="t", block_ms=50).run(max_idle_polls=1)


def test_one_card_at_two_gates_seconds_apart_is_a_clone_suspicion(campus, redis_client):
    Device.objects.filter(code="G-E-01").update(site="东门")
    Device.objects.filter(code="D1-01").update(site="1号学生公寓")
    uid = campus.cards[0].uid
    t0 = datetime.now(UTC)
    publish(
        redis_client, [tap("G-E-01", uid, seq=1, when=t0), tap("D1-01", uid, seq=1, when=t0 + timedelta(seconds=20))]
    )
    _process(redis_client)
    [alert] = Alert.objects.filter(kind=AlertKind.CLONE_SUSPECTED)
    assert alert.detail["first"] == "G-E-01" and alert.detail["second"] == "D1-01"
    # the same walk taking ten minutes is normal
    other = campus.cards[1].uid
    publish(
        redis_client,
        [tap("G-E-01", other, seq=2, when=t0), tap("D1-01", other, seq=2, when=t0 + timedelta(minutes=10))],
    )
    _process(redis_client)
    assert Alert.objects.filter(kind=AlertKind.CLONE_SUSPECTED).count() == 1


def test_the_old_card_of_a_replacement_and_blacklist_hits_are_alerts(campus, redis_client):
    nic = create_or_update_operator(username="nic", password="pw-nic-123", role=Role.NIC)
    old = campus.cards[2]
    services.replace_card(card=old, new_uid="0CA4D002", operator=nic, reason="loss", basis="补卡")
    publish(
        redis_client,
        [
            tap("G-E-01", old.uid, seq=1, decision=Decision.DENY, reason=Reason.CANCELLED),
            tap("G-E-01", campus.cards[3].uid, seq=2, decision=Decision.DENY, reason=Reason.BLACKLISTED),
        ],
    )
    _process(redis_client)
    assert Alert.objects.get(kind=AlertKind.OLD_CARD_USED).subject == old.uid
    assert Alert.objects.get(kind=AlertKind.BLACKLIST_HIT).subject == campus.cards[3].uid
