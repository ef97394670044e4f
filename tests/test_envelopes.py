"""The event contract: envelopes round-trip through JSON and reject anything else."""

from __future__ import annotations

import json

import pytest

from streams import envelopes
from tests.factories import tap


def test_a_tap_round_trips_through_json():
    event = tap(seq=7)
    assert envelopes.parse(envelopes.dump(event)) == event


def test_heartbeat_and_fault_round_trip():
    hb = envelopes.Heartbeat(
        event_id=envelopes.new_id(),
        device_id="G-E-01",
        boot_epoch=3,
        seq=1,
        occurred_at=tap().occurred_at,
        credential_version=12,
        buffered=4,
    )
    fault = envelopes.Fault(
        event_id=envelopes.new_id(),
        device_id="G-E-01",
        boot_epoch=3,
        seq=2,
        occurred_at=tap().occurred_at,
        code="motor_jam",
    )
    for event in (hb, fault):
        assert envelopes.parse(envelopes.dump(event)) == event


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda d: d.update(extra_field=1), "extra"),
        (lambda d: d.pop("card_uid"), "missing"),
        (lambda d: d.update(type="teleport"), "unknown type"),
        (lambda d: d.update(occurred_at="2026-01-01T00:00:00"), "naive time"),
        (lambda d: d.update(reason="because"), "unknown reason"),
        (lambda d: d.update(card_uid="zz; DROP TABLE"), "bad uid"),
        (lambda d: d.update(seq=-1), "negative seq"),
    ],
)
def test_malformed_envelopes_are_rejected(mutate, why):
    data = json.loads(envelopes.dump(tap()))
    mutate(data)
    with pytest.raises(envelopes.InvalidEnvelope):
        envelopes.parse(json.dumps(data))


def test_huge_and_broken_payloads_are_rejected_before_parsing():
    with pytest.raises(envelopes.InvalidEnvelope, match="too large"):
        envelopes.parse(b"{" + b" " * envelopes.MAX_ENTRY_BYTES + b"}")
    with pytest.raises(envelopes.InvalidEnvelope):
        envelopes.parse(b"{not json")
