"""The message: in Chinese (the site's language, ``LANGUAGE_CODE``) whatever the language of
whoever edited the rule, with each alert's absolute link (``SITE_URL``). A group lists its
count and its first few alerts; the link to the desk shows the rest."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from ops.alerts.choices import SECURITY_KINDS
from ops.alerts.models import Alert, Notification
from ops.alerts.notifications.transports import Message, Recipient

LISTED = 5  # alerts listed by name in one message; the rest are counted


def alert_url(alert: Alert) -> str:
    return f"{settings.SITE_URL}{reverse('alert-detail', args=[alert.pk])}"


def _when(at: datetime) -> str:
    return f"{timezone.localtime(at):%m-%d %H:%M:%S}"


def _line(alert: Alert) -> dict[str, Any]:
    device = alert.device
    owner = device.owner if device else alert.department
    parts = [
        f"{device.code} {device.name}" if device else alert.subject,
        device.location if device else "",
        alert.building.name if alert.building else "",
        alert.department.name if alert.department and not device else "",  # a temporary card's
    ]
    where = " · ".join(dict.fromkeys(p for p in parts if p))  # a dorm door's location is its building
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "kind_label": str(alert.get_kind_display()),
        "severity": alert.severity,
        "severity_label": str(alert.get_severity_display()),
        "subject": alert.subject,
        "device": device.code if device else "",
        "building": alert.building.code if alert.building else "",
        "owner_department": owner.code if owner else "",
        "where": where,
        "count": alert.count,
        "first_at": alert.first_at.isoformat(),
        "last_at": alert.last_at.isoformat(),
        "url": alert_url(alert),
    }


def render(
    notification: Notification, alerts: Sequence[Alert], recipients: Sequence[Recipient], *, now: datetime
) -> Message:
    """The message for ``alerts`` (the group's alerts still waiting for someone, oldest first)."""
    with translation.override(settings.LANGUAGE_CODE):
        return _render(notification, alerts, recipients, now)


def _render(
    notification: Notification, alerts: Sequence[Alert], recipients: Sequence[Recipient], now: datetime
) -> Message:
    lines = [_line(a) for a in alerts]
    first = alerts[0]
    worst = max(alerts, key=lambda a: ["info", "warning", "critical"].index(a.severity))
    kinds = sorted({str(a.get_kind_display()) for a in alerts})
    prefix = (
        _("【升级·第%(n)s级】") % {"n": notification.level} if notification.level else ""
    ) + f"【{worst.get_severity_display()}】"
    if len(alerts) == 1:
        title = f"{prefix}{first.get_kind_display()} · {lines[0]['where']}"
    else:
        title = prefix + _("%(kinds)s · %(n)s 条告警") % {"kinds": "、".join(kinds), "n": len(alerts)}
    names = "、".join(r.name or r.username for r in recipients)
    md = [f"### {title}"]
    text = [title, ""]
    if len(alerts) > 1:
        summary = _("本组共 %(n)s 条告警未确认，以下列出前 %(k)s 条：") % {
            "n": len(alerts),
            "k": min(LISTED, len(alerts)),
        }
        md.append(summary)
        text.append(summary)
    for alert, line in zip(alerts[:LISTED], lines[:LISTED], strict=True):
        detail = _("%(kind)s｜%(where)s｜%(n)s 次｜首次 %(first)s，最近 %(last)s") % {
            "kind": line["kind_label"],
            "where": line["where"],
            "n": alert.count,
            "first": _when(alert.first_at),
            "last": _when(alert.last_at),
        }
        md.append(f"- {detail} [{_('处理')}]({line['url']})")
        text.append(f"- {detail}\n  {line['url']}")
    if len(alerts) > LISTED:
        more = _("……另有 %(n)s 条，见值班台：%(url)s") % {
            "n": len(alerts) - LISTED,
            "url": settings.SITE_URL
            + ("/live/gates/" if all(a.kind in SECURITY_KINDS for a in alerts) else "/live/devices/"),
        }
        md.append(more)
        text.append(more)
    if names:
        told = _("通知：%(names)s") % {"names": names}
        md.append(told)
        text.append(told)
    footer = _("请登录校园一卡通运营平台确认处理；确认后不再通知。")
    md.append(f"> {footer}")
    text += ["", footer]
    data = {
        "type": "campuscard.alert_notification",
        "version": 1,
        "message_id": notification.pk,
        "rule": notification.rule_name,
        "level": notification.level,
        "group_key": notification.group_key,
        "title": title,
        "text": "\n".join(text),
        "count": len(alerts),
        "alerts": lines,
        "recipients": [{"username": r.username, "name": r.name, "email": r.email} for r in recipients],
        "sent_at": now.isoformat(),
    }
    return Message(title=title, markdown="\n\n".join(md), text="\n".join(text), data=data, recipients=list(recipients))


def render_repair(notification: Notification, recipients: Sequence[Recipient], *, now: datetime) -> Message:
    """A repair ticket's step, told to the device's owning department (issue 18, Build 1)."""
    with translation.override(settings.LANGUAGE_CODE):
        return _render_repair(notification, recipients, now)


def _render_repair(notification: Notification, recipients: Sequence[Recipient], now: datetime) -> Message:
    step = notification.repair_step
    assert step is not None  # only called for a repair step's notification
    ticket = step.ticket
    device = ticket.device
    url = f"{settings.SITE_URL}{reverse('repair-detail', args=[ticket.pk])}"
    title = _("【维修进度】%(device)s · 维修单 #%(n)s %(state)s") % {
        "device": f"{device.code} {device.name}",
        "n": ticket.pk,
        "state": step.get_to_state_display(),
    }
    lines = [
        _("设备：%(device)s（%(where)s）") % {"device": f"{device.code} {device.name}", "where": device.location},
        _("故障：%(d)s") % {"d": ticket.description},
        _("%(when)s %(who)s：%(from)s → %(to)s")
        % {
            "when": _when(step.at),
            "who": step.actor.get_full_name() or step.actor.get_username(),
            "from": step.get_from_state_display() or "—",
            "to": step.get_to_state_display(),
        },
    ]
    if step.comment:
        lines.append(_("说明：%(c)s") % {"c": step.comment})
    names = "、".join(r.name or r.username for r in recipients)
    if names:
        lines.append(_("通知：%(names)s") % {"names": names})
    md = [f"### {title}", *[f"- {line}" for line in lines], f"[{_('查看维修单')}]({url})"]
    text = [title, "", *lines, url]
    data = {
        "type": "campuscard.repair_step",
        "version": 1,
        "message_id": notification.pk,
        "rule": notification.rule_name,
        "title": title,
        "text": "\n".join(text),
        "ticket": ticket.pk,
        "device": device.code,
        "owner_department": device.owner.code,
        "from_state": step.from_state,
        "to_state": step.to_state,
        "at": step.at.isoformat(),
        "url": url,
        "recipients": [{"username": r.username, "name": r.name, "email": r.email} for r in recipients],
        "sent_at": now.isoformat(),
    }
    return Message(title=title, markdown="\n\n".join(md), text="\n".join(text), data=data, recipients=list(recipients))
