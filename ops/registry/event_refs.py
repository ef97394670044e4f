"""What an access event refers to — its device, card and holder — kept whole without database
foreign keys (issue 14).

A foreign key on the tap table cost every stored tap three trigger queries at commit (one per
reference): a tenth of the processor's time per tap on PostgreSQL (docs/benchmarks.md). The
references are kept by the lock that already orders tap commits instead:

- a tap batch takes ``SERIALISE_TAP_COMMITS`` first, then looks up its cards and holders
  (``ops.pipeline.taps.start_tap_batch``), and holds the lock until it commits;
- deleting a device, card or holder takes the same lock first (``pre_delete`` below), so it
  waits for a batch in flight to commit and no batch commits while it runs. The ORM's
  ``on_delete`` then sees every stored tap: a card's or holder's taps lose the reference
  (SET_NULL; each keeps the card's UID), a device with taps is refused (PROTECT: checked again
  here under the lock, as the collector checked before it).

Every delete goes through the ORM (the admin, services): nothing in the product deletes rows of
these tables in SQL. SQLite serialises writers already (BEGIN IMMEDIATE), so the lock is
PostgreSQL's only; the PROTECT re-check runs on both."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import ProtectedError
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils.translation import gettext as _

from ops.registry.models import AccessEvent, Card, Cardholder, Device

TAP_COMMIT_LOCK = 0x43435450  # "CCTP": the advisory lock that orders tap commits
# Access-event ids rise in commit order, even with several processors. Live pages skip pushed
# batches whose watermark (max id at commit) their snapshot already covers; that is only exact if
# no transaction commits a lower id after a higher one. SQLite serialises writers already (BEGIN
# IMMEDIATE); on PostgreSQL this transaction-scoped advisory lock, taken before the insert
# (``start_tap_batch``), does the same. Extra processors then add failover and parallel
# decoding, not parallel tap inserts — one processor sustains the target rate.
SERIALISE_TAP_COMMITS = f"SELECT pg_advisory_xact_lock({TAP_COMMIT_LOCK:d})"


def hold_tap_commits() -> None:
    """Until the current transaction ends, no tap batch commits (PostgreSQL; SQLite's writers
    are serialised already)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(SERIALISE_TAP_COMMITS)


@receiver(pre_delete, sender=Card, dispatch_uid="campuscard-event-refs-card")
@receiver(pre_delete, sender=Cardholder, dispatch_uid="campuscard-event-refs-holder")
def _card_or_holder_deleted(sender: type, instance: Any, **kwargs: Any) -> None:
    hold_tap_commits()  # the collector's SET_NULL runs after this, over every committed tap


@receiver(pre_delete, sender=Device, dispatch_uid="campuscard-event-refs-device")
def _device_deleted(sender: type, instance: Device, **kwargs: Any) -> None:
    hold_tap_commits()
    events = AccessEvent.objects.filter(device_id=instance.pk)
    if events.exists():  # a batch committed between the collector's check and this lock
        raise ProtectedError(_("设备已有通行记录，不能删除"), set(events[:1]))
