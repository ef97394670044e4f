"""``ops.bulk.fast_insert`` takes a UUID field's value as a ``uuid.UUID`` or as its text, and a
datetime as an aware ``datetime``, on every database: on PostgreSQL the values go to psycopg
as they are (Django's per-value adapters were a sixth of the tap insert's Python time, issue 14),
a UUID's text made a UUID first."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction
from django.utils import timezone

from ops.pipeline.taps import insert_access_events
from ops.registry.models import AccessEvent
from tests.factories import make_campus

pytestmark = [pytest.mark.django_db(transaction=True)]


AT = timezone.now()


def _row(device_id: int, event_id: object) -> tuple:
    return (event_id, device_id, None, "A0000000", None, AT, AT, "in", "allow", "ok", "", 1, 1)


def test_a_uuid_given_as_uuid_or_as_text_is_stored_and_returned_as_a_uuid():
    campus = make_campus(n_cards=1)
    as_uuid, as_text = uuid.uuid4(), uuid.uuid4()
    with transaction.atomic():
        inserted = insert_access_events([_row(campus.gate.id, as_uuid), _row(campus.gate.id, str(as_text))])
    assert set(inserted) == {as_uuid, as_text}  # returned as UUIDs, whatever was given
    assert all(isinstance(i, int) for i in inserted.values())
    stored = dict(AccessEvent.objects.values_list("event_id", "id"))
    assert stored == inserted
    # the same taps again (a redelivery): nothing new, whichever form the id comes in
    with transaction.atomic():
        assert insert_access_events([_row(campus.gate.id, str(as_uuid)), _row(campus.gate.id, as_text)]) == {}
