"""Write audit records. Called from inside the service's transaction, so an action and its
audit record commit or roll back together."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from ops.audit import chain
from ops.audit.models import AuditChain, AuditRecord
from ops.bulk import fast_insert


@dataclass(frozen=True)
class Entry:
    action: str
    object_type: str
    object_id: str
    data: dict[str, Any] = field(default_factory=dict)


def record(*, actor: Any, action: str, object_type: str, object_id: object, basis: str = "",
           data: dict[str, Any] | None = None) -> AuditRecord:
    row = (timezone.now(), actor.pk if getattr(actor, "pk", None) else None,
           getattr(actor, "username", "") or "system", action, object_type, str(object_id),
           basis, data or {})
    with transaction.atomic():
        head = _head()
        mac = chain.link(head.last_mac or chain.GENESIS, chain.canonical(*row))
        rec = AuditRecord.objects.create(
            at=row[0], actor_id=row[1], actor_name=row[2], action=action, object_type=object_type,
            object_id=row[5], basis=basis, data=row[7], mac=mac)
        _advance(head, rec.pk, mac, 1)
    return rec


AUDIT_FIELDS = ("at", "actor", "actor_name", "action", "object_type", "object_id", "basis",
                "data", "mac")


def record_many(*, actor: Any, basis: str, entries: Iterable[Entry]) -> int:
    """One audit row per affected record, in one statement (bulk changes: imports, the July
    run) — per-row accountability without a per-row round trip."""
    now = timezone.now()
    actor_id = actor.pk if getattr(actor, "pk", None) else None
    actor_name = getattr(actor, "username", "") or "system"
    with transaction.atomic():
        head = _head()
        previous, rows = head.last_mac or chain.GENESIS, []
        for e in entries:
            values = (now, actor_id, actor_name, e.action, e.object_type, e.object_id, basis,
                      e.data)
            previous = chain.link(previous, chain.canonical(*values))
            rows.append((*values, previous))
        if not rows:
            return 0
        fast_insert(AuditRecord, AUDIT_FIELDS, rows)
        last_id = AuditRecord.objects.order_by("-id").values_list("id", flat=True).first()
        _advance(head, last_id, previous, len(rows))
    return len(rows)


def _head() -> AuditChain:
    """The chain head, locked until the transaction ends: appends are serialised, so the
    chain's order is the commit order (PostgreSQL: row lock; SQLite: one writer anyway)."""
    head, _created = AuditChain.objects.select_for_update().get_or_create(pk=1)
    return head


def _advance(head: AuditChain, last_id: int, last_mac: str, added: int) -> None:
    head.last_id, head.last_mac, head.count = last_id, last_mac, head.count + added
    head.head_mac = chain.head_mac(head.last_id, head.last_mac, head.count)
    head.save()
