"""Raising alerts (deduplicated: a repeat of an unresolved alert bumps its count)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest

from ops.alerts.models import Alert, AlertKind, AlertStatus, Severity

SEVERITY = {
    AlertKind.UNKNOWN_DEVICE: Severity.CRITICAL, AlertKind.BAD_SIGNATURE: Severity.CRITICAL,
    AlertKind.REPLAY: Severity.CRITICAL, AlertKind.SEQUENCE_GAP: Severity.WARNING,
    AlertKind.DUPLICATE_DEVICE: Severity.CRITICAL, AlertKind.UPLOAD_STOPPED: Severity.WARNING,
    AlertKind.TAMPER: Severity.CRITICAL, AlertKind.DEVICE_FAULT: Severity.WARNING,
    AlertKind.CLONE_SUSPECTED: Severity.CRITICAL, AlertKind.OLD_CARD_USED: Severity.CRITICAL,
    AlertKind.BLACKLIST_HIT: Severity.CRITICAL, AlertKind.CREDENTIAL_LAG: Severity.CRITICAL,
}


def raise_alert(*, kind: AlertKind, subject: str, at: datetime, device_id: int | None = None,
                detail: dict[str, Any] | None = None, count: int = 1) -> None:
    """Open an alert, or count a repeat of the open one for the same kind and subject."""
    detail = detail or {}
    for _attempt in range(2):
        updated = Alert.objects.filter(kind=kind, subject=subject).exclude(
            status=AlertStatus.RESOLVED).update(count=F("count") + count,
                                                last_at=Greatest(F("last_at"), at), detail=detail)
        if updated:
            return
        try:
            with transaction.atomic():
                Alert.objects.create(kind=kind, severity=SEVERITY[AlertKind(kind)],
                                     subject=subject, device_id=device_id, first_at=at,
                                     last_at=at, count=count, detail=detail)
            return
        except IntegrityError:  # another processor opened it first: count on it instead
            continue


class AlertBuffer:
    """Alerts raised on the processor's hot path, coalesced: a storm of the same alert (an
    attacker replaying thousands of messages, a card tapped everywhere) costs one database
    write per alert per flush, not one per event. ``flush()`` runs at least once a second."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, *, kind: AlertKind, subject: str, at: datetime, device_id: int | None = None,
            detail: dict[str, Any] | None = None) -> None:
        key = (kind.value, subject)
        item = self.pending.get(key)
        if item is None:
            self.pending[key] = {"kind": kind, "subject": subject, "at": at,
                                 "device_id": device_id, "detail": detail or {}, "count": 1}
        else:
            item["count"] += 1
            item["at"] = max(item["at"], at)
            item["detail"] = detail or item["detail"]

    def flush(self) -> int:
        """Write everything pending in a handful of statements: read the open alerts concerned,
        bump their counts (one UPDATE per distinct increment, atomic, so several processors
        add up correctly), create the new ones."""
        items, self.pending = self.pending, {}
        if not items:
            return 0
        kinds = {k for k, _s in items}
        subjects = {s for _k, s in items}
        open_alerts = Alert.objects.filter(kind__in=kinds, subject__in=subjects).exclude(
            status=AlertStatus.RESOLVED).values_list("kind", "subject", "id")
        existing = {(kind, subject): pk for kind, subject, pk in open_alerts}
        by_increment: dict[int, list[int]] = {}
        latest = max(item["at"] for item in items.values())
        new = []
        for key, item in items.items():
            pk = existing.get(key)
            if pk is not None:
                by_increment.setdefault(item["count"], []).append(pk)
            else:
                new.append(Alert(kind=item["kind"], severity=SEVERITY[AlertKind(item["kind"])],
                                 subject=item["subject"], device_id=item["device_id"],
                                 first_at=item["at"], last_at=item["at"], count=item["count"],
                                 detail=item["detail"]))
        for increment, pks in by_increment.items():
            Alert.objects.filter(pk__in=pks).update(count=F("count") + increment,
                                                    last_at=Greatest(F("last_at"), latest))
        Alert.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
        return len(items)
