"""The July run (R-END-1): cancel graduated students' cards in one batch, except students on
Academic Affairs' deferred-graduation list, whose validity is extended instead (R-CARD-6).

``plan_graduation`` computes what would happen; ``run_graduation`` applies exactly that plan,
so the dry-run report is what apply then does. Every affected student gets an audit record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ops.accounts.permissions import role_of
from ops.accounts.roles import Role
from ops.audit import services as audit
from ops.bulk import fast_insert
from ops.registry.choices import LIVE_CARD_STATUSES, HolderKind, HolderStatus
from ops.registry.lifecycle.choices import Action
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.models import CardAction
from ops.registry.lifecycle.outbox import announce_many
from ops.registry.lifecycle.services import _end_of_day, _require_basis
from ops.registry.models import Card, Cardholder
from streams.cards import CardStatus

ACTION_FIELDS = ("card", "holder", "action", "from_status", "to_status", "operator", "basis", "at")
RUN_MONTH = 7  # R-END-1: "every July NIC cancels graduated students' accounts in one batch"


def reminder_due(day: date) -> bool:
    """Is ``day`` (campus time) in the month before the July run, when NIC is reminded of it
    (issue 16, Build 4: in June, once a year)?"""
    return day.month == RUN_MONTH - 1


@dataclass
class GraduationPlan:
    cutoff: date
    no_study_end: list[str] = field(default_factory=list)
    graduate: list[str] = field(default_factory=list)  # student numbers to cancel
    extend: dict[str, date] = field(default_factory=dict)  # number → new study end
    unknown_deferred: list[str] = field(default_factory=list)  # on the list, not a student

    def report(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "graduate": len(self.graduate),
            "extend": len(self.extend),
            "unknown_deferred": sorted(self.unknown_deferred),
            "graduate_numbers": sorted(self.graduate),
            "extend_numbers": {k: v.isoformat() for k, v in sorted(self.extend.items())},
            # students no July run can reach: their end of study is unknown (issue 13, defect 1)
            "no_study_end": sorted(self.no_study_end),
        }


def plan_graduation(*, cutoff: date, deferred: Mapping[str, date]) -> GraduationPlan:
    plan = GraduationPlan(cutoff=cutoff)
    due = set(
        Cardholder.objects.filter(
            kind=HolderKind.STUDENT, status=HolderStatus.ACTIVE, study_end__lte=cutoff
        ).values_list("number", flat=True)
    )
    students = set(
        Cardholder.objects.filter(
            kind=HolderKind.STUDENT, status=HolderStatus.ACTIVE, number__in=list(deferred)
        ).values_list("number", flat=True)
    )
    for number, new_end in deferred.items():
        if number not in students:
            plan.unknown_deferred.append(number)
        elif new_end <= cutoff:
            raise CardRuleError(f"{number}: 延期毕业日期 {new_end} 必须晚于本次毕业截止日 {cutoff}")
        else:
            plan.extend[number] = new_end
    plan.graduate = sorted(due - set(plan.extend))
    plan.no_study_end = list(
        Cardholder.objects.filter(
            kind=HolderKind.STUDENT, status=HolderStatus.ACTIVE, study_end__isnull=True
        ).values_list("number", flat=True)
    )
    return plan


def may_run_graduation(operator: Any) -> bool:
    """R-END-1: the July run is NIC's (a superuser is NIC's too); nobody else, by any path."""
    return getattr(operator, "is_superuser", False) or role_of(operator) == Role.NIC


@transaction.atomic
def run_graduation(*, plan: GraduationPlan, operator: Any, basis: str) -> dict[str, Any]:
    if not may_run_graduation(operator):
        raise CardRuleError(_("只有网信中心可以执行毕业批量注销（R-END-1）"))
    basis = _require_basis(basis)
    now = timezone.now()
    actor_id = operator.pk if getattr(operator, "pk", None) else None
    entries: list[audit.Entry] = []
    actions: list[tuple[Any, ...]] = []
    touched: list[int] = []

    # Deferred students: study end and live cards' validity move to the new date.
    deferred_cards = list(
        Card.objects.filter(holder__number__in=list(plan.extend), status__in=LIVE_CARD_STATUSES).values_list(
            "id", "holder_id", "status", "holder__number"
        )
    )
    for new_end in sorted(set(plan.extend.values())):
        numbers = [n for n, d in plan.extend.items() if d == new_end]
        Cardholder.objects.filter(number__in=numbers).update(study_end=new_end, updated_at=now)
        Card.objects.filter(id__in=[c[0] for c in deferred_cards if c[3] in numbers]).update(
            valid_until=_end_of_day(new_end), updated_at=now
        )
    for card_id, holder_id, status, _number in deferred_cards:
        actions.append((card_id, holder_id, Action.EXTEND.value, status, status, actor_id, basis, now))
        touched.append(card_id)
    entries.extend(
        audit.Entry("holder.graduation_deferred", "cardholder", number, {"study_end": new_end.isoformat()})
        for number, new_end in plan.extend.items()
    )

    # Graduates: the person is marked graduated, every live card is cancelled.
    holders = Cardholder.objects.filter(number__in=plan.graduate)
    cards = list(
        Card.objects.filter(holder__in=holders, status__in=LIVE_CARD_STATUSES).values_list(
            "id", "holder_id", "status", "holder__number"
        )
    )
    holders.update(status=HolderStatus.GRADUATED, updated_at=now)
    Card.objects.filter(id__in=[c[0] for c in cards]).update(status=CardStatus.CANCELLED, updated_at=now)
    with_card = {number for _c, _h, _s, number in cards}
    for card_id, holder_id, status, _number in cards:
        actions.append(
            (card_id, holder_id, Action.CANCEL.value, status, CardStatus.CANCELLED.value, actor_id, basis, now)
        )
        touched.append(card_id)
    entries.extend(
        audit.Entry("holder.graduated", "cardholder", number, {"card_cancelled": number in with_card})
        for number in plan.graduate
    )

    fast_insert(CardAction, ACTION_FIELDS, actions)
    audit.record_many(actor=operator, basis=basis, entries=entries)
    changed = list(Card.objects.filter(id__in=touched).select_related("holder", "holder__dorm_building"))
    announce_many(changed, "graduation", operator)
    return plan.report()
