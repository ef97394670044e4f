"""Forgive anti-passback (issue 17, Build 5; R-SEC-5): a security operator, from the security
desk, lifts anti-passback for one person (every card they hold) or for a whole zone — e.g.
someone who left behind another person without tapping out, or a zone after a fire drill.

One transaction: the record, its audit entry (``passback.forgiven``, object the zone, basis the
reason) and its publication on the zone's stream (:mod:`streams.passback`), which the zone's
agents follow — if Redis refuses it, nothing is kept and the operator is told so. An agent that
is offline then applies it when it reads on from its cursor; meanwhile it still refuses.
"""

from __future__ import annotations

from typing import Any

import redis
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ops import redis_client
from ops.accounts.permissions import can_forgive_passback
from ops.audit.services import record
from ops.registry.models import Card, Cardholder
from ops.registry.passback import selectors
from ops.registry.passback.models import Forgiveness
from streams import passback as zone_feed

OBJECT_TYPE = "passback_zone"
ACTION = "passback.forgiven"
REASON_MIN, REASON_MAX = 2, 200


class PassbackError(ValidationError):
    """Bad input; nothing has been changed."""

    def __str__(self) -> str:
        return " ".join(self.messages)


class PassbackForbidden(PermissionDenied):
    """Only the security office forgives anti-passback."""


def _holder(person: str) -> Cardholder:
    """A cardholder by student/staff number or by the UID of any of their cards."""
    holder = (
        Cardholder.objects.filter(Q(number=person) | Q(cards__uid=person.upper())).distinct().first()
        if person
        else None
    )
    if holder is None:
        raise PassbackError(_("找不到学工号或卡号为“%(person)s”的持卡人") % {"person": person})
    return holder


@transaction.atomic
def forgive(*, by: Any, zone: str, person: str = "", reason: str) -> Forgiveness:
    """Forgive ``person`` (a student/staff number or a card UID; empty: every card) in ``zone``."""
    if not can_forgive_passback(by):
        raise PassbackForbidden(_("只有保卫处可以豁免防潜回"))
    zone, person, reason = zone.strip(), person.strip(), reason.strip()
    zones = selectors.zones()
    if zone not in zones:
        raise PassbackError(_("没有名为“%(zone)s”的防潜回区域") % {"zone": zone})
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        raise PassbackError(_("请填写豁免原因（%(min)d–%(max)d 个字）") % {"min": REASON_MIN, "max": REASON_MAX})
    holder = _holder(person) if person else None
    uids = sorted(Card.objects.filter(holder=holder).values_list("uid", flat=True)) if holder is not None else []
    if holder is not None and not uids:
        raise PassbackError(_("持卡人 %(number)s 名下没有卡") % {"number": holder.number})
    at = timezone.now()
    forgiveness = Forgiveness.objects.create(zone=zone, holder=holder, uids=uids, at=at, by=by, reason=reason)
    record(
        actor=by,
        action=ACTION,
        object_type=OBJECT_TYPE,
        object_id=zone,
        basis=reason,
        data={
            "forgiveness": forgiveness.pk,
            "scope": "person" if holder is not None else "zone",
            "holder": holder.number if holder is not None else None,
            "uids": uids,
            "devices": list(zones[zone].devices),
        },
    )
    entry = zone_feed.ZoneForgiveness(tuple(uids) if holder is not None else None, at, forgiveness.pk)
    try:
        zone_feed.publish(redis_client.client(), zone, entry, now=at)
    except (redis.RedisError, OSError):
        # the readers must hear of it, or it is not given: the transaction is undone
        raise PassbackError(_("无法通知该区域的读卡器（Redis 不可用），未作任何更改，请稍后重试")) from None
    return forgiveness
