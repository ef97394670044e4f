"""The edge decision: every reason code the simulator and agents emit today, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from readers.decide import Credential, Door, decide
from streams.cards import CardStatus, CardType, DeviceKind
from streams.reasons import Decision, Reason

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
GATE = Door("G-E-01", DeviceKind.PEDESTRIAN_GATE)
DORM1 = Door("D1-01", DeviceKind.DORM_DOOR, building="D1")
LIBRARY = Door("L-GATE-01", DeviceKind.LIBRARY_READER)
VEHICLE = Door("V-E-IN", DeviceKind.VEHICLE_GATE)


def card(**overrides) -> Credential:
    base = dict(uid="A0000001", card_type=CardType.STUDENT, status=CardStatus.ACTIVE,
                blacklisted=False, valid_from=NOW - timedelta(days=10), valid_until=None,
                dorm_building="D1")
    return Credential(**{**base, **overrides})


@pytest.mark.parametrize(
    ("credential", "door", "expected"),
    [
        (card(), GATE, Reason.OK),
        (None, GATE, Reason.UNKNOWN_CARD),
        (card(status=CardStatus.LOST), GATE, Reason.LOST),                     # R-USE-1
        (card(status=CardStatus.REPLACED), GATE, Reason.CANCELLED),            # R-USE-2
        (card(status=CardStatus.CANCELLED), GATE, Reason.CANCELLED),           # R-END-3
        (card(blacklisted=True), GATE, Reason.BLACKLISTED),
        (card(valid_from=NOW + timedelta(hours=1)), GATE, Reason.NOT_YET_VALID),
        (card(valid_until=NOW), GATE, Reason.EXPIRED),                         # R-END-4
        (card(card_type=CardType.TEMPORARY, dorm_building=None), LIBRARY,
         Reason.FUNCTION_NOT_ALLOWED),                                         # R-CARD-7
        (card(card_type=CardType.TEMPORARY, dorm_building=None), DORM1,
         Reason.FUNCTION_NOT_ALLOWED),                                         # R-CARD-7
        (card(dorm_building="D2"), DORM1, Reason.FUNCTION_NOT_ALLOWED),        # not a resident
        (card(), DORM1, Reason.OK),
        (card(), VEHICLE, Reason.FUNCTION_NOT_ALLOWED),                        # R-CARD-2
        (card(card_type=CardType.STAFF, dorm_building=None), VEHICLE, Reason.OK),
        (card(card_type=CardType.TEMPORARY, dorm_building=None), GATE, Reason.OK),
    ],
)
def test_decide(credential, door, expected):
    decision, reason = decide(credential, door, NOW)
    assert reason == expected
    assert decision == (Decision.ALLOW if expected == Reason.OK else Decision.DENY)


def test_status_outranks_validity_so_the_reason_is_the_one_to_act_on():
    lost_and_expired = card(status=CardStatus.LOST, valid_until=NOW - timedelta(days=1))
    assert decide(lost_and_expired, GATE, NOW) == (Decision.DENY, Reason.LOST)
