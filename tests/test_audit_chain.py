"""The audit log is chained with an HMAC whose key is not in the database (R-SEC-1): editing,
deleting or inserting a row directly in the database (PostgreSQL here) makes
``campuscard audit verify`` fail and name the record; an intact log verifies."""

from __future__ import annotations

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from ops.audit import chain
from ops.audit.models import AuditRecord
from ops.audit.services import Entry, record, record_many

pytestmark = pytest.mark.django_db(transaction=True)


def _write_some() -> list[int]:
    record(
        actor=None,
        action="card.issue",
        object_type="card",
        object_id="A001",
        basis="审批单 12",
        data={"holder": "2025CS00001", "金额": "20.00"},
    )
    record_many(
        actor=None,
        basis="批量导入",
        entries=[Entry("holder.create", "cardholder", f"2025CS{i:05d}", {"row": i}) for i in range(5)],
    )
    record(actor=None, action="alert.acknowledged", object_type="alert", object_id=7, data={"comment": "已通知电工"})
    return list(AuditRecord.objects.order_by("id").values_list("id", flat=True))


def _verify_fails_at(pk: int) -> str:
    verdict = chain.verify()
    assert not verdict.ok and verdict.broken_id == pk, verdict
    with pytest.raises(CommandError, match=f"#{pk}"):
        call_command("audit", "verify")
    return verdict.reason


def _sql(statement: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_an_intact_log_verifies(capsys):
    ids = _write_some()
    assert chain.verify().ok and chain.verify().checked == len(ids) == 7
    call_command("audit", "verify")
    assert "intact: 7 records" in capsys.readouterr().out


def test_editing_a_record_in_the_database_is_named():
    ids = _write_some()
    _sql("UPDATE audit_auditrecord SET data = %s WHERE id = %s", ['{"row": 99}', ids[3]])
    _verify_fails_at(ids[3])


def test_editing_only_the_actor_name_or_the_time_is_named():
    ids = _write_some()
    _sql("UPDATE audit_auditrecord SET actor_name = %s WHERE id = %s", ["someone-else", ids[1]])
    _verify_fails_at(ids[1])


def test_deleting_a_record_breaks_the_chain_at_the_next_one():
    ids = _write_some()
    _sql("DELETE FROM audit_auditrecord WHERE id = %s", [ids[2]])
    _verify_fails_at(ids[3])


def test_inserting_a_record_is_named_even_with_a_copied_mac():
    ids = _write_some()
    _sql(
        """INSERT INTO audit_auditrecord (id, at, actor_name, action, object_type, object_id,
            basis, data, mac)
            SELECT %s, at, actor_name, action, object_type, object_id, basis, data, mac
            FROM audit_auditrecord WHERE id = %s""",
        [ids[-1] + 100, ids[-1]],
    )
    _verify_fails_at(ids[-1] + 100)


def test_cutting_records_off_the_end_is_detected_by_the_head():
    ids = _write_some()
    _sql("DELETE FROM audit_auditrecord WHERE id >= %s", [ids[-2]])
    verdict = chain.verify()
    assert not verdict.ok and "missing at the end" in verdict.reason
    assert verdict.broken_id == ids[-3] + 1


def test_recomputing_a_mac_without_the_key_does_not_help(settings):
    ids = _write_some()
    _sql("UPDATE audit_auditrecord SET object_id = %s WHERE id = %s", ["B999", ids[0]])
    real_key = settings.AUDIT_HMAC_KEY
    settings.AUDIT_HMAC_KEY = "a-guessed-key"  # an attacker's recomputation with another key
    rows = AuditRecord.objects.order_by("id")
    previous = chain.GENESIS
    for r in rows:
        previous = chain.link(
            previous,
            chain.canonical(r.at, r.actor_id, r.actor_name, r.action, r.object_type, r.object_id, r.basis, r.data),
        )
        _sql("UPDATE audit_auditrecord SET mac = %s WHERE id = %s", [previous, r.pk])
    settings.AUDIT_HMAC_KEY = real_key
    _verify_fails_at(ids[0])


def test_concurrent_writers_keep_one_valid_chain():
    """Appends take the chain head's lock: many writers at once still form one chain."""
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                record(actor=None, action="test.concurrent", object_type="t", object_id=f"{n}-{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    verdict = chain.verify()
    assert verdict.ok and verdict.checked == 60, verdict
