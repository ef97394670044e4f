"""The HMAC chain over the audit log (R-SEC-1; Cybersecurity Law: logs kept and trustworthy).

``mac(n) = HMAC-SHA256(key, mac(n-1) ‖ canonical(record n))`` in id order, starting from a fixed
genesis value; the chain head (``AuditChain``) holds the last id, the count and an HMAC over
them. The key comes from the environment, never from the database, so whoever can write to the
database cannot produce a valid chain: editing a record breaks it at that record, deleting one
breaks it at the next, inserting one breaks it at the insert, cutting off the end breaks the
head. ``verify`` walks the chain and names the first broken record.

The head itself lives in the database, so an earlier copy of it put back after cutting off the
newest records would verify; ``verify`` also compares the database against the latest signed
checkpoint kept outside it (``ops.audit.checkpoints``, issue 20), which names such a cut.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from ops.audit import checkpoints
from ops.audit.models import AuditChain, AuditRecord

GENESIS = "0" * 64


def _key() -> bytes:
    return settings.AUDIT_HMAC_KEY.encode()


def canonical(
    at: datetime,
    actor_id: int | None,
    actor_name: str,
    action: str,
    object_type: str,
    object_id: str,
    basis: str,
    data: Any,
) -> bytes:
    return json.dumps(
        [
            at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            actor_id,
            actor_name,
            action,
            object_type,
            object_id,
            basis,
            data,
        ],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def link(previous: str, content: bytes) -> str:
    return hmac.new(_key(), previous.encode() + content, hashlib.sha256).hexdigest()


def head_mac(last_id: int, last_mac: str, count: int, base_id: int = 0, base_mac: str = "", purged: int = 0) -> str:
    """The head's own HMAC: over the last record, the count and — once records older than the
    retention period were purged — the anchor the chain now starts from."""
    text = f"head|{last_id}|{last_mac}|{count}"
    if base_id or purged:
        text += f"|base|{base_id}|{base_mac}|{purged}"
    return hmac.new(_key(), text.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    broken_id: int | None = None
    reason: str = ""
    anchor: str = ""  # what the tail was checked against outside the database (issue 20)


def _records(after: int = 0, chunk: int = 5000) -> Iterator[tuple[Any, ...]]:
    last = after
    while True:
        rows = list(
            AuditRecord.objects.filter(id__gt=last)
            .order_by("id")
            .values_list(
                "id", "at", "actor_id", "actor_name", "action", "object_type", "object_id", "basis", "data", "mac"
            )[:chunk]
        )
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def verify(checkpoint_file: Path | None = None) -> Verdict:
    """Walk the whole chain; the first record whose MAC does not follow is named. Then the
    database must still hold what the latest checkpoint outside it signed (``checkpoint_file``,
    default ``AUDIT_CHECKPOINT_FILE``): a cut tail is named with what is missing."""

    path = checkpoint_file or checkpoints.default_path()
    try:  # read before the walk: every record it names was committed before the walk began
        anchor = checkpoints.latest(path)
    except checkpoints.CheckpointError as exc:
        return Verdict(False, 0, None, f"the checkpoint file is not trustworthy: {exc}")
    verdict = _walk()
    if not verdict.ok:
        return verdict
    if anchor is None:
        return replace(verdict, anchor=f"no checkpoint in {path}: the tail is checked against the head only")
    problem = checkpoints.missing_since(anchor)
    if problem:
        end = AuditRecord.objects.order_by("-id").values_list("id", flat=True).first() or 0
        return Verdict(False, verdict.checked, min(end + 1, anchor.last_id), problem)
    return replace(verdict, anchor=f"the checkpoint of {anchor.at} (#{anchor.last_id}, {anchor.total} records)")


def _walk() -> Verdict:
    head = AuditChain.objects.filter(pk=1).first()
    base_id, base_mac = (head.base_id, head.base_mac) if head is not None else (0, "")
    if base_id:  # records up to the anchor were purged (retention): none may be left before it
        stray = AuditRecord.objects.filter(id__lte=base_id).order_by("id").first()
        if stray is not None:
            return Verdict(False, 0, stray.pk, "a record before the purge anchor")
    previous, checked, last_id = base_mac or GENESIS, 0, base_id
    for pk, at, actor_id, actor_name, action, object_type, object_id, basis, data, mac in _records(base_id):
        expected = link(previous, canonical(at, actor_id, actor_name, action, object_type, object_id, basis, data))
        if not hmac.compare_digest(expected, mac):
            return Verdict(False, checked, pk, "changed, inserted, or the record before it was deleted")
        previous, checked, last_id = mac, checked + 1, pk
    if head is None:
        return Verdict(checked == 0, checked, last_id or None, "" if checked == 0 else "the chain head is missing")
    if not hmac.compare_digest(
        head.head_mac, head_mac(head.last_id, head.last_mac, head.count, head.base_id, head.base_mac, head.purged)
    ):
        return Verdict(False, checked, head.last_id, "the chain head was altered")
    if (head.last_id, head.last_mac or GENESIS, head.count) != (last_id, previous, checked):
        return Verdict(
            False,
            checked,
            last_id + 1 if head.last_id > last_id else last_id,
            f"records missing at the end: the head expects #{head.last_id} "
            f"({head.count} records), the log ends at #{last_id} ({checked})",
        )
    return Verdict(True, checked)
