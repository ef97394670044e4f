"""Write audit records. Called from inside the service's transaction, so an action and its
audit record commit or roll back together."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.audit import chain
from ops.audit.models import AuditChain, AuditRecord
from ops.bulk import fast_insert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    action: str
    object_type: str
    object_id: str
    data: dict[str, Any] = field(default_factory=dict)


def record(
    *, actor: Any, action: str, object_type: str, object_id: object, basis: str = "", data: dict[str, Any] | None = None
) -> AuditRecord:
    row = (
        timezone.now(),
        actor.pk if getattr(actor, "pk", None) else None,
        getattr(actor, "username", "") or "system",
        action,
        object_type,
        str(object_id),
        basis,
        data or {},
    )
    with transaction.atomic():
        head = _head()
        mac = chain.link(head.last_mac or chain.GENESIS, chain.canonical(*row))
        rec = AuditRecord.objects.create(
            at=row[0],
            actor_id=row[1],
            actor_name=row[2],
            action=action,
            object_type=object_type,
            object_id=row[5],
            basis=basis,
            data=row[7],
            mac=mac,
        )
        _advance(head, rec.pk, mac, 1)
        _log_on_commit(rec.pk, row[2], action, object_type, row[5])
    return rec


def _log_on_commit(audit_id: int, actor: str, action: str, object_type: str, object_id: str, count: int = 1) -> None:
    """One log line per audited action (issue 16, Build 5: a notable event for the log
    collector, with the request's id), written once it is committed: a rolled-back action was
    never done. Names and ids only: the record's data may hold personal data."""
    fields = {"event": "audit", "audit_id": audit_id, "action": action, "actor": actor}
    fields |= {"object_type": object_type, "object_id": object_id, "count": count}
    transaction.on_commit(
        lambda: log.info("%s %s %s:%s ×%d", actor, action, object_type, object_id, count, extra=fields)
    )


AUDIT_FIELDS = ("at", "actor", "actor_name", "action", "object_type", "object_id", "basis", "data", "mac")


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
            values = (now, actor_id, actor_name, e.action, e.object_type, e.object_id, basis, e.data)
            previous = chain.link(previous, chain.canonical(*values))
            rows.append((*values, previous))
        if not rows:
            return 0
        fast_insert(AuditRecord, AUDIT_FIELDS, rows)
        last_id = AuditRecord.objects.order_by("-id").values_list("id", flat=True).first()
        assert last_id is not None  # the rows just inserted
        _advance(head, last_id, previous, len(rows))
        actions, kinds = sorted({r[3] for r in rows}), sorted({r[4] for r in rows})
        _log_on_commit(
            last_id, actor_name, ",".join(actions), ",".join(kinds), "*" if len(rows) > 1 else rows[0][5], len(rows)
        )
    return len(rows)


def _head() -> AuditChain:
    """The chain head, locked until the transaction ends: appends are serialised, so the
    chain's order is the commit order (PostgreSQL: row lock; SQLite: one writer anyway)."""
    head, created = AuditChain.objects.select_for_update().get_or_create(pk=1)
    if created:  # no head yet (a flushed database): sealed as the empty chain, so that a purge's
        _seal(head)  # verify() finds it intact when it is — and broken when records exist
    return head


def _advance(head: AuditChain, last_id: int, last_mac: str, added: int) -> None:
    head.last_id, head.last_mac, head.count = last_id, last_mac, head.count + added
    _seal(head)


def _seal(head: AuditChain) -> None:
    head.head_mac = chain.head_mac(head.last_id, head.last_mac, head.count, head.base_id, head.base_mac, head.purged)
    head.save()


class RetentionError(ValueError):
    """A purge that would delete records younger than the retention period, or a broken chain."""


def purge_before(cutoff: datetime, *, actor: Any = None) -> int:
    """Delete the audit records older than ``cutoff`` (R-SEC-1: kept ≥ AUDIT_RETENTION_DAYS,
    Cybersecurity Law art. 21: ≥ 6 months). Refuses a cutoff inside the retention period and a
    chain that does not verify (a purge must not hide tampering). Only a leading run of old
    records goes; the chain head keeps the last purged record's id and MAC as its anchor, so
    what remains still verifies — and the purge itself is audited."""
    limit = timezone.now() - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    if cutoff > limit:
        raise RetentionError(
            _("审计记录至少保留 %(days)s 天：只能清除 %(limit)s 之前的记录。")
            % {"days": settings.AUDIT_RETENTION_DAYS, "limit": f"{limit:%Y-%m-%d %H:%M}"}
        )
    with transaction.atomic():
        head = _head()  # locked: no append can interleave with the purge
        verdict = chain.verify()
        if not verdict.ok:
            raise RetentionError(_("审计链校验失败（记录 #%(id)s），拒绝清除；请先调查。") % {"id": verdict.broken_id})
        first_young = AuditRecord.objects.filter(at__gte=cutoff).order_by("id").values_list("id", flat=True).first()
        old = AuditRecord.objects.filter(id__gt=head.base_id)
        if first_young is not None:
            old = old.filter(id__lt=first_young)
        anchor = old.order_by("-id").values_list("id", "mac").first()
        if anchor is None:
            return 0
        deleted, _by_model = AuditRecord.objects.filter(id__lte=anchor[0]).delete()
        head.base_id, head.base_mac = anchor
        head.purged += deleted
        head.count -= deleted
        _seal(head)
    record(
        actor=actor,
        action="audit.purge",
        object_type="audit",
        object_id=str(anchor[0]),
        basis=f"AUDIT_RETENTION_DAYS={settings.AUDIT_RETENTION_DAYS}",
        data={"deleted": deleted, "before": cutoff.isoformat(), "anchor_id": anchor[0]},
    )
    return deleted
