"""Reminders the supervisor raises once a day (issue 16, Build 4), as alerts — so the routing
rules of ``ops.alerts.notifications`` deliver them to whom NIC chose, like any other alert:

- in June (campus time), once a year, NIC is reminded that the July run is due (R-END-1; the
  rule is ``ops.registry.lifecycle.graduation.reminder_due``);
- a temporary card whose agreed end (R-END-4) is within ``TEMP_CARD_REMIND_DAYS``: one reminder
  per card and end date to its owning department (R-CARD-7, "谁审批，谁管理，谁负责"), which can
  still have it extended with the unit's letter. An extension gives the card a new end date, and
  so a new reminder when that one comes near.

"Once" is kept by the alert itself (its kind and subject, whatever its status since): resolving
a reminder does not make it come back the next day.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from ops.alerts.choices import AlertKind
from ops.alerts.models import Alert
from ops.alerts.services import AlertBuffer
from ops.masking import mask_uid
from ops.registry.lifecycle.graduation import RUN_MONTH, reminder_due
from ops.registry.lifecycle.selectors import temporary_cards_ending


def remind_july_run(*, now: datetime) -> dict[str, Any]:
    local = timezone.localtime(now)  # campus time: TIME_ZONE (Asia/Shanghai)
    if not reminder_due(local.date()):
        return {"due": False}
    subject = str(local.year)
    if Alert.objects.filter(kind=AlertKind.JULY_RUN_DUE, subject=subject).exists():
        return {"due": True, "raised": False}
    buffer = AlertBuffer()
    buffer.add(
        kind=AlertKind.JULY_RUN_DUE,
        subject=subject,
        at=now,
        detail={"year": local.year, "month": RUN_MONTH, "command": "campuscard graduates"},
    )
    buffer.flush()
    return {"due": True, "raised": True}


def card_subject(card_id: int, uid: str, ends: datetime) -> str:
    """One reminder per card per end date: the card (masked, as on every desk) and its end."""
    return f"#{card_id} {mask_uid(uid)} {timezone.localtime(ends):%Y-%m-%d}"


def remind_temporary_cards(*, now: datetime) -> dict[str, Any]:
    cards = list(temporary_cards_ending(now=now, within=timedelta(days=settings.TEMP_CARD_REMIND_DAYS)))
    subjects = {card.pk: card_subject(card.pk, card.uid, card.valid_until) for card in cards if card.valid_until}
    told = set(
        Alert.objects.filter(kind=AlertKind.TEMP_CARD_EXPIRING, subject__in=list(subjects.values())).values_list(
            "subject", flat=True
        )
    )
    buffer = AlertBuffer()
    for card in cards:
        subject = subjects.get(card.pk)
        if subject is None or subject in told or card.valid_until is None or card.owner_department is None:
            continue
        department = card.owner_department
        buffer.add(
            kind=AlertKind.TEMP_CARD_EXPIRING,
            subject=subject,
            at=now,
            department_id=department.pk,
            detail={
                "card_id": card.pk,
                "card": mask_uid(card.uid),
                "card_type": card.card_type,
                "valid_until": card.valid_until.isoformat(),
                "department": department.code,
                "department_name": department.name,
            },
        )
    raised = len(buffer.pending)
    buffer.flush()
    return {"ending": len(cards), "raised": raised}
