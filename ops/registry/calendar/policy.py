"""The door policy the readers get (issue 17): built here and nowhere else in ``ops`` — the
central rules, the door groups and the academic calendar for the next :data:`HORIZON_DAYS` — as
the feed's contract :class:`streams.credentials.DoorPolicy`, and queued on the credential feed
(an outbox row of the credential topic, in the caller's transaction: the relay signs and sends it
at the next version, like a card change)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

from django.utils import timezone

from ops.registry.calendar.choices import RuleKind
from ops.registry.calendar.models import CalendarDay, DoorGroup, DoorRule, PolicyRevision, VacationStay
from ops.registry.lifecycle.choices import Topic
from ops.registry.lifecycle.models import OutboxMessage
from ops.registry.models import Card
from streams import credentials
from streams.calendar import DayType
from streams.cards import CardStatus, CardType
from streams.credentials import DoorPolicy, Stay

HORIZON_DAYS = 400  # the calendar the doors hold: from yesterday to 400 days ahead
REFRESH_WHEN_LEFT_DAYS = 370  # the supervisor sends a fresh one when less than this is left
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–~]\s*(\d{1,2}):(\d{2})\s*$")


def parse_windows(text: str) -> tuple[tuple[time, time], ...]:
    """``"07:00-12:00, 13:30-22:30"`` → windows (``ValueError`` naming the bad one)."""
    windows = []
    for part in re.split(r"[,，;；]", text or ""):
        if not part.strip():
            continue
        match = _WINDOW.match(part)
        if not match:
            raise ValueError(part.strip())
        h1, m1, h2, m2 = (int(x) for x in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59 or (h1, m1) == (h2, m2):
            raise ValueError(part.strip())
        windows.append((time(h1, m1), time(h2, m2)))
    return tuple(windows)


def rule_spec(rule: DoorRule) -> credentials.DoorRule:
    if rule.kind == RuleKind.SCHEDULE:
        schedule: tuple[tuple[time, time], ...] | None = (
            () if rule.closed_all_day else (parse_windows(rule.schedule) or None)
        )
        return credentials.DoorRule(
            id=rule.pk,
            name=rule.name,
            kind="schedule",
            group=rule.group.code,
            day_types=tuple(DayType(t) for t in rule.day_types),
            weekdays=tuple(sorted(int(w) for w in rule.weekdays)),
            schedule=schedule,
        )
    return credentials.DoorRule(
        id=rule.pk,
        name=rule.name,
        kind="dorm",
        group=rule.group.code,
        day_types=tuple(DayType(t) for t in rule.day_types),
        weekdays=tuple(sorted(int(w) for w in rule.weekdays)),
        curfew=rule.curfew,
        curfew_closes=rule.curfew_closes and rule.curfew is not None,
        vacation_closed=rule.vacation_closed,
    )


def door_policy(now: datetime | None = None) -> DoorPolicy:
    """The policy as it stands: every group and rule, the calendar from yesterday (campus time)
    for :data:`HORIZON_DAYS`."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    first, until = today - timedelta(days=1), today + timedelta(days=HORIZON_DAYS)
    days = dict(
        CalendarDay.objects.filter(date__gte=first, date__lt=until).order_by("date").values_list("date", "day_type")
    )
    groups = []
    for group in DoorGroup.objects.prefetch_related("devices", "buildings").order_by("code"):
        groups.append(
            credentials.DoorGroup(
                code=group.code,
                name=group.name,
                devices=tuple(sorted(d.code for d in group.devices.all())),
                buildings=tuple(sorted(b.code for b in group.buildings.all())),
            )
        )
    rules = [rule_spec(rule) for rule in DoorRule.objects.select_related("group").order_by("id")]
    return DoorPolicy(
        issued_at=now,
        days_from=first,
        days_until=until,
        days={d: DayType(t) for d, t in days.items()},
        groups=tuple(groups),
        rules=tuple(rules),
    )


def lock() -> int:
    """Serialise the changes that make a policy (the caller's transaction): returns the next
    revision."""
    row, _created = PolicyRevision.objects.select_for_update().get_or_create(pk=1)
    row.revision += 1
    row.save(update_fields=["revision"])
    return row.revision


def queue_policy(now: datetime | None = None) -> dict[str, Any]:
    """Queue the current policy for the readers (inside the caller's transaction, after
    :func:`lock`); returns what was queued."""
    policy = door_policy(now)
    payload = policy.wire()
    OutboxMessage.objects.create(topic=Topic.CREDENTIAL, payload=payload)
    PolicyRevision.objects.filter(pk=1).update(days_until=policy.days_until)
    return payload


def _last_horizon() -> date | None:
    return PolicyRevision.objects.filter(pk=1).values_list("days_until", flat=True).first()


def in_use() -> bool:
    """Whether there is a central policy to send: rules, calendar days or groups exist, or one
    was sent before (then an empty one must still replace it)."""
    return (
        DoorRule.objects.exists()
        or CalendarDay.objects.exists()
        or DoorGroup.objects.exists()
        or _last_horizon() is not None
    )


def current_payload() -> dict[str, Any] | None:
    """What a reseeded feed carries besides the cards (``ops.pipeline.relay``): the policy, if
    there is one."""
    return door_policy().wire() if in_use() else None


def horizon_left(now: datetime | None = None) -> int | None:
    """Days of calendar the last queued policy still covers (None: none was queued)."""
    until = _last_horizon()
    return None if until is None else (until - timezone.localdate(now or timezone.now())).days


# -- the stay list on the card ------------------------------------------------------------------
def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(0)), timezone.get_current_timezone())


def live_stays(card: Card) -> tuple[Stay, ...]:
    """An active student card's stays not yet ended (at most 8, the soonest first); other cards
    have none (no query)."""
    if card.card_type != CardType.STUDENT or card.status != CardStatus.ACTIVE:
        return ()
    today = timezone.localdate()
    rows = (
        VacationStay.objects.filter(holder_id=card.holder_id, revoked_at__isnull=True, end__gte=today)
        .order_by("start", "id")
        .values_list("start", "end")[:8]
    )
    return tuple(Stay(start=_midnight(start), until=_midnight(end + timedelta(days=1))) for start, end in rows)


def live_stays_by_holder() -> dict[int, tuple[Stay, ...]]:
    """Every holder's stays not yet ended, in one query (a whole feed written at once)."""
    found: dict[int, list[Stay]] = {}
    rows = VacationStay.objects.filter(revoked_at__isnull=True, end__gte=timezone.localdate()).order_by("start", "id")
    for holder_id, start, end in rows.values_list("holder_id", "start", "end"):
        if len(found.setdefault(holder_id, [])) < 8:
            found[holder_id].append(Stay(start=_midnight(start), until=_midnight(end + timedelta(days=1))))
    return {holder: tuple(stays) for holder, stays in found.items()}
