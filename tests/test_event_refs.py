"""A tap names a device, card and holder that exist, without database foreign keys (issue 14,
ops.registry.event_refs): the tap table has none (their trigger queries at every commit were a
tenth of the processor's time), and every delete of what a tap names takes the tap-commit lock
first, so the ORM's on_delete sees every stored tap — also one committed while the delete waited.
The record an investigation reads is as trustworthy as with the keys (R-SEC-1: every use of a
card is provable; R-DEV-1: every tap names its registered device)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.db import connection, connections, transaction
from django.db.models import ProtectedError
from django.test import Client
from django.utils import timezone

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.pipeline.taps import insert_access_events, start_tap_batch
from ops.registry.choices import DeviceApproval
from ops.registry.models import AccessEvent, Card, Cardholder, Device
from streams.cards import DeviceKind
from tests.factories import make_campus, make_device

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the SQLite pass serialises writers")


def _row(device: Device, card: Card | None, uid: str = "A0000000") -> tuple:
    return (
        uuid.uuid4(),
        device.id,
        card.id if card else None,
        card.uid if card else uid,
        card.holder_id if card else None,
        timezone.now(),
        timezone.now(),
        "in",
        "allow",
        "ok",
        "",
        1,
        1,
    )


def _foreign_keys() -> list[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT conrelid::regclass::text || ' ' || conname FROM pg_constraint "
                "WHERE contype = 'f' AND conrelid::regclass::text LIKE 'campus_accessevent%%'"
            )
            return [r[0] for r in cursor.fetchall()]
        cursor.execute("PRAGMA foreign_key_list(campus_accessevent)")
        return [str(r) for r in cursor.fetchall()]


def test_the_tap_table_has_no_database_foreign_key():
    assert _foreign_keys() == []


def test_a_deleted_card_or_holder_leaves_its_taps_with_the_uid_and_without_the_reference():
    campus = make_campus(n_cards=2)
    first, second = campus.cards
    with transaction.atomic():
        insert_access_events([_row(campus.gate, first), _row(campus.gate, second)])
    first.delete()
    mine = AccessEvent.objects.get(card_uid=first.uid)
    assert (mine.card_id, mine.holder_id) == (None, first.holder_id)  # the holder still exists
    second.delete()  # a holder with a card cannot be deleted (PROTECT): the card first
    Cardholder.objects.filter(id=second.holder_id).delete()
    theirs = AccessEvent.objects.get(card_uid=second.uid)
    assert (theirs.card_id, theirs.holder_id, theirs.card_uid) == (None, None, second.uid)


def test_a_device_with_taps_cannot_be_deleted():
    campus = make_campus(n_cards=1)
    with transaction.atomic():
        insert_access_events([_row(campus.gate, campus.cards[0])])
    with pytest.raises(ProtectedError):
        campus.gate.delete()
    assert Device.objects.filter(id=campus.gate.id).exists()


def _open_batch(device: Device, card: Card, ready: threading.Event, go: threading.Event, out: dict) -> None:
    """A tap batch in another connection: the lock taken, the card looked up, its tap inserted,
    then held open until ``go`` — as a processor's transaction is between its first statement
    and its commit."""
    try:
        with transaction.atomic():
            cards = start_tap_batch({card.uid}, {})
            out["looked_up"] = cards[card.uid]["id"]
            insert_access_events([_row(device, card)], started=True)
            ready.set()
            go.wait(10)
    finally:
        connections.close_all()


def _in_thread(fn, *args) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run():
        try:
            fn(*args, out)
        except Exception as exc:  # handed to the test's thread
            out["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


@postgres_only
def test_a_card_deleted_while_a_tap_batch_is_open_waits_for_it_then_clears_its_tap():
    campus = make_campus(n_cards=1)
    card = campus.cards[0]
    ready, go = threading.Event(), threading.Event()
    batch, batch_out = _in_thread(_open_batch, campus.gate, card, ready, go)
    assert ready.wait(10)

    def delete(out):
        Card.objects.get(id=card.id).delete()
        out["done_at"] = time.monotonic()

    deleter, deleted = _in_thread(delete)
    time.sleep(0.5)
    assert "done_at" not in deleted, "the delete must wait for the open tap batch"
    released_at = time.monotonic()
    go.set()
    batch.join(10)
    deleter.join(10)
    assert "error" not in batch_out and "error" not in deleted, (batch_out, deleted)
    assert deleted["done_at"] >= released_at
    tap = AccessEvent.objects.get(card_uid=card.uid)
    assert tap.card_id is None  # without the lock it would name a card that no longer exists


@postgres_only
def test_a_device_deleted_while_its_first_taps_commit_is_refused():
    campus = make_campus(n_cards=1)
    pending = make_device("G-N-09", "北门人行9号闸", DeviceKind.PEDESTRIAN_GATE, "北门", campus.dept)
    ready, go = threading.Event(), threading.Event()
    batch, batch_out = _in_thread(_open_batch, pending, campus.cards[0], ready, go)
    assert ready.wait(10)

    def delete(out):
        Device.objects.get(id=pending.id).delete()  # no committed tap yet: the collector lets it through

    deleter, deleted = _in_thread(delete)
    time.sleep(0.5)
    go.set()
    batch.join(10)
    deleter.join(10)
    assert "error" not in batch_out, batch_out
    assert isinstance(deleted.get("error"), ProtectedError), deleted
    assert Device.objects.filter(id=pending.id).exists()
    assert AccessEvent.objects.filter(device_id=pending.id).count() == 1


@postgres_only
@pytest.mark.parametrize("how", ["delete page", "bulk action"])
def test_a_device_deleted_in_the_admin_while_its_first_taps_commit_is_refused_in_words(how):
    """The admin's two deletes (the device's delete page, the list's bulk action) losing that race:
    the operator reads why, in their language, on the page they came back to — not an error page —
    and nothing changed (the device, its tap, no removal audited)."""
    campus = make_campus(n_cards=1)
    pending = make_device("G-N-09", "北门人行9号闸", DeviceKind.PEDESTRIAN_GATE, "北门", campus.dept)
    Device.objects.filter(id=pending.id).update(approval=DeviceApproval.PENDING)  # deletable in the admin
    nic = create_or_update_operator(username="nic1", password="pw-nic-123", role=Role.NIC)
    nic.user_permissions.add(Permission.objects.get(content_type__app_label="campus", codename="delete_device"))
    audited = AuditRecord.objects.count()
    ready, go = threading.Event(), threading.Event()
    batch, batch_out = _in_thread(_open_batch, pending, campus.cards[0], ready, go)
    assert ready.wait(10)

    def delete(out):
        client = Client()
        client.force_login(nic)
        client.cookies["django_language"] = "en"  # the operator's language, not the default
        out["response"] = _admin_delete(client, pending, how)
        out["page"] = client.get(out["response"].url).content.decode()

    deleter, deleted = _in_thread(delete)
    time.sleep(0.5)
    go.set()
    batch.join(10)
    deleter.join(10)
    assert "error" not in batch_out and "error" not in deleted, (batch_out, deleted)
    assert deleted["response"].status_code == 302
    assert "has recorded taps and cannot be deleted" in deleted["page"]
    assert Device.objects.filter(id=pending.id).exists()
    assert AccessEvent.objects.filter(device_id=pending.id).count() == 1
    # the operator's sign-in is the only thing audited: no removal, no ACL change
    assert list(AuditRecord.objects.order_by("id").values_list("action", flat=True)[audited:]) == ["auth.login"]


def _admin_delete(client: Client, device: Device, how: str):
    if how == "delete page":
        return client.post(f"/admin/campus/device/{device.id}/delete/", {"post": "yes"})
    form = {"action": "delete_selected", "_selected_action": [device.id], "post": "yes"}
    return client.post("/admin/campus/device/", form)


@pytest.mark.parametrize("how", ["delete page", "bulk action"])
def test_a_pending_device_without_taps_is_deleted_in_the_admin_and_audited(how):
    campus = make_campus(n_cards=1)
    pending = make_device("G-N-09", "北门人行9号闸", DeviceKind.PEDESTRIAN_GATE, "北门", campus.dept)
    Device.objects.filter(id=pending.id).update(approval=DeviceApproval.PENDING)
    nic = create_or_update_operator(username="nic1", password="pw-nic-123", role=Role.NIC)
    nic.user_permissions.add(Permission.objects.get(content_type__app_label="campus", codename="delete_device"))
    client = Client()
    client.force_login(nic)
    assert _admin_delete(client, pending, how).status_code == 302
    assert not Device.objects.filter(id=pending.id).exists()
    assert AuditRecord.objects.filter(action="admin.delete", object_id=str(pending.id)).exists()
