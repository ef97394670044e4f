"""The reader agent's credential cache: deltas in order, a gap raises, a snapshot replaces
everything, lookups return typed Credentials, and everything survives a reopen."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from readers.agent.cache import CredentialCache, GapError, credential_from_payload
from readers.decide import Credential, Door, decide
from streams.cards import CardStatus, CardType, DeviceKind
from streams.reasons import Decision, Reason

GATE = Door("G-T-01", DeviceKind.PEDESTRIAN_GATE)
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def card(uid: str, status: str = "active", **changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "uid": uid,
        "card_type": "student",
        "status": status,
        "blacklisted": False,
        "valid_from": "2025-09-01T00:00:00+00:00",
        "valid_until": "2029-07-01T00:00:00+00:00",
        "dorm_building": "D1",
    }
    payload.update(changes)
    return payload


@pytest.fixture
def cache(tmp_path):
    c = CredentialCache(tmp_path / "credentials.sqlite3")
    yield c
    c.close()


def test_empty_cache_is_version_zero_and_knows_no_card(cache):
    assert cache.version == 0
    assert cache.lookup("04A1B2C3") is None
    assert decide(cache.lookup("04A1B2C3"), GATE, NOW).reason == Reason.UNKNOWN_CARD


def test_deltas_apply_in_order_and_old_ones_are_ignored(cache):
    assert cache.apply(1, card("04A1B2C3"))
    assert cache.apply(2, card("04D4E5F6"))
    assert cache.version == 2
    assert decide(cache.lookup("04A1B2C3"), GATE, NOW).decision == Decision.ALLOW
    # R-USE-1: the loss report arrives as the next version; the card stops at once
    assert cache.apply(3, card("04A1B2C3", "lost"))
    assert decide(cache.lookup("04A1B2C3"), GATE, NOW).reason == Reason.LOST
    # a redelivered old version changes nothing
    assert not cache.apply(2, card("04A1B2C3"))
    assert not cache.apply(3, card("04A1B2C3"))
    assert cache.version == 3
    assert cache.lookup("04A1B2C3").status == CardStatus.LOST


def test_a_gap_raises_and_changes_nothing(cache):
    cache.apply(1, card("04A1B2C3"))
    with pytest.raises(GapError) as info:
        cache.apply(3, card("04A1B2C3", "lost"))
    assert (info.value.have, info.value.got) == (1, 3)
    assert cache.version == 1
    assert cache.lookup("04A1B2C3").status == CardStatus.ACTIVE


def test_snapshot_replaces_everything(cache):
    cache.apply(1, card("04A1B2C3"))
    cache.apply(2, card("04D4E5F6"))
    cache.replace_all(40, {"0499AABB": card("0499AABB"), "04A1B2C3": card("04A1B2C3", "cancelled")})
    assert cache.version == 40
    assert len(cache) == 2
    assert cache.lookup("04D4E5F6") is None  # not in the snapshot: gone
    assert cache.lookup("0499AABB") is not None
    assert decide(cache.lookup("04A1B2C3"), GATE, NOW).reason == Reason.CANCELLED
    cache.apply(41, card("04D4E5F6"))  # deltas go on from the snapshot's version
    with pytest.raises(GapError):
        cache.apply(43, card("04D4E5F6"))


def test_lookup_returns_typed_credentials(cache):
    cache.apply(
        1,
        card(
            "04a1b2c3",
            card_type="staff",
            blacklisted=True,
            dorm_building=None,
            valid_from="2025-09-01T08:00:00+08:00",
            valid_until=None,
        ),
    )
    cred = cache.lookup("04A1B2C3")
    assert cache.lookup("04a1b2c3") == cred  # uids are upper-case hex either way
    assert isinstance(cred, Credential)
    assert cred.uid == "04A1B2C3"
    assert type(cred.card_type) is CardType and cred.card_type == CardType.STAFF
    assert type(cred.status) is CardStatus and cred.status == CardStatus.ACTIVE
    assert cred.blacklisted is True
    assert cred.valid_from == datetime(2025, 9, 1, 0, 0, tzinfo=UTC)
    assert cred.valid_from.utcoffset() == timedelta(hours=8)
    assert cred.valid_until is None
    assert cred.dorm_building is None


def test_naive_datetimes_are_utc():
    cred = credential_from_payload(card("04A1B2C3", valid_from="2025-09-01T00:00:00"))
    assert cred.valid_from == datetime(2025, 9, 1, tzinfo=UTC)


def test_a_malformed_delta_fails_closed_but_advances(cache):
    cache.apply(1, card("04A1B2C3"))
    assert cache.apply(2, card("04A1B2C3", status="vanished"))
    assert cache.version == 2
    assert cache.lookup("04A1B2C3") is None  # unknown here: denied, not allowed on stale data
    assert cache.apply(3, {"status": "lost"})  # no uid at all: skipped, version still advances
    assert cache.version == 3
    with pytest.raises(ValueError, match="valid_from"):
        credential_from_payload(card("04A1B2C3", valid_from=None))


def test_everything_survives_a_reopen(tmp_path):
    path = tmp_path / "credentials.sqlite3"
    with CredentialCache(path) as c:
        c.replace_all(10, {"04A1B2C3": card("04A1B2C3"), "04D4E5F6": card("04D4E5F6")})
        c.apply(11, card("04A1B2C3", "lost"))
        before = {uid: c.lookup(uid) for uid in ("04A1B2C3", "04D4E5F6")}
    with CredentialCache(path) as c:
        assert c.version == 11
        assert {uid: c.lookup(uid) for uid in before} == before


def test_lookup_is_fast(cache):
    uids = [f"04{i:08X}" for i in range(20_000)]
    cache.replace_all(1, {u: card(u) for u in uids})
    start = time.perf_counter()
    for u in uids:
        cache.lookup(u)
    per_lookup = (time.perf_counter() - start) / len(uids)
    assert per_lookup < 50e-6, f"{per_lookup * 1e6:.1f} µs per lookup"
