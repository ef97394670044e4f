"""Write audit records. Called from inside the service's transaction, so an action and its
audit record commit or roll back together."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ops.audit.models import AuditRecord


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


def record_many(*, actor: Any, basis: str, entries: Iterable[Entry]) -> int:
    """One audit row per affected record, in one INSERT (bulk changes, e.g. the July run)."""
    rows = [
        AuditRecord(actor=actor if getattr(actor, "pk", None) else None,
                    actor_name=getattr(actor, "username", "") or "system", action=e.action,
                    object_type=e.object_type, object_id=e.object_id, basis=basis, data=e.data)
        for e in entries
    ]
    AuditRecord.objects.bulk_create(rows, batch_size=2000)
    return len(rows)
