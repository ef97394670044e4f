"""The simulated campus has a realistic rhythm and realistic trouble."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from readers import rhythm
from readers.decide import Credential, Door
from readers.simulator import CampusSimulator, Trouble
from streams import envelopes
from streams.cards import CardStatus, CardType, DeviceKind
from streams.reasons import Decision, Reason

START = datetime(2026, 11, 27, tzinfo=UTC) - timedelta(days=100)


def _campus():
    creds = [
        Credential(
            uid=f"{i:08X}",
            card_type=CardType.STUDENT,
            status=CardStatus.ACTIVE,
            blacklisted=False,
            valid_from=START,
            valid_until=None,
            dorm_building="D1",
        )
        for i in range(200)
    ]
    creds += [
        Credential(
            uid="DEAD0001",
            card_type=CardType.STUDENT,
            status=CardStatus.LOST,
            blacklisted=False,
            valid_from=START,
            valid_until=None,
        ),
        Credential(
            uid="DEAD0002",
            card_type=CardType.STAFF,
            status=CardStatus.ACTIVE,
            blacklisted=True,
            valid_from=START,
            valid_until=None,
        ),
    ]
    doors = [Door(f"G-{i}", DeviceKind.PEDESTRIAN_GATE) for i in range(4)]
    doors += [Door(f"D1-{i}", DeviceKind.DORM_DOOR, building="D1") for i in range(3)]
    doors += [Door("L-1", DeviceKind.LIBRARY_READER), Door("V-1", DeviceKind.VEHICLE_GATE)]
    return creds, doors


def test_gates_peak_at_class_change_and_dorms_in_the_evening():
    gate = DeviceKind.PEDESTRIAN_GATE
    dorm = DeviceKind.DORM_DOOR
    assert rhythm.weight(gate, 7 * 60 + 45) > 5 * rhythm.weight(gate, 10 * 60 + 30)
    assert rhythm.weight(gate, 3 * 60) < 0.05
    assert rhythm.weight(dorm, 21 * 60 + 30) > 3 * rhythm.weight(dorm, 15 * 60)
    assert rhythm.share_in(dorm, 22 * 60) > 0.8  # evening returns are entries


def test_the_simulator_produces_taps_heartbeats_denials_faults_and_silences():
    creds, doors = _campus()
    trouble = Trouble(device_fault_per_s=0.02, device_silence_per_s=0.02, fault_seconds=(1, 3), silence_seconds=(2, 4))
    sim = CampusSimulator(
        creds, doors, rate=200, heartbeat_s=1.0, trouble=trouble, seed=5, rhythmic=False, wall=lambda: 1_800_000_000.0
    )
    events = []
    wall = 1_800_000_000.0
    for _ in range(600):  # 60 simulated seconds in 0.1 s steps
        wall += 0.1
        events.extend(sim.step(wall, 0.1))
    taps = [e for e in events if isinstance(e, envelopes.Tap)]
    assert 11_000 < len(taps) < 13_000
    reasons = {t.reason for t in taps}
    assert {Reason.OK, Reason.UNKNOWN_CARD, Reason.LOST, Reason.BLACKLISTED} <= reasons
    assert all((t.decision == Decision.ALLOW) == (t.reason == Reason.OK) for t in taps)
    assert any(isinstance(e, envelopes.Heartbeat) for e in events)
    faults = [e for e in events if isinstance(e, envelopes.Fault)]
    assert any(not f.cleared for f in faults) and any(f.cleared for f in faults)
    # a device that went silent came back with a new boot epoch (it rebooted)
    epochs: dict[str, set[int]] = {}
    for e in events:
        epochs.setdefault(e.device_id, set()).add(e.boot_epoch)
    assert any(len(v) > 1 for v in epochs.values())
    # every message round-trips through the contract
    assert all(envelopes.parse(envelopes.dump(e)) == e for e in events[:500])
