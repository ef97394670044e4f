"""What the Library's workbench shows (issue 18, Build 5): its readers, their open faults."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet

from ops.alerts.models import Alert, AlertStatus
from ops.registry.models import Department, Device
from streams.cards import DeviceKind

OPEN = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)


def readers(department: Department | None) -> QuerySet[Device]:
    """The library's readers: every library reader, and any device of the operator's own
    department (R-DEV-4: who uses it answers for it), each with its count of open faults."""
    where = Q(kind=DeviceKind.LIBRARY_READER)
    if department is not None:
        where |= Q(owner=department)
    return (
        Device.objects.filter(where)
        .annotate(open_faults=Count("alerts", filter=Q(alerts__status__in=OPEN)))
        .order_by("code")
    )


def faults(devices: QuerySet[Device], limit: int = 50) -> list[Alert]:
    """Their open (or acknowledged, not yet resolved) alerts, newest first."""
    return list(
        Alert.objects.filter(device__in=devices, status__in=OPEN).select_related("device").order_by("-last_at")[:limit]
    )


def workbench(department: Department | None) -> dict[str, Any]:
    devices = readers(department)
    return {"readers": list(devices), "faults": faults(devices)}
