"""The processor: reads reader events from Redis Streams, persists them idempotently, keeps
device liveness, and fans committed taps out to live pages once per batch (R-OPS-1)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from ops import redis_client
from ops.alerts.choices import AlertKind, AlertStatus
from ops.alerts.models import Alert
from ops.alerts.services import AlertBuffer, clear_condition
from ops.live_rows import DeviceInfo, HolderInfo, tap_row
from ops.pipeline.card_watch import CardWatch
from ops.pipeline.passback_share import ZoneShare
from ops.pipeline.routing import group_rows
from ops.pipeline.supervision import DeviceSupervisor, kinds_cleared_by, notify_devices
from ops.pipeline.taps import advance_sequences, insert_access_events, start_tap_batch, update_devices
from ops.push import Fanout
from ops.registry.choices import DeviceApproval, DeviceState
from ops.registry.models import Device
from streams import envelopes, frames, names
from streams.connect import StreamClient
from streams.consumer import Entry, StreamConsumer
from streams.frames import Signed

log = logging.getLogger(__name__)
SEEN_FLUSH_S = 1.0
KEYS_CHECK_S = 1.0  # a device key issued again is in use within this (issue 20)
KEYS_RELOAD_S = 60.0
ALERT_FLUSH_S = 0.2  # a blacklist hit must pop on the security desk within a second
# Under a high load (a read brought ≥ LINGER_FROM new events, not a full batch) the next read
# waits until LINGER_S after it began: fuller batches, 40 % less CPU per event at 4,500 taps/s,
# and a lower lag for it; a light load is read at once (``StreamConsumer``; docs/decisions.md)
LINGER_S = 0.1
LINGER_FROM = 100


class ReaderEventProcessor(StreamConsumer[Signed]):
    # the database away (stopped, restarted, a connection killed): keep the batch pending, retry
    transient_errors = (OperationalError, InterfaceError)

    def __init__(self, client: StreamClient, *, fanout: Fanout | None, **kwargs: Any) -> None:
        kwargs.setdefault("partitions", settings.EVENT_PARTITIONS)
        kwargs.setdefault("linger_s", LINGER_S)
        kwargs.setdefault("linger_from", LINGER_FROM)
        super().__init__(client, **kwargs)
        self.fanout = fanout
        self.alerts = AlertBuffer()
        self.supervisor = DeviceSupervisor(client, self.alerts)
        self._devices: dict[str, DeviceInfo] = {}
        self._keys: dict[str, bytes | None] = {}
        self._previous_keys: dict[str, tuple[bytes, datetime]] = {}
        self._keys_checked_at = 0.0
        self._keys_version: bytes | None = None
        self._registry_redis: redis.Redis | None = None
        self._sites: dict[int, str] = {}
        # issue 18, Build 2 (R-DEV-1, R-DEV-2): where each device was approved to be — its address
        # and place — and the devices with a "moved without approval" alert not yet cleared
        self._approved_places: dict[int, tuple[str | None, str]] = {}
        self._moved: set[int] = set()
        self._back_in_place: set[int] = set()
        self.watch = CardWatch(self.alerts)
        self.zone_share = ZoneShare()  # anti-passback passages to their zones (issue 17, Build 5)
        self._devices_loaded_at = 0.0
        self._seen: dict[int, datetime] = {}
        self._heartbeats: dict[int, tuple[int, int]] = {}
        self._seen_flushed_at = 0.0
        self._seen_failures = 0
        self._seen_failure_logged_at = 0.0
        self._alerts_flushed_at = 0.0
        self._touched: dict[int, dict[int, str]] = {}  # partition → devices (id → code) since its last ack
        self._partition_devices: dict[int, set[int]] = {}  # partition → every device seen in it
        self._oldest = timedelta(days=settings.TAP_RETENTION_DAYS)  # older: past keeping (R-SEC-1)

    def decode(self, fields: dict[bytes, bytes]) -> Signed:
        return frames.decode(fields)

    # -- device registry cache (devices change rarely; a miss reloads) ---------------------------
    def _device(self, code: str) -> DeviceInfo | None:
        if code not in self._devices and time.monotonic() - self._devices_loaded_at > 2.0:
            self._load_devices()  # a stream of unknown ids: reload ≤ 1/2 s
        return self._devices.get(code)

    def _keys_current(self) -> None:
        """A device key issued again or withdrawn takes effect within a second (issue 20): the
        registry raises a version in Redis after the commit, checked here at most once a second;
        every ``KEYS_RELOAD_S`` the registry is reloaded anyway (a raise lost with Redis)."""
        now = time.monotonic()
        if now - self._keys_checked_at < KEYS_CHECK_S:
            return
        self._keys_checked_at = now
        try:
            if self._registry_redis is None:  # REDIS_URL's (the stream may be on a cluster)
                self._registry_redis = redis_client.client()
            version = cast(bytes | None, self._registry_redis.get(names.DEVICE_KEYS_VERSION))
        except (redis.RedisError, OSError):
            version = self._keys_version  # the periodic reload still comes
        if version != self._keys_version or now - self._devices_loaded_at > KEYS_RELOAD_S:
            self._keys_version = version
            self._load_devices()

    def _load_devices(self) -> None:
        self._devices_loaded_at = time.monotonic()
        rows = list(
            Device.objects.values(
                "id",
                "code",
                "name",
                "kind",
                "building__code",
                "key_hex",
                "previous_key_hex",
                "previous_key_until",
                "site",
                "location",
                "approval",
                "approved_address",
            )
        )
        # R-DEV-1 (issue 18, Build 2): a device NIC has not approved (an install pending, or one
        # removed) is not in the registry the readers' messages are checked against: what it
        # sends is an unregistered device's (R-DEV-2), never trusted
        rows = [d for d in rows if d["approval"] == DeviceApproval.APPROVED]
        self._sites = {d["id"]: d["site"] or d["location"] for d in rows}
        self._approved_places = {d["id"]: (d["approved_address"], d["site"] or d["location"]) for d in rows}
        self._moved = set(
            Alert.objects.filter(kind=AlertKind.DEVICE_MOVED, cleared_at__isnull=True)
            .exclude(status=AlertStatus.RESOLVED)
            .values_list("device_id", flat=True)
        ) | {  # raised and not yet written
            item["device_id"] for (kind, _s), item in self.alerts.pending.items() if kind == AlertKind.DEVICE_MOVED
        }
        self._devices = {
            d["code"]: DeviceInfo(
                id=d["id"], code=d["code"], name=d["name"], kind=d["kind"], building=d["building__code"]
            )
            for d in rows
        }
        self._keys = {d["code"]: bytes.fromhex(d["key_hex"]) if d["key_hex"] else None for d in rows}
        self._previous_keys = {
            d["code"]: (bytes.fromhex(d["previous_key_hex"]), d["previous_key_until"])
            for d in rows
            if d["previous_key_hex"] and d["previous_key_until"]
        }

    def _previous_key(self, code: str, at: datetime) -> bytes | None:
        """The device's old key while its overlap lasts (``DEVICE_KEY_OVERLAP_S``), else None."""
        old = self._previous_keys.get(code)
        return old[0] if old is not None and at < old[1] else None

    def handle(self, batch: Sequence[Entry[Signed]]) -> None:
        self.supervisor.begin_batch()
        try:
            self._handle(batch)
        except BaseException:
            self.supervisor.rollback_batch()  # not stored: its retry must see the devices as before
            raise
        self.supervisor.commit_batch()

    def _handle(self, batch: Sequence[Entry[Signed]]) -> None:
        taps: list[tuple[envelopes.Tap, DeviceInfo]] = []
        seen: dict[int, datetime] = {}
        faults: list[tuple[envelopes.Fault, DeviceInfo]] = []
        heartbeats: dict[int, tuple[int, int]] = {}
        now = timezone.now()
        self._keys_current()
        ahead, behind = now + timedelta(seconds=settings.CLOCK_SKEW_MAX_S), now - self._oldest
        for entry in batch:
            signed = entry.value
            event = signed.event
            device = self._device(event.device_id)
            if device is None:  # R-DEV-2: an unregistered device is never recorded as traffic
                self.supervisor.unknown_device(signed, now)
                continue
            # its acknowledgement is written again even if this is a duplicate: an agent that
            # re-sends after Redis lost the key learns what is stored (issue 12)
            self._touched.setdefault(entry.partition, {})[device["id"]] = device["code"]
            self._partition_devices.setdefault(entry.partition, set()).add(device["id"])
            if not self.supervisor.admit(
                device["id"],
                device["code"],
                self._keys.get(device["code"]),
                signed,
                redelivered=entry.redelivered,
                at=now,
                old_key=self._previous_key(device["code"], now),
            ):
                continue  # forged, replayed or duplicated: alerted, never persisted
            if not behind <= event.occurred_at <= ahead:  # in sequence, but its clock is wrong
                self.supervisor.clock_skew(device["id"], device["code"], event, now)
                continue
            # "last heard" by the server's clock: a message a little ahead of it counts as now
            heard = min(event.occurred_at, now)
            seen[device["id"]] = max(seen.get(device["id"], heard), heard)
            if isinstance(event, envelopes.Tap):
                taps.append((event, device))
            elif isinstance(event, envelopes.Fault):
                faults.append((event, device))
            else:
                heartbeats[device["id"]] = (event.credential_version, event.buffered)
                if event.address is not None or event.site is not None:
                    self._check_place(event, device, now)
        rows: list[dict[str, object]] = []
        with transaction.atomic():
            watermark = 0
            # the devices' sequence state with the taps it judged: a failed batch leaves no trace
            states = self.supervisor.batch_states()
            if taps:
                rows, watermark = self._persist_taps(taps, states)
            else:
                advance_sequences(states)
            self._record_faults(faults)
            if rows and self.fanout is not None:
                # The batch's watermark, its highest id: with commits serialised, every row of
                # this batch has an id ≤ it and > the previous batch's, so a page that loaded a
                # snapshot up to id M applies exactly the batches whose watermark is > M.
                fanout, grouped = self.fanout, group_rows(rows)
                transaction.on_commit(lambda: fanout.publish(grouped, watermark=watermark))
        for device_id, when in seen.items():
            self._seen[device_id] = max(when, self._seen.get(device_id, when))
        self._heartbeats.update(heartbeats)

    def _check_place(self, beat: envelopes.Heartbeat, device: DeviceInfo, now: datetime) -> None:
        """R-DEV-1, R-DEV-2 (issue 18, Build 2): a heartbeat that says where its agent is, from
        another address or site than NIC approved, is "moved without approval". Heartbeats only
        (never per tap); what the heartbeat leaves out, or the device has no approved value for,
        is not compared. Back in its approved place: the alert's condition clears (a person
        still resolves it)."""
        approved_address, approved_site = self._approved_places.get(device["id"], (None, ""))
        address = str(beat.address) if beat.address is not None else None
        wrong_address = address is not None and bool(approved_address) and address != approved_address
        wrong_site = beat.site is not None and bool(approved_site) and beat.site != approved_site
        if wrong_address or wrong_site:
            detail = {
                "address": address,
                "approved_address": approved_address,
                "site": beat.site,
                "approved_site": approved_site,
            }
            self.alerts.add(
                kind=AlertKind.DEVICE_MOVED, subject=device["code"], device_id=device["id"], at=now, detail=detail
            )
            self._moved.add(device["id"])
            self._back_in_place.discard(device["id"])
        elif device["id"] in self._moved:
            self._back_in_place.add(device["id"])

    def on_transient_error(self, exc: BaseException) -> None:
        connection.close()  # a broken connection is not reused: the next try connects afresh

    def on_gained(self, partitions: Sequence[int]) -> None:
        """Resume the devices of newly owned partitions where their last acknowledgement left them.
        What this processor remembers of them from an earlier turn is stale (another owner went on
        in between): forgotten first, so a device missing from the state hash (Redis restarted
        empty) is read from its row, written with every batch."""
        for p in partitions:
            self.supervisor.forget(self._partition_devices.pop(p, ()))
        pipe = self.redis.pipeline(transaction=False)
        for p in partitions:
            pipe.hgetall(names.seq_state_key(p))
        for fields in pipe.execute():
            self.supervisor.adopt(fields)

    def on_ack(self, pipe: Any, partition: int) -> None:
        """With the XACK (after the commit): the partition's state hash for the next owner, and
        each device's end-to-end acknowledgement for its agent (issue 12, ``names.ack_key``)."""
        touched = self._touched.pop(partition, {})
        states = self.supervisor.states_of(touched)
        if states:
            pipe.hset(names.seq_state_key(partition), mapping=states)
        for device_id, code in touched.items():
            st = self.supervisor.state.get(device_id)
            if st is not None:
                pipe.set(names.ack_key(partition, code), f"{st.epoch}:{st.last}")

    def poll_once(self) -> int:
        processed = super().poll_once()
        if self.alerts.pending and (time.monotonic() - self._alerts_flushed_at >= ALERT_FLUSH_S or not processed):
            self._alerts_flushed_at = time.monotonic()
            self.alerts.flush()
        if self._seen and time.monotonic() - self._seen_flushed_at >= SEEN_FLUSH_S:
            self._flush_seen_safely()  # after the batch's commit, so it never delays a push
        return processed

    def _flush_seen_safely(self) -> None:
        """No message can stop the processor (issue 20): the liveness flush runs outside a
        batch's error handling, so what it cannot write is kept for the next try if the database
        is away (an outage: the caller's retry loop), and logged and dropped if it can never be
        written (the envelope bounds every number, so that is a defect, not an input)."""
        seen, beats = dict(self._seen), dict(self._heartbeats)
        self._seen_flushed_at = time.monotonic()
        try:
            with transaction.atomic():
                self._flush_seen()
        except self.transient_errors:
            for device_id, when in seen.items():  # back for the next flush, newest kept
                self._seen[device_id] = max(when, self._seen.get(device_id, when))
            self._heartbeats = {**beats, **self._heartbeats}
            raise
        except Exception as exc:
            # a stack trace the first time, then a line a minute: never a trace per second
            self._seen_failures += 1
            if self._seen_failures == 1:
                log.exception("device liveness not recorded for %d devices", len(seen), extra={"event": "seen.failed"})
            elif time.monotonic() - self._seen_failure_logged_at >= 60:
                log.error("device liveness still not recorded (%d failures): %r", self._seen_failures, exc)
            else:
                return
            self._seen_failure_logged_at = time.monotonic()
        else:
            self._seen_failures = 0

    def _persist_taps(
        self, taps: list[tuple[envelopes.Tap, DeviceInfo]], states: dict[int, tuple[int, int]]
    ) -> tuple[list[dict[str, object]], int]:
        """Insert the batch's new taps (and move ``states``, the devices' sequences, on); their
        live rows, in stream order, and the highest id."""
        cards = start_tap_batch({t.card_uid for t, _ in taps}, states)
        received = timezone.now()
        new_rows: list[tuple[object, ...]] = []
        unique: list[tuple[envelopes.Tap, DeviceInfo]] = []
        fresh: set[object] = set()
        for tap, device in taps:
            if tap.event_id in fresh:
                continue  # duplicated in the stream: one row only
            fresh.add(tap.event_id)
            unique.append((tap, device))
            card = cards.get(tap.card_uid)
            new_rows.append(
                (
                    tap.event_id,
                    device["id"],
                    card["id"] if card else None,
                    tap.card_uid,
                    card["holder_id"] if card else None,
                    tap.occurred_at,
                    received,
                    tap.direction.value,
                    tap.decision.value,
                    tap.reason.value,
                    ",".join(tap.flags),
                    tap.boot_epoch,
                    tap.seq,
                )
            )
        # one statement: the rows already stored (redelivered after a crash) are skipped by the
        # unique event id and not returned — they were watched and pushed the first time
        inserted = insert_access_events(new_rows, started=True)
        self.zone_share.publish_on_commit((t, d["code"]) for t, d in unique if t.event_id in inserted)
        live: list[dict[str, object]] = []
        for tap, device in unique:
            if tap.event_id not in inserted:
                continue
            card = cards.get(tap.card_uid)
            self.watch.observe(tap, device, self._sites.get(device["id"], ""), card)
            holder = (
                HolderInfo(
                    id=card["holder_id"],
                    name=card["holder__name"],
                    kind=card["holder__kind"],
                    dorm=card["holder__dorm_building__code"],
                )
                if card
                else None
            )
            live.append(
                tap_row(
                    event_id=str(tap.event_id),
                    occurred_at=tap.occurred_at,
                    device=device,
                    holder=holder,
                    card_uid=tap.card_uid,
                    direction=tap.direction,
                    decision=tap.decision,
                    reason=tap.reason,
                    flags=",".join(tap.flags),
                )
            )
        return live, max(inserted.values(), default=0)

    def _record_faults(self, faults: list[tuple[envelopes.Fault, DeviceInfo]]) -> None:
        """A fault (or its clearing) is written at once, in the batch's transaction. A door fault
        (forced, held open) is the door's, not the reader's: the device's state stays as it is."""
        for fault, device in faults:  # the last word per device wins
            if fault.code not in envelopes.DOOR_CODES:
                state = DeviceState.ONLINE if fault.cleared else DeviceState.FAULT
                Device.objects.filter(id=device["id"]).update(state=state)
            self.supervisor.fault(device["id"], device["code"], fault)
            if fault.cleared:
                clear_condition(kinds=kinds_cleared_by(fault.code), device_ids=[device["id"]], at=fault.occurred_at)
        if faults:
            notify_devices(device["id"] for _f, device in faults)

    def _flush_seen(self) -> None:
        """ "Last heard" for every device heard from since the last flush, in one statement, at
        most once a second: it only matters at heartbeat granularity, and one UPDATE per device
        per batch was the processor's biggest cost."""
        self._seen_flushed_at = time.monotonic()
        pending, self._seen = self._seen, {}
        if not pending:
            return
        back = list(Device.objects.filter(id__in=list(pending), state=DeviceState.SILENT).values_list("id", flat=True))
        # events can arrive out of order (a backlog after an outage): keep the latest time;
        # a device heard from is online unless it reported a fault it has not cleared
        adapt = connection.ops.adapt_datetimefield_value
        update_devices(
            "last_seen_at = {latest}(COALESCE(last_seen_at, %s), %s), "
            f"state = CASE WHEN state = '{DeviceState.FAULT.value}' THEN state ELSE '{DeviceState.ONLINE.value}' END",
            [(adapt(t), adapt(t), i) for i, t in pending.items()],
        )
        states = self.supervisor.dirty_states()
        advance_sequences(states)
        beats, self._heartbeats = self._heartbeats, {}
        update_devices("credential_version = %s, buffered = %s", [(v, b, i) for i, (v, b) in beats.items()])
        if back:  # R-DEV-2: uploading again — the silence alert's condition has cleared
            clear_condition(kinds=[AlertKind.UPLOAD_STOPPED], device_ids=back, at=timezone.now())
        if self._back_in_place:  # issue 18, Build 2: reporting from its approved place again
            placed = set(self._back_in_place)
            clear_condition(kinds=[AlertKind.DEVICE_MOVED], device_ids=placed, at=timezone.now())
            self._back_in_place -= placed
            self._moved -= placed
        notify_devices(pending)
