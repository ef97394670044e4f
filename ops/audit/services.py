"""Write audit records. Called from inside the service's transaction, so an action and its
audit record commit or roll back together."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from ops.audit.models import AuditRecord
from ops.bulk import fast_insert


@dataclass(frozen=True)
class Entry:
    action: str
    object_type: str
    object_id: str
    data: dict[str, Any] = field(default_factory=dict)


def record(*, actor: Any, action: str, object_type: str, object_id: object, basis: str = "",
           data: dict[str, Any] | None = None) -> AuditRecord:
    return AuditRecord.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=getattr(actor, "username", "") or "system",
        action=action, object_type=object_type, object_id=str(object_id), basis=basis,
        data=data or {},
    )


AUDIT_FIELDS = ("at", "actor", "actor_name", "action", "object_type", "object_id", "basis",
                "data")


def record_many(*, actor: Any, basis: str, entries: Iterable[Entry]) -> int:
    """One audit row per affected record, in one statement (bulk changes: imports, the July
    run) — per-row accountability without a per-row round trip."""
    now = timezone.now()
    actor_id = actor.pk if getattr(actor, "pk", None) else None
    actor_name = getattr(actor, "username", "") or "system"
    rows = [(now, actor_id, actor_name, e.action, e.object_type, e.object_id, basis, e.data)
            for e in entries]
    fast_insert(AuditRecord, AUDIT_FIELDS, rows)
    return len(rows)
