"""A cut audit tail is named (issue 20 item 11, R-SEC-1): deleting the newest records and putting
back an earlier chain head (whose HMAC is genuine — it was made with the key, only earlier) no
longer verifies, because signed checkpoints of the head are kept outside the database
(``AUDIT_CHECKPOINT_FILE``, and the log) and ``audit verify`` holds the database to the latest.
On PostgreSQL, with the SQL an intruder with database rights would run."""

from __future__ import annotations

import json
import logging

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from ops.alerts.choices import AlertKind
from ops.alerts.models import Alert
from ops.audit import chain, checkpoints
from ops.audit.models import AuditChain, AuditRecord
from ops.audit.services import Entry, record, record_many
from ops.pipeline import timed

pytestmark = pytest.mark.django_db(transaction=True)
HEAD_FIELDS = ("last_id", "last_mac", "count", "head_mac", "base_id", "base_mac", "purged")


def _write(n: int, tag: str) -> list[int]:
    for i in range(n):
        record(actor=None, action="card.issue", object_type="card", object_id=f"{tag}{i}", data={"i": i})
    return list(AuditRecord.objects.order_by("id").values_list("id", flat=True))


def _saved_head() -> dict:
    return AuditChain.objects.filter(pk=1).values(*HEAD_FIELDS).get()


def _cut_tail_and_put_back(head: dict, after_id: int) -> None:
    """What the intruder does: the newest records deleted, the earlier head row written back."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditrecord WHERE id > %s", [after_id])
    AuditChain.objects.filter(pk=1).update(**head)


def test_an_intact_log_verifies_against_its_checkpoint(capsys, audit_checkpoints):
    ids = _write(4, "A")
    call_command("audit", "checkpoint")
    assert f"#{ids[-1]} (4 records)" in capsys.readouterr().out
    _write(2, "B")  # after the checkpoint: not yet anchored, still intact
    verdict = chain.verify()
    assert verdict.ok and verdict.checked == 6 and f"#{ids[-1]}" in verdict.anchor
    call_command("audit", "verify")
    assert "intact: 6 records; tail checked against the checkpoint of" in capsys.readouterr().out
    (cp,) = checkpoints.read_all(audit_checkpoints)
    assert (cp.last_id, cp.count, cp.prev) == (ids[-1], 4, "")


def test_a_cut_tail_with_an_earlier_head_put_back_is_named(audit_checkpoints, tmp_path):
    ids = _write(5, "A")
    call_command("audit", "checkpoint")
    earlier = _saved_head()  # the intruder keeps a copy of the head row
    newest = _write(3, "B")[-3:]
    call_command("audit", "checkpoint")
    _cut_tail_and_put_back(earlier, ids[-1])

    # the database alone cannot tell: its head is genuine, only earlier (today's `verify`)
    assert chain.verify(tmp_path / "no-checkpoints.jsonl").ok
    verdict = chain.verify()
    assert not verdict.ok and verdict.broken_id == newest[0]
    assert "records missing at the end" in verdict.reason
    assert f"signed record #{newest[-1]} and 8 records" in verdict.reason
    assert f"the log ends at #{ids[-1]} (5 records)" in verdict.reason and "3 records after" in verdict.reason
    with pytest.raises(CommandError, match=f"broken at record #{newest[0]}.*3 records after #{ids[-1]}"):
        call_command("audit", "verify")


def test_a_cut_tail_hidden_under_new_records_is_named(audit_checkpoints):
    ids = _write(3, "A")
    earlier = _saved_head()
    newest = _write(2, "B")[-2:]
    call_command("audit", "checkpoint")
    _cut_tail_and_put_back(earlier, ids[-1])
    later = _write(2, "C")[-2:]  # the system goes on writing from the head put back: a valid chain
    assert later[0] > newest[-1]
    verdict = chain.verify()
    assert not verdict.ok and verdict.broken_id == newest[-1]
    assert f"record #{newest[-1]} missing" in verdict.reason and "2 records up to it are gone" in verdict.reason


def test_the_supervisor_refuses_to_checkpoint_over_a_cut_tail_and_alerts(audit_checkpoints):
    ids = _write(3, "A")
    earlier = _saved_head()
    _write(2, "B")
    timed.checkpoint_audit()  # the supervisor's job: the first checkpoint
    lines = audit_checkpoints.read_text().splitlines()
    assert len(lines) == 1
    timed.checkpoint_audit()  # the head has not moved: nothing written
    assert len(audit_checkpoints.read_text().splitlines()) == 1

    _cut_tail_and_put_back(earlier, ids[-1])
    _write(1, "C")  # the head moved on — but not from where the checkpoint left it
    timed.checkpoint_audit()
    assert audit_checkpoints.read_text().splitlines() == lines  # the cut is never blessed
    alert = Alert.objects.get(kind=AlertKind.JOB_FAILED, subject=timed.AUDIT_CHECKPOINT_JOB, cleared_at__isnull=True)
    assert "missing" in alert.detail["error"]
    with pytest.raises(CommandError, match="no checkpoint written: record #"):
        call_command("audit", "checkpoint")


def test_an_edited_or_thinned_checkpoint_file_is_refused(audit_checkpoints):
    _write(2, "A")
    call_command("audit", "checkpoint")
    _write(2, "B")
    call_command("audit", "checkpoint")
    _write(1, "C")
    call_command("audit", "checkpoint")
    assert chain.verify().ok
    lines = audit_checkpoints.read_text().splitlines()

    edited = json.loads(lines[-1]) | {"count": 1}  # an intruder "agreeing" with a cut database
    audit_checkpoints.write_text("\n".join([*lines[:-1], json.dumps(edited)]) + "\n")
    verdict = chain.verify()
    assert not verdict.ok and "checkpoint file is not trustworthy" in verdict.reason
    assert "signature does not verify" in verdict.reason

    audit_checkpoints.write_text("\n".join([lines[0], lines[2]]) + "\n")  # one taken out of the middle
    verdict = chain.verify()
    assert not verdict.ok and "does not follow the checkpoint before it" in verdict.reason


def test_the_logged_checkpoint_is_a_second_copy_verify_can_use(audit_checkpoints, tmp_path, caplog):
    ids = _write(3, "A")
    earlier = _saved_head()
    _write(2, "B")
    with caplog.at_level(logging.INFO, logger="ops.audit.checkpoints"):
        call_command("audit", "checkpoint")
    (logged,) = [r for r in caplog.records if getattr(r, "event", "") == "audit.checkpoint"]
    # the collector's copies: a plain log line, and a JSON log line with its ``checkpoint`` field
    plain = tmp_path / "plain.log"
    plain.write_text(f"2026-12-07 01:00:00 INFO other line\n2026-12-07 01:00:01 INFO {logged.getMessage()}\n")
    as_json = tmp_path / "json.log"
    carried = logged.__dict__["checkpoint"]  # the log call's ``extra``
    as_json.write_text(json.dumps({"level": "INFO", "message": "…", "checkpoint": carried}) + "\n")

    audit_checkpoints.unlink()  # the intruder also removed the file on the server
    _cut_tail_and_put_back(earlier, ids[-1])
    assert chain.verify().ok  # nothing left on the server to tell
    for copy in (plain, as_json):
        verdict = chain.verify(copy)
        assert not verdict.ok and "records missing at the end" in verdict.reason, copy
        with pytest.raises(CommandError, match="records missing at the end"):
            call_command("audit", "verify", "--checkpoint", str(copy))


def test_checkpoints_follow_bulk_writes_and_a_restore_rebases_them(audit_checkpoints):
    ids = _write(2, "A")
    record_many(actor=None, basis="批量导入", entries=[Entry("holder.create", "cardholder", f"H{i}") for i in range(4)])
    call_command("audit", "checkpoint")
    first = checkpoints.latest()
    assert first is not None and first.total == 6
    with connection.cursor() as cursor:  # what a restore of an older backup leaves: a shorter log
        cursor.execute("DELETE FROM audit_auditrecord WHERE id > %s", [ids[-1]])
    head = AuditChain.objects.get(pk=1)
    AuditChain.objects.filter(pk=1).update(
        last_id=ids[-1],
        last_mac=AuditRecord.objects.get(pk=ids[-1]).mac,
        count=2,
        head_mac=chain.head_mac(ids[-1], AuditRecord.objects.get(pk=ids[-1]).mac, 2, head.base_id, head.base_mac),
    )
    assert not chain.verify().ok
    cp = checkpoints.write(rebase="restore of the backup of 2026-12-06T02:30:00Z")
    assert cp is not None and cp.total == 2 and cp.rebase.startswith("restore")
    assert chain.verify().ok and len(checkpoints.read_all()) == 2  # still one line of links
