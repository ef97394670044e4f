"""Device supervision in the processor (R-DEV-1, R-DEV-2, R-SEC-5): every message must carry a
valid HMAC under its registered device's key and advance that device's own sequence.

- unknown device, bad or missing MAC → alert, nothing persisted;
- a fresh message whose (boot_epoch, seq) is not after the last one seen → replay, rejected;
- a jump in seq → sequence gap (messages lost between reader and server), accepted;
- an older boot epoch that keeps advancing after a newer one appeared → the same device id is
  streaming from two agents at once, rejected;
- a ``tamper`` fault → tamper alert; ``door_forced`` / ``door_held_open`` (the agent's door
  inputs, issue 17) → their alerts; other faults → fault alert. A cleared door fault clears its
  own alert; any other cleared fault clears the device's fault and tamper alerts.

Redelivered entries (after a processor crash or a change of owner) skip the sequence check: the
unique event id already makes them idempotent; they only move the sequence forward. Sequence state
is kept in memory, written to the device row in the transaction of the batch that moved it, and to the
partition's state hash in Redis with every acknowledgement (issue 14): the processor that takes a
partition over resumes each of its devices from the further of the two — the hash carries the
superseded epochs, the row is never behind what was stored (a Redis restored from its AOF can be).
The row only ever moves forward (``advance_sequences``): a processor that lost its lease mid-batch
cannot pull it back under the new owner.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ops.alerts.choices import AlertKind, AlertStatus
from ops.alerts.models import Alert
from ops.alerts.services import AlertBuffer, clear_condition, raise_alert
from ops.push import push
from ops.registry.choices import DeviceApproval, DeviceState
from ops.registry.lifecycle.choices import Topic
from ops.registry.lifecycle.models import OutboxMessage
from ops.registry.models import AccessEvent, Device
from streams import envelopes, names, signing
from streams.connect import StreamClient
from streams.credentials import FORGED_FAULT
from streams.frames import Signed


@dataclass
class SeqState:
    epoch: int
    last: int
    others: dict[int, int] = field(default_factory=dict)  # superseded epochs → their last seq
    dirty: bool = False

    def dump(self) -> str:
        """As kept in the partition's state hash (the last few superseded epochs only)."""
        others = dict(sorted(self.others.items())[-KEPT_EPOCHS:])
        return json.dumps([self.epoch, self.last, others], separators=(",", ":"))

    @classmethod
    def load(cls, text: bytes | str) -> SeqState:
        epoch, last, others = json.loads(text)
        return cls(int(epoch), int(last), {int(k): int(v) for k, v in others.items()})


KEPT_EPOCHS = 4
RECENT_IDS = 200_000


# a fault code with an alert of its own; every other code is a device fault (R-DEV-3)
_FAULT_KINDS = {
    envelopes.TAMPER: AlertKind.TAMPER,
    FORGED_FAULT: AlertKind.FORGED_CREDENTIAL,  # the agent refused an unsigned or forged card change (issue 12)
    envelopes.DOOR_FORCED: AlertKind.DOOR_FORCED,  # issue 17: from the agent's door inputs
    envelopes.DOOR_HELD_OPEN: AlertKind.DOOR_HELD_OPEN,
}


def _signed_by(signed: Signed, key: bytes | None, previous: bytes | None) -> bool:
    return any(k is not None and signing.verify(k, signed.raw, signed.mac) for k in (key, previous))


def kinds_cleared_by(code: str) -> list[AlertKind]:
    """The alert kinds a cleared fault with this code clears at its device: a door's own (a
    closed door says nothing about a tamper switch); for any other code the device's fault and
    tamper alerts, as before door faults existed (a reader's "all clear")."""
    if code in envelopes.DOOR_CODES:
        return [_FAULT_KINDS[code]]
    return [AlertKind.DEVICE_FAULT, AlertKind.TAMPER]


class DeviceSupervisor:
    def __init__(self, client: StreamClient, alerts: AlertBuffer) -> None:
        self.redis = client
        self.alerts = alerts
        self.state: dict[int, SeqState] = {}
        # event id → MAC of recently admitted messages: an agent that resends a whole batch
        # whose reply it lost sends the same bytes and MAC again — a duplicate, not a replay
        self.recent: OrderedDict[object, bytes | None] = OrderedDict()
        # what a batch changed, to undo it if the batch is not stored (its retry must find the
        # devices as they were, or it would take its own taps for duplicates and drop them)
        self._undo_states: dict[int, SeqState | None] | None = None
        self._undo_recent: list[object] = []

    def begin_batch(self) -> None:
        self._undo_states, self._undo_recent = {}, []

    def commit_batch(self) -> None:
        self._undo_states, self._undo_recent = None, []

    def rollback_batch(self) -> None:
        """The batch was not stored: every device back to where it was before it."""
        for device_id, st in (self._undo_states or {}).items():
            if st is None:
                self.state.pop(device_id, None)
            else:
                self.state[device_id] = st
        for event_id in self._undo_recent:
            self.recent.pop(event_id, None)
        self.commit_batch()

    def _before_change(self, device_id: int) -> None:
        if self._undo_states is not None and device_id not in self._undo_states:
            st = self.state.get(device_id)
            self._undo_states[device_id] = (
                None if st is None else SeqState(st.epoch, st.last, dict(st.others), st.dirty)
            )

    def _count(self, what: str) -> None:
        self.redis.hincrby(names.COUNTERS, what, 1)

    def _alert(
        self, kind: AlertKind, subject: str, at: datetime, detail: dict[str, Any], device_id: int | None = None
    ) -> None:
        """Count the message under the alert's kind and raise (or repeat) that alert."""
        self._count(kind.value)
        self.alerts.add(kind=kind, subject=subject, device_id=device_id, at=at, detail=detail)

    def unknown_device(self, signed: Signed, at: datetime) -> None:
        detail = {"event_id": str(signed.event.event_id)}
        self._alert(AlertKind.UNKNOWN_DEVICE, signed.event.device_id[:64], at, detail)

    def admit(
        self,
        device_id: int,
        code: str,
        key: bytes | None,
        signed: Signed,
        *,
        redelivered: bool,
        at: datetime,
        old_key: bytes | None = None,
    ) -> bool:
        """Whether to store the message: signed with the device's key (or, while a re-issued
        key's overlap lasts, its ``old_key`` — issue 20) and in its sequence (R-DEV-1)."""
        event = signed.event
        if not _signed_by(signed, key, old_key):
            detail = {"event_id": str(event.event_id), "type": event.type}
            self._alert(AlertKind.BAD_SIGNATURE, code, at, detail, device_id)
            return False
        self._before_change(device_id)
        st = self.state.get(device_id)
        if st is None:
            epoch, last = Device.objects.filter(pk=device_id).values_list("boot_epoch", "last_seq").get()
            st = self.state[device_id] = SeqState(epoch, last)
        if redelivered:  # committed maybe, checked already: it only moves the sequence on
            if (event.boot_epoch, event.seq) > (st.epoch, st.last):
                if event.boot_epoch > st.epoch and st.epoch:
                    st.others[st.epoch] = st.last
                st.epoch, st.last, st.dirty = event.boot_epoch, event.seq, True
            return True
        if event.boot_epoch > st.epoch:
            if st.epoch:
                st.others[st.epoch] = st.last
            st.epoch, st.last, st.dirty = event.boot_epoch, event.seq, True
            self._remember(event, signed)
            return True
        if event.boot_epoch == st.epoch:
            if event.seq <= st.last:
                if self._is_duplicate(event, signed):
                    self._count("duplicate")
                    return False
                self._reject(AlertKind.REPLAY, device_id, code, event, at, st)
                return False
            if event.seq > st.last + 1:
                gap = {"missing": event.seq - st.last - 1, "after": st.last, "boot_epoch": st.epoch}
                self._alert(AlertKind.SEQUENCE_GAP, code, at, gap, device_id)
            st.last, st.dirty = event.seq, True
            self._remember(event, signed)
            return True
        previous = st.others.get(event.boot_epoch)
        if previous is not None and event.seq > previous:
            st.others[event.boot_epoch] = event.seq
            self._reject(AlertKind.DUPLICATE_DEVICE, device_id, code, event, at, st)
            return False
        if self._is_duplicate(event, signed):  # an agent re-sending what it had before a restart
            self._count("duplicate")
            return False
        self._reject(AlertKind.REPLAY, device_id, code, event, at, st)
        return False

    def _remember(self, event: envelopes.Tap | envelopes.Heartbeat | envelopes.Fault, signed: Signed) -> None:
        self.recent[event.event_id] = signed.mac
        if self._undo_states is not None:
            self._undo_recent.append(event.event_id)
        if len(self.recent) > RECENT_IDS:
            self.recent.popitem(last=False)

    def _is_duplicate(self, event: envelopes.Tap | envelopes.Heartbeat | envelopes.Fault, signed: Signed) -> bool:
        """A validly signed message at or before the device's last sequence: the same message
        again (its agent re-sends until the acknowledgement says it is stored, issue 12), or a
        replay. A tap is a duplicate only if it is on record (a replayed tap that was never
        stored would fake a passage); a heartbeat or fault that old says nothing new and changes
        nothing, so it is counted as a duplicate, not alerted (after a processor restart its
        event id is no longer in memory)."""
        if event.event_id in self.recent:
            return self.recent[event.event_id] == signed.mac
        if isinstance(event, envelopes.Tap):  # after a processor restart: ask the record
            return AccessEvent.objects.filter(event_id=event.event_id).exists()
        return True

    def _reject(
        self,
        kind: AlertKind,
        device_id: int,
        code: str,
        event: envelopes.Tap | envelopes.Heartbeat | envelopes.Fault,
        at: datetime,
        st: SeqState,
    ) -> None:
        detail = {
            "event_id": str(event.event_id),
            "boot_epoch": event.boot_epoch,
            "seq": event.seq,
            "current_epoch": st.epoch,
            "current_seq": st.last,
        }
        self._alert(kind, code, at, detail, device_id)

    def clock_skew(
        self, device_id: int, code: str, event: envelopes.Tap | envelopes.Heartbeat | envelopes.Fault, at: datetime
    ) -> None:
        """An authentic message dated outside what the server accepts (issue 20): refused — a tap
        dated 2099 would sort above every real one, a heartbeat dated 2099 would keep its device
        "alive" for ever (R-DEV-2) — and alerted with what it claimed, so nothing is hidden."""
        detail: dict[str, Any] = {
            "event_id": str(event.event_id),
            "type": event.type,
            "occurred_at": event.occurred_at.isoformat(),
            "received_at": at.isoformat(),
            "skew_s": round((event.occurred_at - at).total_seconds()),
        }
        if isinstance(event, envelopes.Tap):
            detail.update(card_uid=event.card_uid, decision=event.decision.value, reason=event.reason.value)
        self._alert(AlertKind.CLOCK_SKEW, code, at, detail, device_id)

    def fault(self, device_id: int, code: str, fault: envelopes.Fault) -> None:
        if fault.cleared:
            return
        kind = _FAULT_KINDS.get(fault.code, AlertKind.DEVICE_FAULT)
        self.alerts.add(
            kind=kind,
            subject=code,
            device_id=device_id,
            at=fault.occurred_at,
            detail={"code": fault.code, "detail": fault.detail},
        )

    def states_of(self, device_ids: Iterable[int]) -> dict[str, str]:
        """The partition state hash's fields for these devices."""
        return {str(i): self.state[i].dump() for i in device_ids if i in self.state}

    def forget(self, device_ids: Iterable[int]) -> None:
        for device_id in device_ids:
            self.state.pop(device_id, None)

    def adopt(self, fields: dict[bytes, bytes]) -> None:
        """Take over the devices of a partition as its previous owner acknowledged them — or as
        their rows say, where those are further on. The state hash is written after the commit, so
        a Redis back from its AOF (``everysec``) may have lost its last writes while the row,
        written in the taps' own transaction, did not: resuming from the hash alone then takes the
        next fresh event for a sequence gap (CI caught it: "after 109, missing 1")."""
        adopted: dict[int, SeqState] = {}
        for key, value in fields.items():
            st = SeqState.load(value)
            st.dirty = True
            adopted[int(key)] = st
        if adopted:
            rows = Device.objects.filter(pk__in=list(adopted)).values_list("id", "boot_epoch", "last_seq")
            for device_id, epoch, last in rows:
                st = adopted[device_id]
                if (epoch, last) > (st.epoch, st.last):
                    if epoch > st.epoch and st.epoch:
                        st.others[st.epoch] = st.last
                    st.epoch, st.last = epoch, last
        self.state.update(adopted)

    def batch_states(self) -> dict[int, tuple[int, int]]:
        """``(boot_epoch, seq)`` of the devices the current batch moved on: written in the
        batch's own transaction, so the record never lags what was stored (a processor that
        starts without Redis's state hash resumes from it without false gaps)."""
        out = {}
        for device_id in self._undo_states or ():
            st = self.state.get(device_id)
            if st is not None and st.dirty:
                out[device_id] = (st.epoch, st.last)
                st.dirty = False
        return out

    def dirty_states(self) -> dict[int, tuple[int, int]]:
        out = {}
        for device_id, st in self.state.items():
            if st.dirty:
                out[device_id] = (st.epoch, st.last)
                st.dirty = False
        return out


SILENT_AFTER_INTERVALS = 3


def notify_devices(device_ids: Iterable[int]) -> None:
    """Tell the NIC desk these devices changed (state, last heard, credential version)."""

    ids = sorted(set(device_ids))
    if ids:
        push(names.GROUP_DEVICES, {"ids": ids})


def mark_silent_devices(*, now: datetime) -> int:
    """R-DEV-2: a device that has not been heard from for 3 heartbeat intervals has stopped
    uploading — mark it silent and raise an alert (once, until it is heard from again)."""
    from datetime import timedelta

    silent: list[int] = []
    alerts = AlertBuffer()
    candidates = (
        Device.objects.filter(last_seen_at__isnull=False, approval=DeviceApproval.APPROVED)  # removed: quiet by design
        .exclude(state=DeviceState.SILENT)
        .values_list("id", "code", "last_seen_at", "heartbeat_s")
    )
    for device_id, code, last_seen, interval in candidates:
        assert last_seen is not None  # the filter: heard from at least once
        if now - last_seen > timedelta(seconds=SILENT_AFTER_INTERVALS * interval):
            alerts.add(
                kind=AlertKind.UPLOAD_STOPPED,
                subject=code,
                device_id=device_id,
                at=now,
                detail={"last_seen": last_seen.isoformat(), "heartbeat_s": interval},
            )
            silent.append(device_id)
    if silent:  # one statement for all, however many fell silent together (a building's power cut)
        Device.objects.filter(id__in=silent).update(state=DeviceState.SILENT)
        alerts.flush()
    notify_devices(silent)
    return len(silent)


CREDENTIAL_LAG_S = 30


def mark_lagging_devices(*, now: datetime) -> int:
    """R-USE-1: a revocation must reach every door. A device heard from recently whose reported
    credential version is still below a version published more than 30 s ago has not received
    it (offline cache, broken sync): alarm, naming the version it holds and the one it lacks."""
    from datetime import timedelta

    due = (
        OutboxMessage.objects.filter(
            topic=Topic.CREDENTIAL, version__isnull=False, published_at__lte=now - timedelta(seconds=CREDENTIAL_LAG_S)
        )
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )
    if not due:
        return 0
    lagging = (
        Device.objects.filter(credential_version__lt=due, approval=DeviceApproval.APPROVED)
        .exclude(state=DeviceState.SILENT)
        .exclude(last_seen_at__isnull=True)
        .values_list("id", "code", "credential_version")
    )
    count = 0
    for device_id, code, held in lagging:
        raise_alert(
            kind=AlertKind.CREDENTIAL_LAG,
            subject=code,
            device_id=device_id,
            at=now,
            detail={"holds": held, "missing_up_to": due},
        )
        count += 1
    caught_up = Device.objects.filter(credential_version__gte=due).values_list("id", flat=True)
    clear_condition(
        kinds=[AlertKind.CREDENTIAL_LAG],
        device_ids=Alert.objects.filter(kind=AlertKind.CREDENTIAL_LAG, device_id__in=caught_up, cleared_at__isnull=True)
        .exclude(status=AlertStatus.RESOLVED)
        .values_list("device_id", flat=True),
        at=now,
    )
    return count
