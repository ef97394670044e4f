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
