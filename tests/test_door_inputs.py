"""Door supervision from the agent's own door inputs (issue 17, Build 4; R-DEV-3, R-SEC-5): a door
opened with its lock engaged is ``door_forced``, a door opened for a card and left open past its
limit is ``door_held_open``, a tamper switch is ``tamper``; each clears when the condition ends.

Real parts: a :class:`ReaderAgent` whose door inputs are the simulated source's (scripted here
as a GPIO driver would report them), following the signed credential feed; the processor
(in-process, on the test's Redis and database) raising and clearing the alerts."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.db import connection

from ops.alerts.choices import AlertKind
from ops.alerts.models import Alert
from ops.pipeline.processor import ReaderEventProcessor
from ops.pipeline.relay import OutboxRelay
from ops.registry.choices import DeviceState
from ops.registry.models import Device
from readers.agent.agent import ReaderAgent, client_factory
from readers.agent.config import parse_config
from readers.doors import DoorMonitor
from readers.sources.simulated import SimulatedSource
from streams import envelopes, names
from streams.reasons import Decision
from tests.factories import device_key
from tests.private_servers import wait_until
from tests.signing_keys import PUBLIC_KEYS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]

DOOR = "G-E-01"
HELD_OPEN_S = 1.0
DOOR_KINDS = [AlertKind.DOOR_FORCED, AlertKind.DOOR_HELD_OPEN]


class Site:
    """The agent, its simulated door inputs, and the processor behind them."""

    def __init__(self, redis_client, tmp_path) -> None:
        relay = OutboxRelay(redis_client, fanout=None)
        relay.ensure_feed()
        self.version = int(redis_client.get(names.CREDENTIALS_VERSION))
        self.processor = ReaderEventProcessor(redis_client, fanout=None, consumer="t", block_ms=50)
        self.thread = threading.Thread(target=self._process)
        self.thread.start()
        self.doors = SimulatedSource([DOOR], lambda: [], rate=0)
        config = {
            "feed_keys": PUBLIC_KEYS,
            "redis_url": settings.REDIS_URL,
            "state_dir": str(tmp_path / "agent"),
            "heartbeat_s": 3600,
            "doors": [
                {
                    "device_id": DOOR,
                    "key_hex": device_key(DOOR).hex(),
                    "kind": "pedestrian_gate",
                    "direction": "in",
                    "unlock_s": 3,
                    "held_open_s": HELD_OPEN_S,
                }
            ],
        }
        self.agent = ReaderAgent(parse_config(config), client_factory(settings.REDIS_URL), sources=[self.doors])
        self.agent.start()
        wait_until(lambda: self.agent.cache.version == self.version, 20, "the signed snapshot")

    def _process(self) -> None:
        try:
            self.processor.run()
        finally:
            connection.close()

    def close(self) -> None:
        self.agent.close()
        self.processor.stopping.set()
        self.thread.join(20)


@pytest.fixture
def site(campus, redis_client, tmp_path):
    site = Site(redis_client, tmp_path)
    yield site
    site.close()


def _alert(kind: AlertKind) -> Alert | None:
    return Alert.objects.filter(kind=kind, subject=DOOR).first()


def _raised(kind: AlertKind) -> None:
    wait_until(lambda: (a := _alert(kind)) is not None and a.cleared_at is None, 15, f"the {kind} alert")


def _cleared(kind: AlertKind) -> None:
    wait_until(lambda: (a := _alert(kind)) is not None and a.cleared_at is not None, 15, f"{kind} cleared")


def test_a_door_opened_without_a_grant_is_forced_and_closing_clears_it(site, campus):
    # a refused card does not release the lock
    site.doors.present(DOOR, "DEADBEEF")  # decided at once, on this thread
    assert site.doors.locks.get(DOOR, False) is False
    site.doors.open_door(DOOR)
    _raised(AlertKind.DOOR_FORCED)
    alert = _alert(AlertKind.DOOR_FORCED)
    assert alert is not None and alert.severity == "critical" and alert.detail["code"] == envelopes.DOOR_FORCED
    # the reader itself is fine: the door's fault does not mark the device in fault
    assert Device.objects.get(code=DOOR).state != DeviceState.FAULT

    site.doors.close_door(DOOR)
    _cleared(AlertKind.DOOR_FORCED)
    assert _alert(AlertKind.DOOR_HELD_OPEN) is None  # a forced door is not also "held open"


def test_a_granted_passage_left_open_past_its_limit_is_held_open_and_closing_clears_it(site, campus):
    card = campus.cards[0]
    assert site.agent.tap(DOOR, card.uid).decision == Decision.ALLOW
    assert site.doors.locks[DOOR] is True  # the lock output released for the card
    site.doors.open_door(DOOR)
    _raised(AlertKind.DOOR_HELD_OPEN)
    held = _alert(AlertKind.DOOR_HELD_OPEN)
    assert held is not None and (held.last_at - held.first_at).total_seconds() < 1
    assert _alert(AlertKind.DOOR_FORCED) is None

    site.doors.close_door(DOOR)
    _cleared(AlertKind.DOOR_HELD_OPEN)
    assert site.doors.locks[DOOR] is False  # relocked as soon as the door shut
    assert _alert(AlertKind.DOOR_FORCED) is None


def test_an_exit_request_then_opening_raises_nothing_and_tamper_is_an_alert(site, campus):
    site.doors.press_exit(DOOR)
    assert site.doors.locks[DOOR] is True
    site.doors.open_door(DOOR)
    site.doors.close_door(DOOR)  # within held_open_s
    # the tamper switch: its alert arrives after everything before it — so by then a door
    # alert from the passage above would be there too
    site.doors.tamper(DOOR)
    _raised(AlertKind.TAMPER)
    assert not Alert.objects.filter(kind__in=DOOR_KINDS).exists()
    site.doors.tamper(DOOR, active=False)
    _cleared(AlertKind.TAMPER)


def test_the_unlock_window_ends_and_a_later_opening_is_forced():
    """The state machine alone (a monotonic clock in seconds)."""
    door = DoorMonitor(unlock_s=5, held_open_s=30)
    assert door.release(0) == [] and door.lock_released
    assert door.tick(5.1) == [] and not door.lock_released  # nobody came: locked again
    [forced] = door.contact(True, 6)
    assert (forced.code, forced.cleared) == (envelopes.DOOR_FORCED, False)
    assert door.tick(100) == []  # forced, not also held open
    [cleared] = door.contact(False, 101)
    assert (cleared.code, cleared.cleared) == (envelopes.DOOR_FORCED, True)
    # a legitimate opening: held open once past the limit, once only, cleared on closing
    door.release(200)
    assert door.contact(True, 201) == []
    assert door.tick(230.9) == []
    assert [a.code for a in door.tick(231)] == [envelopes.DOOR_HELD_OPEN]
    assert door.tick(260) == []
    assert [(a.code, a.cleared) for a in door.contact(False, 262)] == [(envelopes.DOOR_HELD_OPEN, True)]
    assert not door.lock_released
