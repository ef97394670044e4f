"""Routing and sending, run by ``campuscard supervise`` every ``NOTIFY_S`` (issue 16).

Each tick, with the clock given (``now``; tests drive it):

1. **Route.** For every enabled rule and each of its channels, the alerts that match it and are
   still open — not acknowledged, not resolved — and due for the rule's level (level 0: at
   once; an escalation level: ``delay_s`` after the alert opened, or once the alert itself has
   escalated that far) join their group's notification (rule × channel × group key) while its
   window is open, else open the next one. An alert is told once per rule and channel per
   *episode* — the time it opened: an acknowledgement that lapses (the fault returned) opens a
   new episode, so notifications start again.
2. **Send** what is due (its window closed, or its retry time come): claimed by a conditional
   UPDATE so two supervisors never send one twice; the alerts acknowledged or resolved since are
   dropped, and a notification left with none is cancelled (an acknowledgement stops further
   notifications); the channel's limit is taken in Redis (``ratelimit``), else the send waits;
   every attempt is logged (``DeliveryAttempt``); a failure is retried with exponential backoff
   up to ``NOTIFY_MAX_ATTEMPTS``, a permanent one (a wrong key, no address) is not.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from ops.alerts.choices import AlertStatus, DeliveryStatus, GroupBy, NotificationStatus, Severity
from ops.alerts.models import (
    Alert,
    DeliveryAttempt,
    DutyShift,
    Notification,
    NotificationChannel,
    NotificationItem,
    RoutingRule,
)
from ops.alerts.notifications import transports
from ops.alerts.notifications.message import render, render_repair
from ops.alerts.notifications.ratelimit import RateLimiter
from ops.alerts.notifications.transports import DeliveryError, Recipient
from ops.redis_client import client

log = logging.getLogger(__name__)

SEVERITY_ORDER = [Severity.INFO, Severity.WARNING, Severity.CRITICAL]
CLAIM = timedelta(minutes=2)  # longer than any send takes (HTTP and SMTP time out in 10 s)
BACKOFF_CAP_S = 600
MAX_PER_TICK = 200  # notifications sent per tick at most; the rest wait for the next


def at_least(severity: str) -> list[str]:
    return [s.value for s in SEVERITY_ORDER[SEVERITY_ORDER.index(Severity(severity)) :]]


def group_key(rule: RoutingRule, alert: Alert) -> str:
    building = alert.building.code if alert.building else "-"
    owner = alert.device.owner if alert.device else alert.department
    department = owner.code if owner else "-"
    return {
        GroupBy.KIND: alert.kind,
        GroupBy.KIND_BUILDING: f"{alert.kind}|{building}",
        GroupBy.BUILDING: building,
        GroupBy.DEPARTMENT: department,
        GroupBy.ALERT: f"alert:{alert.pk}",
    }[GroupBy(rule.group_by)]


# -- 1. routing -----------------------------------------------------------------------------


def matching(rule: RoutingRule, *, now: datetime) -> QuerySet[Alert]:
    """The open alerts ``rule`` covers and whose time for its level has come."""
    alerts = Alert.objects.filter(
        status=AlertStatus.OPEN, opened_at__isnull=False, severity__in=at_least(rule.min_severity)
    )
    if rule.kinds:
        alerts = alerts.filter(kind__in=rule.kinds)
    buildings = [b.pk for b in rule.buildings.all()]
    departments = [d.pk for d in rule.owner_departments.all()]
    if buildings:
        alerts = alerts.filter(building_id__in=buildings)
    if departments:  # the device's owner, or the department an alert names (a temporary card's)
        alerts = alerts.filter(Q(device__owner_id__in=departments) | Q(department_id__in=departments))
    if rule.level > 0:
        alerts = alerts.filter(flapping=False)  # a flapping alert does not escalate (docs/desks.md)
    if rule.delay_s is not None:
        alerts = alerts.filter(opened_at__lte=now - timedelta(seconds=rule.delay_s))
    else:
        alerts = alerts.filter(escalation__gte=rule.level)
    return alerts


@transaction.atomic
def route(*, now: datetime) -> int:
    """Put the alerts due for a notification into their groups; returns how many it placed."""
    placed = 0
    # the rules locked: two supervisors routing at once (a claim that lapsed) take turns
    rules = RoutingRule.objects.select_for_update().filter(enabled=True).order_by("pk")
    for rule in rules.prefetch_related("channels", "buildings", "owner_departments"):
        for channel in [c for c in rule.channels.all() if c.enabled]:
            told = NotificationItem.objects.filter(
                alert=OuterRef("pk"),
                episode=OuterRef("opened_at"),
                notification__rule=rule,
                notification__channel=channel,
            )
            fresh = list(
                matching(rule, now=now)
                .exclude(Exists(told))
                .select_related("building", "device__owner", "department")
                .order_by("opened_at", "pk")
            )
            groups: dict[str, list[Alert]] = {}
            for alert in fresh:
                groups.setdefault(group_key(rule, alert), []).append(alert)
            for key, alerts in groups.items():
                notification = _open_group(rule, channel, key, now=now)
                NotificationItem.objects.bulk_create(
                    [
                        NotificationItem(notification=notification, alert=a, episode=a.opened_at)
                        for a in alerts
                        if a.opened_at is not None  # always: matching() asks for it
                    ]
                )
                placed += len(alerts)
    return placed


def _open_group(rule: RoutingRule, channel: NotificationChannel, key: str, *, now: datetime) -> Notification:
    """The group's notification still collecting (its window open), or a new one."""
    current = (
        Notification.objects.filter(
            rule=rule, channel=channel, group_key=key, status=NotificationStatus.PENDING, attempts=0, due_at__gt=now
        )
        .order_by("-opened_at")
        .first()
    )
    if current is not None:
        return current
    due = now + timedelta(seconds=rule.group_window_s)
    return Notification.objects.create(
        rule=rule,
        channel=channel,
        rule_name=rule.name,
        channel_name=channel.name,
        level=rule.level,
        group_key=key[:200],
        opened_at=now,
        due_at=due,
        next_at=due,
    )


# -- 2. sending -----------------------------------------------------------------------------


def deliver_due(*, now: datetime, limiter: RateLimiter) -> Counter[str]:
    """Send every notification whose time has come; counts by outcome."""
    due = (
        Notification.objects.filter(
            status__in=[NotificationStatus.PENDING, NotificationStatus.RETRYING], next_at__lte=now
        )
        .order_by("next_at", "pk")
        .values_list("pk", flat=True)[:MAX_PER_TICK]
    )
    outcomes: Counter[str] = Counter()
    for pk in list(due):
        outcomes[_deliver(pk, now=now, limiter=limiter)] += 1
    return outcomes


def _claim(pk: int, *, now: datetime) -> bool:
    return bool(
        Notification.objects.filter(
            pk=pk, status__in=[NotificationStatus.PENDING, NotificationStatus.RETRYING], next_at__lte=now
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .update(claimed_until=now + CLAIM)
    )


def waiting_alerts(notification: Notification) -> list[Alert]:
    """The notification's alerts still waiting for someone: open, in the episode it was made
    for (acknowledged, resolved or lapsed-and-reopened ones are not this message's any more)."""
    items = notification.items.select_related("alert__building", "alert__device__owner", "alert__department")
    items = items.order_by("alert__opened_at")
    return [i.alert for i in items if i.alert.status == AlertStatus.OPEN and i.alert.opened_at == i.episode]


def recipients(rule: RoutingRule | None, *, now: datetime) -> list[Recipient]:
    """The rule's operators and whoever is on duty now on its rosters."""
    if rule is None:
        return []
    users = {u.pk: u for u in rule.operators.filter(is_active=True)}
    local = timezone.localtime(now)
    shifts = DutyShift.objects.filter(roster__in=rule.rosters.all(), user__is_active=True).select_related("user")
    for shift in shifts:
        if shift.covers(local):
            users.setdefault(shift.user_id, shift.user)
    return [
        Recipient(username=u.get_username(), name=u.get_full_name() or u.get_username(), email=u.email)
        for u in sorted(users.values(), key=lambda u: u.get_username())
    ]


def backoff_s(attempt: int, retry_after_s: float | None = None) -> float:
    """Seconds before attempt ``attempt + 1``: NOTIFY_RETRY_BASE_S doubled each time (≤ 10 min),
    or what the far end asked for if that is longer."""
    wait = min(float(BACKOFF_CAP_S), settings.NOTIFY_RETRY_BASE_S * 2 ** (attempt - 1))
    return max(wait, retry_after_s or 0.0)


def _deliver(pk: int, *, now: datetime, limiter: RateLimiter) -> str:
    if not _claim(pk, now=now):
        return "taken"  # another supervisor is on it
    notification = Notification.objects.select_related(
        "channel", "rule", "repair_step__ticket__device__owner", "repair_step__actor"
    ).get(pk=pk)
    # issue 18, Build 1: a repair ticket's step told to its department carries no alerts
    repair = notification.repair_step_id is not None
    alerts = [] if repair else waiting_alerts(notification)
    if not alerts and not repair:
        _finish(notification, NotificationStatus.CANCELLED)
        return "cancelled"
    channel = notification.channel
    if channel is None or not channel.enabled:
        _record(notification, now, DeliveryStatus.FAILED, alerts, [], "channel deleted or disabled")
        _finish(notification, NotificationStatus.FAILED)
        return "failed"
    wait = limiter.acquire(channel.pk, limit=channel.rate_per_minute, now=now)
    if wait > 0:  # the channel's minute is full: not an attempt, just later
        notification.next_at, notification.claimed_until = now + timedelta(seconds=wait), None
        notification.save(update_fields=["next_at", "claimed_until"])
        return "deferred"
    told = recipients(notification.rule, now=now)
    try:
        message = render_repair(notification, told, now=now) if repair else render(notification, alerts, told, now=now)
        transports.send(channel, message, now=now)
    except DeliveryError as exc:
        error, permanent, retry_after = str(exc), exc.permanent, exc.retry_after_s
    except Exception as exc:  # a bug in an adapter must not stop the other notifications
        log.exception("notification %s: unexpected error", pk)
        error, permanent, retry_after = f"{type(exc).__name__}: {exc}", False, None
    else:
        _record(notification, now, DeliveryStatus.SENT, alerts, told, "")
        notification.sent_at = now
        _finish(notification, NotificationStatus.SENT)
        log.info("notification %s sent to %s: %s alert(s)", pk, channel.name, len(alerts))
        return "sent"
    final = permanent or notification.attempts + 1 >= settings.NOTIFY_MAX_ATTEMPTS
    _record(notification, now, DeliveryStatus.FAILED if final else DeliveryStatus.RETRYING, alerts, told, error)
    log.warning("notification %s to %s failed (attempt %s): %s", pk, channel.name, notification.attempts, error)
    if final:
        _finish(notification, NotificationStatus.FAILED)
        return "failed"
    notification.next_at = now + timedelta(seconds=backoff_s(notification.attempts, retry_after))
    _finish(notification, NotificationStatus.RETRYING)
    return "retrying"


def _record(
    notification: Notification,
    now: datetime,
    status: DeliveryStatus,
    alerts: list[Alert],
    told: list[Recipient],
    error: str,
) -> None:
    notification.attempts += 1
    DeliveryAttempt.objects.create(
        notification=notification,
        channel=notification.channel,
        group_key=notification.group_key,
        attempt=notification.attempts,
        status=status,
        at=now,
        alerts=len(alerts),
        recipients="、".join(r.name or r.username for r in told)[:500],
        error=error[:500],
    )


def _finish(notification: Notification, status: NotificationStatus) -> None:
    notification.status, notification.claimed_until = status, None
    notification.save(update_fields=["status", "claimed_until", "attempts", "next_at", "sent_at"])


# -- the supervisor's job -----------------------------------------------------------------------

_limiter: RateLimiter | None = None


def run(*, now: datetime | None = None, limiter: RateLimiter | None = None) -> Counter[str]:
    """One tick: route, then send what is due. The job ``campuscard supervise`` runs."""
    global _limiter
    now = now or timezone.now()
    if limiter is None:
        _limiter = _limiter or RateLimiter(client())
        limiter = _limiter
    outcomes = Counter({"routed": route(now=now)})
    outcomes.update(deliver_due(now=now, limiter=limiter))
    return outcomes
