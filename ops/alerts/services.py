"""Raising alerts: deduplicated (a repeat of an unresolved alert bumps its count), with the
lifecycle rules of R-OPS-3 applied as repeats arrive:

- a *condition* alert (device silent, in fault, behind on credentials) whose condition had
  cleared and comes back *re-fires*; a re-fire of an acknowledged alert makes the
  acknowledgement *lapse* (back to open, so somebody looks again);
- a *momentary* alert (a blacklist hit, a clone) repeated after its acknowledgement lapses too;
- a device that bounces — ``FLAP_REFIRES`` re-fires within ``FLAP_WINDOW`` — is *flapping*: its
  re-fires are still counted but no longer lapse the acknowledgement or pop on the desk, until
  it stays put for a whole window.

Every change is pushed to the live desks (ids only; pages refetch the rows) after the commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from ops.alerts.models import (
    CONDITION_KINDS,
    Alert,
    AlertKind,
    AlertLog,
    AlertStatus,
    LogAction,
    Severity,
)
from ops.push import push
from ops.registry.models import Device
from streams import names

SEVERITY = {
    AlertKind.UNKNOWN_DEVICE: Severity.CRITICAL,
    AlertKind.BAD_SIGNATURE: Severity.CRITICAL,
    AlertKind.REPLAY: Severity.CRITICAL,
    AlertKind.SEQUENCE_GAP: Severity.WARNING,
    AlertKind.DUPLICATE_DEVICE: Severity.CRITICAL,
    AlertKind.UPLOAD_STOPPED: Severity.WARNING,
    AlertKind.TAMPER: Severity.CRITICAL,
    AlertKind.DEVICE_FAULT: Severity.WARNING,
    AlertKind.CLONE_SUSPECTED: Severity.CRITICAL,
    AlertKind.OLD_CARD_USED: Severity.CRITICAL,
    AlertKind.BLACKLIST_HIT: Severity.CRITICAL,
    AlertKind.CREDENTIAL_LAG: Severity.CRITICAL,
    AlertKind.PASSBACK_VIOLATION: Severity.WARNING,
}
FLAP_REFIRES = 3
FLAP_WINDOW = timedelta(minutes=10)


def notify(alert_ids: Iterable[int]) -> None:
    """Tell the desks these alerts changed (after the commit)."""
    ids = sorted(set(alert_ids))
    if ids:
        push(names.GROUP_ALERTS, {"ids": ids})


def raise_alert(
    *,
    kind: AlertKind,
    subject: str,
    at: datetime,
    device_id: int | None = None,
    detail: dict[str, Any] | None = None,
    count: int = 1,
) -> None:
    """Open an alert, or count a repeat of the open one for the same kind and subject."""
    buffer = AlertBuffer()
    buffer.add(kind=kind, subject=subject, at=at, device_id=device_id, detail=detail, count=count)
    buffer.flush()


class AlertBuffer:
    """Alerts raised on the processor's hot path, coalesced: a storm of the same alert (an
    attacker replaying thousands of messages, a card tapped everywhere) costs one database
    write per alert per flush, not one per event. ``flush()`` runs several times a second."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, str], dict[str, Any]] = {}

    def add(
        self,
        *,
        kind: AlertKind,
        subject: str,
        at: datetime,
        device_id: int | None = None,
        detail: dict[str, Any] | None = None,
        count: int = 1,
    ) -> None:
        key = (AlertKind(kind).value, subject)
        item = self.pending.get(key)
        if item is None:
            self.pending[key] = {
                "kind": AlertKind(kind),
                "subject": subject,
                "at": at,
                "first": at,
                "device_id": device_id,
                "detail": detail or {},
                "count": count,
            }
        else:
            item["count"] += count
            item["at"] = max(item["at"], at)
            item["first"] = min(item["first"], at)  # a backlog can arrive out of order
            item["detail"] = detail or item["detail"]

    def flush(self) -> list[int]:
        """Write everything pending; returns the ids of the alerts it touched."""
        items, self.pending = self.pending, {}
        if not items:
            return []
        for _attempt in range(3):
            try:
                with transaction.atomic():
                    changed = _write(items)
                    notify(changed)
                    return changed
            except IntegrityError:  # another processor opened one of them first: count on it
                continue
        raise RuntimeError("could not record alerts")  # pragma: no cover - three races in a row


def _write(items: dict[tuple[str, str], dict[str, Any]]) -> list[int]:
    kinds = {k for k, _s in items}
    subjects = {s for _k, s in items}
    existing = {
        (a.kind, a.subject): a
        for a in Alert.objects.select_for_update()
        .filter(kind__in=kinds, subject__in=subjects)
        .exclude(status=AlertStatus.RESOLVED)
    }
    by_increment: dict[int, list[int]] = {}
    new: list[Alert] = []
    changed: list[int] = []
    for key, item in items.items():
        alert = existing.get(key)
        if alert is None:
            new.append(
                Alert(
                    kind=item["kind"],
                    severity=SEVERITY[item["kind"]],
                    subject=item["subject"],
                    device_id=item["device_id"],
                    first_at=item["first"],
                    last_at=item["at"],
                    opened_at=item["first"],
                    count=item["count"],
                    detail=item["detail"],
                )
            )
            continue
        changed.append(alert.pk)
        if _transition(alert, item):
            continue
        by_increment.setdefault(item["count"], []).append(alert.pk)
        Alert.objects.filter(pk=alert.pk, last_at__lt=item["at"]).update(last_at=item["at"])
        if item["detail"]:
            Alert.objects.filter(pk=alert.pk).update(detail=item["detail"])
    for increment, pks in by_increment.items():
        Alert.objects.filter(pk__in=pks).update(count=F("count") + increment)
    if new:
        _attach_buildings(new)
        Alert.objects.bulk_create(new, batch_size=500)
        AlertLog.objects.bulk_create([AlertLog(alert=a, at=a.first_at, action=LogAction.RAISED) for a in new if a.pk])
        changed += [a.pk for a in new if a.pk]
    return changed


def _attach_buildings(alerts: list[Alert]) -> None:
    ids = {a.device_id for a in alerts if a.device_id}
    buildings = dict(Device.objects.filter(id__in=ids).values_list("id", "building_id"))
    for a in alerts:
        a.building_id = buildings.get(a.device_id)


def _transition(alert: Alert, item: dict[str, Any]) -> bool:
    """Apply re-fire / lapse / flapping to an alert that repeats. True if it saved the alert."""
    at: datetime = item["at"]
    refire = alert.kind in CONDITION_KINDS and alert.cleared_at is not None
    momentary_after_ack = (
        alert.kind not in CONDITION_KINDS
        and alert.status == AlertStatus.ACKNOWLEDGED
        and alert.acknowledged_at is not None
        and at > alert.acknowledged_at
    )
    if not (refire or momentary_after_ack):
        return False
    log: list[AlertLog] = []
    if refire:
        alert.cleared_at = None
        recent = [t for t in alert.refires if t > (at - FLAP_WINDOW).timestamp()]
        alert.refires = [*recent, at.timestamp()][-FLAP_REFIRES * 2 :]
        log.append(AlertLog(alert=alert, at=at, action=LogAction.REFIRED))
        if not alert.flapping and len(alert.refires) >= FLAP_REFIRES:
            alert.flapping = True
            log.append(AlertLog(alert=alert, at=at, action=LogAction.FLAPPING))
    if alert.status == AlertStatus.ACKNOWLEDGED and not alert.flapping:
        alert.status, alert.opened_at, alert.escalation = AlertStatus.OPEN, at, 0
        alert.lapses += 1
        log.append(AlertLog(alert=alert, at=at, action=LogAction.LAPSED))
    alert.count += item["count"]
    alert.last_at = max(alert.last_at, at)
    alert.detail = item["detail"] or alert.detail
    alert.save()
    AlertLog.objects.bulk_create(log)
    return True


def clear_condition(*, kinds: Iterable[AlertKind], device_ids: Iterable[int], at: datetime) -> None:
    """The condition behind these devices' alerts no longer holds (heard from again, fault
    cleared, credentials caught up). The alerts stay until a person resolves them."""
    device_ids = list(device_ids)
    if not device_ids:
        return
    with transaction.atomic():
        alerts = list(
            Alert.objects.select_for_update()
            .filter(kind__in=list(kinds), device_id__in=device_ids, cleared_at__isnull=True)
            .exclude(status=AlertStatus.RESOLVED)
        )
        if not alerts:
            return
        Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(cleared_at=at)
        AlertLog.objects.bulk_create([AlertLog(alert=a, at=at, action=LogAction.CLEARED) for a in alerts])
        notify(a.pk for a in alerts)
