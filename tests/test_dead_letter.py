"""A malformed entry goes to the dead-letter stream with a counter; its neighbours are processed."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from ops.audit.models import AuditRecord
from ops.pipeline.processor import ReaderEventProcessor
from ops.registry.models import AccessEvent
from streams import consumer, envelopes, names, producer
from tests.factories import publish, tap

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]


def _run(redis_client):
    processor = ReaderEventProcessor(redis_client, fanout=None, consumer="t", block_ms=50)
    processor.run(max_idle_polls=2)
    return processor


def test_malformed_entries_are_dead_lettered_and_the_good_ones_around_them_are_kept(campus, redis_client):
    good = [tap(uid=campus.cards[i].uid, seq=i + 1) for i in range(6)]
    missing = json.loads(envelopes.dump(tap()))
    missing.pop("decision")
    unknown = json.loads(envelopes.dump(tap()))
    unknown["type"] = "selfdestruct"
    bad: list[dict[str, bytes | str]] = [
        {names.FIELD: b"{this is not json"},
        {names.FIELD: json.dumps(missing)},
        {names.FIELD: json.dumps(unknown)},
        {names.FIELD: b"x" * 1_000_000},  # huge payload
        {"wrong_field": envelopes.dump(good[0])},  # no envelope at all
    ]
    publish(redis_client, good[:2])
    for fields in bad:
        producer.publish_raw(redis_client, fields)
    publish(redis_client, good[2:])

    processor = _run(redis_client)

    assert AccessEvent.objects.count() == 6
    assert set(AccessEvent.objects.values_list("event_id", flat=True)) == {g.event_id for g in good}
    dead = consumer.dead_letters(redis_client)
    assert len(dead) == len(bad)
    assert all(fields[b"reason"].startswith(b"invalid") for _, fields in dead)
    assert consumer.counters(redis_client)["dead_lettered"] == len(bad)
    assert processor.stats["dead_lettered"] == len(bad)
    # the huge payload is kept only truncated, and nothing is left pending
    assert max(len(v) for _, f in dead for v in f.values()) <= 8192
    assert consumer.pending(redis_client) == 0


def test_an_entry_that_keeps_failing_is_dead_lettered_after_retries(campus, redis_client):
    good = tap(uid=campus.cards[0].uid)
    poison = tap(uid=campus.cards[1].uid)
    publish(redis_client, [good, poison])

    class Flaky(ReaderEventProcessor):
        def handle(self, batch):
            if any(e.value.event.event_id == poison.event_id for e in batch):
                raise RuntimeError("database says no")
            super().handle(batch)

    processor = Flaky(redis_client, fanout=None, consumer="t", block_ms=50, max_failures=3)
    processor.run(max_idle_polls=5)

    assert list(AccessEvent.objects.values_list("event_id", flat=True)) == [good.event_id]
    dead = consumer.dead_letters(redis_client)
    assert len(dead) == 1 and b"failed 3x" in dead[0][1][b"reason"]
    assert consumer.pending(redis_client) == 0


def test_the_same_entry_delivered_twice_makes_one_row(campus, redis_client):
    event = tap(uid=campus.cards[0].uid)
    publish(redis_client, [event, event])
    _run(redis_client)
    publish(redis_client, [event])
    _run(redis_client)
    assert AccessEvent.objects.filter(event_id=event.event_id).count() == 1


def test_a_batch_that_fails_after_its_checks_leaves_no_trace_and_its_good_entries_are_stored(campus, redis_client):
    """The device checks run before the insert; when the batch then fails, its retry must find the
    devices as they were — or it takes the batch's own taps for duplicates and drops them."""
    good = [tap(uid=campus.cards[i].uid, seq=i + 1) for i in range(4)]
    poison = tap(uid=campus.cards[9].uid, seq=5)
    publish(redis_client, [*good, poison])

    class FailsOnInsert(ReaderEventProcessor):
        def _persist_taps(self, taps, states):
            if any(t.event_id == poison.event_id for t, _device in taps):
                raise RuntimeError("the insert failed")
            return super()._persist_taps(taps, states)

    processor = FailsOnInsert(redis_client, fanout=None, consumer="t", block_ms=50, max_failures=2)
    processor.run(max_idle_polls=5)

    assert set(AccessEvent.objects.values_list("event_id", flat=True)) == {g.event_id for g in good}
    assert len(consumer.dead_letters(redis_client)) == 1
    assert not redis_client.hget(names.COUNTERS, "duplicate")  # none of the good ones taken for a resend


def test_dead_letters_are_listed_and_replayed_once_what_failed_them_is_fixed(campus, redis_client, capsys):
    """`campuscard deadletters list|replay`: the entry comes back, is stored, and the replay is
    audited; the dead-letter stream is empty after."""
    stuck = tap(uid=campus.cards[2].uid, seq=1)
    publish(redis_client, [stuck])

    class Broken(ReaderEventProcessor):
        def _persist_taps(self, taps, states):
            raise RuntimeError("a bug, fixed since")

    Broken(redis_client, fanout=None, consumer="t", block_ms=50, max_failures=1).run(max_idle_polls=3)
    assert AccessEvent.objects.count() == 0
    call_command("deadletters", "list")
    out = capsys.readouterr().out
    assert "1 dead-lettered" in out and "failed 1x" in out
    letter_id = consumer.dead_letter_list(redis_client)[0].id

    call_command("deadletters", "replay", letter_id, "--basis", "修复后重放")
    _run(redis_client)  # the fixed processor
    assert list(AccessEvent.objects.values_list("event_id", flat=True)) == [stuck.event_id]
    assert consumer.dead_letter_list(redis_client) == []
    record = AuditRecord.objects.get(action="events.dead_letter_replay")
    assert record.object_id == letter_id and record.basis == "修复后重放"
