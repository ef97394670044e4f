"""The PC/SC reader path on the real stack: pcscd + the vpcd virtual reader driver + pyscard,
with emulated cards (tests.card_emulator) placed on and lifted off the virtual readers."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from readers.sources import CardPresented, SourceError
from readers.sources.pcsc import PcscSource, read_one_uid
from tests import pcsc
from tests.card_emulator import EmulatedCard, answer_apdu
from tests.pcsc import ensure_pcsc_stack, vpcd_port, wait_card_state

pytestmark = pytest.mark.pcsc
pcsc_reader = pcsc.pcsc_reader  # the fixture: defined in tests/pcsc.py, registered here


def test_emulator_answers_get_uid_and_refuses_the_rest():
    uid = bytes.fromhex("04A1B2C3D4")
    assert answer_apdu(uid, bytes.fromhex("FFCA000000")) == uid + b"\x90\x00"
    assert answer_apdu(uid, bytes.fromhex("FFCA000004")) == uid[:4] + b"\x90\x00"
    assert answer_apdu(uid, bytes.fromhex("FFCA010000")) == b"\x6a\x81"
    assert answer_apdu(uid, bytes.fromhex("00A4040000")) == b"\x6d\x00"


def test_read_one_uid_returns_the_uid_of_the_card_placed(pcsc_reader):
    card = EmulatedCard("04a1b2c3d4", port=vpcd_port(pcsc_reader))
    try:
        with ThreadPoolExecutor(1) as pool:
            before = datetime.now(UTC)
            pending = pool.submit(read_one_uid, 10.0, pcsc_reader)
            time.sleep(0.5)  # the desk is waiting; then the card is put down
            assert not pending.done()
            placed = time.monotonic()
            card.insert()
            presented = pending.result(timeout=15)
            took = time.monotonic() - placed
        assert presented == CardPresented(reader=pcsc_reader, uid="04A1B2C3D4", at=presented.at)
        assert presented.at.tzinfo is UTC and before <= presented.at <= datetime.now(UTC)
        assert took < 3, f"placing the card to reading its UID took {took:.2f} s"
        assert bytes.fromhex("FFCA000000") in card.commands
    finally:
        card.close()


def test_read_one_uid_times_out_without_a_card(pcsc_reader):
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        read_one_uid(1.0, pcsc_reader)
    assert caught.value.permanent is False
    assert 0.9 <= time.monotonic() - started < 5


def test_read_one_uid_on_a_reader_that_does_not_exist_is_permanent(pcsc_reader):
    with pytest.raises(SourceError) as caught:
        read_one_uid(1.0, "No Such Reader 00 00")
    assert caught.value.permanent is True


def test_source_reports_two_cards_in_turn(pcsc_reader):
    events: queue.Queue[CardPresented] = queue.Queue()
    errors: list[SourceError] = []
    first = EmulatedCard("04A1B2C3D4", port=vpcd_port(pcsc_reader))
    second = EmulatedCard("04112233445566", port=vpcd_port(pcsc_reader))  # a 7-byte UID
    source = PcscSource(readers=[pcsc_reader], on_error=errors.append)
    source.start(events.put)
    try:
        first.insert()
        got = events.get(timeout=10)
        assert (got.reader, got.uid) == (pcsc_reader, "04A1B2C3D4")
        assert got.at.tzinfo is UTC

        first.remove()
        # A person lifts one card and puts the next down well after pcscd's presence poll
        # (~0.4 s); the monitor does not see a swap of two same-type cards faster than that.
        wait_card_state(pcsc_reader, present=False)
        second.insert()
        got = events.get(timeout=10)
        assert (got.reader, got.uid) == (pcsc_reader, "04112233445566")

        time.sleep(0.5)
        assert events.empty(), f"unexpected extra reports: {list(events.queue)}"
        assert errors == []
    finally:
        source.stop()
        first.close()
        second.close()
    # Stopped: a card placed now is not reported.
    with EmulatedCard("0499", port=vpcd_port(pcsc_reader)) as late:
        late.insert()
        wait_card_state(pcsc_reader, present=True)
        time.sleep(0.3)
    assert events.empty()


def test_source_names_the_reader_when_a_host_has_several(pcsc_reader):
    readers = ensure_pcsc_stack()
    assert len(readers) >= 2, f"vpcd should expose two readers, got {readers}"
    door_a, door_b = readers[:2]
    wait_card_state(door_b, present=False)
    seen: dict[str, str] = {}
    done = threading.Event()

    def record(event: CardPresented) -> None:
        seen[event.reader] = event.uid
        if len(seen) == 2:
            done.set()

    source = PcscSource()  # every reader of the host
    cards = [EmulatedCard("04AAAAAAAA", port=vpcd_port(door_a)), EmulatedCard("04BBBBBBBB", port=vpcd_port(door_b))]
    source.start(record)
    try:
        for card in cards:
            card.insert()
        assert done.wait(10), f"reports so far: {seen}"
    finally:
        source.stop()
        for card in cards:
            card.close()
    assert seen == {door_a: "04AAAAAAAA", door_b: "04BBBBBBBB"}
