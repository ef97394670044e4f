"""Signed checkpoints of the audit chain's head, kept outside the database (issue 20; R-SEC-1).

The chain head (``AuditChain``) detects a cut tail only while it is the real head: someone who
can write to the database and kept an earlier copy of the head row (a dump, a replica, a row
read an hour ago) can delete the newest records, put that earlier head back, and the chain
verifies — its HMAC was made with the key, just earlier. So the head is also anchored where the
database cannot reach:

- **A checkpoint** is one JSON line — the last record's id and MAC, the number of records chained
  (``count``) and purged (``purged``) so far, the purge anchor, the time — with an HMAC under
  ``AUDIT_HMAC_KEY`` over all of it and over the previous checkpoint's HMAC (``prev``), so lines
  cannot be forged, edited, reordered or dropped from the middle without the key.
- **Where**: appended (and fsynced) to ``AUDIT_CHECKPOINT_FILE`` (default
  ``var/audit/checkpoints.jsonl``; put it on another volume or host in production), and written
  as a log line (``event=audit.checkpoint``) — the log collector / syslog keeps a second copy off
  the database host. ``campuscard audit verify --checkpoint FILE`` checks against either copy.
- **When**: by ``campuscard supervise`` every ``AUDIT_CHECKPOINT_S`` (60 s) when the head moved,
  and by ``campuscard audit checkpoint``. Records written after the latest checkpoint are not yet
  anchored: a tail cut inside that window is what this cannot see.
- **Continuity**: a checkpoint is written only if the database still holds what the previous
  one signed; otherwise the writer refuses (and the supervisor alerts) — a cut tail is never
  blessed by a newer checkpoint.
- ``chain.verify`` compares the database against the latest checkpoint: the record it names must
  exist with the MAC it signed, and the records up to it must number what it counted; a cut tail
  is named with what is missing (ids and count).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ops.audit.models import AuditChain, AuditRecord

log = logging.getLogger(__name__)
VERSION = 1


class CheckpointError(Exception):
    """The checkpoint file is unreadable or altered, or the database lost what a checkpoint signed."""


@dataclass(frozen=True)
class Checkpoint:
    at: str  # ISO 8601, UTC
    last_id: int
    last_mac: str
    count: int
    base_id: int
    purged: int
    prev: str  # the previous checkpoint's sig ("" for the first)
    rebase: str = ""  # why continuity with the one before was given up (a restore from a backup)
    sig: str = ""

    @property
    def total(self) -> int:
        """Records ever chained up to ``last_id``: those still held and those purged."""
        return self.count + self.purged

    def signed_text(self) -> bytes:
        fields = asdict(self)
        fields.pop("sig")
        return b"audit-checkpoint|" + json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def expected_sig(self) -> str:
        return hmac.new(settings.AUDIT_HMAC_KEY.encode(), self.signed_text(), hashlib.sha256).hexdigest()

    def line(self) -> str:
        return json.dumps({"v": VERSION, **asdict(self)}, sort_keys=True, separators=(",", ":"))


def default_path() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_FILE)


def _found_in(text: str) -> str | None:
    """The checkpoint's JSON in a line: the file's own line, a plain log line ending with it, or
    a JSON log line carrying it as its ``checkpoint`` field; None for any other line."""
    start = text.find('{"at":')
    if start >= 0:
        return text[start:]
    if text.startswith("{"):
        try:
            inner = json.loads(text).get("checkpoint")
        except (ValueError, AttributeError):
            return None
        return json.dumps(inner) if isinstance(inner, dict) else None
    return None


def _parse(text: str, where: str) -> Checkpoint:
    try:
        fields = json.loads(text)
        if fields.pop("v", None) != VERSION:
            raise ValueError("unknown version")
        cp = Checkpoint(**fields)
        int(cp.last_id), int(cp.count), int(cp.base_id), int(cp.purged)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{where}: not a checkpoint ({exc})") from exc
    if not hmac.compare_digest(cp.sig, cp.expected_sig()):
        raise CheckpointError(f"{where}: its signature does not verify (altered, or another key)")
    return cp


def read_all(path: Path | None = None) -> list[Checkpoint]:
    """Every checkpoint in the file, each signature and the links between them checked; [] when
    there is no file yet. A log collector's copy may be given too (other lines are skipped)."""
    path = path or default_path()
    if not path.exists():
        return []
    found: list[Checkpoint] = []
    with path.open(encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            text = _found_in(raw.strip())
            if text is None:  # another line of a log collector's copy
                continue
            cp = _parse(text, f"{path}:{n}")
            if found and cp.prev != found[-1].sig:
                raise CheckpointError(
                    f"{path}:{n}: does not follow the checkpoint before it (a checkpoint was removed or reordered)"
                )
            found.append(cp)
    return found


def latest(path: Path | None = None) -> Checkpoint | None:
    found = read_all(path)
    return found[-1] if found else None


def missing_since(cp: Checkpoint) -> str | None:
    """What the database lost of what ``cp`` signed, in words; None when it holds all of it."""
    head = AuditChain.objects.filter(pk=1).first()
    base_id, purged = (head.base_id, head.purged) if head is not None else (0, 0)
    signed = f"the checkpoint of {cp.at} (outside the database) signed record #{cp.last_id} and {cp.total} records"
    held = AuditRecord.objects.filter(id__gt=base_id)
    end = held.order_by("-id").values_list("id", flat=True).first() or base_id
    if cp.last_id <= base_id:  # purged since (retention): only the totals can be compared
        total = purged + held.count()
        if total < cp.total:
            return f"{cp.total - total} records missing: {signed}; the database has {total} in all"
        return None
    mac = held.filter(id=cp.last_id).values_list("mac", flat=True).first()
    upto = purged + held.filter(id__lte=cp.last_id).count()
    if mac is None and end < cp.last_id:
        return (
            f"records missing at the end: {signed}; the log ends at #{end} ({upto} records) — "
            f"{cp.total - upto} records after #{end}, up to #{cp.last_id}, were cut off"
        )
    if mac is None:
        return f"record #{cp.last_id} missing: {signed}; {cp.total - upto} records up to it are gone"
    if not hmac.compare_digest(mac, cp.last_mac):
        return f"record #{cp.last_id} is not the one {signed} (the chain was rewritten after it)"
    if upto != cp.total:
        return f"{cp.total - upto} records up to #{cp.last_id} missing: {signed}; the database holds {upto}"
    return None


def write(
    *, path: Path | None = None, now: datetime | None = None, force: bool = False, rebase: str = ""
) -> Checkpoint | None:
    """Append a checkpoint of the current head (None: the head has not moved since the last
    one, unless ``force``). Refuses (``CheckpointError``) when the database no longer holds what
    the previous checkpoint signed — unless ``rebase`` says why that is expected (the database was
    restored from a backup: what came after the backup is gone, and the restore's audit record
    names it); the new checkpoint carries the reason and still links to the one before."""
    path = path or default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # one writer at a time (the supervisor, the command): one line of links
        previous = latest(path)
        with transaction.atomic():  # the head as committed now; appends wait the few ms this takes
            head = AuditChain.objects.select_for_update().filter(pk=1).first()
            last_id, last_mac, count, base_id, purged = (
                (head.last_id, head.last_mac, head.count, head.base_id, head.purged) if head else (0, "", 0, 0, 0)
            )
            if previous is not None and not rebase:
                problem = missing_since(previous)
                if problem:
                    raise CheckpointError(problem)
                moved = (previous.last_id, previous.last_mac, previous.total) != (last_id, last_mac, count + purged)
                if not (moved or force):
                    return None
            elif previous is not None:
                log.warning("audit checkpoints rebased (%s): %s", rebase, missing_since(previous) or "nothing lost")
        cp = Checkpoint(
            at=(now or timezone.now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            last_id=last_id,
            last_mac=last_mac,
            count=count,
            base_id=base_id,
            purged=purged,
            prev=previous.sig if previous else "",
            rebase=rebase,
        )
        cp = Checkpoint(**{**asdict(cp), "sig": cp.expected_sig()})
        f.write(cp.line() + "\n")
        f.flush()
        os.fsync(f.fileno())
    log.info(
        "audit checkpoint #%s (%s records) %s",
        cp.last_id,
        cp.total,
        cp.line(),
        extra={"event": "audit.checkpoint", "checkpoint": {"v": VERSION, **asdict(cp)}},
    )
    return cp
