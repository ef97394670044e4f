"""What the live desks show of alerts: one row shape for snapshots and refetches alike."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Prefetch, Q, QuerySet
from django.utils import timezone

from ops.alerts.choices import AlertStatus, LogAction
from ops.alerts.models import Alert, AlertLog, DeliveryAttempt, Notification, RepairTicket
from ops.alerts.repairs import OPEN_STATES

RESOLVED_SHOWN_FOR = timedelta(hours=12)  # a resolved alert stays on the desk this long
SNAPSHOT_LIMIT = 300


def _on_desk(kinds: Collection[str] | None) -> QuerySet[Alert]:
    shown = Alert.objects.filter(
        ~Q(status=AlertStatus.RESOLVED) | Q(resolved_at__gte=timezone.now() - RESOLVED_SHOWN_FOR)
    )
    return shown.filter(kind__in=list(kinds)) if kinds is not None else shown


def _row(a: Alert) -> dict[str, Any]:
    device = a.device
    return {
        "id": a.pk,
        "kind": a.kind,
        "severity": a.severity,
        "status": a.status,
        "subject": a.subject,
        "count": a.count,
        "first": a.first_at.timestamp(),
        "last": a.last_at.timestamp(),
        "rank": a.last_at.timestamp(),
        "device": device.code if device else "",
        "device_name": device.name if device else "",
        "location": device.location if device else "",
        "building": a.building.code if a.building else "",
        "building_name": a.building.name if a.building else "",
        "flapping": a.flapping,
        "escalation": a.escalation,
        "lapses": a.lapses,
        "cleared": a.cleared_at is not None,
        "assignee": a.assignee.get_username() if a.assignee else "",
        "acknowledged_by": a.acknowledged_by.get_username() if a.acknowledged_by else "",
        "ack_comment": a.ack_comment,
        # who and where (blacklist hits, clones): ids and masked values only — the page fetches
        # the photo through the guarded photo view
        "holder_id": a.detail.get("holder_id"),
        "card_type": a.detail.get("card_type", ""),
        "holder": a.detail.get("holder", ""),
        "photo": a.detail.get("photo", False),
        "card": a.detail.get("card", ""),
    }


def _query(qs: QuerySet[Alert]) -> QuerySet[Alert]:
    return qs.select_related("device", "building", "assignee", "acknowledged_by")


def alert_snapshot(*, kinds: Collection[str] | None = None) -> dict[str, Any]:
    latest = _query(_on_desk(kinds)).order_by("-last_at", "-id")[:SNAPSHOT_LIMIT]
    return {"rows": [_row(a) for a in latest], "limit": SNAPSHOT_LIMIT}


def alert_rows(ids: list[int], *, kinds: Collection[str] | None = None) -> dict[int, dict[str, Any]]:
    return {a.pk: _row(a) for a in _query(_on_desk(kinds).filter(pk__in=ids))}


def response_times(*, since: datetime) -> dict[str, Any]:
    """Mean time to acknowledge (from opening, or from the lapse that reopened it) and to
    repair (first occurrence → resolved), over the actions taken since ``since``."""
    out: dict[str, Any] = {}
    for name, action in (("ack", LogAction.ACKNOWLEDGED), ("repair", LogAction.RESOLVED)):
        agg = AlertLog.objects.filter(action=action, at__gte=since, seconds__isnull=False).aggregate(
            mean=Avg("seconds"), n=Count("id")
        )
        out[f"mtt{name[0]}_s"] = agg["mean"]
        out[f"{name}_count"] = agg["n"]
    return out


def repair_times(*, since: datetime) -> dict[str, Any]:
    """The repair queue on the NIC desk (issue 18, Build 1): tickets not yet closed or rejected,
    and the mean time to repair (report → repaired) of the tickets repaired since ``since``."""
    repaired = RepairTicket.objects.filter(repaired_at__gte=since).aggregate(
        mean=Avg(ExpressionWrapper(F("repaired_at") - F("opened_at"), output_field=DurationField())), n=Count("id")
    )
    return {
        "tickets_open": RepairTicket.objects.filter(state__in=OPEN_STATES).count(),
        "ticket_mttr_s": repaired["mean"].total_seconds() if repaired["mean"] is not None else None,
        "repaired_count": repaired["n"],
    }


def deliveries(alert: Alert) -> QuerySet[Notification]:
    """The alert's notifications (issue 16), oldest first, each with its delivery log: every
    attempt, sent / failed and retried / failed for good; a notification not yet attempted
    shows its state (waiting for its group window, cancelled by an acknowledgement)."""
    return (
        Notification.objects.filter(items__alert=alert)
        .order_by("opened_at", "pk")
        .prefetch_related(Prefetch("attempt_log", queryset=DeliveryAttempt.objects.order_by("at", "pk")))
    )
