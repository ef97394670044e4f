"""Acceptance (issue 3, point 1): random sequences of issue / lose / find / replace / cancel /
extend / graduate across many holders; after every step the invariants hold — at most one
usable card per person (R-CARD-3), dead cards never revive (R-USE-2), fees exactly as the
rules say (R-FEE-1, R-FEE-2), every change audited and published."""

from __future__ import annotations

import functools
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db.models import Count, Q, Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.audit.models import AuditRecord
from ops.registry.choices import HolderKind
from ops.registry.lifecycle import graduation, services
from ops.registry.lifecycle.choices import Topic
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.models import CardAction, FeeCharge, FeePolicy, OutboxMessage
from ops.registry.models import Card, Cardholder, Department
from streams.cards import CardStatus

DEAD = {CardStatus.REPLACED, CardStatus.CANCELLED}
N_HOLDERS = 6


class CardLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        for model in (OutboxMessage, FeeCharge, CardAction, AuditRecord):
            model.objects.all().delete()
        Card.objects.update(replaces=None)
        Card.objects.all().delete()
        Cardholder.objects.all().delete()
        self.dept, _ = Department.objects.get_or_create(code="CS", name="计算机系")
        self.gao, _ = Department.objects.get_or_create(code="GAO", name="总务处")
        self.nic = create_or_update_operator(username="nic-sm", password="pw-nic-sm-1", role=Role.NIC)
        self.policy = FeePolicy.current()
        self.holders: list[Cardholder] = []
        kinds = [HolderKind.STUDENT] * 4 + [HolderKind.STAFF, HolderKind.CONTRACTOR]
        for i, kind in enumerate(kinds[:N_HOLDERS]):
            self.holders.append(
                Cardholder.objects.create(
                    kind=kind,
                    number=f"H{i:03d}",
                    name=f"测试{i}",
                    department=self.dept,
                    study_end=date(2030, 7, 1) if i % 2 else date(2027, 7, 1) if kind == HolderKind.STUDENT else None,
                )
            )
        self.dead: set[str] = set()
        self.expected_fees: list[Decimal] = []
        self.changes = 0  # successful actions = card-action rows expected
        self.uids = 0

    def _uid(self) -> str:
        self.uids += 1
        return f"C0FFEE{self.uids:04X}"

    def _cards(self, statuses) -> list[Card]:
        return list(Card.objects.filter(status__in=statuses).select_related("holder").order_by("id"))

    def _refused(self, call) -> None:
        """A refused action changes nothing."""
        before = (
            Card.objects.count(),
            CardAction.objects.count(),
            FeeCharge.objects.count(),
            OutboxMessage.objects.count(),
            AuditRecord.objects.count(),
        )
        with pytest.raises(CardRuleError):
            call()
        after = (
            Card.objects.count(),
            CardAction.objects.count(),
            FeeCharge.objects.count(),
            OutboxMessage.objects.count(),
            AuditRecord.objects.count(),
        )
        assert before == after

    # -- rules ------------------------------------------------------------------------------
    @rule(i=st.integers(0, N_HOLDERS - 1))
    def issue(self, i):
        holder = Cardholder.objects.get(pk=self.holders[i].pk)
        temporary = holder.kind == HolderKind.CONTRACTOR
        issue = functools.partial(
            services.issue_card,
            holder=holder,
            uid=self._uid(),
            operator=self.nic,
            approved_by_operator=None if temporary else self.nic,  # a temporary card: its department
            basis="申请表 2026-001",
            owner_department=self.gao if temporary else None,
            valid_until=timezone.now() + timedelta(days=90) if temporary else None,
        )
        live = holder.cards.filter(status__in=[CardStatus.ACTIVE, CardStatus.LOST]).exists()
        if live or holder.status != "active":
            self._refused(issue)
        else:
            issue()
            self.changes += 1

    @rule(data=st.data())
    def lose(self, data):
        cards = self._cards([CardStatus.ACTIVE])
        if cards:
            services.report_loss(card=data.draw(st.sampled_from(cards)), operator=self.nic, basis="本人持身份证挂失")
            self.changes += 1

    @rule(data=st.data())
    def find(self, data):
        cards = self._cards([CardStatus.LOST])
        if cards:
            services.report_found(card=data.draw(st.sampled_from(cards)), operator=self.nic, basis="本人找回")
            self.changes += 1

    @rule(data=st.data(), reason=st.sampled_from(["loss", "damage"]), above_cap=st.booleans())
    def replace(self, data, reason, above_cap):
        cards = self._cards([CardStatus.ACTIVE, CardStatus.LOST])
        if not cards:
            return
        card = data.draw(st.sampled_from(cards))
        if above_cap:
            self._refused(
                lambda: services.replace_card(
                    card=card,
                    new_uid=self._uid(),
                    operator=self.nic,
                    reason=reason,
                    basis="补卡",
                    fee=self.policy.cap + Decimal("0.01"),
                )
            )
            return
        services.replace_card(
            card=card, new_uid=self._uid(), operator=self.nic, reason=reason, basis="补卡申请", window="NIC-1"
        )
        self.dead.add(card.uid)
        self.expected_fees.append(self.policy.replacement_fee)
        self.changes += 2  # the old card's replacement and the new card's issue

    @rule(data=st.data())
    def cancel(self, data):
        cards = self._cards([CardStatus.ACTIVE, CardStatus.LOST])
        if cards:
            card = data.draw(st.sampled_from(cards))
            services.cancel_card(card=card, operator=self.nic, basis="退学", holder_status="withdrawn")
            self.dead.add(card.uid)
            self.changes += 1

    @rule(data=st.data())
    def revive_dead(self, data):
        """Trying to bring a dead card back is always refused."""
        cards = self._cards(list(DEAD))
        if cards:
            card = data.draw(st.sampled_from(cards))
            action = data.draw(st.sampled_from(["find", "lose", "replace", "extend"]))
            call = {
                "find": lambda: services.report_found(card=card, operator=self.nic, basis="x"),
                "lose": lambda: services.report_loss(card=card, operator=self.nic, basis="x"),
                "replace": lambda: services.replace_card(
                    card=card, new_uid=self._uid(), operator=self.nic, reason="loss", basis="x"
                ),
                "extend": lambda: services.extend_validity(
                    card=card, new_until=timezone.now() + timedelta(days=400), operator=self.nic, basis="x"
                ),
            }[action]
            self._refused(call)

    @rule(data=st.data(), days=st.integers(30, 900))
    def extend(self, data, days):
        cards = [c for c in self._cards([CardStatus.ACTIVE, CardStatus.LOST]) if c.card_type != "staff"]
        if cards:
            card = data.draw(st.sampled_from(cards))
            new_until = max(timezone.now(), card.valid_until or timezone.now()) + timedelta(days=days)
            services.extend_validity(
                card=card,
                new_until=new_until,
                operator=self.nic,
                basis="延期函 2026-07",
                approving_department=card.owner_department,  # a temporary card's: its owner's letter
            )
            self.changes += 1

    @precondition(lambda self: True)
    @rule(defer=st.booleans())
    def graduate(self, defer):
        deferred = {"H000": date(2028, 7, 1)} if defer else {}
        plan = graduation.plan_graduation(cutoff=date(2027, 7, 31), deferred=deferred)
        dry = plan.report()
        live_before = Card.objects.filter(
            holder__number__in=plan.graduate, status__in=[CardStatus.ACTIVE, CardStatus.LOST]
        ).values_list("uid", flat=True)
        extend_cards = Card.objects.filter(
            holder__number__in=list(plan.extend), status__in=[CardStatus.ACTIVE, CardStatus.LOST]
        ).count()
        cancelled = set(live_before)
        applied = graduation.run_graduation(plan=plan, operator=self.nic, basis="2026届毕业名单")
        assert applied == dry  # the dry-run report is what apply did
        self.dead |= cancelled
        self.changes += len(cancelled) + extend_cards

    # -- invariants ---------------------------------------------------------------------------
    @invariant()
    def one_usable_card_per_person(self):
        counts = (
            Card.objects.filter(status__in=[CardStatus.ACTIVE, CardStatus.LOST])
            .values("holder")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
        )
        assert not counts.exists()

    @invariant()
    def dead_cards_stay_dead(self):
        if self.dead:
            assert not Card.objects.filter(uid__in=self.dead).exclude(status__in=DEAD).exists()

    @invariant()
    def fees_exactly_as_the_rules_say(self):
        assert FeeCharge.objects.count() == len(self.expected_fees)
        total = FeeCharge.objects.aggregate(s=Sum("amount"))["s"] or Decimal("0")
        assert total == sum(self.expected_fees, Decimal("0"))
        # first cards are free: every charge belongs to a card that replaced another
        assert not FeeCharge.objects.filter(card__replaces__isnull=True).exists()
        assert not FeeCharge.objects.filter(amount__gt=self.policy.cap).exists()

    @invariant()
    def every_change_is_audited_and_published(self):
        assert CardAction.objects.count() == self.changes
        card_audits = AuditRecord.objects.filter(action__startswith="card.").count()
        graduation_audits = AuditRecord.objects.filter(action__startswith="holder.").count()
        assert card_audits + graduation_audits >= 1 or self.changes == 0
        per_card = CardAction.objects.exclude(action__in=["cancel", "extend"]).count()
        assert card_audits >= per_card
        assert OutboxMessage.objects.filter(topic=Topic.CREDENTIAL).count() == self.changes
        assert not Card.objects.filter(~Q(actions__isnull=False)).exists()


@pytest.mark.django_db
def test_card_lifecycle_state_machine():
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        CardLifecycle,
        settings=settings(
            max_examples=40, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
        ),
    )
